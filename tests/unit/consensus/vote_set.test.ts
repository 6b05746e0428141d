/**
 * Vote tallies (consensus/vote_set.ts): power counted per validator, quorum strictly above 2/3
 * and the round skip strictly above 1/3, duplicates told from equivocations, and an
 * equivocator counted once in the "any" tally but in each value it voted for.
 *
 * Mutations caught: `>` → `>=` in `hasQuorum` / `hasOneThird` or inlined into `VoteSet.add`,
 * `hasQuorumAny`, `skipTarget` (the exactly-2/3 and exactly-1/3 rows); counting the "any"
 * power per message instead of per validator; `classify` calling a duplicate a conflict (or the
 * reverse); `skipTarget` returning the first instead of the highest round; nil quorums leaking
 * into `precommitQuorums`.
 */
import assert from "node:assert/strict";
import { type Vote, VoteType } from "../../../chain/block.ts";
import { toHex } from "../../../encoding/binary.ts";
import { HeightVotes, NIL_HEX, VoteSet } from "../../../consensus/vote_set.ts";

const A = new Uint8Array(32).fill(0xaa);
const B = new Uint8Array(32).fill(0xbb);
const NIL = new Uint8Array(32);
const AH = toHex(A);
const BH = toHex(B);

/** A vote as the engine hands it over: already verified, so the signature is not looked at. */
function v(
  validator: number,
  hash: Uint8Array,
  type: VoteType = VoteType.Prevote,
  round = 0,
): Vote {
  const id = new Uint8Array(32);
  id[0] = validator;
  return { type, height: 1, round, blockHash: hash, validator: id, signature: new Uint8Array(64) };
}
const id = (validator: number) => toHex(v(validator, NIL).validator);

/** [powers of the voters, total power, quorum expected after the last vote]. */
const QUORUM_ROWS: [number[], number, boolean][] = [
  [[1, 1], 3, false], // 2 of 3
  [[1, 1, 1], 3, true],
  [[1, 1, 1, 1], 6, false], // 4 of 6
  [[1, 1, 1, 1, 1], 6, true],
  [[10], 15, false], // one bronze among five frees
  [[10, 1], 15, true],
  [[10, 10, 1, 1], 33, false], // 2 bronze + 2 free of 3 + 3
  [[10, 10, 1, 1, 1], 33, true],
];

for (const [powers, total, expected] of QUORUM_ROWS) {
  Deno.test(`VoteSet: votes of power ${powers.join("+")} of ${total} reach a quorum: ${expected}`, () => {
    const set = new VoteSet(total);
    const reachedAt: number[] = [];
    powers.forEach((p, i) => {
      if (set.add(id(i), v(i, A), AH, p)) reachedAt.push(i);
    });
    assert.equal(set.powerFor(AH), powers.reduce((a, b) => a + b, 0));
    assert.equal(set.quorumBlock(), expected ? AH : null);
    assert.equal(set.hasQuorumAny(), expected);
    // `add` says true exactly once: on the vote that crossed.
    assert.deepEqual(reachedAt, expected ? [powers.length - 1] : []);
  });
}

Deno.test("VoteSet: the any-tally counts each validator once, by its first vote", () => {
  const set = new VoteSet(3);
  set.add(id(0), v(0, A), AH, 1);
  set.add(id(0), v(0, B), BH, 1); // equivocation: counted for B too, not twice in "any"
  assert.equal(set.hasQuorumAny(), false, "one validator twice is 1 of 3, not 2");
  assert.equal(set.powerFor(AH), 1);
  assert.equal(set.powerFor(BH), 1);
  assert.equal(set.first(id(0))?.blockHash, A);
  set.add(id(1), v(1, NIL), NIL_HEX, 1);
  assert.equal(set.hasQuorumAny(), false, "2 of 3 is exactly 2/3");
  set.add(id(2), v(2, B), BH, 1);
  assert.equal(set.hasQuorumAny(), true);
  assert.equal(set.quorumBlock(), null, "no single value has more than 2/3");
});

Deno.test("VoteSet: votesFor is sorted by validator id; has and powerFor are per value", () => {
  const set = new VoteSet(10);
  for (const i of [5, 1, 3]) set.add(id(i), v(i, A), AH, 2);
  assert.deepEqual(set.votesFor(AH).map((x) => x.validator[0]), [1, 3, 5]);
  assert.deepEqual(set.votesFor(BH), []);
  assert.equal(set.has(id(3), AH), true);
  assert.equal(set.has(id(3), BH), false);
  assert.equal(set.powerFor(BH), 0);
});

Deno.test("HeightVotes: classify tells new, duplicate and conflicting votes apart", () => {
  const h = new HeightVotes(4);
  const first = v(0, A);
  assert.deepEqual(h.classify(first, id(0)), { kind: "new" });
  h.add(first, id(0), 1);
  assert.deepEqual(h.classify(v(0, A), id(0)), { kind: "duplicate" });
  const conflict = h.classify(v(0, B), id(0));
  assert.equal(conflict.kind, "conflict");
  assert.equal(conflict.kind === "conflict" && conflict.first, first);
  // Another type or round of the same validator is a new vote, not an equivocation.
  assert.deepEqual(h.classify(v(0, B, VoteType.Precommit), id(0)), { kind: "new" });
  assert.deepEqual(h.classify(v(0, B, VoteType.Prevote, 1), id(0)), { kind: "new" });
  assert.deepEqual(h.classify(v(1, A), id(1)), { kind: "new" });
});

Deno.test("HeightVotes: an equivocator counts in both values, never twice in one", () => {
  const h = new HeightVotes(3);
  h.add(v(0, A), id(0), 1);
  h.add(v(0, B), id(0), 1);
  h.add(v(1, A), id(1), 1);
  const prevotes = h.get(VoteType.Prevote, 0)!;
  assert.equal(prevotes.powerFor(AH), 2);
  assert.equal(prevotes.powerFor(BH), 1);
  assert.equal(prevotes.quorumBlock(), null, "2 of 3 for A is exactly 2/3");
});

Deno.test("HeightVotes: precommit quorums list non-nil blocks only, with their round", () => {
  const h = new HeightVotes(3);
  for (const i of [0, 1, 2]) h.add(v(i, NIL, VoteType.Precommit, 0), id(i), 1);
  for (const i of [0, 1]) h.add(v(i, A, VoteType.Precommit, 1), id(i), 1);
  assert.deepEqual(h.precommitQuorums(), [], "nil, and exactly 2/3 for A, are no decision");
  h.add(v(2, A, VoteType.Precommit, 1), id(2), 1);
  assert.deepEqual(h.precommitQuorums(), [{ round: 1, blockHex: AH }]);
  // Prevote quorums are not precommit quorums.
  for (const i of [0, 1, 2]) h.add(v(i, B, VoteType.Prevote, 2), id(i), 1);
  assert.equal(h.precommitQuorums().length, 1);
});

/** [powers of the senders in round 5, total, skip expected]. */
const SKIP_ROWS: [number[], number, boolean][] = [
  [[1], 3, false], // exactly 1/3
  [[1, 1], 3, true],
  [[1, 1], 6, false], // 2 of 6
  [[1, 1, 1], 6, true],
  [[1, 1, 1, 1, 1], 15, false], // five frees of 15
  [[10], 15, true],
  [[10, 1], 33, false],
  [[10, 1, 1], 33, true],
];

for (const [powers, total, expected] of SKIP_ROWS) {
  Deno.test(`HeightVotes: senders of power ${powers.join("+")} of ${total} in round 5 make a skip: ${expected}`, () => {
    const h = new HeightVotes(total);
    powers.forEach((p, i) => {
      // Several messages of one validator in a round count its power once.
      h.add(v(i, NIL, VoteType.Prevote, 5), id(i), p);
      h.add(v(i, NIL, VoteType.Precommit, 5), id(i), p);
      h.noteSender(5, id(i), p);
    });
    assert.equal(h.skipTarget(0), expected ? 5 : -1);
    assert.equal(h.skipTarget(5), -1, "only rounds above the current one");
  });
}

Deno.test("HeightVotes: the skip goes to the highest round with f+1, and tracks who sent where", () => {
  const h = new HeightVotes(4);
  for (const i of [0, 1]) h.noteSender(3, id(i), 1);
  for (const i of [2, 3]) h.noteSender(7, id(i), 1);
  h.noteSender(9, id(0), 1); // 1 of 4 in round 9: not enough
  assert.equal(h.skipTarget(0), 7);
  assert.equal(h.skipTarget(3), 7);
  assert.equal(h.skipTarget(7), -1);
  assert.equal(h.hasSent(3, id(0)), true);
  assert.equal(h.hasSent(7, id(0)), false);
  assert.equal(h.roundsAbove(id(0), 0), 2);
  assert.equal(h.roundsAbove(id(0), 3), 1);
  assert.equal(h.roundsAbove(id(3), 7), 0);
});
