/**
 * docs/metrics.md, docs/prometheus-alerts.yml and docs/grafana-dashboard.json describe the
 * metrics the code defines: every metric is documented, the dashboard queries only real
 * metrics, and the rules file holds exactly the alerts of metrics.md.
 */
import assert from "node:assert/strict";
import { createNodeMetrics } from "../../../metrics/definitions.ts";

const DOCS = new URL("../../../docs/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, DOCS));

function definedMetrics(): string[] {
  return createNodeMetrics().registry.render().split("\n")
    .filter((l) => l.startsWith("# TYPE "))
    .map((l) => l.split(" ")[2]);
}

/** `name: expr` of each `- alert:` in a YAML text (the rules use one line per expr). */
function alerts(yaml: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | null = null;
  for (const line of yaml.split("\n")) {
    const alert = /^\s*- alert: (\w+)/.exec(line);
    if (alert) current = alert[1];
    const expr = /^\s*expr: (.*?)(\s+# .*)?$/.exec(line);
    if (expr && current) out.set(current, expr[1]);
  }
  return out;
}

Deno.test("docs/metrics.md documents every metric the code defines", async () => {
  const doc = await read("metrics.md");
  for (const name of definedMetrics()) assert.ok(doc.includes(`\`${name}\``), name);
});

Deno.test("the rules file holds exactly the alerts of metrics.md", async () => {
  const doc = await read("metrics.md");
  const block = /## Alerts worth having[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, "an alerts block in metrics.md");
  const documented = alerts(block[1]);
  const shipped = alerts(await read("prometheus-alerts.yml"));
  assert.ok(documented.size >= 10);
  assert.deepEqual([...shipped], [...documented]);
});

Deno.test("the Grafana dashboard queries only defined metrics and shows each of them", async () => {
  const dashboard = JSON.parse(await read("grafana-dashboard.json"));
  const exprs: string[] = [];
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) exprs.push(t.expr);
  }
  const defined = new Set(definedMetrics());
  const used = new Set(
    exprs.flatMap((e) => [...e.matchAll(/\btimenode_[a-z_]+/g)].map((m) => m[0]))
      .map((m) => m.replace(/_(bucket|sum|count)$/, "")),
  );
  for (const m of used) assert.ok(defined.has(m), `${m} is not a metric`);
  for (const m of defined) assert.ok(used.has(m), `${m} has no panel`);
});
