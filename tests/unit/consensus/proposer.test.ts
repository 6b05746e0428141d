/**
 * Proposer selection: agrees with the step-by-step CometBFT priority algorithm, is
 * proportional to power, deterministic, and a round change moves to the next proposer.
 */
import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { makeValidatorSet, type ValidatorSet } from "../../../chain/validators.ts";
import { proposerAt } from "../../../consensus/proposer.ts";
import { TestRandom } from "../../support/random.ts";

function setOf(powers: readonly number[], label = "p"): ValidatorSet {
  return makeValidatorSet(powers.map((power, i) => ({
    nodeId: sha256(new TextEncoder().encode(`${label}-${i}`)),
    tier: "free" as const,
    power,
    rewardAddress: `r-${i}`,
    address: `127.0.0.1:${30_000 + i}`,
  })));
}

/** The reference: priorities per validator, add power, pick max (lowest id on ties), subtract W. */
function referencePicks(set: ValidatorSet, steps: number): string[] {
  const w = set.totalPower;
  const priority = set.validators.map(() => 0);
  const out: string[] = [];
  for (let s = 0; s < steps; s++) {
    let best = 0;
    for (let i = 0; i < priority.length; i++) {
      priority[i] += set.validators[i].power;
      if (priority[i] > priority[best]) best = i;
    }
    priority[best] -= w;
    out.push(toHex(set.validators[best].nodeId));
  }
  return out;
}

function idAt(set: ValidatorSet, height: number, round = 0): string {
  return toHex(proposerAt(set, height, round).nodeId);
}

Deno.test("matches the step-by-step priority algorithm on random sets", () => {
  const random = new TestRandom(42);
  for (let trial = 0; trial < 60; trial++) {
    const n = random.int(1, 9);
    // Few distinct powers like real tiers, sometimes arbitrary ones.
    const powers = Array.from(
      { length: n },
      () => trial % 2 === 0 ? [1, 10, 100][random.int(0, 2)] : random.int(1, 40),
    );
    const set = setOf(powers, `t${trial}`);
    const w = set.totalPower;
    const expected = referencePicks(set, 2 * w);
    // Height h, round 0 is step h (1-based), and the sequence repeats every W steps.
    for (let h = 1; h <= 2 * w; h++) {
      assert.equal(idAt(set, h), expected[h - 1], `trial ${trial} powers ${powers} height ${h}`);
    }
  }
});

Deno.test("the sequence repeats every W steps (the priorities return to zero)", () => {
  const random = new TestRandom(7);
  for (let trial = 0; trial < 200; trial++) {
    const powers = Array.from({ length: random.int(1, 12) }, () => random.int(1, 200));
    const set = setOf(powers, `period${trial}`);
    const picks = referencePicks(set, 2 * set.totalPower);
    const w = set.totalPower;
    assert.deepEqual(picks.slice(w), picks.slice(0, w), `powers ${powers}`);
  }
});

Deno.test("proportional to power: 1, 10, 100 get a 1 : 10 : 100 share", () => {
  const set = setOf([1, 10, 100], "prop");
  const counts = new Map<string, number>();
  const heights = 111 * 90;
  for (let h = 1; h <= heights; h++) {
    const id = idAt(set, h);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const byPower = set.validators.map((v) => [v.power, counts.get(toHex(v.nodeId)) ?? 0]);
  for (const [power, count] of byPower) assert.equal(count, power * 90, `power ${power}`);

  // Smooth, not just exact per period: any window of 1,000 heights is within ±2 of the share.
  for (const start of [1, 37, 500, 4_321]) {
    const window = new Map<string, number>();
    for (let h = start; h < start + 1_000; h++) {
      const id = idAt(set, h);
      window.set(id, (window.get(id) ?? 0) + 1);
    }
    for (const v of set.validators) {
      const expected = (v.power * 1_000) / set.totalPower;
      const got = window.get(toHex(v.nodeId)) ?? 0;
      assert.ok(Math.abs(got - expected) <= 2, `power ${v.power}: ${got} vs ${expected}`);
    }
  }
});

Deno.test("equal powers take turns in node-id order", () => {
  const set = setOf([5, 5, 5, 5], "eq");
  const ids = set.validators.map((v) => toHex(v.nodeId));
  for (let h = 1; h <= 12; h++) assert.equal(idAt(set, h), ids[(h - 1) % 4]);
});

Deno.test("a heavy validator (10 of 13) proposes 10 of every 13 heights", () => {
  const set = setOf([1, 1, 1, 10], "heavy");
  const heavy = toHex(set.validators.find((v) => v.power === 10)!.nodeId);
  let n = 0;
  for (let h = 1; h <= 13; h++) if (idAt(set, h) === heavy) n++;
  assert.equal(n, 10);
});

Deno.test("a round change moves to the next proposer", () => {
  const set = setOf([3, 1, 7, 2], "round");
  for (let h = 1; h <= 30; h++) {
    for (let r = 0; r < 5; r++) assert.equal(idAt(set, h, r + 1), idAt(set, h + 1, r));
  }
  // With equal powers the next proposer is always a different validator.
  const equal = setOf([1, 1, 1], "round-eq");
  for (let r = 0; r < 6; r++) assert.notEqual(idAt(equal, 4, r), idAt(equal, 4, r + 1));
});

Deno.test("deterministic: independent of member order, object identity and query order", () => {
  const powers = [4, 1, 9, 1, 2];
  const a = setOf(powers, "det");
  const reversed = makeValidatorSet([...a.validators].reverse());
  const forward = Array.from({ length: 60 }, (_, i) => idAt(a, i + 1, i % 3));
  const backward = Array.from({ length: 60 }, (_, i) => 59 - i).map((i) =>
    idAt(reversed, i + 1, i % 3)
  );
  assert.deepEqual(backward.reverse(), forward);
  // Far heights and rounds agree with the period: (h − 1 + r) mod W.
  const w = a.totalPower;
  assert.equal(idAt(a, 1_000_000_007, 0), idAt(a, ((1_000_000_007 - 1) % w) + 1, 0));
  assert.equal(idAt(a, 5, 10_000), idAt(a, 5 + 10_000, 0));
});

Deno.test("rejects a set without power and impossible heights", () => {
  assert.throws(() => proposerAt(setOf([0, 0], "zero"), 1, 0), RangeError);
  assert.throws(() => proposerAt(setOf([1], "one"), 0, 0), RangeError);
  assert.throws(() => proposerAt(setOf([1], "one"), 1, -1), RangeError);
  assert.equal(idAt(setOf([1], "one"), 99, 3), toHex(setOf([1], "one").validators[0].nodeId));
});
