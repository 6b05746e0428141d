/**
 * Real node processes over loopback TCP: connection persistence, one connection per peer,
 * ping/pong in both directions, failure detection and recovery.
 */
import assert from "node:assert/strict";
import {
  counterValue,
  freePort,
  metricValue,
  NodeProcess,
  stopAll,
  tempDir,
} from "../support/cluster.ts";

const FAST_PING = ["--ping-interval", "0.1", "--pong-timeout", "2"];
const PING_CYCLES = 100;

interface PeerInfo {
  key: string;
  nodeId: string;
  direction: string;
  sessionId: number;
  pingsSent: number;
  pongsReceived: number;
  rttMs: number | null;
}

async function makeNodes(n: number, extra: string[] = FAST_PING): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = [];
  const ports: { p2p: number; rpc: number }[] = [];
  for (let i = 0; i < n; i++) ports.push({ p2p: await freePort(), rpc: await freePort() });
  const addrs = ports.map((p) => `127.0.0.1:${p.p2p}`);
  for (let i = 0; i < n; i++) {
    nodes.push(
      new NodeProcess({
        name: `n${i}`,
        dataDir: await tempDir(`mesh${i}`),
        p2pPort: ports[i].p2p,
        rpcPort: ports[i].rpc,
        peers: addrs.filter((_, j) => j !== i),
        extra,
      }),
    );
  }
  return nodes;
}

async function cleanup(nodes: NodeProcess[]): Promise<void> {
  await stopAll(nodes);
  for (const n of nodes) await Deno.remove(n.opts.dataDir, { recursive: true }).catch(() => {});
}

/**
 * Waits until every node has exactly the other nodes as peers, one connection each, and then until
 * one pass over all nodes finds every one of them quiet: no connection handshaking and no dial in
 * flight anywhere. Only then can no late duplicate replace a connection, so the snapshot taken in
 * that pass is the mesh the stability checks compare against.
 */
async function waitForFullMesh(nodes: NodeProcess[]): Promise<Map<string, PeerInfo[]>> {
  const fullMesh = async (node: NodeProcess): Promise<PeerInfo[] | null> => {
    const expected = nodes.filter((o) => o !== node).map((o) => o.p2p).sort();
    const peers = await node.rpc<PeerInfo[]>("getpeerinfo");
    const keys = peers.map((p) => p.key).sort();
    const info = await node.rpc<{ handshaking: number; dialing: number }>("getnetworkinfo");
    return JSON.stringify(keys) === JSON.stringify(expected) && info.handshaking === 0 &&
        info.dialing === 0
      ? peers
      : null;
  };
  await Promise.all(nodes.map((node) => node.waitFor(() => fullMesh(node), "a full mesh")));
  return await nodes[0].waitFor(async () => {
    const result = new Map<string, PeerInfo[]>();
    for (const node of nodes) {
      const peers = await fullMesh(node);
      if (peers === null) return null;
      result.set(node.name, peers);
    }
    return result;
  }, `a full, quiet mesh of ${nodes.length} nodes`);
}

async function disconnects(node: NodeProcess): Promise<number> {
  return metricValue(await node.metrics(), "timenode_peer_disconnects_total");
}

/**
 * Disconnects since the process started, judged right after the mesh formed: the only ones a
 * correct node may have are lost races of the one-connection rule (both ends dialed at once; the
 * loser closes with `duplicate`, or the other end sees its `peer-goodbye`), and at most one per
 * peer. A survivor rule that the two ends apply differently closes both connections and redials,
 * again and again, and fails here even if a mesh forms in the end.
 */
async function assertNoChurnSinceStart(node: NodeProcess, peers: number): Promise<number> {
  const m = await node.metrics();
  const total = metricValue(m, "timenode_peer_disconnects_total");
  const races = counterValue(m, "timenode_peer_disconnects_total", { reason: "duplicate" }) +
    counterValue(m, "timenode_peer_disconnects_total", { reason: "peer-goodbye" });
  assert.equal(total - races, 0, `${node.name}: only lost dial races since start`);
  assert.ok(races <= peers, `${node.name}: ${races} lost dial races for ${peers} peers`);
  return total;
}

Deno.test("two nodes dialing each other at once keep exactly one connection for 100+ ping cycles", async () => {
  const nodes = await makeNodes(2);
  try {
    for (const n of nodes) n.start();
    const mesh = await waitForFullMesh(nodes);
    const [a, b] = nodes;
    const aPeer = mesh.get("n0")![0];
    const bPeer = mesh.get("n1")![0];
    // Both ends agree on which TCP connection survived: one side dialed it, the other accepted.
    assert.notEqual(aPeer.direction, bPeer.direction);
    const baseline = [await assertNoChurnSinceStart(a, 1), await assertNoChurnSinceStart(b, 1)];

    await Promise.all(nodes.map((node) =>
      node.waitFor(
        async () => {
          const [p] = await node.rpc<PeerInfo[]>("getpeerinfo");
          return p && p.pongsReceived >= PING_CYCLES;
        },
        `${PING_CYCLES} pongs`,
        60_000,
      )
    ));

    for (const [node, initial] of [[a, aPeer], [b, bPeer]] as const) {
      const peers = await node.rpc<PeerInfo[]>("getpeerinfo");
      assert.equal(peers.length, 1, `${node.name} has one peer`);
      assert.equal(peers[0].sessionId, initial.sessionId, `${node.name} kept the same connection`);
      // One ping may be in flight; every earlier one got its pong, in both directions.
      assert.ok(peers[0].pingsSent - peers[0].pongsReceived <= 1, `${node.name} pings answered`);
      assert.ok(peers[0].rttMs !== null && peers[0].rttMs < 1000);
      const m = await node.metrics();
      assert.equal(metricValue(m, "timenode_pong_timeouts_total"), 0);
      assert.ok(metricValue(m, "timenode_pongs_received_total") >= PING_CYCLES);
    }
    assert.deepEqual(
      [await disconnects(a), await disconnects(b)],
      baseline,
      "zero disconnects after the mesh formed",
    );
  } finally {
    await cleanup(nodes);
  }
});

Deno.test("six nodes form a full mesh, one connection per key, stable for 100 ping cycles", async () => {
  const nodes = await makeNodes(6);
  try {
    for (const n of nodes) n.start();
    const mesh = await waitForFullMesh(nodes);
    const baseline = await Promise.all(nodes.map((n) => assertNoChurnSinceStart(n, 5)));
    for (const [name, peers] of mesh) {
      assert.equal(peers.length, 5, `${name} has 5 peers`);
      assert.equal(new Set(peers.map((p) => p.key)).size, 5, `${name}: one connection per key`);
      assert.equal(new Set(peers.map((p) => p.nodeId)).size, 5, `${name}: five distinct nodes`);
    }
    await Promise.all(nodes.map((node) =>
      node.waitFor(
        async () => {
          const peers = await node.rpc<PeerInfo[]>("getpeerinfo");
          return peers.length === 5 && peers.every((p) => p.pongsReceived >= PING_CYCLES);
        },
        `${PING_CYCLES} pongs from every peer`,
        90_000,
      )
    ));
    for (const node of nodes) {
      const peers = await node.rpc<PeerInfo[]>("getpeerinfo");
      const before = mesh.get(node.name)!;
      assert.deepEqual(
        peers.map((p) => `${p.key}#${p.sessionId}`).sort(),
        before.map((p) => `${p.key}#${p.sessionId}`).sort(),
        `${node.name} kept every connection`,
      );
      for (const p of peers) assert.ok(p.pingsSent - p.pongsReceived <= 1);
    }
    assert.deepEqual(await Promise.all(nodes.map(disconnects)), baseline, "zero disconnects");
  } finally {
    await cleanup(nodes);
  }
});

Deno.test("a frozen peer is dropped by the pong timeout; a killed one is redialed after restart", async () => {
  const nodes = await makeNodes(3, ["--ping-interval", "0.2", "--pong-timeout", "1.5"]);
  const [a, b, c] = nodes;
  try {
    for (const n of nodes) n.start();
    await waitForFullMesh(nodes);

    // Frozen: the socket stays open but nothing answers. Only the pong timeout can tell.
    c.signal("SIGSTOP");
    for (const node of [a, b]) {
      await node.waitForLog(
        (e) =>
          e.message.startsWith("peer disconnected") && e.properties.key === c.p2p &&
          e.properties.reason === "pong-timeout",
        `${c.name} dropped by pong timeout`,
      );
    }
    c.signal("SIGCONT");
    await waitForFullMesh(nodes);

    // Killed: restarted on the same data dir and port, the others redial it.
    await c.kill9();
    for (const node of [a, b]) {
      await node.waitFor(async () => {
        const peers = await node.rpc<PeerInfo[]>("getpeerinfo");
        return !peers.some((p) => p.key === c.p2p);
      }, `${c.name} gone`);
    }
    c.start();
    const mesh = await waitForFullMesh(nodes);
    assert.equal(mesh.get(c.name)!.length, 2);
    for (const node of [a, b]) {
      assert.ok(metricValue(await node.metrics(), "timenode_pong_timeouts_total") >= 1);
    }
  } finally {
    c.signal("SIGCONT");
    await cleanup(nodes);
  }
});

Deno.test("SIGTERM shuts down cleanly with exit 0 and tells peers goodbye", async () => {
  const nodes = await makeNodes(2);
  const [a, b] = nodes;
  try {
    for (const n of nodes) n.start();
    await waitForFullMesh(nodes);
    assert.equal(await b.stop(), 0);
    await b.waitForLog((e) => e.message.startsWith("stopped cleanly"), "clean stop");
    await a.waitForLog(
      (e) => e.message.startsWith("peer disconnected") && e.properties.reason === "peer-goodbye",
      "goodbye seen by the peer",
    );
  } finally {
    await cleanup(nodes);
  }
});

Deno.test("a second process on the same data dir refuses to start (one sign guard, one writer)", async () => {
  const [first] = await makeNodes(1, []);
  const second = new NodeProcess({
    ...first.opts,
    name: "second",
    p2pPort: await freePort(),
    rpcPort: await freePort(),
  });
  try {
    first.start();
    await first.waitForLog((e) => e.message.startsWith("rpc listening on"), "first node up");
    second.start();
    assert.equal(await second.exited(), 1);
    assert.ok(second.logs.some((e) => e.message.includes("in use by another timenode process")));
    // The first node never noticed.
    assert.equal(await first.rpc<number>("getblockcount"), 0);
  } finally {
    await cleanup([first, second]);
  }
});

interface PersistentPeerState {
  address: string;
  connected: boolean;
  lastError: string | null;
  failures: number;
  nextRetryInSeconds: number | null;
}

Deno.test("a --peer with nothing listening is warned about, shown in getnetworkinfo, and logged when it is back", async () => {
  // b's port is chosen but b is not started: a's --peer to it finds nothing listening.
  const [a, b] = await makeNodes(2, []);
  try {
    a.start();
    const warned = await a.waitForLog(
      (e) => e.message.startsWith("cannot reach peer") && e.properties.address === b.p2p,
      "the first failure of a --peer logged",
    );
    assert.equal(warned.level, "WARN");
    assert.equal(warned.properties.reason, "refused");
    assert.equal(warned.properties.what, "connection refused");
    assert.equal(warned.properties.failures, 1);
    const failing = await a.waitFor(async () => {
      const info = await a.rpc<{ persistentPeers: PersistentPeerState[] }>("getnetworkinfo");
      const s = info.persistentPeers.find((p) => p.address === b.p2p);
      return s && s.failures >= 2 ? s : null;
    }, "getnetworkinfo shows the failures");
    assert.equal(failing.connected, false);
    assert.match(failing.lastError ?? "", /^connection refused: /);
    assert.ok(
      failing.nextRetryInSeconds !== null && failing.nextRetryInSeconds >= 0 &&
        failing.nextRetryInSeconds <= 60,
      JSON.stringify(failing),
    );
    // More failures follow within the minute, but no second warning.
    assert.equal(
      a.logsMatching((e) => e.message.startsWith("cannot reach peer")).length,
      1,
      "one warning per minute at most",
    );

    b.start();
    const back = await a.waitForLog(
      (e) => e.message.includes("is reachable again") && e.properties.address === b.p2p,
      "the --peer's return logged",
    );
    assert.equal(back.level, "INFO");
    assert.ok(Number(back.properties.failures) >= 2);
    const info = await a.rpc<{ persistentPeers: PersistentPeerState[] }>("getnetworkinfo");
    assert.deepEqual(info.persistentPeers, [{
      address: b.p2p,
      connected: true,
      lastError: null,
      failures: 0,
      nextRetryInSeconds: null,
    }]);
  } finally {
    await cleanup([a, b]);
  }
});
