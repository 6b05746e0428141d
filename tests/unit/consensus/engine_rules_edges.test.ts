/**
 * Edges of the consensus engine's rules, proposing and block memory that the fifth mutation pass
 * found unpinned (docs/testing.md): our own proposal for a round held before the round starts,
 * re-sent rather than replaced; a held re-proposal whose proof-of-lock round we never saw; a
 * proposal whose block was forgotten before its round started; a throwing block check asked
 * once; a block locked before its own round, then proposed fresh in it. Everything goes through
 * the engine's public API (events in, actions and getters out).
 * Same fixture as engine.test.ts: four validators of power 1 at height 1; the proposer of round r
 * is validator r mod 4.
 */
import assert from "node:assert/strict";
import { type Block, VoteType } from "../../../chain/block.ts";
import { MAX_KNOWN_BLOCKS } from "../../../consensus/constants.ts";
import type { EngineAction } from "../../../consensus/engine.ts";
import {
  type Harness,
  harness,
  hashOf,
  hexOf,
  isNil,
  makeBlock,
  prevote,
  proposal,
  proposerIndex,
  relayedProposals,
  relayedVotes,
  sentProposals,
  sentVotes,
  timeoutsOf,
} from "../../support/consensus_sim.ts";

/** Our index: the proposer of round 3, so rounds 0 to 2 are proposed by the others. */
const ME = proposerIndex(3);
const OTHERS = [0, 1, 2, 3].filter((i) => i !== ME);

/** Whom each relay among `actions` leaves out (null: nobody). */
function relayExceptions(actions: EngineAction[]): (string | null)[] {
  return actions.flatMap((a) => a.kind === "relay" ? [a.except] : []);
}

/** Precommit timeouts from round 0 up to `round`, with no vote of ours on the way. */
function walkTo(h: Harness, round: number): EngineAction[] {
  let last: EngineAction[] = [];
  for (let r = 0; r < round; r++) last = h.timeout("precommit", r);
  assert.equal(h.engine.round, round);
  return last;
}

Deno.test("engine rules edges: our own proposal held before our round is sent again, not replaced", () => {
  // A copy of the proposal we signed for round 3 (before a restart) reaches us in round 0.
  const h = harness({ me: ME });
  const held = proposal(3, -1, makeBlock(3, 1));
  h.propose(held);
  const actions = walkTo(h, 3);
  assert.deepEqual(sentProposals(actions), [], "no second proposal for round 3");
  assert.deepEqual(h.getValueCalls, [], "no new value is built");
  assert.deepEqual(relayedProposals(actions), [held], "the held proposal goes out again");
  assert.deepEqual(relayExceptions(actions), [null], "to every peer");
  assert.deepEqual(timeoutsOf(actions, "propose"), [], "we proposed: no propose timeout");
  const [pv] = sentVotes(actions, VoteType.Prevote);
  assert.ok(pv, "we prevote our own proposal at once");
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(held.block)));
});

Deno.test("engine rules edges: re-sending a held re-proposal without its proof of lock relays no votes", () => {
  // Our round-3 re-proposal with validRound 1 was signed before a restart; round 1's prevotes
  // never reached us this time.
  const h = harness({ me: ME });
  const held = proposal(3, 1, makeBlock(1, 1));
  h.propose(held);
  walkTo(h, 3);
  const actions = h.timeout("resend", 3);
  assert.deepEqual(relayedProposals(actions), [held]);
  assert.deepEqual(relayedVotes(actions), [], "no prevotes of round 1 to send along");
  assert.equal(timeoutsOf(actions, "resend").length, 1, "the resend timer is re-armed");
});

Deno.test("engine rules edges: a proposal whose block was forgotten before its round is not prevoted", () => {
  // Round 1's proposal arrives during round 0; then round 0's proposer equivocates with more
  // than MAX_KNOWN_BLOCKS blocks, and round 1's block, the oldest, is the one forgotten.
  const h = harness({ me: ME });
  const b = makeBlock(1, 1);
  h.propose(proposal(1, -1, b));
  for (let tag = 10; tag < 10 + MAX_KNOWN_BLOCKS + 4; tag++) {
    h.propose(proposal(0, -1, makeBlock(0, tag)));
  }
  const actions = h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);
  const [pv] = sentVotes(actions, VoteType.Prevote);
  assert.ok(pv, "the round-1 proposal is there, so we prevote at once");
  assert.ok(isNil(pv), "never a prevote for a block the engine no longer holds");
});

Deno.test("engine rules edges: a block check that throws is asked once and the block is invalid", () => {
  let calls = 0;
  const h = harness({
    me: ME,
    isValid: (_b: Block) => {
      calls++;
      throw new Error("bad record");
    },
  });
  const a = makeBlock(0, 1);
  const [pv] = sentVotes(h.propose(proposal(0, -1, a)), VoteType.Prevote);
  assert.ok(pv && isNil(pv), "an invalid proposal gets a nil prevote");
  // 2f+1 prevotes for the block would lock it if it were valid (line 36).
  for (const i of OTHERS) h.vote(prevote(i, 0, a));
  assert.equal(h.engine.lockedRound, -1);
  assert.equal(h.engine.validRound, -1);
  assert.equal(calls, 1, "the verdict is cached");
});

Deno.test("engine rules edges: a block locked before its own round is prevoted when proposed fresh in it", () => {
  // Round 1's proposal reaches us during round 0, and 2f+1 prevote its block there (more than
  // f faulty validators: honest ones prevote only a round's own proposal). We lock it in round
  // 0; in round 1 it is proposed with validRound -1, and line 22 prevotes it: lockedValue = v.
  const h = harness({ me: ME });
  const x = makeBlock(1, 1);
  h.propose(proposal(1, -1, x));
  const [nilPv] = sentVotes(h.timeout("propose", 0), VoteType.Prevote);
  assert.ok(nilPv && isNil(nilPv));
  for (const i of OTHERS) h.vote(prevote(i, 0, x));
  assert.equal(h.engine.lockedRound, 0);
  assert.equal(h.engine.lockedBlockHash, hexOf(hashOf(x)));
  const [pv] = sentVotes(h.timeout("precommit", 0), VoteType.Prevote);
  assert.ok(pv, "the round-1 proposal is there, so we prevote at once");
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(x)));
});
