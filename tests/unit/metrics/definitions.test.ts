import assert from "node:assert/strict";
import { createNodeMetrics } from "../../../metrics/definitions.ts";

Deno.test("metric help texts stand alone: no lesson numbers, no internal references", () => {
  const m = createNodeMetrics();
  const helps = m.registry.render().split("\n").filter((l) => l.startsWith("# HELP "));
  assert.ok(helps.length > 20);
  for (const h of helps) assert.doesNotMatch(h, /lesson|\.md#|#\d/i, h);
});

Deno.test("timenode_build_info and timenode_is_validator exist", () => {
  const m = createNodeMetrics();
  m.buildInfo.set(1, { version: "9.9.9", deno: "2.9.6" });
  m.isValidator.collectFrom(() => 1);
  const text = m.registry.render();
  assert.match(text, /^timenode_build_info\{deno="2\.9\.6",version="9\.9\.9"\} 1$/m);
  assert.match(text, /^timenode_is_validator 1$/m);
});
