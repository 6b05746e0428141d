/**
 * Load generator for the connection benchmark: one OS process that opens `--count` TCP
 * connections to a real node and completes a real handshake on each, as that many distinct
 * peers would. Every connection has a fresh Ed25519 key and announces its own loopback listen
 * address (`127.0.0.1:<base-port + i>`), so the node keys each one separately. It answers the
 * node's hello with a valid helloAck and every ping with a pong, so nothing times out while
 * the connections are held. Spawned by bench/network.ts; reports JSON lines on stdout (see
 * net_peer.ts) and closes everything and exits when its stdin closes.
 *
 * A connection counts as handshaken when the node's first ping arrives: the node pings only
 * once it has verified our helloAck and admitted the peer, so that ping is the node's own
 * proof that the handshake finished on its side.
 *
 * Owns: the client side of the handshake for many connections at once.
 * Must never: run inside a test, or talk to anything but the one target node.
 */
import { parseArgs } from "node:util";
import { builtinGenesis, genesisHash } from "../chain/genesis.ts";
import { generateKeyPair, type KeyPair, signBytes } from "../crypto/ed25519.ts";
import { encodeFrame, FrameDecoder } from "../network/frame.ts";
import { handshakeSignBytes } from "../network/handshake.ts";
import {
  decodePayload,
  type Hello,
  kindOf,
  type Message,
  PROTOCOL_VERSION,
} from "../network/messages.ts";
import { emit, stdinClosed } from "./net_peer.ts";

/**
 * Handshakes in flight at once. Enough to keep the node's accept loop and CPU saturated; far
 * fewer than all of them at once, which would only measure the listen backlog.
 */
const DEFAULT_CONCURRENCY = 200;
/** The node gives a handshake 10 s (HANDSHAKE_TIMEOUT_MS); waiting longer proves nothing. */
const HANDSHAKE_DEADLINE_MS = 15_000;
const READ_BUFFER_BYTES = 4 * 1024;
const USER_AGENT = "timenode-bench-loadgen/0.1";

const genesis = builtinGenesis("devnet");
const gHash = genesisHash(genesis);

class LoadConnection {
  readonly #index: number;
  readonly #key: KeyPair;
  readonly #listenAddress: string;
  #conn: Deno.TcpConn | null = null;
  #writing: Promise<void> = Promise.resolve();
  #closing = false;
  #handshaken = false;
  #resolveHandshake!: () => void;
  #rejectHandshake!: (e: Error) => void;
  readonly handshake: Promise<void>;
  /** Called when the node closes a connection that had completed its handshake. */
  onDropped: (index: number, reason: string) => void = () => {};
  lastGoodbye = "";

  constructor(index: number, key: KeyPair, listenAddress: string) {
    this.#index = index;
    this.#key = key;
    this.#listenAddress = listenAddress;
    this.handshake = new Promise((resolve, reject) => {
      this.#resolveHandshake = resolve;
      this.#rejectHandshake = reject;
    });
  }

  async open(hostname: string, port: number): Promise<void> {
    const conn = await Deno.connect({ hostname, port, transport: "tcp" });
    conn.setNoDelay(true);
    this.#conn = conn;
    const hello: Hello = {
      kind: "hello",
      protocolVersion: PROTOCOL_VERSION,
      magic: genesis.magic,
      genesisHash: gHash,
      nodeId: this.#key.publicKey,
      listenAddress: this.#listenAddress,
      bestHeight: 0,
      bestHash: gHash,
      userAgent: USER_AGENT,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
    };
    this.#send(hello);
    this.#readLoop(conn);
  }

  #send(m: Message): void {
    const conn = this.#conn;
    if (!conn || this.#closing) return;
    const frame = encodeFrame(genesis.magic, m);
    // Writes are chained so two frames can never interleave on the socket.
    this.#writing = this.#writing.then(async () => {
      let off = 0;
      while (off < frame.length) off += await conn.write(frame.subarray(off));
    }).catch(() => {
      // The read loop sees the same failure and reports it.
    });
  }

  async #readLoop(conn: Deno.TcpConn): Promise<void> {
    const decoder = new FrameDecoder(genesis.magic, { handshakeFrames: 2 });
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    let reason = "eof";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        for (const f of decoder.push(buf.subarray(0, n))) {
          const kind = kindOf(f.typeId);
          if (kind) this.#onMessage(decodePayload(kind, f.payload));
        }
      }
    } catch (e) {
      reason = (e as Error).message;
    }
    if (this.#closing) return;
    this.close();
    if (this.lastGoodbye) reason = `goodbye: ${this.lastGoodbye}`;
    if (this.#handshaken) this.onDropped(this.#index, reason);
    else this.#rejectHandshake(new Error(`connection ${this.#index} closed: ${reason}`));
  }

  #onMessage(m: Message): void {
    switch (m.kind) {
      case "hello":
        this.#send({
          kind: "helloAck",
          signature: signBytes(
            this.#key,
            handshakeSignBytes(gHash, m.nonce, this.#key.publicKey),
          ),
        });
        return;
      case "ping":
        this.#send({ kind: "pong", nonce: m.nonce, bestHeight: 0, bestHash: gHash });
        if (!this.#handshaken) {
          this.#handshaken = true;
          this.#resolveHandshake();
        }
        return;
      case "goodbye":
        this.lastGoodbye = m.reason;
        return;
      default:
        // helloAck (the node's proof is not what is measured), addresses and the rest.
        return;
    }
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    try {
      this.#conn?.close();
    } catch {
      // Already closed by the node.
    }
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      target: { type: "string" },
      count: { type: "string" },
      concurrency: { type: "string" },
      "base-port": { type: "string" },
    },
  });
  const [hostname, portText] = (values.target ?? "").split(":");
  const port = Number(portText);
  const count = Number(values.count ?? 1000);
  const concurrency = Number(values.concurrency ?? DEFAULT_CONCURRENCY);
  const basePort = Number(values["base-port"] ?? 20_000);
  if (!hostname || !Number.isInteger(port) || !Number.isInteger(count) || count < 1) {
    throw new Error("usage: load_gen.ts --target HOST:PORT --count N [--concurrency W]");
  }
  if (basePort + count > 65_535) throw new Error("--base-port + --count exceeds 65535");

  // Keys are made before the clock starts: the node's handshake rate is what is measured.
  const connections: LoadConnection[] = [];
  for (let i = 0; i < count; i++) {
    connections.push(new LoadConnection(i, generateKeyPair(), `127.0.0.1:${basePort + i}`));
  }
  let dropped = 0;
  for (const c of connections) {
    c.onDropped = (index, reason) => {
      dropped++;
      emit({ event: "dropped", index, reason, dropped });
    };
  }
  emit({ event: "keys-ready", count });

  const failures: string[] = [];
  let next = 0;
  const startedAt = performance.now();
  let lastAt = startedAt;
  const worker = async () => {
    while (next < count) {
      const c = connections[next++];
      try {
        await c.open(hostname, port);
        await withDeadline(c.handshake, HANDSHAKE_DEADLINE_MS, "handshake");
        lastAt = performance.now();
      } catch (e) {
        failures.push((e as Error).message);
        c.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  emit({
    event: "connected",
    count: count - failures.length,
    failed: failures.length,
    firstFailure: failures[0] ?? null,
    elapsedMs: lastAt - startedAt,
    concurrency,
  });

  await stdinClosed();
  for (const c of connections) c.close();
  emit({ event: "closed", dropped });
}

if (import.meta.main) {
  try {
    await main();
    Deno.exit(0);
  } catch (e) {
    emit({ event: "error", message: e instanceof Error ? e.message : String(e) });
    Deno.exit(1);
  }
}
