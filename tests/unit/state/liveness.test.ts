import assert from "node:assert/strict";
import { countHeight, decodeLiveness } from "../../../state/liveness.ts";

/** Counts heights 1..n with `missedAt(height)` and returns the misses after each. */
function replay(window: number, n: number, missedAt: (h: number) => boolean): number[] {
  let stored: Uint8Array | undefined;
  const out: number[] = [];
  for (let h = 1; h <= n; h++) {
    const r = countHeight(stored, window, h, missedAt(h));
    if (r.value === null) stored = undefined;
    else if (r.value !== undefined) stored = r.value;
    if (stored) assert.equal(decodeLiveness(stored, window).missed, r.missedInWindow);
    out.push(r.missedInWindow);
  }
  return out;
}

Deno.test("liveness: the count is the misses among the last `window` heights", () => {
  for (const window of [1, 3, 8, 10, 17]) {
    // A seeded pattern; the model counts the misses in (h - window, h] directly.
    const missedAt = (h: number) => (h * 2654435761) % 7 < 3;
    const counts = replay(window, 200, missedAt);
    for (let h = 1; h <= 200; h++) {
      let model = 0;
      for (let x = Math.max(1, h - window + 1); x <= h; x++) if (missedAt(x)) model++;
      assert.equal(counts[h - 1], model, `window ${window}, height ${h}`);
    }
  }
});

Deno.test("liveness: nothing is written for a member that keeps signing; the last miss deletes", () => {
  assert.deepEqual(countHeight(undefined, 10, 5, false), { value: undefined, missedInWindow: 0 });
  const first = countHeight(undefined, 10, 5, true);
  assert.ok(first.value instanceof Uint8Array);
  const stored = first.value!;
  assert.equal(decodeLiveness(stored, 10).missed, 1);
  // Same height index again, signed: the miss leaves the window and the key goes away.
  assert.deepEqual(countHeight(stored, 10, 15, false), { value: null, missedInWindow: 0 });
  // A miss again at the same index: unchanged.
  assert.equal(countHeight(stored, 10, 15, true).value, undefined);
});

Deno.test("liveness: a stored value of another window size is corrupt", () => {
  const v = countHeight(undefined, 16, 1, true).value!;
  assert.throws(() => decodeLiveness(v, 24), /bitmap of 2 bytes for a window of 24/);
  assert.throws(() => decodeLiveness(v.subarray(0, 3), 16));
  assert.throws(
    () => countHeight(v, 24, 1, false),
    /liveness value of 10 bytes for a window of 24/,
  );
  assert.throws(() => countHeight(v.subarray(0, 3), 16, 1, false), /liveness value of 3 bytes/);
});
