/**
 * The vote tallies' counting rules (consensus/vote_set.ts, docs/consensus.md §9) pinned one by
 * one on the tally itself, with unequal powers so that counting heads instead of power, or
 * counting a validator twice, changes the answer.
 */
import assert from "node:assert/strict";
import { type Vote, VoteType } from "../../../chain/block.ts";
import { HeightVotes, NIL_HEX, VoteSet } from "../../../consensus/vote_set.ts";

const HASH_A = new Uint8Array(32).fill(0xaa);
const HASH_B = new Uint8Array(32).fill(0xbb);
const NIL = new Uint8Array(32);
const HEX_A = "aa".repeat(32);
const HEX_B = "bb".repeat(32);

/** Validator ids are hex strings; the vote's own fields only matter where noted. */
function vote(type: VoteType, round: number, blockHash: Uint8Array, tag: number): Vote {
  return {
    type,
    height: 1,
    round,
    blockHash,
    validator: new Uint8Array(32).fill(tag),
    signature: new Uint8Array(64).fill(tag),
  };
}

Deno.test("vote set: a value reaches quorum only above 2/3 of the power, and says so once", () => {
  // Total 6: 4 is exactly 2/3 (no quorum), 5 is more.
  const set = new VoteSet(6);
  assert.equal(set.add("v1", vote(VoteType.Prevote, 0, HASH_A, 1), HEX_A, 2), false);
  assert.equal(set.add("v2", vote(VoteType.Prevote, 0, HASH_A, 2), HEX_A, 2), false);
  assert.equal(set.powerFor(HEX_A), 4);
  assert.equal(set.quorumBlock(), null);
  assert.equal(set.add("v3", vote(VoteType.Prevote, 0, HASH_A, 3), HEX_A, 1), true);
  assert.equal(set.quorumBlock(), HEX_A);
  // A further vote for a value already past quorum does not "reach" it again.
  assert.equal(set.add("v4", vote(VoteType.Prevote, 0, HASH_A, 4), HEX_A, 1), false);
  assert.equal(set.powerFor(HEX_A), 6);
  assert.equal(set.powerFor(HEX_B), 0);
});

Deno.test("vote set: the any-tally counts each validator once, by its first vote", () => {
  const set = new VoteSet(6);
  const first = vote(VoteType.Prevote, 0, HASH_A, 1);
  set.add("v1", first, HEX_A, 4);
  assert.equal(set.hasQuorumAny(), false, "4 of 6 is exactly 2/3");
  // The same validator equivocating: its power is not added to the any-tally again.
  set.add("v1", vote(VoteType.Prevote, 0, HASH_B, 1), HEX_B, 4);
  assert.equal(set.hasQuorumAny(), false);
  assert.equal(set.first("v1"), first);
  assert.equal(set.first("v2"), undefined);
  // But it is counted once in each value's tally.
  assert.equal(set.powerFor(HEX_A), 4);
  assert.equal(set.powerFor(HEX_B), 4);
  assert.equal(set.has("v1", HEX_A), true);
  assert.equal(set.has("v1", HEX_B), true);
  assert.equal(set.has("v2", HEX_A), false);
  assert.equal(set.has("v1", NIL_HEX), false);
  set.add("v2", vote(VoteType.Prevote, 0, NIL, 2), NIL_HEX, 1);
  assert.equal(set.hasQuorumAny(), true, "5 of 6 voted for something");
  assert.equal(set.quorumBlock(), null, "but no value has more than 2/3");
});

Deno.test("vote set: the first value to reach quorum stays the quorum block", () => {
  // An equivocator (power 3) lets two values pass 2/3 of 7; the first one is reported.
  const set = new VoteSet(7);
  set.add("e", vote(VoteType.Precommit, 0, HASH_B, 1), HEX_B, 3);
  set.add("e", vote(VoteType.Precommit, 0, HASH_A, 1), HEX_A, 3);
  set.add("x", vote(VoteType.Precommit, 0, HASH_A, 2), HEX_A, 2);
  assert.equal(set.quorumBlock(), HEX_A);
  set.add("y", vote(VoteType.Precommit, 0, HASH_B, 3), HEX_B, 2);
  assert.equal(set.powerFor(HEX_B), 5);
  assert.equal(set.quorumBlock(), HEX_A);
});

Deno.test("vote set: votesFor lists one vote per validator, sorted by validator id", () => {
  const set = new VoteSet(4);
  const vc = vote(VoteType.Precommit, 0, HASH_A, 0xc);
  const va = vote(VoteType.Precommit, 0, HASH_A, 0xa);
  const vb = vote(VoteType.Precommit, 0, HASH_A, 0xb);
  set.add("0c", vc, HEX_A, 1);
  set.add("0a", va, HEX_A, 1);
  set.add("0b", vb, HEX_A, 1);
  assert.deepEqual(set.votesFor(HEX_A), [va, vb, vc]);
  assert.deepEqual(set.votesFor(HEX_B), []);
});

Deno.test("height votes: classify tells new, duplicate and conflicting votes apart", () => {
  const hv = new HeightVotes(4);
  const first = vote(VoteType.Prevote, 2, HASH_A, 1);
  assert.deepEqual(hv.classify(first, "v1"), { kind: "new" });
  hv.add(first, "v1", 1);
  assert.deepEqual(hv.classify(vote(VoteType.Prevote, 2, HASH_A, 1), "v1"), { kind: "duplicate" });
  assert.deepEqual(hv.classify(vote(VoteType.Prevote, 2, HASH_B, 1), "v1"), {
    kind: "conflict",
    first,
  });
  // Another validator, another round or another type is a new vote.
  assert.deepEqual(hv.classify(vote(VoteType.Prevote, 2, HASH_A, 2), "v2"), { kind: "new" });
  assert.deepEqual(hv.classify(vote(VoteType.Prevote, 3, HASH_B, 1), "v1"), { kind: "new" });
  assert.deepEqual(hv.classify(vote(VoteType.Precommit, 2, HASH_B, 1), "v1"), { kind: "new" });
  assert.equal(hv.get(VoteType.Precommit, 2), undefined);
  assert.equal(hv.get(VoteType.Prevote, 2)?.powerFor(HEX_A), 1);
});

Deno.test("height votes: tallies are kept apart per round and per type", () => {
  const hv = new HeightVotes(4);
  hv.add(vote(VoteType.Prevote, 0, HASH_A, 1), "v1", 1);
  hv.add(vote(VoteType.Prevote, 0, HASH_A, 2), "v2", 1);
  hv.add(vote(VoteType.Precommit, 0, HASH_A, 3), "v3", 1);
  hv.add(vote(VoteType.Prevote, 1, HASH_A, 4), "v4", 1);
  assert.equal(hv.get(VoteType.Prevote, 0)?.powerFor(HEX_A), 2);
  assert.equal(hv.get(VoteType.Precommit, 0)?.powerFor(HEX_A), 1);
  assert.equal(hv.get(VoteType.Prevote, 1)?.powerFor(HEX_A), 1);
});

Deno.test("height votes: only non-nil precommit quorums are recorded, once each", () => {
  const hv = new HeightVotes(4);
  for (let i = 1; i <= 3; i++) hv.add(vote(VoteType.Prevote, 0, HASH_A, i), `v${i}`, 1);
  assert.deepEqual(hv.precommitQuorums(), [], "a prevote quorum is not a commit");
  for (let i = 1; i <= 3; i++) hv.add(vote(VoteType.Precommit, 0, NIL, i), `v${i}`, 1);
  assert.deepEqual(hv.precommitQuorums(), [], "a nil precommit quorum commits nothing");
  for (let i = 1; i <= 2; i++) hv.add(vote(VoteType.Precommit, 1, HASH_B, i), `v${i}`, 1);
  assert.deepEqual(hv.precommitQuorums(), [], "2 of 4 is no quorum");
  hv.add(vote(VoteType.Precommit, 1, HASH_B, 3), "v3", 1);
  hv.add(vote(VoteType.Precommit, 1, HASH_B, 4), "v4", 1);
  assert.deepEqual(hv.precommitQuorums(), [{ round: 1, blockHex: HEX_B }]);
});

Deno.test("height votes: senders are counted once per round, for votes and proposals", () => {
  const hv = new HeightVotes(6);
  hv.add(vote(VoteType.Prevote, 3, HASH_A, 1), "v1", 2);
  // The same validator again in round 3 (a precommit, then a proposal): still power 2.
  hv.add(vote(VoteType.Precommit, 3, HASH_A, 1), "v1", 2);
  hv.noteSender(3, "v1", 2);
  assert.equal(hv.skipTarget(0), -1, "2 of 6 is exactly 1/3: not f+1");
  hv.noteSender(3, "v2", 1);
  assert.equal(hv.skipTarget(0), 3, "3 of 6 is more than 1/3");
  assert.equal(hv.hasSent(3, "v1"), true);
  assert.equal(hv.hasSent(3, "v2"), true);
  assert.equal(hv.hasSent(2, "v1"), false);
  assert.equal(hv.hasSent(3, "v3"), false);
});

Deno.test("height votes: skipTarget is the highest round above ours with f+1 senders", () => {
  const hv = new HeightVotes(3);
  hv.noteSender(2, "v1", 1);
  hv.noteSender(2, "v2", 1);
  hv.noteSender(5, "v1", 1);
  hv.noteSender(5, "v3", 1);
  hv.noteSender(4, "v2", 1);
  hv.noteSender(4, "v3", 1);
  hv.noteSender(7, "v1", 1);
  assert.equal(hv.skipTarget(0), 5, "round 7 has only one sender");
  assert.equal(hv.skipTarget(2), 5);
  assert.equal(hv.skipTarget(4), 5);
  assert.equal(hv.skipTarget(5), -1, "only rounds strictly above ours count");
  assert.equal(hv.skipTarget(9), -1);
});

Deno.test("height votes: roundsAbove counts the distinct rounds above one we are in", () => {
  const hv = new HeightVotes(4);
  for (const r of [1, 3, 3, 4, 6]) hv.noteSender(r, "v1", 1);
  hv.add(vote(VoteType.Prevote, 8, HASH_A, 1), "v1", 1);
  assert.equal(hv.roundsAbove("v1", 0), 5);
  assert.equal(hv.roundsAbove("v1", 3), 3, "rounds 4, 6 and 8");
  assert.equal(hv.roundsAbove("v1", 8), 0);
  assert.equal(hv.roundsAbove("v2", 0), 0);
});
