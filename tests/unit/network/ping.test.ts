import assert from "node:assert/strict";
import { PingState } from "../../../network/ping.ts";

function nonces() {
  let n = 0n;
  return () => ++n;
}

Deno.test("first ping goes out at once, then one per interval, never in bursts", () => {
  const p = new PingState(1000, 3000, 0);
  const next = nonces();
  const first = p.tick(0, next);
  assert.deepEqual(first, { action: "send", nonce: 1n });
  assert.equal(p.onPong(1n, 2).matched, true);
  assert.deepEqual(p.tick(500, next), { action: "none" });
  assert.deepEqual(p.tick(1000, next), { action: "send", nonce: 2n });
  p.onPong(2n, 1001);
  // The loop stalls for 10 intervals: exactly one ping when it wakes, not ten.
  assert.deepEqual(p.tick(11_500, next), { action: "send", nonce: 3n });
  p.onPong(3n, 11_501);
  assert.deepEqual(p.tick(11_600, next), { action: "none" });
  assert.equal(p.nextDeadline(), 12_000);
});

Deno.test("RTT: last, minimum and smoothed", () => {
  const p = new PingState(1000, 3000, 0);
  const next = nonces();
  const rtts = [10, 4, 20];
  let t = 0;
  for (const rtt of rtts) {
    const s = p.tick(t, next);
    assert.equal(s.action, "send");
    const r = p.onPong((s as { nonce: bigint }).nonce, t + rtt);
    assert.deepEqual(r, { matched: true, rttMs: rtt });
    t += 1000;
  }
  assert.equal(p.lastRttMs, 20);
  assert.equal(p.minRttMs, 4);
  // 10 → 10 + (4-10)/8 = 9.25 → 9.25 + (20-9.25)/8 = 10.59375
  assert.equal(p.smoothedRttMs, 10.59375);
  assert.equal(p.pingsSent, 3);
  assert.equal(p.pongsReceived, 3);
});

Deno.test("a pong with the wrong nonce does not count and does not clear the ping", () => {
  const p = new PingState(1000, 3000, 0);
  const next = nonces();
  p.tick(0, next);
  assert.deepEqual(p.onPong(99n, 5), { matched: false });
  assert.equal(p.pongsReceived, 0);
  assert.equal(p.onPong(1n, 6).matched, true);
});

Deno.test("slow pongs are measured, not punished; only an overdue pong times out", () => {
  const p = new PingState(1000, 3000, 0);
  const next = nonces();
  p.tick(0, next);
  // No pong yet: later interval slots send nothing, and nothing times out before 3000 ms.
  assert.deepEqual(p.tick(1000, next), { action: "none" });
  assert.deepEqual(p.tick(2999, next), { action: "none" });
  assert.equal(p.nextDeadline(), 3000);
  const late = p.tick(3000, next);
  assert.equal(late.action, "timeout");
  // A pong at 2999 would have been fine:
  const q = new PingState(1000, 3000, 0);
  q.tick(0, nonces());
  assert.deepEqual(q.onPong(1n, 2999), { matched: true, rttMs: 2999 });
});
