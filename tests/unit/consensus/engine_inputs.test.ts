/**
 * The engine's handling of what arrives from the network and the disk: equivocation, hostile
 * and malformed messages, next-height buffering, relaying, the sign guard and a restart.
 */
import assert from "node:assert/strict";
import { ZERO_HASH } from "../../../crypto/hash.ts";
import { makeValidatorSet } from "../../../chain/validators.ts";
import { proposerAt } from "../../../consensus/proposer.ts";
import { type Vote, VoteType } from "../../../chain/block.ts";
import type { ConsensusMessage, EngineAction } from "../../../consensus/engine.ts";
import { SignStep } from "../../../consensus/sign_position.ts";
import {
  buildBlock,
  certificateSigners,
  countingVerify,
  guardedSigner,
  harness,
  hashOf,
  HEIGHT,
  hexOf,
  isNil,
  KEYS,
  makeBlock,
  MemorySignGuard,
  precommit,
  PREVIOUS,
  prevote,
  proposal,
  proposerIndex,
  sentProposals,
  sentVotes,
  SET,
  signProposal,
  signVote,
  testKey,
  timeoutsOf,
} from "../../support/consensus_sim.ts";

function kinds(actions: EngineAction[]): string[] {
  return actions.map((a) => a.kind);
}

function rejections(actions: EngineAction[]) {
  return actions.flatMap((a) => a.kind === "rejected" ? [a] : []);
}

Deno.test("equivocation: reported once; the 'any' tally counts the validator once", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  const b = makeBlock(0, 1);
  h.propose(proposal(0, -1, b));

  assert.ok(kinds(h.vote(precommit(0, 0, a))).includes("relay"));
  const second = h.vote(precommit(0, 0, b));
  const ev = second.find((x) => x.kind === "equivocation");
  assert.ok(ev && ev.kind === "equivocation" && ev.evidence.kind === "duplicateVote");
  assert.equal(hexOf(ev.evidence.first.blockHash), hexOf(hashOf(a)));
  assert.equal(hexOf(ev.evidence.second.blockHash), hexOf(hashOf(b)));
  const third = h.vote(precommit(0, 0, null));
  assert.ok(
    !third.some((x) => x.kind === "equivocation"),
    "one report per (validator, round, type)",
  );
  assert.deepEqual(h.vote(precommit(0, 0, a)), [], "a vote seen before is a plain duplicate");
  assert.deepEqual(h.vote(precommit(0, 0, b)), []);

  // Three precommits from validator 0 plus one from validator 1: 2 of 4 validators, so no
  // "2f+1 precommits of any kind" (line 47) yet.
  const notYet = h.vote(precommit(1, 0, null));
  assert.equal(timeoutsOf(notYet, "precommit").length, 0, "validator 0 counted once");
  const armed = h.vote(precommit(2, 0, null));
  assert.equal(timeoutsOf(armed, "precommit").length, 1);
});

Deno.test("equivocation: reported once per (validator, round, type), not once in all", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  const b = makeBlock(0, 1);
  const reported = (actions: EngineAction[]) =>
    actions.filter((x) => x.kind === "equivocation").length;
  h.vote(precommit(0, 0, a));
  assert.equal(reported(h.vote(precommit(0, 0, b))), 1, "validator 0, round 0, precommit");
  h.vote(prevote(0, 0, a));
  assert.equal(reported(h.vote(prevote(0, 0, b))), 1, "the same validator's prevotes");
  h.vote(precommit(1, 0, a));
  assert.equal(reported(h.vote(precommit(1, 0, b))), 1, "another validator");
  h.vote(precommit(0, 1, a));
  assert.equal(reported(h.vote(precommit(0, 1, b))), 1, "another round");
});

Deno.test("equivocation: a value's tally counts each validator once, the equivocator included", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  const b = makeBlock(0, 1);
  h.propose(proposal(0, -1, b));
  h.vote(precommit(0, 0, a));
  const counted = h.vote(precommit(0, 0, b));
  assert.ok(kinds(counted).includes("relay"), "a counted conflicting vote is gossiped");
  h.vote(precommit(1, 0, b));
  assert.equal(h.engine.decision, null, "B has validators 0 and 1");
  const done = h.vote(precommit(2, 0, b));
  const commit = done.find((x) => x.kind === "commit");
  assert.ok(commit && commit.kind === "commit", "the paper counts signed messages per value");
  const signers = certificateSigners(commit.certificate);
  assert.deepEqual(signers, [0, 1, 2].map((i) => hexOf(KEYS[i].publicKey)).sort());
});

Deno.test("equivocation: a conflicting vote for an unknown block counts once the block is known", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  const c = makeBlock(0, 2);
  h.vote(precommit(0, 0, a));
  const early = h.vote(precommit(0, 0, c));
  assert.ok(early.some((x) => x.kind === "equivocation"));
  assert.ok(!kinds(early).includes("relay"), "not stored, so not relayed");
  h.vote(precommit(1, 0, c));
  h.vote(precommit(2, 0, c));
  h.propose(proposal(0, -1, c));
  // Validators 1 and 2 are counted for C; validator 0's C vote was dropped while C was unknown.
  assert.equal(h.engine.decision, null);
  const resent = h.vote(precommit(0, 0, c));
  assert.ok(!resent.some((x) => x.kind === "equivocation"), "evidence was already reported");
  assert.equal(hexOf(hashOf(h.engine.decision!)), hexOf(hashOf(c)));
});

Deno.test("equivocation: conflicting prevotes are evidence too, per type", () => {
  const h = harness({ me: null });
  h.vote(prevote(2, 0, null));
  const ev = h.vote(prevote(2, 0, makeBlock(0)));
  assert.ok(ev.some((x) => x.kind === "equivocation"));
  assert.ok(
    !h.vote(precommit(2, 0, makeBlock(0))).some((x) => x.kind === "equivocation"),
    "a precommit after a prevote is no conflict",
  );
});

Deno.test("a second, different proposal from the proposer is evidence; its block still counts", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  const b = makeBlock(0, 1);
  assert.ok(kinds(h.propose(proposal(0, -1, a))).includes("relay"));
  const second = h.propose(proposal(0, -1, b));
  const ev = second.find((x) => x.kind === "equivocation");
  assert.ok(ev && ev.kind === "equivocation" && ev.evidence.kind === "duplicateProposal");
  // The network decides B: the engine can commit it because it kept B's block.
  for (const i of [1, 2, 3]) h.vote(precommit(i, 0, b));
  assert.equal(hexOf(hashOf(h.engine.decision!)), hexOf(hashOf(b)));
});

Deno.test("bad signatures are rejected, reported with the peer, and not counted", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  const forged: Vote = { ...precommit(0, 0, a), signature: new Uint8Array(64).fill(7) };
  const [r] = rejections(h.vote(forged, "evil-peer"));
  assert.equal(r.reason, "bad-signature");
  assert.equal(r.from, "evil-peer");
  h.vote(precommit(1, 0, a));
  h.vote(precommit(2, 0, a));
  assert.equal(h.engine.decision, null, "the forged precommit did not count");
  h.vote(precommit(0, 0, a));
  assert.ok(h.engine.decision, "the real one from validator 0 still counts");
});

Deno.test("a vote signed for another chain does not verify", () => {
  const h = harness({ me: null });
  const other = signVote(KEYS[0], VoteType.Prevote, HEIGHT, 0, ZERO_HASH, new Uint8Array(32));
  assert.equal(rejections(h.vote(other))[0].reason, "bad-signature");
});

Deno.test("votes from non-members and proposals from non-proposers are rejected", () => {
  const h = harness({ me: null });
  const outsider = signVote(testKey("outsider"), VoteType.Prevote, HEIGHT, 0, ZERO_HASH);
  assert.equal(rejections(h.vote(outsider))[0].reason, "not-validator");

  const p = proposal(1, -1, makeBlock(1)); // round 1's proposer signs ...
  const stolen = { ...p, round: 0 }; // ... and claims round 0, which is not its round
  assert.equal(rejections(h.propose(stolen))[0].reason, "bad-signature");
  assert.equal(h.engine.step, "propose");
});

Deno.test("a relayed proposal with swapped records is rejected as bad-records", () => {
  const h = harness({ me: 3 });
  const good = proposal(0, -1, makeBlock(0));
  const tampered = {
    ...good,
    block: { ...good.block, records: [{ type: 1, data: new Uint8Array([9, 9]) }] },
  };
  const out = h.propose(tampered, "relayer");
  assert.equal(rejections(out)[0].reason, "bad-records");
  assert.equal(sentVotes(out).length, 0);
  // The genuine proposal is still accepted afterwards.
  assert.equal(sentVotes(h.propose(good)).length, 1);
});

Deno.test("malformed input is rejected without throwing", () => {
  const h = harness({ me: 3 });
  const good = prevote(0, 0, null);
  const bad: unknown[] = [
    { ...good, signature: new Uint8Array(10) },
    { ...good, blockHash: new Uint8Array(31) },
    { ...good, validator: "not bytes" },
    { ...good, type: 9 },
    { ...good, round: -1 },
    { ...good, round: 20_000 },
    { ...good, height: Number.MAX_SAFE_INTEGER + 2 },
    null,
  ];
  for (const v of bad) {
    const out = h.vote(v as Vote);
    assert.equal(rejections(out)[0]?.reason, "malformed", JSON.stringify(v));
  }
  const p = proposal(0, -1, makeBlock(0));
  const badProposals: unknown[] = [
    { ...p, validRound: 0 }, // validRound must be below round
    { ...p, validRound: -2 },
    { ...p, block: { header: { ...p.block.header, chainId: new Uint8Array(3) }, records: [] } },
    { ...p, block: { ...p.block, records: [{ type: 300, data: new Uint8Array() }] } },
    { ...p, block: null },
  ];
  for (const bp of badProposals) {
    const out = h.propose(bp as typeof p);
    assert.equal(rejections(out)[0]?.reason, "malformed");
  }
  // A block built in a later round than the one proposing it, and a fresh block (vr = -1)
  // from an earlier round, are both impossible for an honest proposer.
  const early = proposal(1, -1, makeBlock(0));
  h.vote(prevote(0, 1, null));
  h.vote(prevote(2, 1, null));
  assert.equal(rejections(h.propose(early))[0]?.reason, "malformed");
  assert.equal(h.engine.step, "propose");
});

Deno.test("far-future rounds are bounded per validator", () => {
  const h = harness({ me: null });
  for (const r of [10, 11, 12, 13]) h.vote(prevote(0, r, null));
  // Only two far-future rounds were stored for validator 0: round 12 needs 2 validators.
  h.vote(prevote(1, 12, null));
  assert.equal(h.engine.round, 0, "validator 0's round-12 vote was not stored");
  h.vote(prevote(1, 11, null));
  assert.equal(h.engine.round, 11, "rounds 10 and 11 were kept");
});

/** A correctly signed proposal for HEIGHT + 1 by its proposer of `round` in SET. */
function nextHeightProposal(round: number) {
  const block = buildBlock({
    set: SET,
    height: HEIGHT + 1,
    previous: { hash: hashOf(makeBlock(0)), timestamp: PREVIOUS.timestamp + 1_000 },
    round,
    records: [{ type: 1, data: new Uint8Array([round]) }],
  });
  const id = hexOf(proposerAt(SET, HEIGHT + 1, round).nodeId);
  const key = KEYS.find((k) => hexOf(k.publicKey) === id)!;
  return signProposal(key, HEIGHT + 1, round, -1, block);
}

Deno.test("next-height messages are buffered, deduplicated and handed over", () => {
  const h = harness({ me: 3 });
  const v = prevote(0, 0, null, HEIGHT + 1);
  assert.deepEqual(h.vote(v, "p1"), []);
  assert.deepEqual(h.vote(v, "p2"), [], "same signature: kept once");
  h.propose(nextHeightProposal(0));
  assert.deepEqual(h.vote(prevote(0, 0, null, HEIGHT + 2)), [], "h + 2 is ignored");
  const taken = h.engine.takeNextHeightMessages();
  assert.equal(taken.length, 2);
  assert.equal(taken[0].from, "p1");
  assert.equal(taken[0].message.kind, "vote");
  assert.deepEqual(h.engine.takeNextHeightMessages(), [], "taking empties the buffer");
});

Deno.test("the next-height buffer holds at most 4 votes per signer and a few proposals", () => {
  const h = harness({ me: null });
  // One member floods 40 rounds: 4 are kept, and the others still get their share.
  for (let round = 0; round < 40; round++) h.vote(prevote(0, round, null, HEIGHT + 1));
  for (let i = 1; i < 4; i++) {
    for (let round = 0; round < 10; round++) h.vote(prevote(i, round, null, HEIGHT + 1));
  }
  for (let round = 0; round < 8; round++) h.propose(nextHeightProposal(round));
  const taken = h.engine.takeNextHeightMessages();
  const votes = taken.filter((t) => t.message.kind === "vote");
  assert.equal(votes.length, 16, "4 per member of 4");
  for (const k of KEYS) {
    const mine = votes.filter((t) =>
      t.message.kind === "vote" && hexOf(t.message.vote.validator) === hexOf(k.publicKey)
    );
    assert.equal(mine.length, 4);
  }
  const proposals = taken.filter((t) => t.message.kind === "proposal");
  assert.ok(proposals.length >= 1 && proposals.length <= 4, `${proposals.length} proposals`);
  assert.equal(h.engine.nextHeightDropped.get("signer-cap"), 36 + 3 * 6);
});

Deno.test("next-height votes from outside the next set cost no verification and are dropped", () => {
  const counter = countingVerify();
  // Height + 1 is certified by members 0 and 1 plus a free-tier (power 0) member 9.
  const free = testKey("next-free");
  const next = makeValidatorSet([
    ...SET.validators.slice(0, 2),
    { ...SET.validators[0], nodeId: free.publicKey, tier: "free" as const, power: 0 },
  ]);
  const h = harness({ me: null, nextValidators: next, verify: counter.verify });
  const member2 = KEYS.findIndex((k) => hexOf(k.publicKey) === hexOf(SET.validators[2].nodeId));
  for (let round = 0; round < 50; round++) {
    h.vote(signVote(testKey(`stranger-${round}`), VoteType.Prevote, HEIGHT + 1, 0, ZERO_HASH));
    h.vote(signVote(free, VoteType.Prevote, HEIGHT + 1, round, ZERO_HASH));
    h.vote(prevote(member2, round, null, HEIGHT + 1)); // a member of h only
  }
  assert.equal(counter.calls(), 0);
  assert.equal(h.engine.nextHeightDropped.get("not-member"), 150);
  const member0 = KEYS.findIndex((k) => hexOf(k.publicKey) === hexOf(SET.validators[0].nodeId));
  h.vote(prevote(member0, 0, null, HEIGHT + 1));
  assert.equal(counter.calls(), 1);
  assert.equal(h.engine.takeNextHeightMessages().length, 1);
});

Deno.test("forged next-height votes are rejected and never take a member's slots", () => {
  const h = harness({ me: null });
  for (let round = 0; round < 10; round++) {
    const forged = { ...prevote(0, round, null, HEIGHT + 1), signature: new Uint8Array(64) };
    const actions = h.vote(forged, "liar");
    assert.deepEqual(kinds(actions), ["rejected"]);
  }
  for (let round = 0; round < 4; round++) h.vote(prevote(0, round, null, HEIGHT + 1));
  assert.equal(h.engine.takeNextHeightMessages().length, 4);
  assert.equal(h.engine.nextHeightDropped.get("bad-signature"), 10);
});

Deno.test("without the next set nothing is buffered", () => {
  const h = harness({ me: null, nextValidators: null });
  h.vote(prevote(0, 0, null, HEIGHT + 1));
  h.propose(nextHeightProposal(0));
  assert.deepEqual(h.engine.takeNextHeightMessages(), []);
  assert.equal(h.engine.nextHeightDropped.get("no-set"), 2);
});

Deno.test("a refused sign guard stops the message, not the state machine", () => {
  const never = {
    ...guardedSigner(KEYS[3], null),
    canSign: () => false,
  };
  const h = harness({ me: 3, signer: never });
  const out = h.propose(proposal(0, -1, makeBlock(0)));
  assert.equal(sentVotes(out).length, 0);
  assert.equal(h.engine.step, "prevote", "it moved on as if it had prevoted");

  const asProposer = harness({
    me: 0,
    signer: { ...guardedSigner(KEYS[0], null), canSign: () => false },
  });
  assert.equal(sentProposals(asProposer.startActions).length, 0);
  assert.equal(
    asProposer.startActions.filter((a) => a.kind === "scheduleTimeout" && a.step === "propose")
      .length,
    1,
    "a proposer that cannot propose waits like everyone else",
  );
});

Deno.test("every signed message carries the guard record the shell must persist first", () => {
  const h = harness({ me: 0 });
  const signed = h.startActions.filter((a) =>
    a.kind === "broadcastProposal" || a.kind === "broadcastVote"
  );
  assert.equal(signed.length, 2);
  const [p, v] = signed;
  assert.ok(p.kind === "broadcastProposal" && v.kind === "broadcastVote");
  assert.deepEqual(
    [p.guard.height, p.guard.round, p.guard.step],
    [HEIGHT, 0, SignStep.Propose],
  );
  assert.deepEqual([v.guard.round, v.guard.step], [0, SignStep.Prevote]);
  assert.equal(hexOf(v.guard.blockHash), hexOf(v.vote.blockHash));
  assert.equal(v.guard.lock, undefined, "a prevote implies no lock");
});

Deno.test("restart: the restored lock and round keep the node from conflicting", () => {
  const a = makeBlock(0);
  const restored = {
    lastSigned: { height: HEIGHT, round: 2, step: SignStep.Precommit, blockHash: hashOf(a) },
    lock: { height: HEIGHT, round: 0, blockHash: hashOf(a) },
  };
  const h = harness({ me: 3, restore: restored });
  // The shell would load the guard from disk; mirror its content here.
  h.guard.lastSigned = restored.lastSigned;
  h.guard.lock = restored.lock;
  assert.equal(h.engine.round, 2, "resumes at the last signed round");
  assert.equal(h.engine.lockedRound, 0);

  const b = makeBlock(2, 1);
  const out = h.propose(proposal(2, -1, b));
  assert.equal(sentVotes(out).length, 0, "round 2 was already signed up to precommit");
  assert.equal(h.guard.refusals, 1);

  // Round 3: we are the proposer; validValue was lost, so getValue builds a fresh block, and
  // the restored lock on A makes us prevote nil for our own new block.
  h.vote(prevote(0, 3, null));
  const r3 = h.vote(prevote(1, 3, null));
  assert.equal(h.engine.round, 3);
  assert.equal(sentProposals(r3).length, 1);
  const [pv] = sentVotes(r3, VoteType.Prevote);
  assert.ok(isNil(pv), "locked on A from before the crash");
});

Deno.test("a restore for another height is ignored", () => {
  const a = makeBlock(0);
  const h = harness({
    me: 3,
    restore: {
      lastSigned: { height: HEIGHT - 1, round: 7, step: SignStep.Precommit, blockHash: hashOf(a) },
      lock: { height: HEIGHT - 1, round: 7, blockHash: hashOf(a) },
    },
  });
  assert.equal(h.engine.round, 0);
  assert.equal(h.engine.lockedRound, -1);
});

Deno.test("a key outside the set makes a non-validator that never signs", () => {
  const h = harness({ me: null, signer: guardedSigner(testKey("outsider"), null) });
  assert.equal(h.engine.isValidator, false);
  const a = makeBlock(0);
  const all = [
    ...h.propose(proposal(0, -1, a)),
    ...h.timeout("propose", 0),
    ...h.vote(prevote(0, 0, a)),
    ...h.vote(prevote(1, 0, a)),
    ...h.vote(prevote(2, 0, a)),
  ];
  assert.equal(sentVotes(all).length, 0);
  for (const i of [0, 1, 2]) h.vote(precommit(i, 0, a));
  assert.ok(h.engine.decision, "it still commits on the certificate");
});

Deno.test("relay: first sight only, never back to the sender", () => {
  const h = harness({ me: null });
  const v = prevote(0, 0, null);
  const first = h.vote(v, "peer-a").filter((a) => a.kind === "relay");
  assert.equal(first.length, 1);
  assert.ok(first[0].kind === "relay" && first[0].except === "peer-a");
  assert.deepEqual(h.vote(v, "peer-b"), []);
});

Deno.test("restart with lock evidence: the locked block is re-proposed with its proof", () => {
  // Validator 3 locked on A in round 0 before a crash, then signed up to round 2.
  const a = makeBlock(0);
  const pol = [0, 1, 3].map((i) => prevote(i, 0, a));
  const restore = {
    lastSigned: { height: HEIGHT, round: 2, step: SignStep.Precommit, blockHash: ZERO_HASH },
    lock: { height: HEIGHT, round: 0, blockHash: hashOf(a) },
    lockEvidence: { block: a, proofOfLock: pol },
  };
  const h = harness({ me: 3, restore });
  h.guard.lastSigned = restore.lastSigned;
  assert.equal(h.engine.validRound, 0, "validValue restored from the evidence");
  const relayedPol = h.startActions.filter((x) => x.kind === "relay" && x.message.kind === "vote");
  assert.equal(relayedPol.length, 3, "the proof of lock is gossiped again");

  // Round 3 is ours: we re-propose A with validRound 0 instead of a fresh block.
  h.vote(prevote(0, 3, null));
  const r3 = h.vote(prevote(1, 3, null));
  const [p] = sentProposals(r3);
  assert.ok(p);
  assert.equal(p.validRound, 0);
  assert.equal(hexOf(hashOf(p.block)), hexOf(hashOf(a)));
  assert.deepEqual(h.getValueCalls, []);
  const [pv] = sentVotes(r3, VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(a)));
});

Deno.test("restart: lock evidence for another block or with forged votes gives nothing away", () => {
  const a = makeBlock(0);
  const b = makeBlock(0, 1);
  const wrongBlock = harness({
    me: 3,
    restore: {
      lastSigned: null,
      lock: { height: HEIGHT, round: 0, blockHash: hashOf(a) },
      lockEvidence: { block: b, proofOfLock: [] },
    },
  });
  assert.equal(wrongBlock.engine.validRound, -1, "evidence must match the lock's hash");
  assert.equal(wrongBlock.engine.lockedRound, 0);

  const forged = { ...prevote(0, 0, a), signature: new Uint8Array(64) };
  const h = harness({
    me: 3,
    restore: {
      lastSigned: null,
      lock: { height: HEIGHT, round: 0, blockHash: hashOf(a) },
      lockEvidence: { block: a, proofOfLock: [forged] },
    },
  });
  assert.equal(rejections(h.startActions)[0]?.reason, "bad-signature");
});

Deno.test("current-height votes from non-members and free members are refused before verifying", () => {
  const counter = countingVerify();
  const free = testKey("current-free");
  const h = harness({ me: null, verify: counter.verify });
  for (let i = 0; i < 20; i++) {
    const actions = h.vote(
      signVote(testKey(`outsider-${i}`), VoteType.Prevote, HEIGHT, 0, ZERO_HASH),
    );
    assert.deepEqual(kinds(actions), ["rejected"]);
  }
  h.vote(signVote(free, VoteType.Precommit, HEIGHT, 0, ZERO_HASH));
  assert.equal(counter.calls(), 0);
});

Deno.test("a whole network restarted mid-round resumes it from the messages each node re-sends", () => {
  // Before the restart: the proposer of round 0 proposed X, everyone prevoted X, nobody
  // precommitted. Each guard now refuses any other round-0 prevote.
  const x = makeBlock(0, 7);
  const xHash = hashOf(x);
  const p = proposal(0, -1, x);
  const build = (resend: boolean) =>
    KEYS.map((_, i) => {
      const guard = new MemorySignGuard();
      const lastMessages: ConsensusMessage[] = [{ kind: "vote", vote: prevote(i, 0, x) }];
      if (i === proposerIndex(0)) lastMessages.unshift({ kind: "proposal", proposal: p });
      for (const m of lastMessages) {
        const step = m.kind === "proposal" ? SignStep.Propose : SignStep.Prevote;
        guard.record(HEIGHT, 0, step, xHash);
      }
      return harness({
        me: i,
        signer: guardedSigner(KEYS[i], guard),
        restore: {
          lastSigned: guard.lastSigned,
          lock: null,
          lastMessages: resend ? lastMessages : [],
        },
      });
    });

  const run = (nodes: ReturnType<typeof build>) => {
    // Deliver every relayed or broadcast message to every other node until nothing moves.
    let pending = nodes.map((n, i) => ({ from: i, actions: n.startActions }));
    for (let pass = 0; pass < 20 && pending.length > 0; pass++) {
      const next: typeof pending = [];
      for (const { from, actions } of pending) {
        for (const a of actions) {
          const message = a.kind === "relay"
            ? a.message
            : a.kind === "broadcastVote"
            ? { kind: "vote" as const, vote: a.vote }
            : a.kind === "broadcastProposal"
            ? { kind: "proposal" as const, proposal: a.proposal }
            : null;
          if (!message) continue;
          nodes.forEach((n, to) => {
            if (to === from) return;
            const out = message.kind === "vote"
              ? n.vote(message.vote, String(from))
              : n.propose(message.proposal, String(from));
            assert.ok(out.every((o) => o.kind !== "rejected"), "a re-sent message was refused");
            next.push({ from: to, actions: out });
          });
        }
      }
      pending = next;
    }
    return nodes.map((n) => n.engine.decision);
  };

  const resumed = run(build(true));
  for (const d of resumed) assert.deepEqual(d && hashOf(d), xHash, "decided X in round 0");
  // Without the re-sent messages no node can sign again in round 0: nothing is decided until
  // the timeouts move everyone on.
  assert.ok(run(build(false)).every((d) => d === null));
});
