/**
 * What the engine reads back after a restart (consensus/engine.ts, the constructor, `start`
 * and `#resendRestored`), at its edges: only this node's messages of the round it resumes are
 * fed back in, at most three of them, and they put it back in the step they show; lock
 * evidence is used only when its block is well-formed and its proof a list, read up to one vote
 * per member. The restore comes from this node's own files, but a damaged file must not make
 * the engine act on more than the guard allows. Mutation testing found these unpinned
 * (docs/testing.md, third pass). Same fixture as engine.test.ts: four validators of power 1.
 */
import assert from "node:assert/strict";
import { type Block, VoteType } from "../../../chain/block.ts";
import type { ConsensusMessage, EngineAction } from "../../../consensus/engine.ts";
import { SignStep } from "../../../consensus/sign_position.ts";
import {
  guardedSigner,
  harness,
  hashOf,
  HEIGHT,
  hexOf,
  KEYS,
  makeBlock,
  newTestEngine,
  precommit,
  prevote,
  proposal,
  proposerIndex,
  relayedProposals,
  relayedVotes,
  sentProposals,
  SET,
  signProposal,
} from "../../support/consensus_sim.ts";
import { proposerAt } from "../../../consensus/proposer.ts";

const ME = 3;
/** The round the restarted node resumes: it signed up to here before it stopped. */
const START = 2;

function lastSigned(step: SignStep = SignStep.Prevote) {
  return { height: HEIGHT, round: START, step, blockHash: new Uint8Array(32) };
}

/** Votes relayed (re-sent) among `actions`, as "type/round/validator index". */
function relayedVoteNames(actions: EngineAction[]): string[] {
  return relayedVotes(actions).map((v) => {
    const who = KEYS.findIndex((k) => hexOf(k.publicKey) === hexOf(v.validator));
    return `${v.type === VoteType.Prevote ? "prevote" : "precommit"}/${v.round}/${who}`;
  });
}

function relayedProposalRounds(actions: EngineAction[]): number[] {
  return relayedProposals(actions).map((p) => p.round);
}

function restarted(lastMessages: unknown[], me: number | null = ME) {
  return harness({
    me,
    restore: {
      lastSigned: lastSigned(),
      lock: null,
      lastMessages: lastMessages as ConsensusMessage[],
    },
  });
}

const vote = (v: ReturnType<typeof prevote>): ConsensusMessage => ({
  kind: "vote",
  vote: v,
});

Deno.test("engine restart: our own vote of the resumed round is re-sent and resumes its step", () => {
  const h = restarted([vote(prevote(ME, START, null))]);
  assert.deepEqual(relayedVoteNames(h.startActions), [`prevote/${START}/${ME}`]);
  assert.equal(h.engine.round, START);
  assert.equal(h.engine.step, "prevote");
});

Deno.test("engine restart: votes of another round or another validator are not fed back", () => {
  const h = restarted([
    vote(prevote(ME, START - 1, null)),
    vote(prevote(0, START, null)),
    vote(precommit(1, START, null)),
  ]);
  assert.deepEqual(relayedVoteNames(h.startActions), []);
  assert.equal(h.engine.step, "propose", "nothing of ours shows a later step");
});

Deno.test("engine restart: a restored precommit means the precommit step, in any order", () => {
  for (
    const messages of [
      [vote(precommit(ME, START, null)), vote(prevote(ME, START, null))],
      [vote(prevote(ME, START, null)), vote(precommit(ME, START, null))],
    ]
  ) {
    const h = restarted(messages);
    assert.equal(h.engine.step, "precommit");
    assert.equal(relayedVoteNames(h.startActions).length, 2);
  }
});

Deno.test("engine restart: at most three restored messages are read", () => {
  // Three damaged entries first: the fourth, a good vote, is past the bound.
  const h = restarted([null, null, null, vote(prevote(ME, START, null))]);
  assert.deepEqual(relayedVoteNames(h.startActions), []);
  assert.equal(h.engine.step, "propose");
  const within = restarted([null, null, vote(prevote(ME, START, null))]);
  assert.deepEqual(relayedVoteNames(within.startActions), [
    `prevote/${START}/${ME}`,
  ]);
});

Deno.test("engine restart: a damaged entry with a kind but no body is skipped, never thrown", () => {
  // The file is ours, but a torn write or a bad disk can leave anything in it.
  const h = restarted([
    { kind: "vote" },
    { kind: "proposal" },
    vote(prevote(ME, START, null)),
  ]);
  assert.deepEqual(relayedVoteNames(h.startActions), [`prevote/${START}/${ME}`]);
  assert.equal(h.engine.step, "prevote");
});

Deno.test("engine restart: a proposal of the resumed round is re-sent, one of another round not", () => {
  const at = (round: number) => ({
    kind: "proposal" as const,
    proposal: proposal(round, -1, makeBlock(round, 5)),
  });
  assert.deepEqual(relayedProposalRounds(restarted([at(START)]).startActions), [
    START,
  ]);
  assert.deepEqual(
    relayedProposalRounds(restarted([at(START + 1)]).startActions),
    [],
  );
});

Deno.test("engine restart: a node outside the set re-sends nothing", () => {
  const p = {
    kind: "proposal" as const,
    proposal: proposal(START, -1, makeBlock(START, 5)),
  };
  const h = restarted(
    [p, vote(prevote(proposerIndex(START), START, null))],
    null,
  );
  assert.deepEqual(relayedProposalRounds(h.startActions), []);
  assert.deepEqual(relayedVoteNames(h.startActions), []);
  assert.equal(h.engine.step, "propose");
});

/** A restart locked on `block` in round 0 with `evidence` as its lock evidence. */
function lockedOn(block: Block, evidence: unknown) {
  return harness({
    me: ME,
    restore: {
      lastSigned: lastSigned(SignStep.Precommit),
      lock: { height: HEIGHT, round: 0, blockHash: hashOf(block) },
      lockEvidence: evidence as never,
    },
  });
}

Deno.test("engine restart: lock evidence with a malformed block is not used", () => {
  const a = makeBlock(0);
  const pol = [0, 1, 2].map((i) => prevote(i, 0, a));
  // The header hashes to the lock, but the records are not a list: not a block we can use.
  const h = lockedOn(a, { block: { ...a, records: "none" }, proofOfLock: pol });
  assert.equal(h.engine.lockedRound, 0, "the lock itself stays");
  assert.equal(
    h.engine.validRound,
    -1,
    "but no validValue from a malformed block",
  );
  assert.deepEqual(relayedVoteNames(h.startActions), []);
  // The same evidence with the real block is used.
  assert.equal(
    lockedOn(a, { block: a, proofOfLock: pol }).engine.validRound,
    0,
  );
});

Deno.test("engine restart: a restarted proposer locked with evidence re-proposes its locked block", () => {
  const a = makeBlock(0);
  const pol = [0, 1, 2].map((i) => prevote(i, 0, a));
  const me = proposerIndex(START);
  const h = harness({
    me,
    restore: {
      lastSigned: lastSigned(SignStep.Precommit),
      lock: { height: HEIGHT, round: 0, blockHash: hashOf(a) },
      lockEvidence: { block: a, proofOfLock: pol } as never,
    },
  });
  const [p] = sentProposals(h.startActions);
  assert.ok(p, "the proposer of the resumed round proposes");
  assert.equal(p.round, START);
  assert.equal(p.validRound, 0, "with the round of its proof of lock");
  assert.equal(hexOf(hashOf(p.block)), hexOf(hashOf(a)), "the locked block, not a new one");
  assert.deepEqual(h.getValueCalls, []);
});

Deno.test("engine restart: lock evidence for a block the chain now judges invalid gives no validValue", () => {
  const a = makeBlock(0);
  const pol = [0, 1, 2].map((i) => prevote(i, 0, a));
  const h = harness({
    me: ME,
    isValid: () => false,
    restore: {
      lastSigned: lastSigned(SignStep.Precommit),
      lock: { height: HEIGHT, round: 0, blockHash: hashOf(a) },
      lockEvidence: { block: a, proofOfLock: pol } as never,
    },
  });
  assert.equal(h.engine.lockedRound, 0, "the lock stays: only the guard may release it");
  assert.equal(h.engine.validRound, -1);
});

Deno.test("engine restart: lock evidence whose proof is not a list is not used", () => {
  const a = makeBlock(0);
  for (const proofOfLock of [5, null, { length: 3 }]) {
    const h = lockedOn(a, { block: a, proofOfLock });
    assert.equal(h.engine.validRound, -1);
    assert.equal(h.engine.lockedRound, 0);
  }
});

Deno.test("engine restart: a proof of lock is read up to one vote per member", () => {
  const a = makeBlock(0);
  // Four damaged entries (one per member of the set), then three good prevotes: not read.
  const pol = [
    null,
    null,
    null,
    null,
    ...[0, 1, 2].map((i) => prevote(i, 0, a)),
  ];
  const h = lockedOn(a, { block: a, proofOfLock: pol });
  assert.deepEqual(relayedVoteNames(h.startActions), []);
  const rejected = h.startActions.filter((x) => x.kind === "rejected");
  assert.equal(rejected.length, 4, "each entry read is checked");
});

Deno.test("engine restart: our messages of another height are not fed back", () => {
  const next = HEIGHT + 1;
  const proposer = KEYS.findIndex((k) =>
    hexOf(k.publicKey) === hexOf(proposerAt(SET, next, START).nodeId)
  );
  const block = { ...makeBlock(START, 5) };
  block.header = { ...block.header, height: next };
  const h = restarted([
    vote(prevote(ME, START, null, next)),
    {
      kind: "proposal",
      proposal: signProposal(KEYS[proposer], next, START, -1, block),
    },
  ]);
  assert.equal(
    h.engine.step,
    "propose",
    "a vote of another height shows no step of this one",
  );
  assert.deepEqual(
    h.engine.nextHeightMessages,
    [],
    "nor are they buffered for the next height",
  );
});

Deno.test("engine start: before start the engine reads round 0, step propose; start runs once", () => {
  const me = KEYS.findIndex((_, i) => i !== proposerIndex(0));
  const engine = newTestEngine({
    signer: guardedSigner(KEYS[me], null),
    getValue: () => makeBlock(0, 1),
  });
  // RPC and metrics may read the engine between its construction and its start.
  assert.equal(engine.round, 0);
  assert.equal(engine.step, "propose");
  const first = engine.start();
  // A validator that does not propose round 0 only arms its timers: nothing else, no filler.
  assert.deepEqual(first.map((a) => a.kind === "scheduleTimeout" ? a.step : a), [
    "resend",
    "propose",
  ]);
  assert.deepEqual(engine.start(), [], "a second start neither re-arms nor re-signs");
  assert.equal(engine.round, 0);
  assert.equal(engine.step, "propose");
});

Deno.test("engine start: a second start of a proposer proposes nothing again", () => {
  const h = harness({ me: proposerIndex(0) });
  assert.equal(sentProposals(h.startActions).length, 1);
  assert.deepEqual(h.engine.start(), []);
});
