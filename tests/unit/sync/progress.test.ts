import assert from "node:assert/strict";
import { SyncProgress } from "../../../sync/progress.ts";

Deno.test("progress: rate over the window, ETA and fraction", () => {
  const p = new SyncProgress(10_000);
  p.record(0, 0);
  p.record(5_000, 5_000);
  let r = p.report(5_000, 5_000, 20_000);
  assert.equal(r.blocksPerSecond, 1_000);
  assert.equal(r.etaSeconds, 15);
  assert.equal(r.progress, 0.25);
  // Stalled for a long time: the rate decays to zero and the ETA is unknown.
  p.record(30_000, 5_000);
  r = p.report(30_000, 5_000, 20_000);
  assert.equal(r.blocksPerSecond, 0);
  assert.equal(r.etaSeconds, null);
  assert.equal(p.report(30_000, 20_000, 20_000).progress, 1);
  assert.equal(new SyncProgress().report(0, 0, 0).progress, 1);
});
