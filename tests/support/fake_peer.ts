/**
 * A scripted peer for integration tests: accepts connections from a real node, completes a
 * real handshake with the production `PeerState` (so it answers pings like any node), and then
 * answers `getBlocks` from an in-memory chain the way the test asks: honestly, never, or with
 * one corrupted block.
 *
 * Must never: be used as a stand-in for a real node where a real node can do the job; it
 * exists for behaviour no honest node has.
 */
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { toHex } from "../../encoding/binary.ts";
import type { Genesis } from "../../chain/genesis.ts";
import { genesisHash } from "../../chain/genesis.ts";
import { encodeFrame, FrameDecoder } from "../../network/frame.ts";
import { type Message, PROTOCOL_VERSION } from "../../network/messages.ts";
import { type PeerAction, PeerState } from "../../network/peer.ts";
import type { BuiltBlock } from "./chain_builder.ts";

export type FakePeerMode = "honest" | "silent" | "corrupt";

export interface FakePeerOptions {
  genesis: Genesis;
  blocks: readonly BuiltBlock[];
  mode: FakePeerMode;
  /** For "corrupt": turns the first block of every batch served into an invalid one. */
  corrupt?: (block: BuiltBlock) => BuiltBlock;
}

export class FakePeer {
  readonly nodeId: string;
  readonly #o: FakePeerOptions;
  readonly #listener: Deno.TcpListener;
  readonly #key = generateKeyPair();
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #acceptTask: Promise<void>;
  getBlocksReceived = 0;
  blocksServed = 0;
  closedByNode = 0;

  constructor(o: FakePeerOptions) {
    this.#o = o;
    this.nodeId = toHex(this.#key.publicKey);
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#acceptTask = this.#accept();
  }

  get address(): string {
    return `127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      const task = this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const g = this.#o.genesis;
    const gHash = genesisHash(g);
    const tipHeight = this.#o.blocks.length;
    const tipHash = tipHeight > 0 ? this.#o.blocks[tipHeight - 1].hash : gHash;
    const peer = new PeerState({
      direction: "inbound",
      local: { key: this.#key, magic: g.magic, genesisHash: gHash },
      hello: {
        kind: "hello",
        protocolVersion: PROTOCOL_VERSION,
        magic: g.magic,
        genesisHash: gHash,
        nodeId: this.#key.publicKey,
        listenAddress: this.address,
        bestHeight: tipHeight,
        bestHash: tipHash,
        userAgent: `fake-peer/${this.#o.mode}`,
        nonce: crypto.getRandomValues(new Uint8Array(32)),
      },
      pingIntervalMs: 60_000,
      pongTimeoutMs: 600_000,
      localTip: () => ({ height: tipHeight, hash: tipHash }),
      nonce: () => 1n,
    });
    const send = async (m: Message) => {
      const bytes = encodeFrame(g.magic, m);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    };
    const run = async (actions: PeerAction[]) => {
      for (const a of actions) {
        if (a.kind === "send") await send(a.message);
        else if (a.kind === "deliver" && a.message.kind === "getBlocks") {
          await this.#onGetBlocks(a.message, send);
        }
      }
    };
    const decoder = new FrameDecoder(g.magic, { handshakeFrames: 2 });
    const buf = new Uint8Array(65536);
    try {
      const start: PeerAction[] = [];
      peer.start(performance.now(), start);
      await run(start);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          this.closedByNode++;
          return;
        }
        for (const f of decoder.push(buf.subarray(0, n))) {
          const out: PeerAction[] = [];
          peer.onFrame(f.typeId, f.payload, performance.now(), out);
          await run(out);
        }
      }
    } catch {
      this.closedByNode++;
    } finally {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  }

  async #onGetBlocks(
    m: { fromHeight: number; count: number },
    send: (m: Message) => Promise<void>,
  ) {
    this.getBlocksReceived++;
    if (this.#o.mode === "silent") return;
    const out: Uint8Array[] = [];
    for (let h = m.fromHeight; h < m.fromHeight + m.count && h <= this.#o.blocks.length; h++) {
      const block = this.#o.blocks[h - 1];
      const corrupt = this.#o.mode === "corrupt" && h === m.fromHeight;
      out.push(corrupt ? this.#o.corrupt!(block).encoded : block.encoded);
    }
    this.blocksServed += out.length;
    await send({ kind: "blocks", fromHeight: m.fromHeight, blocks: out });
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#acceptTask;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // Closed already.
      }
    }
    await Promise.all(this.#tasks);
  }
}
