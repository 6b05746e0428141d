import assert from "node:assert/strict";
import { StallWatch } from "../../../node/stall_watch.ts";

const INTERVAL = 1_000;

Deno.test("stall: no block for stallBlocks intervals while peers are connected", () => {
  const w = new StallWatch({ stallBlocks: 3, blockIntervalMs: INTERVAL, now: 0 });
  assert.equal(w.observe(0, 5, 2).stalled, false);
  assert.equal(w.observe(3_000, 5, 2).stalled, false, "exactly the threshold is not yet a stall");
  const s = w.observe(3_001, 5, 2);
  assert.deepEqual(s, { stalled: true, quietMs: 3_001, thresholdMs: 3_000 });
  assert.equal(w.observe(3_500, 6, 2).stalled, false, "a new block ends it");
  assert.equal(w.observe(6_400, 6, 2).stalled, false);
  assert.equal(w.observe(6_600, 6, 2).stalled, true);
});

Deno.test("stall: time without peers does not count", () => {
  const w = new StallWatch({ stallBlocks: 2, blockIntervalMs: INTERVAL, now: 0 });
  assert.equal(w.observe(10_000, 0, 0).stalled, false);
  assert.equal(w.observe(11_000, 0, 1).quietMs, 1_000, "counted from when peers came");
  assert.equal(w.observe(12_001, 0, 1).stalled, true);
});

Deno.test("stall: stallBlocks 0 turns it off", () => {
  const w = new StallWatch({ stallBlocks: 0, blockIntervalMs: INTERVAL, now: 0 });
  assert.equal(w.observe(1e9, 0, 5).stalled, false);
});

Deno.test("stall notices: warn at the start and once per threshold, recovered once", () => {
  const w = new StallWatch({ stallBlocks: 2, blockIntervalMs: INTERVAL, now: 0 });
  const at = (now: number, height: number) => w.notice(now, w.observe(now, height, 1));
  assert.equal(at(1_000, 1), null);
  assert.equal(at(3_500, 1), "warn");
  assert.equal(at(4_000, 1), null);
  assert.equal(at(5_400, 1), null);
  assert.equal(at(5_500, 1), "warn", "again after one threshold");
  assert.equal(at(6_000, 2), "recovered");
  assert.equal(at(6_500, 3), null);
});
