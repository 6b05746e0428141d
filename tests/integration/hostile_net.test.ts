/**
 * Network-side attacks against a real masternode network, each measured in the same run against
 * the rate without it: the attack's effect is gone, honest peers keep their connections, and
 * block production during the attack is at least 90% of the rate without it (heights per window;
 * one block of slack for where a window's edges fall).
 */
import assert from "node:assert/strict";
import { builtinGenesis, genesisHash, loadGenesisFile } from "../../chain/genesis.ts";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { createNodeMetrics } from "../../metrics/definitions.ts";
import { NetworkService } from "../../network/service.ts";
import { freePort, metricValue, type NodeProcess } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";

/** Each window is this many block intervals: long enough that one block is ~10% of it. */
const WINDOW_MS = 10_000;
const BLOCK_INTERVAL_MS = 1_000;

interface PeerInfo {
  key: string;
  nodeId: string;
  sessionId: number;
}

/** Heights the network gains in one window (the slowest node's view). */
async function heightsInWindow(nodes: NodeProcess[], during?: () => void): Promise<number> {
  const start = Math.min(...await Promise.all(nodes.map(heightOf)));
  during?.();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const end = Math.min(...await Promise.all(nodes.map(heightOf)));
  return end - start;
}

/** The honest peers' sessions, by key: unchanged sessions mean zero disconnects. */
async function honestSessions(nodes: NodeProcess[], honestIds: Set<string>): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    for (const p of await n.rpc<PeerInfo[]>("getpeerinfo")) {
      if (honestIds.has(p.nodeId)) out.push(`${n.name}/${p.key}#${p.sessionId}`);
    }
  }
  return out.sort();
}

Deno.test("fake heights: a peer claiming height 10,000,000 and reconnecting never slows consensus", async () => {
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const attackerKey = generateKeyPair();
  const attackerPort = freePort();
  let attacker: NetworkService | null = null;
  let reconnects: ReturnType<typeof setInterval> | undefined;
  let cycling = Promise.resolve();
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const genesis = await loadGenesisFile(devnet.manifest.genesis).catch(() =>
      builtinGenesis("devnet")
    );
    const gHash = genesisHash(genesis);
    const honestIds = new Set<string>();
    for (const n of devnet.nodes) {
      honestIds.add((await n.rpc<{ nodeId: string }>("getnetworkinfo")).nodeId);
    }
    const before = await honestSessions(devnet.nodes, honestIds);

    const baseline = await heightsInWindow(devnet.nodes);

    // The attacker: a real peer (valid handshake, stable key) that claims a huge tip, never
    // answers getBlocks, and reconnects every 3 s, before any request can time out.
    const connect = async () => {
      const s = new NetworkService({
        key: attackerKey,
        magic: genesis.magic,
        genesisHash: gHash,
        dataDir: null,
        listen: { host: "127.0.0.1", port: attackerPort },
        peers: devnet.manifest.nodes.map((m) => m.p2p),
        maxInbound: 0,
        maxOutbound: 0,
        pingIntervalMs: 1_000,
        pongTimeoutMs: 30_000,
        metrics: createNodeMetrics(),
        localTip: () => ({ height: 10_000_000, hash: new Uint8Array(32).fill(7) }),
      });
      await s.start();
      return s;
    };
    const during = await heightsInWindow(devnet.nodes, () => {
      cycling = connect().then((s) => {
        attacker = s;
      });
      reconnects = setInterval(() => {
        cycling = cycling.then(async () => {
          await attacker?.stop();
          attacker = await connect();
        });
      }, 3_000);
    });
    clearInterval(reconnects);
    await cycling;

    assert.ok(baseline >= 3, `the network commits without the attack (${baseline})`);
    assert.ok(
      during >= Math.floor(0.9 * baseline) - 1,
      `${during} heights during the attack vs ${baseline} without`,
    );
    assert.deepEqual(await honestSessions(devnet.nodes, honestIds), before, "no honest disconnect");
    // The claims went unbacked and were charged, across reconnects.
    let charged = 0;
    for (const n of devnet.nodes) {
      charged += metricValue(await n.metrics(), "timenode_unbacked_height_claims_total");
    }
    assert.ok(charged >= 1, `unbacked claims charged: ${charged}`);
  } finally {
    clearInterval(reconnects);
    await cycling.catch(() => {});
    await (attacker as NetworkService | null)?.stop();
    await devnet.stop();
  }
});
