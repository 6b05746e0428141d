/**
 * The consensus shell around a real engine, chain and sign guard, with a fake network: what it
 * does when the sign guard cannot be written, and the quorum certificates it reports ahead.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair, signBytes } from "../../../crypto/ed25519.ts";
import { voteSignBytes, VoteType } from "../../../chain/block.ts";
import { genesisHash } from "../../../chain/genesis.ts";
import { makeDevnetGenesis } from "../../../chain/genesis_tool.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import { createStateMachine } from "../../../state/state.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { ConsensusService, type ConsensusServiceOptions } from "../../../consensus/service.ts";
import { SIGN_GUARD_FILE } from "../../../consensus/sign_guard.ts";
import { FakeNetwork } from "../../support/fake_network.ts";
import { pollUntil } from "../../support/cluster.ts";

/** Short enough that a one-validator network commits a block every few milliseconds. */
const FAST = {
  proposeMs: 50,
  proposeDeltaMs: 10,
  prevoteMs: 20,
  prevoteDeltaMs: 10,
  precommitMs: 20,
  precommitDeltaMs: 10,
  resendMs: 20,
};

/**
 * Two equal validators, `key` (ours) and `other` (silent), a real chain and sign guard in a temp
 * dir, and a fake network with one connected peer `"peer"`: no quorum ever forms by itself.
 */
async function twoValidators(
  options: Partial<ConsensusServiceOptions>,
  other = generateKeyPair(),
) {
  const dir = await Deno.makeTempDir({ prefix: "consensus-service-test-" });
  const key = generateKeyPair();
  const genesis = makeDevnetGenesis({
    network: "servicetest",
    nodes: [
      { publicKey: key.publicKey, address: "127.0.0.1:1" },
      { publicKey: other.publicKey, address: "127.0.0.1:2" },
    ],
    blockIntervalMs: 100,
  });
  const gHash = genesisHash(genesis);
  const stateMachine = createStateMachine(genesis);
  const chain = new Chain({ store: ChainStore.open(dir, gHash), genesis, stateMachine });
  const net = new FakeNetwork();
  net.connect("peer");
  const consensus = new ConsensusService({
    network: net,
    chain,
    stateMachine,
    metrics: createNodeMetrics(),
    key,
    genesis,
    genesisHash: gHash,
    dataDir: dir,
    isSyncing: () => false,
    timeouts: FAST,
    ...options,
  });
  const close = async () => {
    await consensus.stop();
    net.close();
    chain.close();
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, key, gHash, chain, net, consensus, close };
}

/** Our first vote was sent: height 1 is running. */
const heightStarted = (net: FakeNetwork) =>
  pollUntil(
    () => Promise.resolve(net.sent.some((s) => s.message.kind === "vote")),
    "height 1 started",
  );

Deno.test("consensus service: a failed sign-guard write stops all signing and sending at once", async () => {
  // The other validator is silent: no quorum ever forms, so the node keeps resending its votes
  // and, through the stall escape, signs a new round every few resends.
  let fatal!: (e: Error) => void;
  const failed = new Promise<Error>((r) => fatal = r);
  const { dir, net, consensus, close } = await twoValidators({ onFatal: (e) => fatal(e) });
  const signed = () => net.sent.filter((s) => s.message.kind === "vote").length;
  try {
    await consensus.start();
    await pollUntil(() => Promise.resolve(signed() >= 3), "votes sent", 10_000);
    // A non-empty directory where the guard file was: the next write fails like a full disk.
    await Deno.remove(`${dir}/${SIGN_GUARD_FILE}`);
    await Deno.mkdir(`${dir}/${SIGN_GUARD_FILE}/blocked`, { recursive: true });
    await failed;
    const sentAtFailure = net.sent.length;
    // Waiting for something not to happen: ten resend intervals, in which the old shell
    // relayed the vote whose write had failed (it was already in the engine's tallies).
    await new Promise((r) => setTimeout(r, 10 * FAST.resendMs));
    assert.equal(net.sent.length, sentAtFailure, "nothing is sent after the failed write");
  } finally {
    await close();
  }
});

Deno.test("consensus service: precommits of the next height's set for one block are reported as being behind", async () => {
  // The other validator is silent: the node stays at height 1 while the precommits of height
  // 2 arrive (a network that went on without it).
  const other = generateKeyPair();
  const reported: number[] = [];
  const { key, gHash, chain, net, consensus, close } = await twoValidators({
    onQuorumAhead: (height) => reported.push(height),
  }, other);
  const blockHash = new Uint8Array(32).fill(9);
  const precommit = (signer: KeyPair, height: number) => ({
    kind: "vote" as const,
    vote: {
      type: VoteType.Precommit,
      height,
      round: 0,
      blockHash,
      validator: signer.publicKey,
      signature: signBytes(signer, voteSignBytes(gHash, VoteType.Precommit, height, 0, blockHash)),
    },
  });
  try {
    await consensus.start();
    await heightStarted(net);
    // Half the power is no quorum; a stranger's precommit adds none.
    net.deliver("peer", precommit(other, 2));
    net.deliver("peer", precommit(generateKeyPair(), 2));
    // Both members: more than 2/3 of the power of height 2's set.
    net.deliver("peer", precommit(key, 2));
    await pollUntil(() => Promise.resolve(reported.length > 0), "the quorum reported");
    assert.deepEqual(reported, [2]);
    assert.equal(chain.tip().height, 0, "evidence, not a commit");
  } finally {
    await close();
  }
});
