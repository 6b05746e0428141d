/**
 * Nodes on hosts with real, distinct IPs (network namespaces): peers are keyed by IP alone,
 * whatever ports they use, simultaneous dials leave one connection, and a remote IP that keeps
 * sending garbage before its handshake is scored and banned.
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../../encoding/binary.ts";
import { builtinGenesis } from "../../chain/genesis.ts";
import { MessageId } from "../../network/messages.ts";
import { metricValue, NodeProcess, tempDir, withTimeout } from "../support/cluster.ts";
import { createTestHosts } from "../support/netns.ts";

const P2P = 24300;

interface PeerInfo {
  key: string;
  nodeId: string;
  address: string;
  sessionId: number;
}

Deno.test("distinct IPs: one connection per IP whatever the ports, and garbage from an IP gets it banned", async () => {
  const net = await createTestHosts(2);
  const [hostA, hostB] = net.hosts;
  const dirs: string[] = [];
  const mk = async (
    name: string,
    host: { netns: string; ip: string },
    port: number,
    peers: string[],
  ) => {
    const dataDir = await tempDir(name);
    dirs.push(dataDir);
    return new NodeProcess({
      name,
      dataDir,
      host: host.ip,
      netns: host.netns,
      p2pPort: port,
      rpcPort: port + 1,
      peers,
      // The test process calls the RPC from the bridge's address, not from loopback.
      extra: ["--ping-interval", "0.2", "--pong-timeout", "3", "--rpc-allow-ip", net.bridgeIp],
    });
  };
  // A and B dial each other at once; C shares B's IP (another process on the same machine).
  const a = await mk("a", hostA, P2P, [`${hostB.ip}:${P2P}`, `${hostB.ip}:${P2P + 10}`]);
  const b = await mk("b", hostB, P2P, [`${hostA.ip}:${P2P}`]);
  const c = await mk("c", hostB, P2P + 10, [`${hostA.ip}:${P2P}`]);
  const nodes = [a, b, c];
  try {
    for (const n of nodes) n.start();
    for (const n of nodes) {
      await n.waitForLog((e) => e.message.startsWith("rpc listening on"), "start");
    }

    // A holds exactly one connection for B's machine, keyed by the bare IP.
    const aPeers = await a.waitFor(async () => {
      const p = await a.rpc<PeerInfo[]>("getpeerinfo");
      return p.length === 1 && p[0].key === hostB.ip ? p : null;
    }, "one peer keyed by B's IP");
    const bPeers = await b.waitFor(async () => {
      const p = await b.rpc<PeerInfo[]>("getpeerinfo");
      return p.some((x) => x.key === hostA.ip) ? p : null;
    }, "B connected to A");
    assert.equal(bPeers.filter((p) => p.key === hostA.ip).length, 1);
    assert.equal(
      aPeers[0].address.split(":")[0] === hostB.ip || aPeers[0].address.startsWith(`[${hostB.ip}`),
      true,
    );

    // It stays that way: the one connection survives many ping cycles; no second one appears.
    const survivor = aPeers[0];
    await a.waitFor(
      async () => {
        const [p] = await a.rpc<(PeerInfo & { pongsReceived: number })[]>("getpeerinfo");
        return p && p.sessionId === survivor.sessionId && p.pongsReceived >= 30;
      },
      "30 ping cycles on the same connection",
      30_000,
    );
    const after = await a.rpc<PeerInfo[]>("getpeerinfo");
    assert.deepEqual(after.map((p) => `${p.key}#${p.sessionId}`), [
      `${hostB.ip}#${survivor.sessionId}`,
    ]);

    // Garbage from the test machine's IP (the bridge): scored before any handshake, then banned.
    const magic = builtinGenesis("devnet").magic;
    const oversized = new ByteWriter(14).u32(magic).u16(MessageId.blocks).u32(3_000_000_000).u32(0)
      .finish();
    // 20 points per attempt against a ban at 100 (decaying slowly): the fifth or sixth.
    let attempts = 0;
    const banned = async () =>
      (await a.rpc<{ key: string }[]>("listbanned")).some((x) => x.key === net.bridgeIp);
    while (attempts < 10 && !(await banned())) {
      attempts++;
      const conn = await Deno.connect({ hostname: hostA.ip, port: P2P });
      await conn.write(oversized);
      await withTimeout(drain(conn), 10_000, "the node to close a hostile socket");
      conn.close();
      // The score is added when the node handles the close; wait for its log line.
      const scored = () =>
        a.logsMatching((e) => e.message.startsWith(`peer ${net.bridgeIp} misbehaved`)).length;
      await a.waitFor(() => Promise.resolve(scored() >= attempts), "the attempt scored");
    }
    assert.ok(await banned(), "the hostile IP is banned");
    assert.ok(attempts >= 5 && attempts <= 6, `banned after ${attempts} attempts`);
    const refused = await Deno.connect({ hostname: hostA.ip, port: P2P });
    await withTimeout(drain(refused), 10_000, "a banned IP to be refused at once");
    refused.close();
    const m = await a.metrics();
    assert.ok(metricValue(m, "timenode_inbound_rejected_total", { reason: "banned" }) >= 1);
    // The healthy peer on another IP was not affected.
    assert.equal((await a.rpc<PeerInfo[]>("getpeerinfo"))[0]?.sessionId, survivor.sessionId);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await net.destroy();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

async function drain(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(1024);
  while (true) {
    try {
      if ((await conn.read(buf)) === null) return;
    } catch {
      return;
    }
  }
}
