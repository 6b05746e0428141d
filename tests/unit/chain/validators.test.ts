/**
 * The quorum rules at their boundaries (docs/consensus.md): a quorum is MORE than 2/3 of the
 * power and the round skip needs MORE than 1/3. Exactly 2/3 and exactly 1/3 are not enough.
 *
 * Mutations caught: `>` → `>=` in `hasQuorum` (the exactly-2/3 rows) and in `hasOneThird` (the
 * exactly-1/3 rows); `power * 3 > total * 2` → `power * 2 > total * 3`-style slips fail the
 * "one more" rows.
 */
import assert from "node:assert/strict";
import { hasOneThird, hasQuorum, makeValidatorSet } from "../../../chain/validators.ts";
import { DEFAULT_TIER_POWER, type Tier } from "../../../chain/genesis.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { compareBytes } from "../../../encoding/binary.ts";

/** [power, total, is it a quorum]. Tier powers are free 1, bronze 10, silver 100, gold 1000. */
const QUORUM_CASES: [number, number, boolean][] = [
  [2, 3, false], // 2 of 3: exactly 2/3
  [3, 3, true],
  [4, 6, false], // 4 of 6: exactly 2/3
  [5, 6, true],
  [2, 4, false],
  [3, 4, true], // 3 of 4 is the usual quorum
  [10, 15, false], // one bronze among five frees holds exactly 2/3
  [11, 15, true], // one free more
  [22, 33, false], // three bronze + three free: 2 bronze + 2 free land exactly on 2/3
  [23, 33, true],
  [2_000, 3_000, false], // 2 gold of 3
  [2_001, 3_000, true],
  [0, 0, false], // an empty set never has a quorum
];

for (const [power, total, expected] of QUORUM_CASES) {
  Deno.test(`hasQuorum(${power}, ${total}) is ${expected}`, () => {
    assert.equal(hasQuorum(power, total), expected);
  });
}

/** [power, total, is it more than 1/3 (f+1)]. */
const ONE_THIRD_CASES: [number, number, boolean][] = [
  [1, 3, false], // 1 of 3: exactly 1/3
  [2, 3, true],
  [2, 6, false], // 2 of 6: exactly 1/3
  [3, 6, true],
  [1, 4, false],
  [2, 4, true], // f+1 of 4 is 2
  [5, 15, false],
  [6, 15, true],
  [11, 33, false], // one bronze and one free of 33
  [12, 33, true],
];

for (const [power, total, expected] of ONE_THIRD_CASES) {
  Deno.test(`hasOneThird(${power}, ${total}) is ${expected}`, () => {
    assert.equal(hasOneThird(power, total), expected);
  });
}

Deno.test("validator set: total power sums the tiers, and powerOf answers 0 for strangers", () => {
  const tiers: Tier[] = ["bronze", "bronze", "bronze", "free", "free", "free"];
  const set = makeValidatorSet(tiers.map((tier, i) => ({
    nodeId: sha256(new TextEncoder().encode(`validators-test/${i}`)),
    tier,
    power: DEFAULT_TIER_POWER[tier],
    rewardAddress: `r${i}`,
    address: `127.0.0.1:${30_000 + i}`,
  })));
  // Free-tier members are listed but carry no power (docs/security.md#free-validators).
  assert.equal(set.totalPower, 3);
  assert.equal(set.validators.length, 6);
  assert.equal(set.voting.length, 3);
  assert.equal(set.powerOf("00".repeat(32)), 0);
  // The set is in node id order whatever the input order.
  for (let i = 1; i < set.validators.length; i++) {
    assert.ok(compareBytes(set.validators[i - 1].nodeId, set.validators[i].nodeId) < 0);
  }
  assert.throws(
    () => makeValidatorSet([set.validators[0], set.validators[0]]),
    /duplicate validator/,
  );
});
