/**
 * The engine's input checks and validity rules at their exact edges (consensus/engine.ts):
 * every shape rule of a vote and a proposal with the reason it gives, every header field that
 * makes a block invalid (the node then prevotes nil), the round and buffer bounds at their
 * limits, and the constructor's refusals. Same fixture as engine.test.ts: four validators of
 * power 1 at height 1.
 */
import assert from "node:assert/strict";
import {
  type Block,
  BLOCK_VERSION,
  type Proposal,
  type Vote,
  VoteType,
} from "../../../chain/block.ts";
import { toHex } from "../../../encoding/binary.ts";
import { proposerAt } from "../../../consensus/proposer.ts";
import type { EngineAction } from "../../../consensus/engine.ts";
import { MAX_ROUND } from "../../../consensus/constants.ts";
import { SignStep } from "../../../consensus/sign_position.ts";
import {
  harness,
  hashOf,
  HEIGHT,
  hexOf,
  isNil,
  KEYS,
  makeBlock,
  makeTestValidators,
  newTestEngine,
  precommit,
  PREVIOUS,
  prevote,
  proposal,
  proposerIndex,
  relayedVotes,
  sentVotes,
  SET,
  signProposal,
  signVote,
} from "../../support/consensus_sim.ts";

function rejected(actions: EngineAction[]): { reason: string; detail: string }[] {
  return actions.flatMap((a) =>
    a.kind === "rejected" ? [{ reason: a.reason, detail: a.detail }] : []
  );
}

/** A block of round `round` with one header field changed, signed by the right proposer. */
function withHeader(round: number, change: Partial<Block["header"]>): Block {
  const b = makeBlock(round, 7);
  return { ...b, header: { ...b.header, ...change } };
}

/** The prevote a fresh validator 3 casts for a round-0 proposal of `block`. */
function prevoteFor(block: Block): Vote {
  const h = harness({ me: 3 });
  const [pv] = sentVotes(h.propose(proposal(0, -1, block)), VoteType.Prevote);
  assert.ok(pv, "a prevote was cast");
  return pv;
}

Deno.test("engine rules: a height below 1 or not an integer is refused at construction", () => {
  for (const height of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1]) {
    assert.throws(
      () => newTestEngine({ height }),
      new RegExp(`bad height ${height}`),
    );
  }
});

Deno.test("engine rules: each malformed vote is rejected with its reason", () => {
  const good = prevote(0, 0, null);
  const cases: [unknown, string][] = [
    [null, "vote: not an object"],
    ["vote", "vote: not an object"],
    [{ ...good, type: 0 }, "vote: unknown vote type"],
    [{ ...good, type: 3 }, "vote: unknown vote type"],
    [{ ...good, height: -1 }, "vote: height or round out of range"],
    [{ ...good, height: 1.5 }, "vote: height or round out of range"],
    [{ ...good, round: 0x1_0000_0000 }, "vote: height or round out of range"],
    [{ ...good, round: 0.5 }, "vote: height or round out of range"],
    [{ ...good, round: MAX_ROUND + 1 }, `vote: round ${MAX_ROUND + 1} above ${MAX_ROUND}`],
    [{ ...good, blockHash: new Uint8Array(33) }, "vote: block hash length"],
    [{ ...good, blockHash: [...good.blockHash] }, "vote: block hash length"],
    [{ ...good, validator: new Uint8Array(31) }, "vote: validator length"],
    [{ ...good, signature: new Uint8Array(65) }, "vote: signature length"],
  ];
  for (const [vote, detail] of cases) {
    const h = harness({ me: 3 });
    assert.deepEqual(rejected(h.vote(vote as Vote, "p")), [{ reason: "malformed", detail }]);
  }
});

Deno.test("engine rules: a vote of round MAX_ROUND is well-formed", () => {
  const h = harness({ me: null });
  assert.deepEqual(rejected(h.vote(prevote(0, MAX_ROUND, null))), []);
  assert.deepEqual(rejected(h.vote(precommit(1, MAX_ROUND, null))), []);
});

Deno.test("engine rules: each malformed proposal is rejected with its reason", () => {
  const p = proposal(1, -1, makeBlock(1));
  const header = p.block.header;
  const block = (change: Partial<Block["header"]>) => ({
    ...p.block,
    header: { ...header, ...change },
  });
  const cases: [unknown, string][] = [
    [null, "proposal: not an object"],
    [{ ...p, height: -1 }, "proposal: height or round out of range"],
    [{ ...p, round: 0x1_0000_0000 }, "proposal: height or round out of range"],
    [{ ...p, round: MAX_ROUND + 1 }, `proposal: round ${MAX_ROUND + 1} above ${MAX_ROUND}`],
    [{ ...p, validRound: 1 }, "proposal: validRound 1 outside [-1, round - 1]"],
    [{ ...p, validRound: -2 }, "proposal: validRound -2 outside [-1, round - 1]"],
    [{ ...p, validRound: 0.5 }, "proposal: validRound 0.5 outside [-1, round - 1]"],
    [{ ...p, signature: new Uint8Array(63) }, "proposal: signature length"],
    [{ ...p, block: null }, "proposal: block is not an object"],
    [{ ...p, block: { records: [] } }, "proposal: block is not an object"],
    [{ ...p, block: block({ version: -1 }) }, "proposal: header field out of range"],
    [{ ...p, block: block({ height: 1.5 }) }, "proposal: header field out of range"],
    [{ ...p, block: block({ timestamp: -1 }) }, "proposal: header field out of range"],
    [{ ...p, block: block({ round: -1 }) }, "proposal: header field out of range"],
    [
      { ...p, block: block({ prevHash: new Uint8Array(31) }) },
      "proposal: header field out of range",
    ],
    [
      { ...p, block: block({ proposer: new Uint8Array(33) }) },
      "proposal: header field out of range",
    ],
    [
      { ...p, block: block({ payloadRoot: new Uint8Array(0) }) },
      "proposal: header field out of range",
    ],
    [
      { ...p, block: block({ validatorSetHash: new Uint8Array(1) }) },
      "proposal: header field out of range",
    ],
    [{ ...p, block: { header, records: "none" } }, "proposal: records missing or too many"],
    [
      {
        ...p,
        block: { header, records: new Array(10_001).fill({ type: 1, data: new Uint8Array() }) },
      },
      "proposal: records missing or too many",
    ],
    [{ ...p, block: { header, records: [null] } }, "proposal: record out of range"],
    [
      { ...p, block: { header, records: [{ type: -1, data: new Uint8Array() }] } },
      "proposal: record out of range",
    ],
    [
      { ...p, block: { header, records: [{ type: 256, data: new Uint8Array() }] } },
      "proposal: record out of range",
    ],
    [
      { ...p, block: { header, records: [{ type: 1.5, data: new Uint8Array() }] } },
      "proposal: record out of range",
    ],
    [
      { ...p, block: { header, records: [{ type: 1, data: [1] }] } },
      "proposal: record out of range",
    ],
    [
      { ...p, block: { header, records: [{ type: 1, data: new Uint8Array(65_537) }] } },
      "proposal: record out of range",
    ],
  ];
  for (const [bad, detail] of cases) {
    const h = harness({ me: 3 });
    assert.deepEqual(rejected(h.propose(bad as Proposal, "p")), [{ reason: "malformed", detail }]);
  }
});

Deno.test("engine rules: records at their bounds are well-formed", () => {
  const records = [
    { type: 0, data: new Uint8Array(0) },
    { type: 255, data: new Uint8Array(65_536) },
  ];
  const b = makeBlock(0);
  const block = { header: { ...b.header }, records };
  const h = harness({ me: 3 });
  // The payload root no longer matches, which is checked after the shape: bad-records.
  assert.deepEqual(rejected(h.propose(proposal(0, -1, block))).map((r) => r.reason), [
    "bad-records",
  ]);
});

Deno.test("engine rules: a valid fresh proposal gets a prevote for it", () => {
  const block = makeBlock(0);
  assert.equal(hexOf(prevoteFor(block).blockHash), hexOf(hashOf(block)));
});

Deno.test("engine rules: each header field that does not fit the chain makes the block invalid", () => {
  const other = new Uint8Array(32).fill(0x99);
  const changes: [string, Partial<Block["header"]>][] = [
    ["version", { version: BLOCK_VERSION + 1 }],
    ["older version", { version: BLOCK_VERSION - 1 }],
    ["chain id", { chainId: other }],
    ["height", { height: HEIGHT + 1 }],
    ["previous hash", { prevHash: other }],
    ["timestamp equal to the previous block's", { timestamp: PREVIOUS.timestamp }],
    ["validator set hash", { validatorSetHash: other }],
    ["proposer", { proposer: KEYS[(proposerIndex(0) + 1) % 4].publicKey }],
  ];
  for (const [what, change] of changes) {
    assert.ok(isNil(prevoteFor(withHeader(0, change))), `${what}: prevote nil`);
  }
  // One millisecond after the previous block is enough.
  const justAfter = withHeader(0, { timestamp: PREVIOUS.timestamp + 1 });
  assert.equal(hexOf(prevoteFor(justAfter).blockHash), hexOf(hashOf(justAfter)));
});

Deno.test("engine rules: a shell check that throws means invalid, not a crash", () => {
  const h = harness({
    me: 3,
    isValid: () => {
      throw new Error("bad records");
    },
  });
  const [pv] = sentVotes(h.propose(proposal(0, -1, makeBlock(0))), VoteType.Prevote);
  assert.ok(isNil(pv));
  // Only `true` counts as valid.
  const truthy = harness({ me: 3, isValid: () => 1 as unknown as boolean });
  assert.ok(isNil(sentVotes(truthy.propose(proposal(0, -1, makeBlock(0))), VoteType.Prevote)[0]));
});

Deno.test("engine rules: a proposal's block may come from an earlier round only as a re-proposal", () => {
  // Round 1, validRound 0, block of round 0: a legal re-proposal (no rejection).
  const h = harness({ me: null });
  h.vote(prevote(0, 1, null));
  h.vote(prevote(1, 1, null));
  assert.equal(h.engine.round, 1);
  const reproposal = proposal(1, 0, makeBlock(0));
  assert.deepEqual(rejected(h.propose(reproposal)), []);
  // A block from a later round than the proposal is never legal.
  const later = signProposal(KEYS[proposerIndex(1)], HEIGHT, 1, 0, makeBlock(2));
  assert.deepEqual(rejected(h.propose(later)).map((r) => r.reason), ["malformed"]);
});

Deno.test("engine rules: proposals are stored up to 4 rounds ahead, not 5", () => {
  const h = harness({ me: null });
  const ahead4 = proposal(4, -1, makeBlock(4));
  const ahead5 = proposal(5, -1, makeBlock(5));
  const relayed = (actions: EngineAction[]) => actions.filter((a) => a.kind === "relay").length;
  assert.equal(relayed(h.propose(ahead4)), 1);
  assert.equal(relayed(h.propose(ahead5)), 0);
});

Deno.test("engine rules: next-height proposals are buffered up to 4", () => {
  // Each proposal is signed by the proposer of its round at the next height: the buffer now
  // checks the signer (consensus/engine.ts), so only genuine ones are counted.
  const h = harness({ me: null });
  const proposers: string[] = [];
  for (let round = 0; round < 6; round++) {
    const id = toHex(proposerAt(SET, HEIGHT + 1, round).nodeId);
    proposers.push(id);
    const key = KEYS.find((k) => toHex(k.publicKey) === id)!;
    h.propose(signProposal(key, HEIGHT + 1, round, -1, makeBlock(round)));
  }
  const taken = h.engine.takeNextHeightMessages();
  assert.equal(taken.length, 4);
  assert.ok(taken.every((m) => m.message.kind === "proposal"));
  assert.deepEqual(
    taken.map((m) => m.message.kind === "proposal" ? m.message.proposal.round : -1),
    [0, 1, 2, 3],
  );
  // Round 4 finds the buffer full; round 5 is beyond the rounds ever stored.
  assert.deepEqual(Object.fromEntries(h.engine.nextHeightDropped), { full: 1, "far-round": 1 });
  assert.equal(new Set(proposers.slice(0, 4)).size, 4, "four distinct proposers, no signer cap");
});

Deno.test("engine rules: the next-height vote cap is 4 per validator of the set", () => {
  // A set of 2 validators: 8 buffered votes at most.
  const { set, keys } = makeTestValidators([1, 1], "engine-rules-two");
  const engine = newTestEngine({ height: 5, validators: set });
  engine.start();
  for (let round = 0; round < 12; round++) {
    const vote = signVote(keys[round % 2], VoteType.Prevote, 6, round, new Uint8Array(32));
    engine.handle({ kind: "vote", vote, from: "p" });
  }
  assert.equal(engine.takeNextHeightMessages().length, 8);
});

Deno.test("engine rules: a non-validator never signs, a member does", () => {
  assert.equal(harness({ me: null }).engine.isValidator, false);
  assert.equal(harness({ me: 2 }).engine.isValidator, true);
});

Deno.test("engine rules: the decision is the committed block, and nothing counts after it", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  assert.equal(h.engine.decision, null);
  h.propose(proposal(0, -1, a));
  for (const i of [0, 1, 2]) h.vote(precommit(i, 0, a));
  assert.equal(hexOf(hashOf(h.engine.decision!)), hexOf(hashOf(a)));
  assert.deepEqual(h.vote(precommit(3, 0, a)), []);
  assert.deepEqual(h.propose(proposal(1, -1, makeBlock(1))), []);
});

Deno.test("engine rules: rounds stop at MAX_ROUND, and a restore above it is clamped", () => {
  const hash = hashOf(makeBlock(0));
  const restore = (round: number) => ({
    lastSigned: { height: HEIGHT, round, step: SignStep.Precommit, blockHash: hash },
    lock: { height: HEIGHT, round, blockHash: hash },
  });
  const top = harness({ me: 3, restore: restore(MAX_ROUND) });
  assert.equal(top.engine.round, MAX_ROUND);
  assert.equal(top.engine.lockedRound, MAX_ROUND);
  top.timeout("precommit", MAX_ROUND);
  assert.equal(top.engine.round, MAX_ROUND, "no round after the last one");
  for (let i = 0; i < 10; i++) top.timeout("resend", MAX_ROUND);
  assert.equal(top.engine.round, MAX_ROUND, "nor through the stall escape");

  const above = harness({ me: 3, restore: restore(MAX_ROUND + 1) });
  assert.equal(above.engine.round, MAX_ROUND);
  assert.equal(above.engine.lockedRound, -1, "a lock above MAX_ROUND is not ours");

  const below = harness({ me: 3, restore: restore(MAX_ROUND - 1) });
  below.timeout("precommit", MAX_ROUND - 1);
  assert.equal(below.engine.round, MAX_ROUND);
});

Deno.test("engine rules: at most 16 blocks are remembered, the oldest forgotten first", () => {
  const h = harness({ me: null });
  // Two validators in round 20 make us join it (f+1).
  h.vote(prevote(0, 20, null));
  h.vote(prevote(1, 20, null));
  assert.equal(h.engine.round, 20);
  const blocks = Array.from({ length: 20 }, (_, r) => makeBlock(r));
  for (const [r, b] of blocks.entries()) h.propose(proposal(r, -1, b));
  // Blocks of rounds 0..3 were forgotten: their precommit quorum cannot decide.
  for (const i of [0, 1, 2]) h.vote(precommit(i, 3, blocks[3]));
  assert.equal(h.engine.decision, null);
  for (const i of [0, 1, 2]) h.vote(precommit(i, 4, blocks[4]));
  assert.equal(hexOf(hashOf(h.engine.decision!)), hexOf(hashOf(blocks[4])));
});

Deno.test("engine rules: the far-future quota spares the next round and rounds already used", () => {
  const h = harness({ me: null });
  // Validator 0 fills its quota of two far-future rounds.
  assert.equal(relayedVotes(h.vote(prevote(0, 10, null))).length, 1);
  assert.equal(relayedVotes(h.vote(prevote(0, 11, null))).length, 1);
  assert.equal(relayedVotes(h.vote(prevote(0, 12, null))).length, 0, "a third far round");
  // Another message in a round it already used still counts.
  assert.equal(relayedVotes(h.vote(precommit(0, 11, null))).length, 1);
  // The next round (ours + 1) is never far: its vote counts, and with another sender the
  // node joins round 1.
  assert.equal(relayedVotes(h.vote(prevote(0, 1, null))).length, 1);
  h.vote(prevote(1, 1, null));
  assert.equal(h.engine.round, 1);
});

Deno.test("engine rules: votes in the current and next round do not use the far-future quota", () => {
  const h = harness({ me: null });
  assert.equal(relayedVotes(h.vote(prevote(0, 0, null))).length, 1);
  assert.equal(relayedVotes(h.vote(prevote(0, 1, null))).length, 1);
  // Still two far rounds left for validator 0.
  assert.equal(relayedVotes(h.vote(prevote(0, 10, null))).length, 1);
  assert.equal(relayedVotes(h.vote(prevote(0, 11, null))).length, 1);
  assert.equal(relayedVotes(h.vote(prevote(0, 12, null))).length, 0);
});

Deno.test("engine rules: a proposal counts its proposer as a sender of that round", () => {
  const h = harness({ me: null });
  h.propose(proposal(2, -1, makeBlock(2)));
  assert.equal(h.engine.round, 0);
  // One more validator of round 2 makes f+1 with the proposer.
  const other = [0, 1, 3].find((i) => i !== proposerIndex(2))!;
  h.vote(prevote(other, 2, null));
  assert.equal(h.engine.round, 2);
});

Deno.test("engine rules: two proposals per round are kept, a third is ignored", () => {
  const h = harness({ me: null });
  const kindsOf = (actions: EngineAction[]) => actions.map((a) => a.kind);
  assert.deepEqual(kindsOf(h.propose(proposal(0, -1, makeBlock(0, 1)))), ["relay"]);
  assert.deepEqual(kindsOf(h.propose(proposal(0, -1, makeBlock(0, 2)))), ["equivocation"]);
  assert.deepEqual(kindsOf(h.propose(proposal(0, -1, makeBlock(0, 3)))), []);
  // The same proposal again is not new evidence either.
  assert.deepEqual(kindsOf(h.propose(proposal(0, -1, makeBlock(0, 2)))), []);
});

Deno.test("engine rules: a proposal of a past round is remembered, not voted on", () => {
  const h = harness({ me: 3 });
  h.timeout("propose", 0);
  h.timeout("prevote", 0);
  h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);
  const old = makeBlock(0);
  const out = h.propose(proposal(0, -1, old));
  assert.deepEqual(sentVotes(out), []);
  assert.deepEqual(out.filter((a) => a.kind === "relay"), []);
  // Its block can still be decided (line 49).
  for (const i of [0, 1, 2]) h.vote(precommit(i, 0, old));
  assert.equal(hexOf(hashOf(h.engine.decision!)), hexOf(hashOf(old)));
});

Deno.test("engine rules: a timeout of a step already left does nothing", () => {
  const h = harness({ me: 3 });
  h.propose(proposal(0, -1, makeBlock(0)));
  assert.equal(h.engine.step, "prevote");
  assert.deepEqual(sentVotes(h.timeout("propose", 0)), []);
  assert.equal(h.engine.step, "prevote");
  h.timeout("prevote", 0);
  assert.equal(h.engine.step, "precommit");
  assert.deepEqual(sentVotes(h.timeout("prevote", 0)), []);
});

function scheduled(actions: EngineAction[], step: string): number[] {
  return actions.flatMap((a) => a.kind === "scheduleTimeout" && a.step === step ? [a.round] : []);
}

Deno.test("engine rules: votes that arrived first let one proposal fire prevote and precommit", () => {
  const a = makeBlock(0);
  const fresh = harness({ me: 3 });
  for (const i of [0, 1]) fresh.vote(prevote(i, 0, a));
  const out = fresh.propose(proposal(0, -1, a));
  assert.deepEqual(sentVotes(out).map((v) => v.type), [VoteType.Prevote, VoteType.Precommit]);
  assert.equal(fresh.engine.step, "precommit");
  assert.equal(fresh.engine.lockedRound, 0);
});

Deno.test("engine rules: a nil prevote quorum precommits nil at once, and arms nothing twice", () => {
  const h = harness({ me: 3 });
  h.timeout("propose", 0);
  assert.equal(h.engine.step, "prevote");
  h.vote(prevote(0, 0, null));
  const out = h.vote(prevote(1, 0, null));
  const [pc] = sentVotes(out, VoteType.Precommit);
  assert.ok(pc && isNil(pc), "line 44");
  assert.equal(h.engine.step, "precommit");
  assert.deepEqual(scheduled(out, "prevote"), [], "no timeoutPrevote once precommitted");
});

Deno.test("engine rules: prevotes seen while proposing arm nothing and precommit nothing", () => {
  const h = harness({ me: 3 });
  h.vote(prevote(0, 0, makeBlock(0)));
  h.vote(prevote(1, 0, null));
  const out = h.vote(prevote(2, 0, makeBlock(0, 5)));
  assert.deepEqual(sentVotes(out), []);
  assert.deepEqual(scheduled(out, "prevote"), [], "timeoutPrevote only in the prevote step");
  assert.equal(h.engine.step, "propose");
  // Prevoting then finds the quorum of any value: timeoutPrevote, once.
  const after = h.timeout("propose", 0);
  assert.deepEqual(scheduled(after, "prevote"), [0]);
  assert.deepEqual(scheduled(h.timeout("resend", 0), "prevote"), []);
});

Deno.test("engine rules: precommits of any value arm timeoutPrecommit once, in any step", () => {
  const h = harness({ me: null });
  const a = makeBlock(0);
  h.vote(precommit(0, 0, a));
  h.vote(precommit(1, 0, null));
  const out = h.vote(precommit(2, 0, null));
  assert.deepEqual(scheduled(out, "precommit"), [0]);
  assert.equal(h.engine.step, "propose");
  assert.deepEqual(scheduled(h.vote(precommit(3, 0, null)), "precommit"), []);
});

Deno.test("engine rules: a precommit quorum for a block the chain calls invalid decides nothing", () => {
  const a = makeBlock(0);
  const h = harness({ me: null, isValid: () => false });
  h.propose(proposal(0, -1, a));
  for (const i of [0, 1, 2]) h.vote(precommit(i, 0, a));
  assert.equal(h.engine.decision, null);
});

Deno.test("engine rules: the chain's verdict on a block is asked once", () => {
  let calls = 0;
  const h = harness({
    me: 3,
    isValid: () => {
      calls++;
      return true;
    },
  });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  for (const i of [0, 1, 2]) h.vote(prevote(i, 0, a));
  for (const i of [0, 1, 2]) h.vote(precommit(i, 0, a));
  assert.ok(h.engine.decision);
  assert.equal(calls, 1);
});

Deno.test("engine rules: a POL for a block the chain calls invalid still gets a nil prevote", () => {
  const b = makeBlock(0, 1);
  const h = harness({ me: 3, isValid: (blk) => hexOf(hashOf(blk)) !== hexOf(hashOf(b)) });
  // Round 0: B gathers a POL (validators 0, 1, 2); we never saw its proposal in time.
  h.timeout("propose", 0);
  for (const i of [0, 1, 2]) h.vote(prevote(i, 0, b));
  h.timeout("prevote", 0);
  h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);
  const out = h.propose(proposal(1, 0, b));
  const [pv] = sentVotes(out, VoteType.Prevote);
  assert.ok(pv && isNil(pv), "line 28 needs valid(v)");
});

Deno.test("engine rules: prevote and precommit guard records carry a lock only when locking", () => {
  const h = harness({ me: 3 });
  const a = makeBlock(0);
  const records = [
    ...h.propose(proposal(0, -1, a)),
    ...h.vote(prevote(0, 0, a)),
    ...h.vote(prevote(1, 0, a)),
  ]
    .flatMap((x) => x.kind === "broadcastVote" ? [x.guard] : []);
  assert.equal(records.length, 2);
  assert.equal("lock" in records[0], false, "a prevote implies no lock");
  assert.deepEqual(records[1].lock, { height: HEIGHT, round: 0, blockHash: hashOf(a) });
});

Deno.test("engine rules: resend re-emits our votes of this round and the one before, no older", () => {
  const h = harness({ me: 3 });
  const toRound = (r: number) => {
    h.timeout("propose", r);
    h.timeout("prevote", r);
    h.timeout("precommit", r);
  };
  toRound(0);
  toRound(1);
  h.timeout("propose", 2);
  assert.equal(h.engine.round, 2);
  const rounds = relayedVotes(h.timeout("resend", 2)).map((v) => `${v.round}/${v.type}`);
  assert.deepEqual(rounds, ["1/1", "1/2", "2/1"]);
});

Deno.test("engine rules: a proposer with nothing to propose waits like everyone else", () => {
  const me = proposerIndex(0);
  for (const value of [null, { header: null, records: [] }]) {
    const engine = newTestEngine({
      signer: {
        publicKey: KEYS[me].publicKey,
        canSign: () => true,
        sign: () => new Uint8Array(64),
      },
      getValue: () => value as unknown as Block,
    });
    const out = engine.start();
    assert.deepEqual(out.filter((a) => a.kind === "broadcastProposal"), []);
    assert.deepEqual(scheduled(out, "propose"), [0], "timeoutPropose instead");
  }
});

/** Validator 3 locks on `a` (a round-1 block) in round 1; `pol0` gets 2f+1 prevotes in round 0. */
function lockedInRound1(a: Block, pol0: Block) {
  const h = harness({ me: 3 });
  for (const i of [0, 1, 2]) h.vote(prevote(i, 0, pol0));
  for (const i of [0, 1]) h.vote(prevote(i, 1, a)); // f+1 in round 1: we join it
  assert.equal(h.engine.round, 1);
  const out = h.propose(proposal(1, -1, a));
  // Line 22, then at once line 36: the round-1 prevotes were already there.
  assert.deepEqual(sentVotes(out).map((v) => v.type), [VoteType.Prevote, VoteType.Precommit]);
  assert.equal(h.engine.lockedRound, 1);
  for (const i of [0, 1]) h.vote(prevote(i, 2, null)); // on to round 2
  assert.equal(h.engine.round, 2);
  return h;
}

Deno.test("engine rules: line 28 moves the prevote and, with the round's prevotes, the lock", () => {
  const a = makeBlock(0);
  const h = harness({ me: 3 });
  for (const i of [0, 1, 2]) h.vote(prevote(i, 0, a));
  for (const i of [0, 1]) h.vote(prevote(i, 1, a));
  assert.equal(h.engine.round, 1);
  const out = h.propose(proposal(1, 0, a));
  assert.deepEqual(sentVotes(out).map((v) => v.type), [VoteType.Prevote, VoteType.Precommit]);
  assert.equal(h.engine.step, "precommit");
  assert.equal(h.engine.lockedRound, 1);
});

Deno.test("engine rules: a POL older than our lock moves nothing, except to the locked value", () => {
  const a = makeBlock(1);
  const b = makeBlock(0, 1);
  // B has a POL in round 0, but we locked A in round 1: B's re-proposal gets nil.
  const other = lockedInRound1(a, b);
  const [nilVote] = sentVotes(other.propose(proposal(2, 0, b)), VoteType.Prevote);
  assert.ok(nilVote && isNil(nilVote), "lockedRound 1 > vr 0 and B is not our lock");
  // A re-proposed with a POL of round 0: still our locked value, so we prevote it.
  const same = lockedInRound1(a, a);
  const [pv] = sentVotes(same.propose(proposal(2, 0, a)), VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(a)));
});

Deno.test("engine rules: a nil prevote quorum seen while proposing precommits nothing", () => {
  const h = harness({ me: 3 });
  for (const i of [0, 1, 2]) h.vote(prevote(i, 0, null));
  assert.equal(h.engine.step, "propose");
  assert.equal(h.guard.lastSigned, null, "nothing signed before our own prevote");
  // Our nil prevote, then line 44 at once, then line 47 is not reached (no precommits yet).
  const out = h.timeout("propose", 0);
  assert.deepEqual(sentVotes(out).map((v) => v.type), [VoteType.Prevote, VoteType.Precommit]);
});

Deno.test("engine rules: our nil precommit can complete the precommits that arm line 47", () => {
  // Two precommits are in; our nil prevote completes a nil quorum (line 44), and our nil
  // precommit then makes three: timeoutPrecommit is armed by the same event.
  const h = harness({ me: 3 });
  for (const i of [0, 1]) h.vote(precommit(i, 0, null));
  for (const i of [0, 1]) h.vote(prevote(i, 0, null));
  const out = h.timeout("propose", 0);
  assert.deepEqual(sentVotes(out).map((v) => v.type), [VoteType.Prevote, VoteType.Precommit]);
  assert.deepEqual(scheduled(out, "precommit"), [0]);
});

Deno.test("engine rules: a block of round MAX_ROUND is valid in round MAX_ROUND", () => {
  const hash = hashOf(makeBlock(0));
  const h = harness({
    me: (proposerIndex(MAX_ROUND) + 1) % 4,
    restore: {
      lastSigned: { height: HEIGHT, round: MAX_ROUND, step: SignStep.Propose, blockHash: hash },
      lock: null,
    },
  });
  assert.equal(h.engine.round, MAX_ROUND);
  const last = makeBlock(MAX_ROUND);
  const [pv] = sentVotes(h.propose(proposal(MAX_ROUND, -1, last)), VoteType.Prevote);
  assert.equal(hexOf(pv.blockHash), hexOf(hashOf(last)));
});

Deno.test("engine rules: the locked and the valid block are never forgotten", () => {
  const a = makeBlock(1);
  // Locked (and valid) on A since round 1; then 18 more blocks arrive from later rounds.
  const h = lockedInRound1(a, makeBlock(0, 3));
  for (const i of [0, 1]) h.vote(prevote(i, 30, null));
  assert.equal(h.engine.round, 30);
  for (let r = 2; r < 20; r++) h.propose(proposal(r, -1, makeBlock(r)));
  for (const i of [0, 1, 2]) h.vote(precommit(i, 1, a));
  assert.equal(hexOf(hashOf(h.engine.decision!)), hexOf(hashOf(a)));
});
