/**
 * Network-side attacks against a real masternode network. The attacks on block production are
 * each measured in the same run against the rate without it: the attack's effect is gone, honest peers keep their connections, and
 * block production during the attack is at least 90% of the rate without it (heights per window;
 * one block of slack for where a window's edges fall).
 */
import assert from "node:assert/strict";
import { loadGenesisFile } from "../../chain/genesis.ts";
import { counterValue, metricValue, NodeProcess, tempDir } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { followerMaker } from "../support/follower.ts";
import { createTestHosts } from "../support/netns.ts";
import { type IdleSockets, openIdleSockets } from "../support/idle_sockets.ts";
import { banTrap, fakeHeights } from "../support/attacks.ts";
import {
  heightsInWindow as heightsIn,
  holdsRate,
  honestSessions,
  nodeIds,
} from "../support/block_rate.ts";

/** Each window is this many block intervals: long enough that one block is ~10% of it. */
const WINDOW_MS = 10_000;
const BLOCK_INTERVAL_MS = 1_000;

interface PeerInfo {
  key: string;
  nodeId: string;
  sessionId: number;
}

const heightsInWindow = (nodes: NodeProcess[], during?: () => void) =>
  heightsIn(nodes, WINDOW_MS, during);

Deno.test("fake heights: a peer claiming height 10,000,000 and reconnecting never slows consensus", async () => {
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  // The attacker: a real peer (valid handshake, stable key) that claims a huge tip, never
  // answers getBlocks, and reconnects every 3 s, before any request can time out.
  const attack = fakeHeights({
    genesis: await loadGenesisFile(devnet.manifest.genesis),
    address: devnet.manifest.nodes[0].p2p,
    tip: () => heightOf(devnet.nodes[0]),
  });
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const honestIds = await nodeIds(devnet.nodes);
    const before = await honestSessions(devnet.nodes, honestIds);
    const baseline = await heightsInWindow(devnet.nodes);
    let started = Promise.resolve();
    const during = await heightsInWindow(devnet.nodes, () => started = attack.start());
    await started;

    assert.ok(baseline >= 3, `the network commits without the attack (${baseline})`);
    assert.ok(holdsRate(during, baseline), `${during} heights during vs ${baseline} without`);
    assert.deepEqual(await honestSessions(devnet.nodes, honestIds), before, "no honest disconnect");
    // The claims went unbacked and are charged (the attacker stays connected now: its debt
    // from before its reconnects falls due while it is).
    await attack.holdStill();
    const charged = async () =>
      metricValue(await devnet.nodes[0].metrics(), "timenode_unbacked_height_claims_total") >= 1;
    await devnet.nodes[0].waitFor(charged, "an unbacked claim charged", 60_000);
  } finally {
    await attack.stop();
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
  const follower = followerMaker(devnet.manifest.genesis, port, dirs);
  const mk = (name: string, host: string, netns: string | undefined, peers: string[]) =>
    follower(name, {
      host,
      netns,
      peers,
      // Few inbound slots, so that before this defense the silent sockets filled them all. The
      // test process calls the RPC from the bridge's address, not from loopback.
      extra: ["--max-inbound", "8", "--rpc-allow-ip", net.bridgeIp],
    });
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
    const honestIds = await nodeIds(devnet.nodes);
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
    assert.ok(holdsRate(during, baseline), `${during} heights during vs ${baseline} without`);
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
    // The rest are counted, and the answer is named in one warning.
    const refused = counterValue(await target.metrics(), "timenode_addresses_refused_total", {
      reason: "limited",
    });
    assert.ok(refused >= 200, `${refused} addresses refused as over the caps`);
    assert.equal(
      target.logsMatching((e) => e.message.includes("addresses") && e.message.includes("not kept"))
        .length,
      1,
    );
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
  const target = devnet.nodes[0];
  // A lagging node's view: sixty registrations that were valid until height 1 (signed
  // correctly). At the old 2 points each, a ban; now none is the relayer's fault.
  const attack = banTrap({
    genesis: await loadGenesisFile(devnet.manifest.genesis),
    address: devnet.manifest.nodes[0].p2p,
    tip: () => heightOf(target),
  }, 60);
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const honestIds = await nodeIds(devnet.nodes);
    const before = await honestSessions(devnet.nodes, honestIds);
    const baseline = await heightsInWindow(devnet.nodes);
    let started = Promise.resolve();
    const during = await heightsInWindow(devnet.nodes, () => started = attack.start());
    await started;
    assert.ok(holdsRate(during, baseline), `${during} heights during vs ${baseline} without`);
    const m = await target.metrics();
    assert.equal(metricValue(m, "timenode_records_not_applicable_total"), 60);
    assert.equal(counterValue(m, "timenode_misbehavior_total", { reason: "invalid-record" }), 0);
    assert.equal(attack.peers, 1, "the relayer is still connected");
    assert.deepEqual(await honestSessions(devnet.nodes, honestIds), before, "no honest disconnect");
  } finally {
    await attack.stop();
    await devnet.stop();
  }
});
