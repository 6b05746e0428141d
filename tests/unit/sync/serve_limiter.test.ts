import assert from "node:assert/strict";
import { ServeLimiter } from "../../../sync/serve_limiter.ts";

const req = (count: number) => ({ fromHeight: 1, count });

Deno.test("serve limiter: a burst is served, the excess waits, only an overflow is refused", () => {
  const l = new ServeLimiter({ ratePerSec: 1_000, burst: 1_000, maxDeferred: 2 });
  assert.equal(l.admit("p", req(500), 0), "serve");
  assert.equal(l.admit("p", req(500), 0), "serve");
  assert.equal(l.admit("p", req(500), 0), "deferred");
  assert.equal(l.admit("p", req(500), 0), "deferred");
  assert.equal(l.admit("p", req(500), 0), "refused");
  // Another peer has its own bucket.
  assert.equal(l.admit("q", req(500), 0), "serve");
  assert.deepEqual(l.due(499), []);
  assert.deepEqual(l.due(500).map((d) => d.peer), ["p"]);
  assert.deepEqual(l.due(1_000).map((d) => d.peer), ["p"]);
  assert.deepEqual(l.stats(), { served: 5, deferred: 2, refused: 1 });
});

Deno.test("serve limiter: deferred requests keep their order; a queue blocks newcomers", () => {
  const l = new ServeLimiter({ ratePerSec: 100, burst: 500, maxDeferred: 5 });
  assert.equal(l.admit("p", req(500), 0), "serve");
  l.admit("p", { fromHeight: 10, count: 1 }, 0);
  // Tokens for a small request are back, but it must not overtake the queued one.
  assert.equal(l.admit("p", { fromHeight: 20, count: 1 }, 1_000), "deferred");
  assert.deepEqual(l.due(1_000).map((d) => d.req.fromHeight), [10, 20]);
});

Deno.test("serve limiter: every request costs at least one token, and the burst fits a batch", () => {
  const l = new ServeLimiter({ ratePerSec: 0, burst: 1, maxDeferred: 0 });
  // The burst is raised to one full batch, or a 500-block request could never pass.
  assert.equal(l.admit("p", req(500), 0), "serve");
  assert.equal(l.admit("p", req(0), 0), "refused");
  l.forget("p");
  assert.equal(l.admit("p", req(0), 0), "serve");
});
