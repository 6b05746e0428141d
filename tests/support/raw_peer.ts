/**
 * A raw peer for tests and benches: one outbound connection to a real node that completes a
 * real handshake with the production `PeerState` (so it answers pings), then sends whatever
 * the caller scripts, such as records an attacker would relay.
 *
 * Must never: stand in for a real node where a real node can do the job.
 */
import { generateKeyPair, type KeyPair } from "../../crypto/ed25519.ts";
import { type Genesis, genesisHash } from "../../chain/genesis.ts";
import { encodeFrame, FrameDecoder } from "../../network/frame.ts";
import { type Hello, type Message, PROTOCOL_VERSION } from "../../network/messages.ts";
import { type PeerAction, PeerState } from "../../network/peer.ts";

export interface RawPeer {
  send(m: Message): Promise<void>;
  close(): Promise<void>;
}

/** The hello of a fresh peer at height 0 that listens nowhere. */
export function helloAsPeer(genesis: Genesis, key: KeyPair, userAgent: string): Hello {
  const gHash = genesisHash(genesis);
  return {
    kind: "hello",
    protocolVersion: PROTOCOL_VERSION,
    magic: genesis.magic,
    genesisHash: gHash,
    nodeId: key.publicKey,
    listenAddress: "",
    bestHeight: 0,
    bestHash: gHash,
    userAgent,
    nonce: crypto.getRandomValues(new Uint8Array(32)),
  };
}

/** One handshaken outbound connection to a node, speaking as a fresh peer key. */
export async function dialAsPeer(
  genesis: Genesis,
  address: string,
): Promise<RawPeer> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const key: KeyPair = generateKeyPair();
  const gHash = genesisHash(genesis);
  const peer = new PeerState({
    direction: "outbound",
    local: { key, magic: genesis.magic, genesisHash: gHash },
    hello: helloAsPeer(genesis, key, "raw-peer"),
    pingIntervalMs: 60_000,
    pongTimeoutMs: 600_000,
    localTip: () => ({ height: 0, hash: gHash }),
    nonce: () => 1n,
  });
  const send = async (m: Message) => {
    const bytes = encodeFrame(genesis.magic, m);
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
  };
  const run = async (actions: PeerAction[]) => {
    for (const a of actions) if (a.kind === "send") await send(a.message);
  };
  let established!: () => void;
  const ready = new Promise<void>((r) => established = r);
  const reader = (async () => {
    const decoder = new FrameDecoder(genesis.magic, { handshakeFrames: 2 });
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        for (const f of decoder.push(buf.subarray(0, n))) {
          const out: PeerAction[] = [];
          peer.onFrame(f.typeId, f.payload, performance.now(), out);
          await run(out);
          if (out.some((a) => a.kind === "ready")) established();
        }
      }
    } catch {
      // Closed by either side.
    }
  })();
  const start: PeerAction[] = [];
  peer.start(performance.now(), start);
  await run(start);
  await ready;
  return {
    send,
    close: async () => {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
      await reader;
    },
  };
}
