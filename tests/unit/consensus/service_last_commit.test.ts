/**
 * The consensus shell's side of the last commit and of evidence, with a real engine, chain and
 * sign guard and a fake network: a member slower than the quorum is named in the next block,
 * a proposal's last commit is verified (through `verifyCommit`) before the node prevotes it,
 * and each double sign reaches the evidence sink once.
 */
import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import { type KeyPair, signBytes } from "../../../crypto/ed25519.ts";
import { sha256, ZERO_HASH } from "../../../crypto/hash.ts";
import {
  type Block,
  BLOCK_VERSION,
  blockHash,
  type Certificate,
  payloadRoot,
  sortedCommit,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../../../chain/block.ts";
import { verifyCertificateSignatures } from "../../../chain/certificate.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import type { Tier } from "../../../chain/genesis.ts";
import { createStateMachine } from "../../../state/state.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { ConsensusService, EVIDENCE_FILE } from "../../../consensus/service.ts";
import type { Evidence } from "../../../consensus/engine.ts";
import type { TimeoutConfig } from "../../../consensus/constants.ts";
import { proposerAt } from "../../../consensus/proposer.ts";
import { FakeNetwork } from "../../support/fake_network.ts";
import { pollUntil } from "../../support/cluster.ts";
import { ChainBuilder, testValidatorKey } from "../../support/chain_builder.ts";
import { signProposal } from "../../support/consensus_sim.ts";

/** A lone quorum commits a block every few milliseconds with these. */
const FAST: TimeoutConfig = {
  proposeMs: 50,
  proposeDeltaMs: 10,
  prevoteMs: 20,
  prevoteDeltaMs: 10,
  precommitMs: 20,
  precommitDeltaMs: 10,
  resendMs: 20,
};
/** The node must wait for the test's proposal, however slow the machine. */
const PATIENT: TimeoutConfig = { ...FAST, proposeMs: 600_000, resendMs: 600_000 };

interface Setup {
  builder: ChainBuilder;
  chain: Chain;
  net: FakeNetwork;
  consensus: ConsensusService;
  dir: string;
  /** `verifyCommit` calls. */
  verified: Certificate[];
  evidence: Evidence[];
  close(): Promise<void>;
}

/** Our node runs `builder.keys[0]`; the test speaks for the other keys. */
async function setup(tiers: Tier[], timeouts: TimeoutConfig, preapply = 0): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "consensus-last-commit-test-" });
  const builder = ChainBuilder.create({
    validators: tiers.length,
    tiers,
    network: `lastcommit-${tiers.join("-")}`,
    blockIntervalMs: 200,
    stateMachine: (g) => createStateMachine(g),
  });
  const stateMachine = createStateMachine(builder.genesis);
  const store = ChainStore.open(dir, builder.genesisHash);
  const chain = new Chain({ store, genesis: builder.genesis, stateMachine });
  for (const item of builder.build(preapply)) chain.applyBlock(item.cb, item.encoded);
  const net = new FakeNetwork();
  for (let i = 1; i < tiers.length; i++) net.connect(`peer-${i}`);
  net.connect("observer");
  const verified: Certificate[] = [];
  const evidence: Evidence[] = [];
  const consensus = new ConsensusService({
    network: net,
    chain,
    stateMachine,
    metrics: createNodeMetrics(),
    key: builder.keys[0],
    genesis: builder.genesis,
    genesisHash: builder.genesisHash,
    dataDir: dir,
    isSyncing: () => false,
    timeouts,
    verifyCommit: (_header, certificate) => {
      verified.push(certificate);
      return Promise.resolve(verifyCertificateSignatures(builder.genesisHash, certificate));
    },
    evidenceSink: { submit: (e) => evidence.push(e) },
  });
  await consensus.start();
  return {
    builder,
    chain,
    net,
    consensus,
    dir,
    verified,
    evidence,
    close: async () => {
      await consensus.stop();
      net.close();
      chain.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function vote(
  s: Setup,
  key: KeyPair,
  type: VoteType,
  height: number,
  round: number,
  hash: Uint8Array,
): Vote {
  const message = voteSignBytes(s.builder.genesisHash, type, height, round, hash);
  return {
    type,
    height,
    round,
    blockHash: hash,
    validator: key.publicKey,
    signature: signBytes(key, message),
  };
}

function sentVotes(s: Setup, type: VoteType, height: number): Vote[] {
  return s.net.sent
    .map((x) => x.message)
    .filter((m) => m.kind === "vote" && m.vote.type === type && m.vote.height === height)
    .map((m) => (m as { vote: Vote }).vote);
}

Deno.test("consensus service: a precommit later than the quorum is named in the next block", async () => {
  // Gold alone holds > 2/3: our node commits without waiting for the bronze member, which is
  // online but slow: its precommit for block 1 arrives right after the commit.
  const s = await setup(["gold", "bronze"], FAST);
  const slow = s.builder.keys[1];
  const stranger = testValidatorKey(4_242);
  try {
    s.chain.onBlockApplied((cb, hash) => {
      if (cb.block.header.height !== 1) return;
      const round = cb.certificate.round;
      s.net.deliver("peer-1", {
        kind: "vote",
        vote: vote(s, stranger, VoteType.Precommit, 1, round, hash),
      });
      const forged = vote(s, slow, VoteType.Precommit, 1, round, hash);
      forged.signature = forged.signature.slice();
      forged.signature[0] ^= 1;
      s.net.deliver("peer-1", { kind: "vote", vote: forged });
      s.net.deliver("peer-1", {
        kind: "vote",
        vote: vote(s, slow, VoteType.Precommit, 1, round, hash),
      });
    });
    await pollUntil(() => Promise.resolve(s.chain.tip().height >= 2), "block 2", 20_000);
    const first = s.chain.getBlock(1)!;
    assert.deepEqual(
      first.certificate.signatures.map((x) => toHex(x.validator)),
      [toHex(s.builder.keys[0].publicKey)],
      "the quorum did not wait for the slow member",
    );
    const lastCommit = s.chain.getBlock(2)!.block.lastCommit!;
    assert.deepEqual(
      lastCommit.signatures.map((x) => toHex(x.validator)),
      [s.builder.keys[0], slow].map((k) => toHex(k.publicKey)).sort(),
      "the late signer is in block 2's last commit",
    );
    assert.deepEqual(lastCommit, sortedCommit({ ...lastCommit }));
    const relayed = s.net.sentTo("observer", "vote").filter((m) =>
      m.kind === "vote" && m.vote.height === 1 && toHex(m.vote.validator) === toHex(slow.publicKey)
    );
    assert.equal(relayed.length, 1, "the late precommit is relayed once");
    assert.deepEqual(
      s.net.penaltiesOf("peer-1").map((p) => p.code).sort(),
      ["consensus-bad-signature", "consensus-not-validator"],
    );
  } finally {
    await s.close();
  }
});

/**
 * Block `height` on `prevHash`, proposed by `builder.keys[1]` in round 0 with `lastCommit`, the
 * proposal signed by `signer` (default: that proposer) and delivered.
 */
function propose(
  s: Setup,
  height: number,
  prevHash: Uint8Array,
  timestamp: number,
  lastCommit?: Certificate,
  signer?: KeyPair,
): Block {
  const set = s.chain.validatorSetFor(height)!;
  const proposer = s.builder.keys[1];
  assert.equal(
    toHex(proposerAt(set, height, 0).nodeId),
    toHex(proposer.publicKey),
    `the gold member proposes height ${height} round 0`,
  );
  const block: Block = {
    header: {
      version: BLOCK_VERSION,
      chainId: s.builder.genesisHash,
      height,
      prevHash,
      timestamp,
      proposer: proposer.publicKey,
      round: 0,
      payloadRoot: payloadRoot([], [], lastCommit),
      validatorSetHash: set.hash,
    },
    records: [],
    ...(lastCommit ? { lastCommit } : {}),
  };
  s.net.deliver("peer-1", {
    kind: "proposal",
    proposal: signProposal(signer ?? proposer, height, 0, -1, block, s.builder.genesisHash),
  });
  return block;
}

function proposeBlock2(s: Setup, lastCommit: Certificate, signer?: KeyPair): Block {
  return propose(s, 2, s.chain.tip().hash, Date.now(), lastCommit, signer);
}

/**
 * Block 1 is on the chain (certified by both); gold proposes block 2 and our bronze node, whose
 * vote alone decides nothing, judges the proposal.
 */
async function atHeight2(): Promise<Setup> {
  const s = await setup(["bronze", "gold"], PATIENT, 1);
  await pollUntil(
    () => Promise.resolve(s.consensus.info().height === 2 && s.consensus.info().step !== "waiting"),
    "height 2 started",
  );
  return s;
}

async function prevoteOnProposal(forge: boolean): Promise<{ prevote: Vote; s: Setup }> {
  const s = await atHeight2();
  const stored = sortedCommit(s.chain.getBlock(1)!.certificate);
  const lastCommit = forge
    ? {
      ...stored,
      signatures: stored.signatures.map((x, i) =>
        i === 0 ? { validator: x.validator, signature: x.signature.map((b) => b ^ 1) } : x
      ),
    }
    : stored;
  proposeBlock2(s, lastCommit);
  const prevote = await pollUntil(
    () => Promise.resolve(sentVotes(s, VoteType.Prevote, 2)[0]),
    "our prevote at height 2",
  );
  return { prevote, s };
}

Deno.test("consensus service: a commit's precommits are verified once, by the engine, not again by the chain", async () => {
  const s = await setup(["gold", "bronze"], FAST);
  const claims: (boolean | undefined)[] = [];
  const apply = s.chain.applyBlock.bind(s.chain);
  s.chain.applyBlock = (cb, encoded, opts) => {
    claims.push(opts?.signaturesVerified);
    // What the claim skips holds: every signature of the certificate verifies.
    assert.ok(verifyCertificateSignatures(s.builder.genesisHash, cb.certificate));
    apply(cb, encoded, opts);
  };
  try {
    await pollUntil(() => Promise.resolve(s.chain.tip().height >= 2), "block 2", 20_000);
    assert.ok(claims.length >= 2);
    assert.ok(claims.every((c) => c === true), "each commit skips the second verification");
  } finally {
    await s.close();
  }
});

Deno.test("consensus service: a proposal whose last commit has a forged signature gets a nil prevote", async () => {
  const { prevote, s } = await prevoteOnProposal(true);
  try {
    assert.deepEqual(prevote.blockHash, ZERO_HASH);
    assert.equal(s.verified.length, 1, "checked once, through verifyCommit");
  } finally {
    await s.close();
  }
});

Deno.test("consensus service: a proposal with a valid last commit gets a prevote for its block", async () => {
  const { prevote, s } = await prevoteOnProposal(false);
  try {
    assert.notDeepEqual(prevote.blockHash, ZERO_HASH);
    assert.equal(s.verified.length, 1, "checked once, through verifyCommit");
  } finally {
    await s.close();
  }
});

Deno.test("consensus service: a proposal its proposer did not sign costs no last-commit check", async () => {
  const s = await atHeight2();
  try {
    proposeBlock2(s, sortedCommit(s.chain.getBlock(1)!.certificate), testValidatorKey(777));
    await pollUntil(
      () => Promise.resolve(s.net.penaltiesOf("peer-1").length > 0),
      "the forged proposal refused",
    );
    assert.deepEqual(s.net.penaltiesOf("peer-1").map((p) => p.code), ["consensus-bad-signature"]);
    assert.equal(s.verified.length, 0, "no signature of its last commit went to the workers");
  } finally {
    await s.close();
  }
});

Deno.test("consensus service: a proposal buffered for the next height has its last commit checked in the workers", async () => {
  // At height 1, gold (the test) proposes block 1 and, before committing it, already sends its
  // proposal for height 2: our node buffers it and judges it once height 2 starts.
  const s = await setup(["bronze", "gold"], PATIENT, 0);
  const gold = s.builder.keys[1];
  try {
    await pollUntil(
      () =>
        Promise.resolve(s.consensus.info().height === 1 && s.consensus.info().step !== "waiting"),
      "height 1 started",
    );
    const now = Date.now();
    const block1 = propose(s, 1, s.builder.genesisHash, now - 1_000);
    const hash1 = blockHash(block1.header);
    const precommit1 = vote(s, gold, VoteType.Precommit, 1, 0, hash1);
    const lastCommit: Certificate = {
      height: 1,
      round: 0,
      blockHash: hash1,
      signatures: [{ validator: gold.publicKey, signature: precommit1.signature }],
    };
    const block2 = propose(s, 2, hash1, now, lastCommit);
    s.net.deliver("peer-1", {
      kind: "vote",
      vote: vote(s, gold, VoteType.Prevote, 1, 0, hash1),
    });
    s.net.deliver("peer-1", { kind: "vote", vote: precommit1 });
    const prevote = await pollUntil(
      () => Promise.resolve(sentVotes(s, VoteType.Prevote, 2)[0]),
      "our prevote at height 2",
    );
    assert.deepEqual(prevote.blockHash, blockHash(block2.header));
    assert.deepEqual(s.verified, [lastCommit], "verified through verifyCommit, once");
  } finally {
    await s.close();
  }
});

Deno.test("consensus service: each double sign reaches the evidence sink exactly once", async () => {
  const s = await setup(["bronze", "gold"], PATIENT, 1);
  const gold = s.builder.keys[1];
  const x = sha256(new TextEncoder().encode("block x"));
  const y = sha256(new TextEncoder().encode("block y"));
  try {
    await pollUntil(
      () =>
        Promise.resolve(s.consensus.info().height === 2 && s.consensus.info().step !== "waiting"),
      "height 2 started",
    );
    const send = (type: VoteType, hash: Uint8Array) =>
      s.net.deliver("peer-1", { kind: "vote", vote: vote(s, gold, type, 2, 0, hash) });
    send(VoteType.Prevote, x);
    send(VoteType.Prevote, ZERO_HASH); // the double sign
    send(VoteType.Prevote, ZERO_HASH); // the same conflicting vote again
    send(VoteType.Prevote, y); // a third value: the same double sign (signer, round, step)
    send(VoteType.Precommit, x);
    send(VoteType.Precommit, y); // another step: another double sign
    // Votes are handled in order, so the second submission comes after any repeat of the first.
    await pollUntil(() => Promise.resolve(s.evidence.length >= 2), "two submissions");
    assert.equal(s.evidence.length, 2);
    const [first, second] = s.evidence.map((e) => {
      assert.equal(e.kind, "duplicateVote");
      return e as Extract<Evidence, { kind: "duplicateVote" }>;
    });
    assert.equal(first.first.type, VoteType.Prevote);
    assert.deepEqual([first.first.blockHash, first.second.blockHash], [x, ZERO_HASH]);
    assert.equal(second.first.type, VoteType.Precommit);
    assert.deepEqual(toHex(second.first.validator), toHex(gold.publicKey));
    const lines = (await Deno.readTextFile(`${s.dir}/${EVIDENCE_FILE}`)).trim().split("\n");
    assert.equal(lines.length, 2, "evidence.jsonl has one line per double sign");
  } finally {
    await s.close();
  }
});
