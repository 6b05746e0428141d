import assert from "node:assert/strict";
import {
  cryptoRandom,
  type Random,
  randomInt,
  SeededRandom,
  shuffleInPlace,
} from "../../../network/random.ts";

function draw(r: Random) {
  return { f: [r.next(), r.next()], u: r.u64(), b: Array.from(r.bytes(7)) };
}

Deno.test("SeededRandom: same seed, same sequence; different seeds differ", () => {
  assert.deepEqual(draw(new SeededRandom(42)), draw(new SeededRandom(42)));
  assert.deepEqual(draw(new SeededRandom("node-1")), draw(new SeededRandom("node-1")));
  assert.notDeepEqual(draw(new SeededRandom(42)), draw(new SeededRandom(43)));
  assert.notDeepEqual(draw(new SeededRandom("node-1")), draw(new SeededRandom("node-2")));
  assert.notDeepEqual(draw(new SeededRandom(1)), draw(new SeededRandom(1 + 2 ** 32)));
  assert.throws(() => new SeededRandom(NaN), RangeError);
});

Deno.test("SeededRandom: fork gives an independent but reproducible stream", () => {
  const a = new SeededRandom(7);
  const b = new SeededRandom(7);
  assert.deepEqual(draw(a.fork()), draw(b.fork()));
  assert.notDeepEqual(draw(a.fork()), draw(a));
});

for (const [name, r] of [["seeded", new SeededRandom(9)], ["crypto", cryptoRandom]] as const) {
  Deno.test(`${name}: next() in [0, 1), roughly uniform; bytes and u64 in range`, () => {
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1, `${x}`);
      buckets[Math.floor(x * 10)]++;
    }
    // Each bucket expects 2,000; ±300 is more than 6 standard deviations.
    for (const c of buckets) assert.ok(c > 1_700 && c < 2_300, buckets.join(","));
    const u = r.u64();
    assert.ok(u >= 0n && u < 2n ** 64n);
    assert.equal(r.bytes(0).length, 0);
    assert.equal(r.bytes(5).length, 5);
    const big = r.bytes(200_000); // crosses the 65,536-byte getRandomValues limit
    assert.equal(big.length, 200_000);
    assert.ok(big.subarray(150_000).some((v) => v !== 0));
    assert.throws(() => r.bytes(-1), RangeError);
    assert.throws(() => r.bytes(1.5), RangeError);
  });
}

Deno.test("randomInt and shuffleInPlace", () => {
  const r = new SeededRandom("helpers");
  const seen = new Set<number>();
  for (let i = 0; i < 1_000; i++) {
    const v = randomInt(r, 6);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 6);
    seen.add(v);
  }
  assert.equal(seen.size, 6);
  assert.throws(() => randomInt(r, 0), RangeError);
  const items = [...Array(20).keys()];
  const shuffled = shuffleInPlace(r, [...items]);
  assert.notDeepEqual(shuffled, items);
  assert.deepEqual([...shuffled].sort((a, b) => a - b), items);
});
