import assert from "node:assert/strict";
import { PerKeyLimiter, TokenBucket } from "../../../network/rate_limit.ts";

const T0 = 1_700_000_000_000;

Deno.test("token bucket: starts full, then refills at the rate up to the burst", () => {
  const b = new TokenBucket({ ratePerSec: 2, burst: 5 }, T0);
  for (let i = 0; i < 5; i++) assert.equal(b.take(T0), true, `token ${i}`);
  assert.equal(b.take(T0), false);
  assert.equal(b.take(T0 + 499), false, "2/s: the next token needs 500 ms");
  assert.equal(b.take(T0 + 500), true);
  assert.equal(b.take(T0 + 500), false);
  // A long quiet period refills to the burst, never beyond.
  assert.equal(b.available(T0 + 3_600_000), 5);
  for (let i = 0; i < 5; i++) assert.equal(b.take(T0 + 3_600_000), true);
  assert.equal(b.take(T0 + 3_600_000), false);
});

Deno.test("token bucket: multi-token takes are all or nothing", () => {
  const b = new TokenBucket({ ratePerSec: 1, burst: 10 }, T0);
  assert.equal(b.take(T0, 7), true);
  assert.equal(b.take(T0, 4), false);
  assert.equal(b.available(T0), 3);
  assert.equal(b.take(T0, 3), true);
  assert.equal(b.take(T0, 11), false);
  assert.equal(b.take(T0, NaN), false);
  assert.equal(b.take(T0, 0), true);
});

Deno.test("token bucket: a clock stepping backwards mints nothing", () => {
  const b = new TokenBucket({ ratePerSec: 1, burst: 1 }, T0);
  assert.equal(b.take(T0), true);
  assert.equal(b.take(T0 - 10_000), false);
  assert.equal(b.take(T0 + 999), false, "the backwards step did not move the refill base");
  assert.equal(b.take(T0 + 1_000), true);
});

Deno.test("token bucket: long-run throughput matches the rate", () => {
  const b = new TokenBucket({ ratePerSec: 10, burst: 20 }, T0);
  let granted = 0;
  for (let t = 0; t <= 60_000; t += 7) if (b.take(T0 + t)) granted++;
  // 20 burst + 10/s * 60 s = 620, give or take one token of rounding.
  assert.ok(granted >= 619 && granted <= 621, `${granted}`);
});

Deno.test("token bucket: invalid options are refused", () => {
  assert.throws(() => new TokenBucket({ ratePerSec: -1, burst: 1 }, T0), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSec: 1, burst: 0 }, T0), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSec: NaN, burst: 1 }, T0), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSec: 1, burst: Infinity }, T0), RangeError);
});

Deno.test("per-key limiter: keys have independent budgets", () => {
  const l = new PerKeyLimiter({ ratePerSec: 1, burst: 3, maxKeys: 100, exemptLoopback: true });
  for (let i = 0; i < 3; i++) assert.equal(l.allow("1.2.3.4", T0), true);
  assert.equal(l.allow("1.2.3.4", T0), false);
  assert.equal(l.allow("5.6.7.8", T0), true);
  assert.equal(l.available("5.6.7.8", T0), 2);
  assert.equal(l.available("9.9.9.9", T0), 3, "unknown keys have the full burst");
  assert.equal(l.allow("1.2.3.4", T0 + 1_000), true);
});

Deno.test("per-key limiter: loopback keys are never throttled when exempt", () => {
  const l = new PerKeyLimiter({ ratePerSec: 0, burst: 1, maxKeys: 10, exemptLoopback: true });
  for (const key of ["127.0.0.1", "::1", "127.0.0.1:24300", "[::1]:24310", "127.8.8.8"]) {
    for (let i = 0; i < 10_000; i++) assert.equal(l.allow(key, T0), true, key);
    assert.equal(l.available(key, T0), Infinity);
  }
  assert.equal(l.size, 0, "exempt keys take no memory");
  // Non-loopback keys are limited as configured.
  assert.equal(l.allow("10.0.0.1", T0), true);
  assert.equal(l.allow("10.0.0.1", T0), false);
});

Deno.test("per-key limiter: loopback is exempt by default", () => {
  const l = new PerKeyLimiter({ ratePerSec: 0, burst: 1 });
  for (let i = 0; i < 100; i++) assert.equal(l.allow("127.0.0.1", T0), true);
  assert.equal(l.allow("1.2.3.4", T0), true);
  assert.equal(l.allow("1.2.3.4", T0), false);
});

Deno.test("per-key limiter: loopback keys are limited when not exempt", () => {
  const l = new PerKeyLimiter({ ratePerSec: 0, burst: 1, maxKeys: 10, exemptLoopback: false });
  assert.equal(l.allow("127.0.0.1", T0), true);
  assert.equal(l.allow("127.0.0.1", T0), false);
});

Deno.test("per-key limiter: bounded, least recently used evicted first", () => {
  const l = new PerKeyLimiter({ ratePerSec: 0, burst: 1, maxKeys: 3, exemptLoopback: true });
  l.allow("a", T0);
  l.allow("b", T0);
  l.allow("c", T0);
  assert.equal(l.allow("a", T0), false); // touches "a": "b" is now the oldest
  l.allow("d", T0); // evicts "b"
  assert.equal(l.size, 3);
  assert.equal(l.available("b", T0), 1, "b was forgotten");
  assert.equal(l.available("a", T0), 0, "a was kept");
  for (let i = 0; i < 10_000; i++) l.allow(`k${i}`, T0);
  assert.equal(l.size, 3);
});

Deno.test("per-key limiter: prune drops refilled buckets, delete forgets a key", () => {
  const l = new PerKeyLimiter({ ratePerSec: 1, burst: 2, maxKeys: 10, exemptLoopback: true });
  l.allow("a", T0);
  l.allow("b", T0);
  l.allow("b", T0);
  l.prune(T0 + 1_000);
  assert.equal(l.size, 1, "a refilled after 1 s, b needs 2 s");
  l.delete("b");
  assert.equal(l.size, 0);
  assert.throws(
    () => new PerKeyLimiter({ ratePerSec: 1, burst: 1, maxKeys: 0, exemptLoopback: true }),
    RangeError,
  );
});
