/**
 * Round-state behaviours of the consensus engine that mutation testing found unpinned
 * (docs/testing.md): the proof-of-lock rule at lockedRound = validRound, the lock rule held back
 * during the propose step, deciding in the same event as our own precommit, the bounds of the
 * later-validValue search, our own vote counted once, and which blocks survive when more than
 * MAX_KNOWN_BLOCKS are known. Everything goes through the engine's public API (events in,
 * actions and getters out). Same fixture as engine.test.ts: four validators of power 1 at
 * height 1; the proposer of round r is validator r mod 4.
 */
import assert from "node:assert/strict";
import { type Block, VoteType } from "../../../chain/block.ts";
import { MAX_KNOWN_BLOCKS } from "../../../consensus/constants.ts";
import {
  type Harness,
  harness,
  hashOf,
  hexOf,
  isNil,
  makeBlock,
  precommit,
  prevote,
  proposal,
  proposerIndex,
  sentProposals,
  sentVotes,
  timeoutsOf,
} from "../../support/consensus_sim.ts";

/** Our index: the proposer of round 3, so rounds 0 to 2 are proposed by the others. */
const ME = proposerIndex(3);
/** The three other validators: 2 of them with our vote are 3 of 4, a quorum. */
const OTHERS = [0, 1, 2, 3].filter((i) => i !== ME);

function commits(actions: ReturnType<Harness["vote"]>): Block[] {
  return actions.flatMap((a) => (a.kind === "commit" ? [a.block] : []));
}

/** Round 0: we prevote `block`, two others too; we lock it at round 0 and precommit it. */
function lockAtRoundZero(h: Harness, block: Block): void {
  const [ours] = sentVotes(h.propose(proposal(0, -1, block)), VoteType.Prevote);
  assert.equal(hexOf(ours.blockHash), hexOf(hashOf(block)), "we prevote the proposal");
  h.vote(prevote(OTHERS[0], 0, block));
  const locking = h.vote(prevote(OTHERS[1], 0, block));
  assert.equal(sentVotes(locking, VoteType.Precommit).length, 1, "we precommit on the lock");
  assert.equal(h.engine.lockedRound, 0);
}

Deno.test("engine pins: our fixture has no proposer among us before round 3", () => {
  assert.deepEqual([0, 1, 2].map(proposerIndex).includes(ME), false);
});

Deno.test("engine pins: a proof of lock from the round we locked in overrides the lock", () => {
  // f+1 = 2 validators equivocate in round 0, so both A and B get 3 of 4 prevotes there.
  const h = harness({ me: ME });
  const a = makeBlock(0, 1);
  const b = makeBlock(0, 2);
  lockAtRoundZero(h, a);
  h.propose(proposal(0, -1, b)); // the round-0 proposer equivocates: B is now known
  for (const i of OTHERS) h.vote(prevote(i, 0, b));
  h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);

  // Round 1 re-proposes B with validRound 0 = our lockedRound: the proof of lock is as recent
  // as our lock, so we follow it (line 28: lockedRound <= validRound).
  const [pv] = sentVotes(h.propose(proposal(1, 0, b)), VoteType.Prevote);
  assert.ok(pv, "a round-1 prevote was cast");
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(b)));
});

Deno.test("engine pins: the lock rule waits for the prevote step, then locks and precommits", () => {
  const h = harness({ me: ME });
  const a = makeBlock(0, 1);
  h.propose(proposal(0, -1, a)); // we hold A and prevote it in round 0
  h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);
  assert.equal(h.engine.step, "propose");

  // 2f+1 prevotes for A in round 1 while we wait for round 1's proposal: nothing yet.
  for (const i of OTHERS) {
    assert.deepEqual(sentVotes(h.vote(prevote(i, 1, a))), []);
  }
  assert.equal(h.engine.validRound, -1, "validValue is not taken in the propose step");
  assert.equal(h.engine.lockedRound, -1);

  // Our propose timeout moves us to prevote (nil); now line 36 applies: lock A, precommit it.
  const actions = h.timeout("propose", 1);
  const [ourPrevote] = sentVotes(actions, VoteType.Prevote);
  assert.ok(ourPrevote && isNil(ourPrevote));
  const [ourPrecommit] = sentVotes(actions, VoteType.Precommit);
  assert.ok(ourPrecommit, "the lock rule fired after the propose step");
  assert.equal(hexOf(ourPrecommit.blockHash), hexOf(hashOf(a)));
  assert.equal(h.engine.lockedRound, 1);
  assert.equal(h.engine.validRound, 1);
});

Deno.test("engine pins: our precommit completing a commit decides without arming timeoutPrecommit", () => {
  const h = harness({ me: ME });
  const a = makeBlock(0, 1);
  h.propose(proposal(0, -1, a));
  // Two precommits for A arrive first: 2 of 4 is no quorum, no timer.
  for (const i of OTHERS.slice(0, 2)) {
    assert.deepEqual(timeoutsOf(h.vote(precommit(i, 0, a)), "precommit"), []);
  }
  h.vote(prevote(OTHERS[0], 0, a));
  const actions = h.vote(prevote(OTHERS[1], 0, a));
  // Our lock precommit is the third: the height is decided in this very event.
  assert.equal(sentVotes(actions, VoteType.Precommit).length, 1);
  assert.deepEqual(commits(actions).map((blk) => hexOf(hashOf(blk))), [hexOf(hashOf(a))]);
  assert.deepEqual(timeoutsOf(actions, "precommit"), [], "no timer after the decision");
});

Deno.test("engine pins: a proof of lock from an earlier round becomes validValue once", () => {
  // validRound 0 from round 0's quorum; in round 1 a nil quorum still makes us precommit nil
  // (the search for a later validValue stops above validRound, it does not re-adopt round 0).
  const h = harness({ me: ME });
  const a = makeBlock(0, 1);
  lockAtRoundZero(h, a);
  assert.equal(h.engine.validRound, 0);
  h.timeout("precommit", 0);
  const [nilPrevote] = sentVotes(h.timeout("propose", 1), VoteType.Prevote);
  assert.ok(nilPrevote && isNil(nilPrevote));
  h.vote(prevote(OTHERS[0], 1, null));
  const actions = h.vote(prevote(OTHERS[1], 1, null));
  const [pc] = sentVotes(actions, VoteType.Precommit);
  assert.ok(pc, "nil quorum: we precommit nil (line 44)");
  assert.ok(isNil(pc));
  assert.equal(h.engine.validRound, 0);
});

Deno.test("engine pins: a later round's proof of lock seen late becomes validValue", () => {
  const h = harness({ me: ME });
  const b = makeBlock(1, 1);
  h.timeout("precommit", 0);
  h.propose(proposal(1, -1, b)); // we prevote B in round 1
  h.timeout("precommit", 1);
  assert.equal(h.engine.round, 2);
  assert.equal(h.engine.validRound, -1);
  h.vote(prevote(OTHERS[0], 1, b));
  h.vote(prevote(OTHERS[1], 1, b)); // round 1's quorum for B, now complete
  assert.equal(h.engine.validRound, 1);
  assert.equal(h.engine.lockedRound, -1, "validValue only: no lock from an earlier round");
});

Deno.test("engine pins: our own vote is counted once, even when a copy came back first", () => {
  // A restarted validator's earlier prevote is relayed back to it before it signs the same
  // vote again: its power must not count twice toward a quorum.
  const h = harness({ me: ME });
  const a = makeBlock(0, 1);
  h.vote(prevote(ME, 0, a), "peer");
  const [ours] = sentVotes(h.propose(proposal(0, -1, a)), VoteType.Prevote);
  assert.equal(hexOf(ours.blockHash), hexOf(hashOf(a)));
  const second = h.vote(prevote(OTHERS[0], 0, a));
  assert.deepEqual(sentVotes(second, VoteType.Precommit), [], "2 of 4 is no quorum");
  assert.equal(h.engine.lockedRound, -1);
  const third = h.vote(prevote(OTHERS[1], 0, a));
  assert.equal(sentVotes(third, VoteType.Precommit).length, 1, "3 of 4 locks");
  assert.equal(h.engine.lockedRound, 0);
});

/**
 * Locked on A (round 0) and validValue B (round 1, which we saw only after precommitting nil),
 * now in round 2 where no proposal keeps B; then more than MAX_KNOWN_BLOCKS other blocks.
 */
function lockedAndValidDiffer(): { h: Harness; a: Block; b: Block } {
  const h = harness({ me: ME });
  const a = makeBlock(0, 1);
  const b = makeBlock(1, 1);
  lockAtRoundZero(h, a);
  h.timeout("precommit", 0);
  const [pv1] = sentVotes(h.propose(proposal(1, -1, b)), VoteType.Prevote);
  assert.ok(pv1 && isNil(pv1), "locked on A: prevote nil for a fresh B");
  h.timeout("prevote", 1);
  for (const i of OTHERS) h.vote(prevote(i, 1, b));
  assert.equal(h.engine.lockedBlockHash, hexOf(hashOf(a)));
  assert.equal(h.engine.validRound, 1);
  h.timeout("precommit", 1);
  assert.equal(h.engine.round, 2);
  // Round 0's proposer signs many more blocks: all are remembered (a past round's block may
  // still decide), and the oldest unneeded ones are evicted.
  for (let tag = 10; tag < 10 + MAX_KNOWN_BLOCKS + 4; tag++) {
    h.propose(proposal(0, -1, makeBlock(0, tag)));
  }
  return { h, a, b };
}

Deno.test("engine pins: the validValue block is kept when blocks are evicted, and re-proposed", () => {
  const { h, b } = lockedAndValidDiffer();
  // Round 3 is ours: we re-propose B with validRound 1 rather than build a new value.
  const [p] = sentProposals(h.timeout("precommit", 2));
  assert.ok(p, "we propose in round 3");
  assert.equal(p.validRound, 1);
  assert.equal(hexOf(hashOf(p.block)), hexOf(hashOf(b)));
  assert.deepEqual(h.getValueCalls, []);
});

Deno.test("engine pins: the locked block is kept when blocks are evicted, and still decides", () => {
  const { h, a } = lockedAndValidDiffer();
  // Round 0's precommits for A arrive late; with ours they are 3 of 4.
  h.vote(precommit(OTHERS[0], 0, a));
  const actions = h.vote(precommit(OTHERS[1], 0, a));
  assert.deepEqual(commits(actions).map((blk) => hexOf(hashOf(blk))), [hexOf(hashOf(a))]);
});
