import assert from "node:assert/strict";
import { Backoff } from "../../../network/backoff.ts";
import { type Random, SeededRandom } from "../../../network/random.ts";

/** A Random that always returns the same float, to pin the jitter at its extremes. */
function fixedRandom(value: number): Random {
  return {
    next: () => value,
    u64: () => 0n,
    bytes: (n) => new Uint8Array(n),
  };
}

Deno.test("backoff: by default the window starts at 1 s and doubles to a 60 s cap", () => {
  // At the top of each window the delay is the window itself.
  const b = new Backoff({}, fixedRandom(0.999_999_999));
  const windows = Array.from({ length: 9 }, () => b.nextDelay());
  assert.deepEqual(windows, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  // At the bottom it is half the window: the first redial never comes sooner than 0.5 s.
  assert.equal(new Backoff({}, fixedRandom(0)).nextDelay(), 500);
});

Deno.test("backoff: by default a connection resets the schedule after exactly 60 s", () => {
  for (const [lived, resets] of [[60_000, true], [59_999, false]] as const) {
    const b = new Backoff({}, fixedRandom(0.999_999_999));
    for (let i = 0; i < 8; i++) b.nextDelay();
    b.onConnected(5_000);
    b.onDisconnected(5_000 + lived);
    assert.equal(b.nextDelay(), resets ? 1_000 : 60_000, `after ${lived} ms`);
  }
});

Deno.test("backoff: every delay lies in [window/2, window] and never above the cap", () => {
  for (let seed = 0; seed < 50; seed++) {
    const b = new Backoff({}, new SeededRandom(seed));
    for (let attempt = 0; attempt < 40; attempt++) {
      const window = Math.min(60_000, 1_000 * 2 ** attempt);
      assert.equal(b.currentWindowMs, window);
      const d = b.nextDelay();
      assert.ok(Number.isInteger(d), `integer delay ${d}`);
      assert.ok(d >= window / 2 && d <= window, `seed ${seed} attempt ${attempt}: ${d}`);
      assert.ok(d >= 500, "never a hot loop");
      assert.ok(d <= 60_000, "never above the cap");
    }
  }
});

Deno.test("backoff: the jitter reaches both ends of the window", () => {
  const low = new Backoff({}, fixedRandom(0));
  const high = new Backoff({}, fixedRandom(0.999_999_999));
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(() => low.nextDelay()), [
    500,
    1_000,
    2_000,
    4_000,
    8_000,
    16_000,
    30_000,
    30_000,
  ]);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(() => high.nextDelay()), [
    1_000,
    2_000,
    4_000,
    8_000,
    16_000,
    32_000,
    60_000,
    60_000,
  ]);
});

Deno.test("backoff: delays never shrink before the cap; at the cap they stay >= 30 s", () => {
  for (let seed = 0; seed < 50; seed++) {
    const b = new Backoff({}, new SeededRandom(`growth-${seed}`));
    // Windows 1, 2, 4, ..., 32 s: the floor of each window is the ceiling of the one before.
    let previous = 0;
    for (let i = 0; i < 6; i++) {
      const d = b.nextDelay();
      assert.ok(d >= previous, `seed ${seed}: attempt ${i} waited ${d} after ${previous}`);
      previous = d;
    }
    for (let i = 0; i < 20; i++) assert.ok(b.nextDelay() >= 30_000);
    assert.equal(b.attempts, 26);
  }
});

Deno.test("backoff: jitter differs between peers (no lockstep redials)", () => {
  const a = new Backoff({}, new SeededRandom("peer-a"));
  const b = new Backoff({}, new SeededRandom("peer-b"));
  const da = Array.from({ length: 8 }, () => a.nextDelay());
  const db = Array.from({ length: 8 }, () => b.nextDelay());
  assert.notDeepEqual(da, db);
});

Deno.test("backoff: a connection that lived 60 s resets the schedule", () => {
  const b = new Backoff({}, fixedRandom(0.999_999_999));
  for (let i = 0; i < 10; i++) b.nextDelay();
  assert.equal(b.nextDelay(), 60_000);
  b.onConnected(1_000_000);
  b.onDisconnected(1_000_000 + 60_000);
  assert.equal(b.attempts, 0);
  assert.equal(b.nextDelay(), 1_000);
});

Deno.test("backoff: a short-lived connection does not reset (accept-then-close loops)", () => {
  const b = new Backoff({}, fixedRandom(0.999_999_999));
  let now = 0;
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    const d = b.nextDelay();
    delays.push(d);
    now += d;
    // The peer accepts, then closes us after 59.999 s, every time.
    b.onConnected(now);
    now += 59_999;
    b.onDisconnected(now);
  }
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
});

Deno.test("backoff: disconnect without connect, clock steps back, and reset()", () => {
  const b = new Backoff({}, fixedRandom(0.5));
  b.nextDelay();
  b.nextDelay();
  b.onDisconnected(10_000_000); // never connected: nothing lived, nothing resets
  assert.equal(b.attempts, 2);
  b.onConnected(5_000_000);
  b.onDisconnected(4_000_000); // clock stepped backwards
  assert.equal(b.attempts, 2);
  // The connect is consumed by the disconnect: a second disconnect cannot reset.
  b.onConnected(0);
  b.onDisconnected(1);
  b.onDisconnected(10_000_000);
  assert.equal(b.attempts, 2);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.currentWindowMs, 1_000);
});

Deno.test("backoff: custom options and the exponent never overflows", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 250, resetAfterMs: 10 }, new SeededRandom(1));
  for (let i = 0; i < 2_000; i++) {
    const d = b.nextDelay();
    assert.ok(d >= 50 && d <= 250, `${d}`);
  }
  assert.equal(b.currentWindowMs, 250);
  b.onConnected(0);
  b.onDisconnected(10);
  assert.equal(b.attempts, 0);
  assert.throws(() => new Backoff({ initialMs: 0 }, new SeededRandom(1)), RangeError);
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }, new SeededRandom(1)), RangeError);
  assert.throws(() => new Backoff({ resetAfterMs: -1 }, new SeededRandom(1)), RangeError);
});
