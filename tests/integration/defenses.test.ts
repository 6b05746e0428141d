/**
 * Defenses of docs/security.md against real node processes: free registrations that carry no
 * power, a sign-guard write that fails, a whole network restarted mid-round, and a node key
 * file that others can read.
 */
import assert from "node:assert/strict";
import { addressOf } from "../../state/address.ts";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { fromHex } from "../../encoding/binary.ts";
import { loadGenesisFile } from "../../chain/genesis.ts";
import { genesisHash } from "../../chain/genesis.ts";
import { signRegistration } from "../../state/records.ts";
import { SIGN_GUARD_FILE } from "../../consensus/sign_guard.ts";
import { freePort, metricValue, NodeProcess, tempDir } from "../support/cluster.ts";
import { createKeyFile, NODE_KEY_FILE } from "../../crypto/node_key.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { dialAsPeer, type RawPeer } from "../support/raw_peer.ts";

/** Blocks per second over `windowMs`, from the tip height of `node`. */
async function blockRate(node: NodeProcess, windowMs: number): Promise<number> {
  const from = await heightOf(node);
  const started = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const to = await heightOf(node);
  return (to - from) / ((performance.now() - started) / 1000);
}

interface ConsensusInfo {
  totalPower: number;
  validators: { nodeId: string; power: number }[];
}

Deno.test("20 free registrations from one peer change neither the total power nor the block rate", async () => {
  const devnet = await startDevnet(3, 500);
  let peer: RawPeer | null = null;
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    const before = await devnet.nodes[1].rpc<ConsensusInfo>("getconsensusinfo");
    const rateBefore = await blockRate(devnet.nodes[1], 6_000);

    peer = await dialAsPeer(genesis, devnet.manifest.nodes[0].p2p);
    const tip = await heightOf(devnet.nodes[0]);
    const keys = Array.from({ length: 20 }, () => generateKeyPair());
    for (const [i, key] of keys.entries()) {
      const record = signRegistration(key, {
        genesisHash: genesisHash(genesis),
        nonce: 0,
        expiresAt: tip + 100,
        rewardAddress: addressOf(genesis.network, key.publicKey),
        address: `203.0.113.${i + 1}:24100`,
      });
      await peer.send({ kind: "record", record });
    }
    // All 20 are on the chain and in effect on every node.
    for (const n of devnet.nodes) {
      await n.waitFor(
        async () => (await n.rpc<ConsensusInfo>("getconsensusinfo")).validators.length === 23,
        "the 20 registrations in the set",
        60_000,
      );
    }
    const after = await devnet.nodes[1].rpc<ConsensusInfo>("getconsensusinfo");
    assert.equal(after.totalPower, before.totalPower);
    assert.equal(after.validators.filter((v) => v.power > 0).length, 3);
    const rateAfter = await blockRate(devnet.nodes[1], 6_000);
    console.log(
      `block rate before ${rateBefore.toFixed(2)}/s, with 20 free members ${
        rateAfter.toFixed(2)
      }/s`,
    );
    assert.ok(rateAfter >= 0.9 * rateBefore, `${rateAfter} < 90% of ${rateBefore}`);
    // Nobody holds a key of the 20, so a set that needed them could not certify anything.
    const h = await heightOf(devnet.nodes[2]);
    await waitAllAtHeight(devnet.nodes, h + 2, 30_000);
    for (const id of keys.map((k) => k.publicKey)) {
      assert.ok(
        !after.validators.some((v) =>
          v.power > 0 && fromHex(v.nodeId).every((b, j) => b === id[j])
        ),
      );
    }
  } finally {
    await peer?.close();
    await devnet.stop();
  }
});

Deno.test("a failed sign-guard write stops signing and the node exits non-zero", async () => {
  const devnet = await startDevnet(3, 300);
  try {
    await waitAllAtHeight(devnet.nodes, 2, 60_000);
    const guardPath = `${devnet.manifest.nodes[0].dataDir}/${SIGN_GUARD_FILE}`;
    // A non-empty directory where the file was: replacing it fails like a full disk would.
    await Deno.remove(guardPath);
    await Deno.mkdir(`${guardPath}/blocked`, { recursive: true });
    const code = await devnet.nodes[0].exited(60_000);
    assert.equal(code, 1);
    const fatal = devnet.nodes[0].logsMatching((e) =>
      e.message.startsWith("cannot save the sign guard")
    );
    assert.equal(fatal.length, 1);
    // Nothing it signed after the failure reached the others as a conflict.
    for (const n of devnet.nodes.slice(1)) {
      assert.equal(metricValue(await n.metrics(), "timenode_equivocations_total"), 0);
    }
  } finally {
    await devnet.stop();
  }
});

Deno.test("a whole network restarted mid-round re-sends its last signed messages and resumes", async () => {
  const devnet = await startDevnet(3, 200);
  try {
    await waitAllAtHeight(devnet.nodes, 5, 60_000);
    // With 3 equal members every vote is needed: once node 2 is gone, nodes 0 and 1 sit in the
    // next height having signed their prevotes (for the proposal, or nil after the propose
    // timeout), and may never sign those positions again. Then they go down too.
    await devnet.nodes[2].kill9();
    await new Promise((r) => setTimeout(r, 4_500));
    await Promise.all(devnet.nodes.slice(0, 2).map((n) => n.kill9()));
    for (let i = 0; i < devnet.nodes.length; i++) devnet.nodes[i] = devnet.processFor(i);
    const restartedAt = performance.now();
    for (const n of devnet.nodes) n.start();
    await Promise.all(
      devnet.nodes.map((n) =>
        n.waitForLog((e) => e.message.startsWith("rpc listening on"), "restart", 60_000)
      ),
    );
    const upAt = performance.now();
    const startHeight = Math.max(...await Promise.all(devnet.nodes.map(heightOf)));
    const first = await devnet.nodes[0].waitForLog(
      (e) => e.message.startsWith("committed height") && Number(e.properties.height) > startHeight,
      "the first block after the restart",
      60_000,
    );
    const seconds = (performance.now() - restartedAt) / 1000;
    const sinceUp = (performance.now() - upAt) / 1000;
    const resent = devnet.nodes.flatMap((n) =>
      n.logsMatching((e) => e.message.startsWith("re-sending"))
    );
    console.log(
      `first block after a whole-network restart: ${seconds.toFixed(1)} s after the processes ` +
        `started, ${sinceUp.toFixed(1)} s after all were up (round ${first.properties.round}); ` +
        `${resent.length} nodes re-sent messages; ` +
        `round timeouts: propose 3 s, prevote 1 s, precommit 1 s`,
    );
    assert.ok(resent.length >= 1, "a restarted node re-sent what it had signed");
    // The mechanism: the re-sent votes were accepted, not penalised as invalid.
    for (const n of devnet.nodes) {
      const rejected = n.logsMatching((e) =>
        /consensus (bad-signature|not-validator|malformed)/.test(e.message)
      );
      assert.equal(rejected.length, 0);
    }
    await waitAllAtHeight(devnet.nodes, startHeight + 3, 60_000);
  } finally {
    await devnet.stop();
  }
});

Deno.test("a node key file readable by others stops the node at start, with the chmod fix", async () => {
  const dataDir = await tempDir("keymode");
  const keyPath = `${dataDir}/${NODE_KEY_FILE}`;
  await createKeyFile(keyPath, generateKeyPair());
  // What a careless copy or a permissive umask leaves behind.
  await Deno.chmod(keyPath, 0o644);
  const node = new NodeProcess({
    name: "keymode",
    dataDir,
    p2pPort: freePort(),
    rpcPort: freePort(),
  });
  try {
    node.start();
    assert.notEqual(await node.exited(60_000), 0);
    const refused = node.logsMatching((e) => e.message.includes(`chmod 600 ${keyPath}`));
    assert.equal(refused.length, 1);
    assert.equal(node.logsMatching((e) => e.message.startsWith("rpc listening on")).length, 0);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
