/**
 * The engine's rules one at a time (docs/consensus.md §4), with the paper's line numbers.
 * Four validators of power 1 at height 1: quorum is 3, f+1 is 2, and the proposer of round r
 * is validator r mod 4.
 */
import assert from "node:assert/strict";
import { VoteType } from "../../../chain/block.ts";
import { checkCertificateQuorum, verifyCertificateSignatures } from "../../../chain/certificate.ts";
import { DEFAULT_TIMEOUTS, timeoutDelay } from "../../../consensus/constants.ts";
import { SignStep } from "../../../consensus/sign_position.ts";
import {
  harness,
  hashOf,
  hexOf,
  isNil,
  KEYS,
  makeBlock,
  precommit,
  prevote,
  proposal,
  proposerIndex,
  sentProposals,
  sentVotes,
  SET,
  TEST_GENESIS_HASH,
  timeoutsOf,
} from "../../support/consensus_sim.ts";

Deno.test("proposer of round r is validator r mod 4 in this fixture", () => {
  assert.deepEqual([0, 1, 2, 3, 4].map(proposerIndex), [0, 1, 2, 3, 0]);
});

Deno.test("line 10/21: start schedules timeoutPropose(0) and a resend for a non-proposer", () => {
  const h = harness({ me: 3 });
  const propose = timeoutsOf(h.startActions, "propose");
  assert.equal(propose.length, 1);
  assert.equal(propose[0].round, 0);
  assert.equal(propose[0].delayMs, DEFAULT_TIMEOUTS.proposeMs);
  assert.equal(timeoutsOf(h.startActions, "resend").length, 1);
  assert.equal(sentVotes(h.startActions).length, 0);
});

Deno.test("happy path: prevote, lock and precommit on 2f+1, commit with a valid certificate", () => {
  const h = harness({ me: 3 });
  const a = makeBlock(0);
  const afterProposal = h.propose(proposal(0, -1, a));
  const [pv] = sentVotes(afterProposal, VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(a)), "line 22: prevote id(v)");
  assert.equal(h.engine.step, "prevote");

  assert.equal(sentVotes(h.vote(prevote(0, 0, a))).length, 0, "2 of 4 is no quorum");
  const afterQuorum = h.vote(prevote(1, 0, a));
  const [pc] = sentVotes(afterQuorum, VoteType.Precommit);
  assert.equal(hexOf(pc.blockHash), hexOf(hashOf(a)), "line 36: precommit id(v)");
  const guard = afterQuorum.find((x) => x.kind === "broadcastVote")!;
  assert.ok(guard.kind === "broadcastVote" && guard.guard.lock, "the precommit carries the lock");
  assert.equal(guard.guard.step, SignStep.Precommit);
  assert.equal(h.engine.lockedRound, 0);
  assert.equal(h.engine.validRound, 0);

  h.vote(precommit(0, 0, a));
  const done = h.vote(precommit(1, 0, a));
  const commit = done.find((x) => x.kind === "commit");
  assert.ok(commit && commit.kind === "commit", "line 49: 2f+1 precommits decide");
  assert.equal(hexOf(hashOf(commit.block)), hexOf(hashOf(a)));
  assert.equal(commit.certificate.round, 0);
  assert.equal(commit.certificate.signatures.length, 3);
  assert.deepEqual(
    checkCertificateQuorum(commit.certificate, 1, hashOf(a), SET),
    { ok: true },
  );
  assert.ok(verifyCertificateSignatures(TEST_GENESIS_HASH, commit.certificate));
  assert.equal(h.engine.decision, commit.block);
  // A decided engine ignores further input of its height.
  assert.deepEqual(h.vote(precommit(2, 0, a)), []);
});

/** Locks validator 3 on block A in round 0, leaving it in step precommit. */
function lockedOnA() {
  const h = harness({ me: 3 });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(1, 0, a));
  assert.equal(h.engine.lockedRound, 0);
  return { h, a };
}

Deno.test("locking: a locked node prevotes nil for a different fresh proposal", () => {
  const { h } = lockedOnA();
  // 2f+1 precommits of any kind (line 47) arm timeoutPrecommit; firing it starts round 1.
  h.vote(precommit(0, 0, null));
  const armed = h.vote(precommit(1, 0, null));
  assert.equal(timeoutsOf(armed, "precommit").length, 1);
  h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);
  assert.equal(h.engine.step, "propose");
  assert.equal(h.engine.lockedRound, 0, "the lock survives the round change");

  const b = makeBlock(1, 1);
  const [pv] = sentVotes(h.propose(proposal(1, -1, b)), VoteType.Prevote);
  assert.ok(isNil(pv), "line 23: locked on A, so B gets a nil prevote");
});

Deno.test("locking: a locked node prevotes its locked value when it is re-proposed", () => {
  const { h, a } = lockedOnA();
  // f+1 (2 validators) in round 2 makes the node jump there (line 55).
  h.vote(prevote(0, 2, null));
  h.vote(prevote(1, 2, null));
  assert.equal(h.engine.round, 2);
  const [pv] = sentVotes(h.propose(proposal(2, 0, a)), VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(a)), "line 29: lockedValue = v");
});

Deno.test("unlocking: a POL from a round after the lock (line 28) moves the prevote", () => {
  const { h } = lockedOnA();
  h.vote(prevote(0, 2, null));
  h.vote(prevote(1, 2, null));
  assert.equal(h.engine.round, 2);

  // Round 2's proposer re-proposes B, which validators 0, 1, 2 prevoted in round 1.
  const b = makeBlock(1, 1);
  const noPolYet = h.propose(proposal(2, 1, b));
  assert.equal(sentVotes(noPolYet).length, 0, "line 28 waits for the POL");
  h.vote(prevote(0, 1, b));
  assert.equal(sentVotes(h.vote(prevote(1, 1, b))).length, 0, "2 of 4 is no POL");
  const [pv] = sentVotes(h.vote(prevote(2, 1, b)), VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(b)), "lockedRound 0 <= vr 1: prevote B");
  assert.equal(pv.round, 2);
});

Deno.test("unlocking: without the POL the locked node prevotes nil on timeoutPropose", () => {
  const { h } = lockedOnA();
  h.vote(prevote(0, 2, null));
  h.vote(prevote(1, 2, null));
  h.propose(proposal(2, 1, makeBlock(1, 1)));
  const [pv] = sentVotes(h.timeout("propose", 2), VoteType.Prevote);
  assert.ok(isNil(pv), "line 57");
  assert.equal(h.engine.lockedRound, 0);
});

Deno.test("validValue: 2f+1 prevotes after a nil precommit still update validValue (line 42)", () => {
  const h = harness({ me: 3 });
  const a = makeBlock(0);
  assert.ok(isNil(sentVotes(h.timeout("propose", 0))[0]), "no proposal yet: prevote nil");
  assert.ok(isNil(sentVotes(h.timeout("prevote", 0))[0]), "line 61: precommit nil");
  assert.equal(h.engine.step, "precommit");
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(1, 0, a));
  assert.equal(h.engine.validRound, -1, "2 of 4 for A");
  const late = h.vote(prevote(2, 0, a));
  assert.equal(h.engine.validRound, 0, "validValue = A although the node precommitted nil");
  assert.equal(h.engine.lockedRound, -1, "no lock without a precommit for it");
  assert.equal(sentVotes(late).length, 0, "line 37: no second precommit in the round");
});

Deno.test("a proposer re-proposes its validValue with validRound", () => {
  // Validator 1 proposes round 1.
  const h = harness({ me: 1 });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(2, 0, a));
  assert.equal(h.engine.validRound, 0);
  h.vote(precommit(0, 0, null));
  h.vote(precommit(2, 0, null));
  const next = h.timeout("precommit", 0);
  const [p] = sentProposals(next);
  assert.ok(p, "line 19: the proposer of round 1 proposes");
  assert.equal(p.round, 1);
  assert.equal(p.validRound, 0);
  assert.equal(hexOf(hashOf(p.block)), hexOf(hashOf(a)), "line 16: proposal = validValue");
  assert.deepEqual(h.getValueCalls, [], "getValue is not asked when a validValue exists");
  const [pv] = sentVotes(next, VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(a)), "its own proposal is prevoted at once");
});

Deno.test("a proposer without validValue proposes getValue() and signs it through the guard", () => {
  const h = harness({ me: 0 });
  const [p] = sentProposals(h.startActions);
  assert.ok(p);
  assert.equal(p.round, 0);
  assert.equal(p.validRound, -1);
  assert.deepEqual(h.getValueCalls, [0]);
  const broadcast = h.startActions.find((a) => a.kind === "broadcastProposal")!;
  assert.ok(broadcast.kind === "broadcastProposal");
  assert.equal(broadcast.guard.step, SignStep.Propose);
  assert.equal(timeoutsOf(h.startActions, "propose").length, 0, "no timeoutPropose needed");
  assert.equal(sentVotes(h.startActions, VoteType.Prevote).length, 1);
});

Deno.test("an invalid proposal gets a nil prevote (line 26)", () => {
  const rejecting = harness({ me: 3, isValid: () => false });
  const [pv] = sentVotes(rejecting.propose(proposal(0, -1, makeBlock(0))), VoteType.Prevote);
  assert.ok(isNil(pv), "the shell's isValid refused it");

  const stale = harness({ me: 3 });
  const old = makeBlock(0, 0, { timestamp: 5 }); // not after the previous block's timestamp
  const [pv2] = sentVotes(stale.propose(proposal(0, -1, old)), VoteType.Prevote);
  assert.ok(isNil(pv2), "timestamp must exceed the previous block's");

  const impostor = harness({ me: 3 });
  // Signed by round 0's proposer but claiming another builder in the header.
  const forged = makeBlock(0);
  forged.header.proposer = KEYS[2].publicKey;
  const [pv3] = sentVotes(impostor.propose(proposal(0, -1, forged)), VoteType.Prevote);
  assert.ok(isNil(pv3), "header.proposer must be the proposer of header.round");
});

Deno.test("round skip: f+1 power in a higher round makes the node jump (line 55)", () => {
  const h = harness({ me: 3 });
  h.vote(prevote(0, 5, null));
  h.vote(precommit(0, 5, null));
  assert.equal(h.engine.round, 0, "one validator (1/4) is not f+1, however many messages");
  const jumped = h.vote(prevote(1, 5, null));
  assert.equal(h.engine.round, 5);
  const [t] = timeoutsOf(jumped, "propose");
  assert.equal(t.round, 5);
  assert.equal(t.delayMs, DEFAULT_TIMEOUTS.proposeMs + 5 * DEFAULT_TIMEOUTS.proposeDeltaMs);
});

Deno.test("timeouts grow with the round: base + round × delta", () => {
  for (const step of ["propose", "prevote", "precommit"] as const) {
    const d0 = timeoutDelay(DEFAULT_TIMEOUTS, step, 0);
    const d1 = timeoutDelay(DEFAULT_TIMEOUTS, step, 1);
    const d7 = timeoutDelay(DEFAULT_TIMEOUTS, step, 7);
    assert.ok(d0 < d1 && d1 < d7, step);
    assert.equal(d7 - d0, 7 * (d1 - d0));
  }
  assert.equal(timeoutDelay(DEFAULT_TIMEOUTS, "propose", 10_000_000), 600_000, "capped");

  const h = harness({ me: 3 });
  h.vote(precommit(0, 2, null));
  h.vote(precommit(1, 2, null));
  assert.equal(h.engine.round, 2, "f+1 precommits of round 2");
  h.timeout("propose", 2);
  h.vote(prevote(2, 2, makeBlock(2)));
  const armedPrevote = h.vote(prevote(0, 2, makeBlock(2)));
  const [tp] = timeoutsOf(armedPrevote, "prevote");
  assert.equal(tp.delayMs, 1_000 + 2 * 500, "line 34 with 2f+1 mixed prevotes");
  // Our nil precommit completes 2f+1 precommits of any kind with validators 0 and 1.
  const armedPrecommit = h.timeout("prevote", 2);
  const [tc] = timeoutsOf(armedPrecommit, "precommit");
  assert.equal(tc.delayMs, 1_000 + 2 * 500, "line 47");
  h.timeout("precommit", 2);
  assert.equal(h.engine.round, 3, "line 65");
});

Deno.test("stale timeouts change nothing", () => {
  const h = harness({ me: 3 });
  h.vote(prevote(0, 2, null));
  h.vote(prevote(1, 2, null));
  assert.deepEqual(sentVotes(h.timeout("propose", 0)), [], "round 0 is over");
  assert.equal(h.engine.step, "propose");
  assert.deepEqual(h.timeout("precommit", 1), []);
  assert.equal(h.engine.round, 2);
});

Deno.test("future rounds are buffered, not dropped: the proposal takes effect on arrival", () => {
  const h = harness({ me: 3 });
  const b = makeBlock(1, 1);
  assert.equal(sentVotes(h.propose(proposal(1, -1, b))).length, 0, "round 1 has not started");
  assert.equal(h.engine.round, 0);
  // Validator 2's prevote plus validator 1's proposal: f+1 in round 1, so the node jumps.
  const jumped = h.vote(prevote(2, 1, b));
  assert.equal(h.engine.round, 1);
  const [pv] = sentVotes(jumped, VoteType.Prevote);
  assert.equal(pv.round, 1);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(b)), "the buffered proposal is prevoted");
});

Deno.test("proposals too far ahead are not stored", () => {
  const h = harness({ me: 3 });
  const far = makeBlock(6, 1);
  assert.deepEqual(h.propose(proposal(6, -1, far)), [], "beyond round + 4");
  h.vote(prevote(0, 6, null));
  h.vote(prevote(1, 6, null));
  assert.equal(h.engine.round, 6);
  assert.equal(h.engine.step, "propose", "no stored proposal to prevote");
  // The proposer's resend delivers it again; now it is in range.
  const [pv] = sentVotes(h.propose(proposal(6, -1, far)), VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(far)));
});

Deno.test("line 49 decides on precommits of any round, also an earlier one", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 3, null));
  h.vote(prevote(1, 3, null));
  assert.equal(h.engine.round, 3);
  h.vote(precommit(0, 0, a));
  h.vote(precommit(1, 0, a));
  const done = h.vote(precommit(2, 0, a));
  const commit = done.find((x) => x.kind === "commit");
  assert.ok(commit && commit.kind === "commit");
  assert.equal(commit.certificate.round, 0);
});

Deno.test("precommits for an unknown block decide once the block arrives", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  for (const i of [0, 1, 2]) h.vote(precommit(i, 0, a));
  assert.equal(h.engine.decision, null);
  const done = h.propose(proposal(0, -1, a));
  assert.ok(done.some((x) => x.kind === "commit"));
});

Deno.test("the resend timer re-emits our own messages of this round and the last one", () => {
  const h = harness({ me: 3 });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(1, 0, a)); // we prevoted and precommitted A
  const resent = h.timeout("resend", 0);
  const relayed = resent.flatMap((x) => x.kind === "relay" ? [x] : []);
  assert.equal(relayed.length, 2);
  for (const r of relayed) {
    assert.equal(r.except, null);
    assert.ok(r.message.kind === "vote");
    assert.equal(hexOf(r.message.vote.validator), hexOf(KEYS[3].publicKey));
  }
  assert.equal(timeoutsOf(resent, "resend").length, 1, "re-armed");
  assert.equal(sentVotes(resent).length, 0, "nothing new is signed");
});

Deno.test("a re-proposal carries its proof of lock: the proposer relays the POL prevotes", () => {
  const h = harness({ me: 1 });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(2, 0, a));
  h.vote(precommit(0, 0, null));
  h.vote(precommit(2, 0, null));
  const next = h.timeout("precommit", 0);
  const pol = next.flatMap((x) =>
    x.kind === "relay" && x.message.kind === "vote" && x.message.vote.round === 0 ? [x] : []
  );
  assert.equal(pol.length, 3, "validators 0, 1 (us) and 2 prevoted A in round 0");
  for (const r of pol) {
    assert.ok(r.message.kind === "vote");
    assert.equal(r.message.vote.type, VoteType.Prevote);
    assert.equal(hexOf(r.message.vote.blockHash), hexOf(hashOf(a)));
  }
  // The proposal resend repeats them (plus our own round-0 votes, the previous round's).
  const resent = h.timeout("resend", 1);
  assert.ok(resent.some((x) => x.kind === "relay" && x.message.kind === "proposal"));
  const polSigners = new Set(
    resent.flatMap((x) =>
      x.kind === "relay" && x.message.kind === "vote" && x.message.vote.round === 0 &&
        x.message.vote.type === VoteType.Prevote
        ? [hexOf(x.message.vote.validator)]
        : []
    ),
  );
  assert.deepEqual([...polSigners].sort(), [0, 1, 2].map((i) => hexOf(KEYS[i].publicKey)).sort());
});

Deno.test("locking hands the shell the lock evidence to persist with the precommit", () => {
  const h = harness({ me: 3 });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  const out = h.vote(prevote(1, 0, a));
  const pc = out.find((x) => x.kind === "broadcastVote" && x.vote.type === VoteType.Precommit);
  assert.ok(pc && pc.kind === "broadcastVote" && pc.lockEvidence);
  assert.equal(hexOf(hashOf(pc.lockEvidence.block)), hexOf(hashOf(a)));
  assert.equal(pc.lockEvidence.proofOfLock.length, 3);
  assert.deepEqual(pc.guard.lock?.round, 0);
  const nilPrecommit = harness({ me: 3 });
  nilPrecommit.timeout("propose", 0);
  const nilOut = nilPrecommit.timeout("prevote", 0);
  const nil = nilOut.find((x) => x.kind === "broadcastVote");
  assert.ok(nil && nil.kind === "broadcastVote" && !nil.lockEvidence && !nil.guard.lock);
});

Deno.test("a proof of lock seen after its round still becomes validValue", () => {
  const h = harness({ me: 1 });
  const a = makeBlock(0);
  // Round 0 passes without us seeing its prevotes in time; we move to round 1 by f+1.
  h.vote(prevote(0, 1, null));
  h.vote(prevote(2, 1, null));
  assert.equal(h.engine.round, 1);
  assert.equal(h.engine.validRound, -1);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(2, 0, a));
  h.vote(prevote(3, 0, a));
  assert.equal(h.engine.validRound, 0, "the round-0 POL made A our validValue");
  assert.equal(h.engine.lockedRound, -1, "but no lock: we never precommitted A");
});

Deno.test("stall escape: a step that never sees 2f+1 ends as its timeout would have", () => {
  const h = harness({ me: 3 });
  h.timeout("propose", 0); // prevote nil; nobody else ever votes
  assert.equal(h.engine.step, "prevote");
  for (let i = 0; i < 4; i++) assert.equal(sentVotes(h.timeout("resend", 0)).length, 0);
  const [pc] = sentVotes(h.timeout("resend", 0), VoteType.Precommit);
  assert.ok(pc && isNil(pc), "after 5 quiet resends: precommit nil, like line 61");
  assert.equal(h.engine.round, 0, "never skips the precommit");
  for (let i = 0; i < 4; i++) h.timeout("resend", 0);
  assert.equal(h.engine.round, 0);
  h.timeout("resend", 0);
  assert.equal(h.engine.round, 1, "then the next round, like line 65");
});

Deno.test("stall escape: never while a quorum's timeout is armed", () => {
  const h = harness({ me: 3 });
  h.timeout("propose", 0);
  h.vote(prevote(0, 0, makeBlock(0)));
  h.vote(prevote(1, 0, null));
  // 2f+1 prevotes of any kind: timeoutPrevote is armed, the stall escape stays out of it.
  for (let i = 0; i < 10; i++) assert.equal(sentVotes(h.timeout("resend", 0)).length, 0);
  assert.equal(h.engine.step, "prevote");
});
