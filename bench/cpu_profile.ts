/**
 * Reads a V8 `.cpuprofile` (`deno run --cpu-prof`, or a node of the ledger bench run with
 * `LEDGER_PROFILE_DIR`) and prints where the time went: self time by function and by file, and
 * inclusive time by function (a function's own time plus its callees', counted once per sample).
 *
 *   deno run --allow-read bench/cpu_profile.ts FILE.cpuprofile [--top 40] [--under TEXT]
 *
 * `--under TEXT` keeps only the samples with a function whose label contains TEXT on the stack
 * (`--under "#apply chain/chain.ts"`): where that function's time went.
 *
 * Owns: that summary. Must never: be imported by the node or by tests.
 */
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Milliseconds of samples whose top frame is this function (or file). */
  selfByFunction: Map<string, number>;
  selfByFile: Map<string, number>;
  /** Milliseconds of samples with this function anywhere on the stack. */
  inclusiveByFunction: Map<string, number>;
}

/** Repository-relative file names read better than file:// URLs. */
function shortFile(url: string): string {
  if (url === "") return "(native)";
  const m = url.match(/\/(?:wt\/[^/]+|main)\/(.*)$/);
  return m ? m[1] : url.replace(/^file:\/\//, "");
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  return `${f.functionName || "(anonymous)"} ${shortFile(f.url)}:${f.lineNumber + 1}`;
}

export function summarize(p: CpuProfile, under?: string): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfByFunction = new Map<string, number>();
  const selfByFile = new Map<string, number>();
  const inclusiveByFunction = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let totalMs = 0;
  p.samples.forEach((id, i) => {
    // A sample's delta is the time since the previous one: it belongs to this sample's stack.
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    const onStack = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      onStack.add(label(byId.get(n)!));
    }
    if (under !== undefined && ![...onStack].some((k) => k.includes(under))) return;
    totalMs += ms;
    const top = byId.get(id)!;
    add(selfByFunction, label(top), ms);
    add(selfByFile, shortFile(top.callFrame.url), ms);
    for (const k of onStack) add(inclusiveByFunction, k, ms);
  });
  return { totalMs, selfByFunction, selfByFile, inclusiveByFunction };
}

function table(title: string, m: Map<string, number>, totalMs: number, top: number): string {
  const rows = [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `== ${title}`,
    ...rows.map(([k, ms]) =>
      `${ms.toFixed(0).padStart(8)} ms ${(100 * ms / totalMs).toFixed(1).padStart(5)}%  ${k}`
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { top: { type: "string", default: "40" }, under: { type: "string" } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    console.error("usage: deno run --allow-read bench/cpu_profile.ts FILE.cpuprofile [--top N]");
    Deno.exit(2);
  }
  const s = summarize(JSON.parse(await Deno.readTextFile(positionals[0])), values.under);
  const top = Number(values.top);
  console.log(`sampled ${s.totalMs.toFixed(0)} ms`);
  console.log(table("self time by file", s.selfByFile, s.totalMs, top));
  console.log(table("self time by function", s.selfByFunction, s.totalMs, top));
  console.log(table("inclusive time by function", s.inclusiveByFunction, s.totalMs, top));
}
