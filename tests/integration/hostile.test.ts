/**
 * Hostile raw sockets against a real node while two healthy nodes stay connected to it. Each
 * attack must end in a closed socket and a logged reason; the healthy connections must not
 * notice.
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../../encoding/binary.ts";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { builtinGenesis, genesisHash } from "../../chain/genesis.ts";
import { encodeFrame, encodeRawFrame } from "../../network/frame.ts";
import { type Hello, MessageId, PROTOCOL_VERSION } from "../../network/messages.ts";
import {
  freePort,
  metricValue,
  NodeProcess,
  stopAll,
  tempDir,
  withTimeout,
} from "../support/cluster.ts";

const GENESIS = builtinGenesis("devnet");
const MAGIC = GENESIS.magic;
const GENESIS_HASH = genesisHash(GENESIS);

function hello(over: Partial<Hello> = {}): Hello {
  return {
    kind: "hello",
    protocolVersion: PROTOCOL_VERSION,
    magic: MAGIC,
    genesisHash: GENESIS_HASH,
    nodeId: generateKeyPair().publicKey,
    listenAddress: "",
    bestHeight: 0,
    bestHash: new Uint8Array(32),
    userAgent: "hostile-test",
    nonce: crypto.getRandomValues(new Uint8Array(32)),
    ...over,
  };
}

/** Reads until the node closes the socket. */
async function readUntilClosed(conn: Deno.TcpConn, timeoutMs: number): Promise<void> {
  const buf = new Uint8Array(4096);
  await withTimeout(
    (async () => {
      while (true) {
        try {
          if ((await conn.read(buf)) === null) return;
        } catch {
          return; // reset by peer
        }
      }
    })(),
    timeoutMs,
    "the node to close a hostile socket",
  );
}

interface Attack {
  name: string;
  expectedReason: string;
  run(conn: Deno.TcpConn): Promise<void>;
}

const write = async (conn: Deno.TcpConn, bytes: Uint8Array) => {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
};

const attacks: Attack[] = [
  {
    name: "garbage bytes",
    expectedReason: "bad-magic",
    run: (c) => write(c, crypto.getRandomValues(new Uint8Array(200))),
  },
  {
    name: "wrong magic",
    expectedReason: "bad-magic",
    run: (c) => write(c, encodeFrame(0xdeadbeef, hello())),
  },
  {
    name: "3 GB length prefix",
    expectedReason: "oversized-frame",
    run: (c) =>
      write(
        c,
        new ByteWriter(14).u32(MAGIC).u16(MessageId.blocks).u32(3_000_000_000).u32(0).finish(),
      ),
  },
  {
    name: "truncated frame, then silence",
    expectedReason: "handshake-timeout",
    run: (c) => write(c, encodeFrame(MAGIC, hello()).subarray(0, 60)),
  },
  {
    name: "message before the handshake",
    expectedReason: "message-before-handshake",
    run: (c) =>
      write(
        c,
        encodeFrame(MAGIC, {
          kind: "ping",
          nonce: 1n,
          bestHeight: 0,
          bestHash: new Uint8Array(32),
        }),
      ),
  },
  {
    name: "unknown message type before the handshake",
    expectedReason: "message-before-handshake",
    run: (c) => write(c, encodeRawFrame(MAGIC, 999, new Uint8Array(4))),
  },
  {
    name: "wrong genesis",
    expectedReason: "wrong-genesis",
    run: (c) => write(c, encodeFrame(MAGIC, hello({ genesisHash: new Uint8Array(32).fill(7) }))),
  },
  {
    name: "old protocol version",
    expectedReason: "old-version",
    run: (c) => write(c, encodeFrame(MAGIC, hello({ protocolVersion: 0 }))),
  },
  {
    name: "slow trickled handshake",
    expectedReason: "handshake-timeout",
    run: async (c) => {
      const bytes = encodeFrame(MAGIC, hello());
      // One byte every 400 ms: the whole hello would take over a minute.
      for (const b of bytes) {
        try {
          await write(c, new Uint8Array([b]));
        } catch {
          return; // closed by the node, as it should
        }
        await new Promise((r) => setTimeout(r, 400));
      }
    },
  },
];

Deno.test("hostile raw sockets are closed with a logged reason; healthy peers see no disconnects", async () => {
  const ports: { p2p: number; rpc: number }[] = [];
  for (let i = 0; i < 3; i++) ports.push({ p2p: await freePort(), rpc: await freePort() });
  const addr = (i: number) => `127.0.0.1:${ports[i].p2p}`;
  const nodes = await Promise.all([0, 1, 2].map(async (i) =>
    new NodeProcess({
      name: `h${i}`,
      dataDir: await tempDir(`hostile${i}`),
      p2pPort: ports[i].p2p,
      rpcPort: ports[i].rpc,
      peers: [0, 1, 2].filter((j) => j !== i).map(addr),
      extra: ["--ping-interval", "0.2", "--pong-timeout", "3"],
    })
  ));
  const [target] = nodes;
  try {
    for (const n of nodes) n.start();
    for (const n of nodes) {
      await n.waitFor(
        async () => (await n.rpc<unknown[]>("getpeerinfo")).length === 2,
        "two healthy peers",
      );
    }
    const baseline = await Promise.all(
      nodes.map(async (n) => metricValue(await n.metrics(), "timenode_peer_disconnects_total")),
    );

    const results = await Promise.all(attacks.map(async (attack) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[0].p2p });
      const localPort = (conn.localAddr as Deno.NetAddr).port;
      const closed = readUntilClosed(conn, 20_000);
      const writer = attack.run(conn).catch(() => {});
      await closed;
      // Closing our end makes a still-trickling writer fail and stop.
      conn.close();
      await writer;
      const logged = await target.waitForLog(
        (e) =>
          e.message.startsWith("connection from") &&
          String(e.properties.address).endsWith(`:${localPort}`),
        `log line for ${attack.name}`,
      );
      return { attack, reason: logged.properties.reason };
    }));

    for (const r of results) {
      assert.equal(r.reason, r.attack.expectedReason, `${r.attack.name}: closed for ${r.reason}`);
    }
    // The node is still healthy and nobody else was disturbed.
    const after = await Promise.all(
      nodes.map(async (n) => metricValue(await n.metrics(), "timenode_peer_disconnects_total")),
    );
    assert.deepEqual(after, baseline, "healthy peers saw zero disconnects");
    for (const n of nodes) assert.equal((await n.rpc<unknown[]>("getpeerinfo")).length, 2);
  } finally {
    await stopAll(nodes);
    for (const n of nodes) await Deno.remove(n.opts.dataDir, { recursive: true }).catch(() => {});
  }
});
