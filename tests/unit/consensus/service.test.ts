/**
 * The consensus shell around a real engine, chain and sign guard, with a fake network: what it
 * does when the sign guard cannot be written.
 */
import assert from "node:assert/strict";
import { generateKeyPair } from "../../../crypto/ed25519.ts";
import { genesisHash } from "../../../chain/genesis.ts";
import { makeDevnetGenesis } from "../../../chain/genesis_tool.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import { createStateMachine } from "../../../state/state.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { ConsensusService } from "../../../consensus/service.ts";
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

Deno.test("consensus service: a failed sign-guard write stops all signing and sending at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "consensus-service-test-" });
  const key = generateKeyPair();
  // Two equal validators, the other one silent: no quorum ever forms, so the node keeps
  // resending its votes and, through the stall escape, signs a new round every few resends.
  const genesis = makeDevnetGenesis({
    network: "servicetest",
    nodes: [
      { publicKey: key.publicKey, address: "127.0.0.1:1" },
      { publicKey: generateKeyPair().publicKey, address: "127.0.0.1:2" },
    ],
    blockIntervalMs: 100,
  });
  const gHash = genesisHash(genesis);
  const stateMachine = createStateMachine(genesis);
  const chain = new Chain({ store: ChainStore.open(dir, gHash), genesis, stateMachine });
  const net = new FakeNetwork();
  net.connect("observer");
  let fatal!: (e: Error) => void;
  const failed = new Promise<Error>((r) => fatal = r);
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
    onFatal: (e) => fatal(e),
  });
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
    await consensus.stop();
    net.close();
    chain.close();
    await Deno.remove(dir, { recursive: true });
  }
});
