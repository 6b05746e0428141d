/**
 * The engine's intake at its edges (consensus/engine.ts, everything before `#evaluate`): the
 * shape of a proposed block's last commit, checked before anything hashes it; replayed
 * proposals verified once, and the bound on remembered proposal signatures; a second proposal
 * of the same block in a round; an equivocator's nil vote still counted for nil. Mutation
 * testing found these unpinned (docs/testing.md, third pass). Same fixture as engine.test.ts: four
 * validators of power 1 at height 1.
 */
import assert from "node:assert/strict";
import { type Certificate, type Proposal } from "../../../chain/block.ts";
import { type EngineAction } from "../../../consensus/engine.ts";
import { VoteType } from "../../../chain/block.ts";
import {
  countingVerify,
  guardedSigner,
  harness,
  HEIGHT,
  isNil,
  KEYS,
  makeBlock,
  MemorySignGuard,
  PREVIOUS,
  prevote,
  proposal,
  proposerIndex,
  sentVotes,
  signProposal,
  signVote,
} from "../../support/consensus_sim.ts";
import { generateKeyPair } from "../../../crypto/ed25519.ts";
import { toHex } from "../../../encoding/binary.ts";

function rejected(
  actions: EngineAction[],
): { reason: string; detail: string }[] {
  return actions.flatMap((a) =>
    a.kind === "rejected" ? [{ reason: a.reason, detail: a.detail }] : []
  );
}

function signature(i: number) {
  return {
    validator: new Uint8Array(32).fill(i),
    signature: new Uint8Array(64).fill(i),
  };
}

const COMMIT: Certificate = {
  height: 7,
  round: 0,
  blockHash: new Uint8Array(32).fill(9),
  signatures: [signature(1)],
};

/** A round-0 proposal whose block carries `lastCommit` (its payload root matches it). */
function proposalWith(lastCommit: Certificate): Proposal {
  return proposal(0, -1, makeBlock(0, 0, { records: [], lastCommit }));
}

/** The round-0 proposal with the block's last commit replaced after signing (shape only). */
function withLastCommit(lastCommit: unknown): Proposal {
  const p = proposalWith(COMMIT);
  return { ...p, block: { ...p.block, lastCommit: lastCommit as Certificate } };
}

Deno.test("engine intake: each malformed last commit is rejected with its reason", () => {
  const fields = "proposal: last commit field out of range";
  const sigs = "proposal: last commit signatures missing or too many";
  const sig = "proposal: last commit signature out of range";
  const cases: [unknown, string][] = [
    [null, "proposal: last commit is not an object"],
    ["commit", "proposal: last commit is not an object"],
    [{ ...COMMIT, height: -1 }, fields],
    [{ ...COMMIT, height: 1.5 }, fields],
    [{ ...COMMIT, height: Number.MAX_SAFE_INTEGER + 1 }, fields],
    [{ ...COMMIT, round: -1 }, fields],
    [{ ...COMMIT, round: 0x1_0000_0000 }, fields],
    [{ ...COMMIT, blockHash: new Uint8Array(31) }, fields],
    [{ ...COMMIT, blockHash: [...COMMIT.blockHash] }, fields],
    [{ ...COMMIT, signatures: "all of them" }, sigs],
    [{
      ...COMMIT,
      signatures: Array.from({ length: 1_001 }, (_, i) => signature(i)),
    }, sigs],
    [{ ...COMMIT, signatures: [null] }, sig],
    [{ ...COMMIT, signatures: ["signature"] }, sig],
    [{
      ...COMMIT,
      signatures: [{ ...signature(1), validator: new Uint8Array(33) }],
    }, sig],
    [{
      ...COMMIT,
      signatures: [{ ...signature(1), signature: new Uint8Array(63) }],
    }, sig],
    [{
      ...COMMIT,
      signatures: [signature(1), { validator: new Uint8Array(32) }],
    }, sig],
  ];
  for (const [bad, detail] of cases) {
    const h = harness({ me: 3 });
    assert.deepEqual(rejected(h.propose(withLastCommit(bad), "p")), [
      { reason: "malformed", detail },
    ], detail);
  }
});

Deno.test("engine intake: a last commit at its bounds is well-formed and the block is voted on", () => {
  const edges: Certificate[] = [
    { ...COMMIT, signatures: [] },
    {
      height: Number.MAX_SAFE_INTEGER,
      round: 0xffff_ffff,
      blockHash: new Uint8Array(32),
      signatures: Array.from({ length: 1_000 }, (_, i) => signature(i)),
    },
  ];
  for (const lastCommit of edges) {
    const h = harness({ me: 3 });
    const out = h.propose(proposalWith(lastCommit), "p");
    assert.deepEqual(rejected(out), []);
    assert.ok(
      out.some((a) => a.kind === "broadcastVote"),
      "the proposal was voted on",
    );
  }
});

Deno.test("engine intake: a last commit swapped after signing fails the payload root", () => {
  const h = harness({ me: 3 });
  const swapped = withLastCommit({ ...COMMIT, round: 1 });
  assert.deepEqual(rejected(h.propose(swapped, "p")).map((r) => r.reason), [
    "bad-records",
  ]);
});

Deno.test("engine intake: a replayed proposal is verified once", () => {
  const counter = countingVerify();
  const h = harness({ me: 3, verify: counter.verify });
  const p = proposal(0, -1, makeBlock(0));
  h.propose(p, "a");
  h.propose(p, "b");
  assert.equal(counter.calls(), 1);
});

Deno.test("engine intake: 256 proposal signatures are remembered, then forgotten at once", () => {
  const counter = countingVerify();
  const h = harness({ me: null, verify: counter.verify });
  const first = proposal(0, -1, makeBlock(0, 0));
  h.propose(first);
  // Blocks differ by one tag byte: 256 distinct ones.
  for (let tag = 1; tag < 256; tag++) h.propose(proposal(0, -1, makeBlock(0, tag)));
  assert.equal(counter.calls(), 256);
  h.propose(first);
  assert.equal(counter.calls(), 256, "256 remembered: the first is still known");
  // The 257th distinct signature clears the memory before it is added.
  const other = makeBlock(0, 0, { timestamp: PREVIOUS.timestamp + 5_000 });
  h.propose(proposal(0, -1, other));
  assert.equal(counter.calls(), 257);
  h.propose(first);
  assert.equal(counter.calls(), 258, "forgotten: verified again");
});

Deno.test("engine intake: a second proposal of the same block in a round is not equivocation", () => {
  const h = harness({ me: null });
  const b = makeBlock(1, 3);
  h.vote(prevote(0, 1, null));
  h.vote(prevote(1, 1, null)); // f+1 in round 1: we join it
  assert.equal(h.engine.round, 1);
  h.propose(proposal(1, -1, b));
  // Signed again with another validRound: a different signature, the same block.
  const again = h.propose(proposal(1, 0, b));
  assert.deepEqual(again.filter((a) => a.kind === "equivocation"), []);
  assert.deepEqual(again.filter((a) => a.kind === "relay"), []);
});

Deno.test("engine intake: an equivocator's nil prevote still counts for nil", () => {
  const h = harness({ me: 3 });
  h.timeout("propose", 0); // we prevote nil
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  h.vote(prevote(0, 0, a));
  h.vote(prevote(0, 0, null)); // validator 0 equivocates: A, then nil
  // Ours, validator 0's nil and validator 1's: 3 of 4 for nil, so precommit nil now.
  const [pc] = sentVotes(h.vote(prevote(1, 0, null)), VoteType.Precommit);
  assert.ok(pc && isNil(pc), "nil has a quorum with the equivocator's nil vote");
});

Deno.test("engine intake: a proposal two or more heights ahead is dropped silently, never charged", () => {
  // Neither ours nor the next height's (that one is buffered): a peer far ahead of us, or we far
  // behind; sync catches up, and the sender did nothing wrong.
  const h = harness({ me: 3 });
  for (const ahead of [2, 5]) {
    const far = signProposal(KEYS[0], HEIGHT + ahead, 0, -1, makeBlock(0));
    const actions = h.propose(far, "peer-ahead");
    assert.deepEqual(actions, [], `height + ${ahead}: no rejection, no vote, no relay`);
  }
});

Deno.test("engine intake: a proposed block of exactly 10,000 records has a valid shape; 10,001 not", () => {
  // docs/protocol.md: `records: list(≤10,000)` (CHAIN_LIMITS.maxRecords), a literal here.
  const withRecords = (n: number) => {
    const records = Array.from({ length: n }, (_, i) => ({
      type: 3,
      data: new Uint8Array([i & 0xff, i >> 8]),
    }));
    return proposal(0, -1, makeBlock(0, 0, { records }));
  };
  const atLimit = harness({ me: 3 }).propose(withRecords(10_000));
  assert.deepEqual(rejected(atLimit), []);
  assert.ok(atLimit.some((a) => a.kind === "relay"), "accepted and relayed");
  assert.deepEqual(rejected(harness({ me: 3 }).propose(withRecords(10_001))), [
    { reason: "malformed", detail: "proposal: records missing or too many" },
  ]);
});

Deno.test("engine intake: null where an object belongs is rejected with its reason, never thrown", () => {
  const p = proposal(0, -1, makeBlock(0));
  const cases: [unknown, string][] = [
    [null, "proposal: not an object"],
    [{ ...p, block: null }, "proposal: block is not an object"],
    [{ ...p, block: { ...p.block, records: [null] } }, "proposal: record out of range"],
    [
      withLastCommit({ ...COMMIT, signatures: [null] }),
      "proposal: last commit signature out of range",
    ],
  ];
  for (const [message, detail] of cases) {
    const h = harness({ me: 3 });
    assert.deepEqual(rejected(h.propose(message as Proposal)), [{ reason: "malformed", detail }]);
  }
});

Deno.test("engine intake: each rejection names what was wrong, for the operator's log", () => {
  const a = makeBlock(0);
  const stranger = generateKeyPair();
  const h = harness({ me: 3 });
  const fromStranger = signVote(stranger, VoteType.Prevote, HEIGHT, 0, new Uint8Array(32));
  assert.deepEqual(rejected(h.vote(fromStranger)), [{
    reason: "not-validator",
    detail: `vote from non-member ${toHex(stranger.publicKey).slice(0, 12)}`,
  }]);
  const notProposer = (proposerIndex(0) + 1) % KEYS.length;
  assert.deepEqual(rejected(h.propose(signProposal(KEYS[notProposer], HEIGHT, 0, -1, a))), [{
    reason: "bad-signature",
    detail: "proposal for round 0 not signed by its proposer",
  }]);
  const p = proposal(0, -1, a);
  const swapped = {
    ...p,
    block: { ...p.block, records: [{ type: 3, data: new Uint8Array([9]) }] },
  };
  assert.deepEqual(rejected(h.propose(swapped)), [{
    reason: "bad-records",
    detail: "payload root does not match the records",
  }]);
  assert.deepEqual(rejected(h.propose(proposal(0, -1, makeBlock(1)))), [{
    reason: "malformed",
    detail: "block of round 1 proposed in round 0 with validRound -1",
  }]);
});

Deno.test("engine intake: a node with a key outside the set never votes, even when the set decides", () => {
  // A masternode jailed or not yet active still runs its engine with its key: it must only follow.
  const outsider = generateKeyPair();
  const h = harness({ me: null, signer: guardedSigner(outsider, new MemorySignGuard()) });
  const a = makeBlock(0);
  const actions = [
    ...h.startActions,
    ...h.propose(proposal(0, -1, a)),
    ...[0, 1, 2].flatMap((i) => h.vote(prevote(i, 0, a))),
    ...h.timeout("propose", 0),
  ];
  assert.deepEqual(sentVotes(actions), [], "no prevote or precommit of its own");
});

Deno.test("engine intake: a header timestamp of 0 is well-formed: judged invalid, not malformed", () => {
  // Every u64 field of a header runs from 0. A timestamp of 0 is before the previous block's, so
  // the block is invalid and gets a nil prevote, but the message is well-formed: the sender is
  // not charged for it. A negative timestamp is malformed.
  const h = harness({ me: 3 });
  const actions = h.propose(proposal(0, -1, makeBlock(0, 7, { timestamp: 0 })));
  assert.deepEqual(rejected(actions), []);
  const votes = sentVotes(actions, VoteType.Prevote);
  assert.equal(votes.length, 1);
  assert.ok(isNil(votes[0]), "a block older than its parent gets a nil prevote");
  // Negative: changed after signing (nothing can sign it), caught by the shape check first.
  const signed = proposal(0, -1, makeBlock(0, 8));
  const negative = {
    ...signed,
    block: { ...signed.block, header: { ...signed.block.header, timestamp: -1 } },
  };
  assert.deepEqual(rejected(harness({ me: 3 }).propose(negative)), [
    { reason: "malformed", detail: "proposal: header field out of range" },
  ]);
});
