/**
 * Network-side attacks against a real masternode network. The attacks on block production are
 * each measured in the same run against the rate without it: the attack's effect is gone, honest peers keep their connections, and
 * block production during the attack is at least 90% of the rate without it (heights per window;
 * one block of slack for where a window's edges fall).
 */
import assert from "node:assert/strict";
import { builtinGenesis, genesisHash, loadGenesisFile } from "../../chain/genesis.ts";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { createNodeMetrics } from "../../metrics/definitions.ts";
import { NetworkService } from "../../network/service.ts";
import { counterValue, freePort, metricValue, NodeProcess, tempDir } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { createTestHosts } from "../support/netns.ts";
import { signRegistration } from "../../state/records.ts";
import { type IdleSockets, openIdleSockets } from "../support/idle_sockets.ts";

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
    // The claims went unbacked and are charged (the attacker is still connected: its debt
    // from before its reconnects falls due while it is).
    const charged = async () => {
      let n = 0;
      for (const d of devnet.nodes) {
        n += metricValue(await d.metrics(), "timenode_unbacked_height_claims_total");
      }
      return n >= 1;
    };
    await devnet.nodes[0].waitFor(charged, "an unbacked claim charged", 60_000);
  } finally {
    clearInterval(reconnects);
    await cycling.catch(() => {});
    await (attacker as NetworkService | null)?.stop();
    await devnet.stop();
  }
});

Deno.test("idle sockets: four IPs of silent sockets cannot keep an honest newcomer out", async () => {
  // Four attacker hosts and one honest newcomer, each with its own IP; a follower node on the
  // bridge (its inbound is what the attack targets) follows a 3-masternode devnet over loopback.
  const net = await createTestHosts(5);
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const dirs: string[] = [];
  const attackers: IdleSockets[] = [];
  const port = 24_500 + Math.floor(Math.random() * 400);
  const mk = async (name: string, host: string, netns: string | undefined, peers: string[]) => {
    const dataDir = await tempDir(name);
    dirs.push(dataDir);
    return new NodeProcess({
      name,
      dataDir,
      host,
      netns,
      p2pPort: port,
      rpcPort: port + 1,
      genesis: devnet.manifest.genesis,
      peers,
      logLevel: "info",
      // Few inbound slots, so that before this defense the silent sockets filled them all. The
      // test process calls the RPC from the bridge's address, not from loopback.
      extra: ["--max-inbound", "8", "--rpc-allow-ip", net.bridgeIp],
    });
  };
  const target = await mk(
    "target",
    net.bridgeIp,
    undefined,
    devnet.manifest.nodes.map((n) => n.p2p),
  );
  const newcomer = await mk("newcomer", net.hosts[4].ip, net.hosts[4].netns, [
    `${net.bridgeIp}:${port}`,
  ]);
  try {
    target.start();
    await waitAllAtHeight([...devnet.nodes, target], 3, 60_000);
    const honestIds = new Set<string>();
    for (const n of devnet.nodes) {
      honestIds.add((await n.rpc<{ nodeId: string }>("getnetworkinfo")).nodeId);
    }
    const before = await honestSessions([target, ...devnet.nodes], honestIds);
    const watched = [...devnet.nodes, target];
    const baseline = await heightsInWindow(watched);

    let newcomerJoined = Promise.resolve();
    const during = await heightsInWindow(watched, () => {
      newcomerJoined = (async () => {
        for (let i = 0; i < 4; i++) {
          attackers.push(await openIdleSockets(net.hosts[i].netns, net.bridgeIp, port, 40));
        }
        // The honest newcomer arrives while every attacker socket is open.
        newcomer.start();
      })();
    });
    await newcomerJoined;

    assert.ok(baseline >= 3, `the network commits without the attack (${baseline})`);
    assert.ok(
      during >= Math.floor(0.9 * baseline) - 1,
      `${during} heights during the attack vs ${baseline} without`,
    );
    // The newcomer got an inbound slot while the attackers' IPs were still unbanned: the
    // handshake budget let it in, not the bans that end the attack later.
    await target.waitFor(
      async () =>
        (await target.rpc<PeerInfo[]>("getpeerinfo")).some((p) => p.key === net.hosts[4].ip),
      "the newcomer connected",
      60_000,
    );
    assert.equal(metricValue(await target.metrics(), "timenode_bans_total"), 0);
    const tip = await heightOf(target);
    await newcomer.waitFor(
      async () => (await heightOf(newcomer)) >= tip,
      "newcomer synced",
      60_000,
    );
    const peers = await target.rpc<PeerInfo[]>("getpeerinfo");
    assert.ok(peers.some((p) => p.key === net.hosts[4].ip), "the newcomer is a peer of the target");
    assert.ok(!peers.some((p) => net.hosts.slice(0, 4).some((h) => h.ip === p.key)));
    const m = await target.metrics();
    assert.ok(metricValue(m, "timenode_handshake_budget_rejected_total") > 0);
    assert.deepEqual(
      await honestSessions([target, ...devnet.nodes], honestIds),
      before,
      "no honest disconnect",
    );
  } finally {
    for (const a of attackers) await a.stop();
    await newcomer.stop();
    await target.stop();
    await devnet.stop();
    await net.destroy();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("address flood: a peer gossiping addresses of one /16 gets at most 8 into the book", async () => {
  // The flooding peer is a real node (its own IP, a network namespace) whose address book was
  // filled on disk with 1,000 addresses of 203.0.0.0/16; it answers the target's getAddresses
  // with 250 of them (the most one answer holds; without the bucket caps all 250 were kept). The target dials it (--peer) and follows a 3-masternode devnet.
  const net = await createTestHosts(1);
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const dirs: string[] = [];
  const port = 24_500 + Math.floor(Math.random() * 400);
  const now = Date.now();
  const floodDir = await tempDir("flood");
  dirs.push(floodDir);
  const entries = Array.from({ length: 1_000 }, (_, i) => ({
    address: `203.0.${i >> 8}.${(i & 255) || 1}:24100`,
    lastSeen: now,
    lastTried: 0,
    lastSuccess: 0,
    failures: 0,
  }));
  await Deno.writeTextFile(`${floodDir}/peers.json`, JSON.stringify({ version: 1, entries }));
  const flooder = new NodeProcess({
    name: "flooder",
    dataDir: floodDir,
    host: net.hosts[0].ip,
    netns: net.hosts[0].netns,
    p2pPort: port,
    rpcPort: port + 1,
    genesis: devnet.manifest.genesis,
    logLevel: "info",
    // The test process calls the RPC from the bridge's address, not from loopback.
    extra: ["--rpc-allow-ip", net.bridgeIp],
  });
  const targetDir = await tempDir("target");
  dirs.push(targetDir);
  const target = new NodeProcess({
    name: "target",
    dataDir: targetDir,
    host: net.bridgeIp,
    p2pPort: port,
    rpcPort: port + 1,
    genesis: devnet.manifest.genesis,
    peers: [...devnet.manifest.nodes.map((n) => n.p2p), `${net.hosts[0].ip}:${port}`],
    logLevel: "info",
    extra: ["--rpc-allow-ip", net.bridgeIp],
  });
  try {
    flooder.start();
    await flooder.waitFor(
      async () =>
        (await flooder.rpc<{ knownAddresses: number }>("getnetworkinfo")).knownAddresses >= 900,
      "the flooder loaded its book",
      60_000,
    );
    target.start();
    await waitAllAtHeight([...devnet.nodes, target], 3, 60_000);
    // The target asked the flooder (an outbound connection) and got its answer.
    await target.waitFor(
      async () =>
        (await target.rpc<PeerInfo[]>("getpeerinfo")).some((p) => p.key === net.hosts[0].ip) &&
        metricValue(await target.metrics(), "timenode_messages_received_total", {
            kind: "addresses",
          }) >= 1,
      "the flooder's addresses arrived",
      60_000,
    );
    const known = (await target.rpc<{ knownAddresses: number }>("getnetworkinfo")).knownAddresses;
    // At most 8 of the flood, plus the handful of real peers' announced addresses.
    assert.ok(known <= 8 + devnet.nodes.length + 1, `${known} addresses known`);
    assert.ok(known >= 1);
  } finally {
    await target.stop();
    await flooder.stop();
    await devnet.stop();
    await net.destroy();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("ban trap: records valid at an earlier height never get their relayer banned", async () => {
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const relayerPort = freePort();
  let relayer: NetworkService | null = null;
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    const gHash = genesisHash(genesis);
    const honestIds = new Set<string>();
    for (const n of devnet.nodes) {
      honestIds.add((await n.rpc<{ nodeId: string }>("getnetworkinfo")).nodeId);
    }
    // A lagging node's view: registrations that were valid until height 1 (signed correctly).
    relayer = new NetworkService({
      key: generateKeyPair(),
      magic: genesis.magic,
      genesisHash: gHash,
      dataDir: null,
      listen: { host: "127.0.0.1", port: relayerPort },
      peers: [devnet.manifest.nodes[0].p2p],
      maxInbound: 0,
      maxOutbound: 0,
      pingIntervalMs: 1_000,
      pongTimeoutMs: 30_000,
      metrics: createNodeMetrics(),
      localTip: () => ({ height: 1, hash: gHash }),
    });
    await relayer.start();
    const r = relayer;
    const target = devnet.nodes[0];
    const peer = await target.waitFor(
      () => Promise.resolve(r.peers()[0]),
      "relayer connected",
      30_000,
    );
    const before = await honestSessions(devnet.nodes, honestIds);
    const baseline = await heightsInWindow(devnet.nodes);
    // Sixty stale records: at the old 2 points each, a ban; now none is the relayer's fault.
    const during = await heightsInWindow(devnet.nodes, () => {
      for (let i = 0; i < 60; i++) {
        const record = signRegistration(generateKeyPair(), {
          genesisHash: gHash,
          nonce: 0,
          expiresAt: 1,
          rewardAddress: `stale-${i}`,
          address: `203.0.113.${i + 1}:24100`,
        });
        r.send(peer.key, { kind: "record", record });
      }
    });
    assert.ok(
      during >= Math.floor(0.9 * baseline) - 1,
      `${during} heights during the attack vs ${baseline} without`,
    );
    const m = await target.metrics();
    assert.equal(metricValue(m, "timenode_records_not_applicable_total"), 60);
    assert.equal(counterValue(m, "timenode_misbehavior_total", { reason: "invalid-record" }), 0);
    assert.equal(r.peers().length, 1, "the relayer is still connected");
    assert.deepEqual(await honestSessions(devnet.nodes, honestIds), before, "no honest disconnect");
  } finally {
    await relayer?.stop();
    await devnet.stop();
  }
});
