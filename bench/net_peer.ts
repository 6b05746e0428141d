/**
 * A benchmark peer: one OS process that runs a real `NetworkService` (or, for scale, a raw TCP
 * echo) in one role, spawned by bench/network.ts. It reports on stdout as JSON lines, one event
 * per line, and exits when its stdin closes, so a parent that dies never leaves it behind.
 *
 * Roles:
 *  - `receiver`: listens, counts `blockAnnounce` and `vote` messages delivered to its
 *    `onMessage` subscribers, and after every `--count` messages reports the time from the
 *    first to the last of them and acks the round back to the sender.
 *  - `sender`: dials `--peer` as a persistent peer and sends `--count` messages per round
 *    through `NetworkApi.send`, pacing itself on the peer's send queue (overflowing the queue
 *    would disconnect the peer, by design).
 *  - `ping`: runs the node's own ping loop at `--interval-ms` and reports raw RTT samples taken
 *    from `metrics.pingRtt.observe`, when each was taken, and the event loop's delay meanwhile.
 *  - `echo-server` / `echo-client`: a raw Deno TCP round trip, the floor any RTT sits on.
 *
 * Owns: the bench side of each role and the stdout event protocol (also used by load_gen.ts).
 * Must never: change how the network service behaves; it only drives the public `NetworkApi`.
 */
import { parseArgs } from "node:util";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { builtinGenesis, genesisHash } from "../chain/genesis.ts";
import { VoteType } from "../chain/block.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { NetworkService } from "../network/service.ts";
import type { Message } from "../network/messages.ts";
import { createNodeMetrics } from "../metrics/definitions.ts";
import { setupLogging } from "../node/log.ts";

/**
 * Queue level above which the sender yields to let the writer drain. Far below the 16 MiB bound
 * (which disconnects), and large enough that the writer always has full 256 KiB batches.
 */
const DEFAULT_HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** Messages sent between two looks at the queue: a snapshot per message would cost more. */
const QUEUE_CHECK_EVERY = 1024;
/** Pongs are overdue only when something is badly wrong; the bench must not drop peers. */
const BENCH_PONG_TIMEOUT_MS = 10_000;
/** The finest the event-loop delay monitor samples at. */
const LOOP_DELAY_RESOLUTION_MS = 1;
/** The throughput peers need no pings in the way: one a minute keeps the link honest. */
const QUIET_PING_INTERVAL_MS = 60_000;

export type BenchKind = "blockAnnounce" | "vote";
export const BENCH_KINDS: readonly BenchKind[] = ["blockAnnounce", "vote"];

// ---- the event protocol shared with load_gen.ts and read by network.ts ---------------------

const stdoutEncoder = new TextEncoder();

/** Writes one event as a JSON line on stdout; synchronous so events keep their order. */
export function emit(event: Record<string, unknown>): void {
  const bytes = stdoutEncoder.encode(JSON.stringify(event) + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** Resolves when stdin reaches EOF: the parent asked us to stop, or the parent is gone. */
export async function stdinClosed(): Promise<void> {
  try {
    for await (const _ of Deno.stdin.readable) {
      // Nothing is ever sent on stdin; only its end matters.
    }
  } catch {
    // A broken stdin means the parent is gone, which is the same request.
  }
}

/** Warnings and errors of the network layer go to stderr, which the parent forwards. */
export function quietLogging(): void {
  setupLogging({ level: "warning", format: "text" });
}

// ---- network service roles -----------------------------------------------------------------

const genesis = builtinGenesis("devnet");
const gHash = genesisHash(genesis);

function makeService(opts: {
  listenPort: number | null;
  peers: string[];
  pingIntervalMs: number;
}) {
  const metrics = createNodeMetrics();
  const service = new NetworkService({
    key: generateKeyPair(),
    magic: genesis.magic,
    genesisHash: gHash,
    dataDir: null,
    listen: opts.listenPort === null ? null : { host: "127.0.0.1", port: opts.listenPort },
    peers: opts.peers,
    maxInbound: 8,
    maxOutbound: 0,
    pingIntervalMs: opts.pingIntervalMs,
    pongTimeoutMs: BENCH_PONG_TIMEOUT_MS,
    metrics,
    localTip: () => ({ height: 0, hash: gHash }),
  });
  return { service, metrics };
}

/** Votes carry this in place of a signature; one shared array keeps allocation out of the bench. */
const UNSIGNED = new Uint8Array(64);

function makeMessage(kind: BenchKind, i: number, filler: Uint8Array): Message {
  if (kind === "blockAnnounce") return { kind, height: i, hash: filler };
  return {
    kind,
    // No consensus service runs here, so nobody checks the signature.
    vote: {
      type: VoteType.Prevote,
      height: i,
      round: 0,
      blockHash: filler,
      validator: filler,
      signature: UNSIGNED,
    },
  };
}

async function runReceiver(listenPort: number, count: number): Promise<NetworkService> {
  const { service } = makeService({
    listenPort,
    peers: [],
    pingIntervalMs: QUIET_PING_INTERVAL_MS,
  });
  await service.start();
  emit({ event: "listening", address: service.listenAddress });
  service.onPeerReady((p) => emit({ event: "peer-ready", key: p.key }));
  let seen = 0;
  let round = 0;
  let firstAt = 0;
  let kind = "";
  const onMessage = (peerKey: string, m: Message) => {
    if (seen === 0) {
      firstAt = performance.now();
      kind = m.kind;
    }
    if (++seen < count) return;
    const elapsedMs = performance.now() - firstAt;
    seen = 0;
    round++;
    emit({ event: "round", round, kind, count, elapsedMs });
    service.send(peerKey, { kind: "blockAnnounce", height: round, hash: gHash });
  };
  service.onMessage("blockAnnounce", onMessage);
  service.onMessage("vote", onMessage);
  return service;
}

/** Starts the sender; `rounds` settles when every round is acked (or rejects on failure). */
function startSender(opts: {
  peer: string;
  kinds: BenchKind[];
  count: number;
  rounds: number;
  highWater: number;
}): { service: NetworkService; rounds: Promise<void> } {
  const { service } = makeService({
    listenPort: null,
    peers: [opts.peer],
    pingIntervalMs: QUIET_PING_INTERVAL_MS,
  });
  return { service, rounds: sendRounds(service, opts) };
}

async function sendRounds(service: NetworkService, opts: {
  kinds: BenchKind[];
  count: number;
  rounds: number;
  highWater: number;
}): Promise<void> {
  const ready = new Promise<string>((resolve) => service.onPeerReady((p) => resolve(p.key)));
  let ackWaiter: ((round: number) => void) | null = null;
  service.onMessage("blockAnnounce", (_key, m) => ackWaiter?.(m.height));
  await service.start();
  const key = await ready;
  emit({ event: "peer-ready", key });
  const filler = new Uint8Array(32).fill(7);
  let round = 0;
  for (const kind of opts.kinds) {
    for (let r = 0; r < opts.rounds; r++) {
      round++;
      const acked = new Promise<void>((resolve) => {
        ackWaiter = (n) => {
          if (n === round) resolve();
        };
      });
      const started = performance.now();
      let peakQueueBytes = 0;
      let yields = 0;
      for (let i = 0; i < opts.count; i++) {
        if (i % QUEUE_CHECK_EVERY === 0) {
          for (;;) {
            const queued = service.peer(key)?.sendQueueBytes;
            if (queued === undefined) throw new Error(`peer ${key} disconnected mid-round`);
            peakQueueBytes = Math.max(peakQueueBytes, queued);
            if (queued <= opts.highWater) break;
            yields++;
            await new Promise((r) => setTimeout(r, 0));
          }
        }
        if (!service.send(key, makeMessage(kind, i + 1, filler))) {
          throw new Error(`send to ${key} refused at message ${i}`);
        }
      }
      const queuedMs = performance.now() - started;
      await acked;
      emit({
        event: "sent",
        kind,
        round,
        count: opts.count,
        queuedMs,
        ackedMs: performance.now() - started,
        peakQueueBytes,
        yields,
      });
    }
  }
  ackWaiter = null;
  emit({ event: "done" });
}

async function runPing(opts: {
  listenPort: number | null;
  peer: string | null;
  intervalMs: number;
  samples: number;
  warmup: number;
}): Promise<NetworkService> {
  const { service, metrics } = makeService({
    listenPort: opts.listenPort,
    peers: opts.peer ? [opts.peer] : [],
    pingIntervalMs: opts.intervalMs,
  });
  const rttMicros: number[] = [];
  /** When each sample was taken (epoch ms, sub-ms precision), to line up with GC traces. */
  const takenAtMs: number[] = [];
  let skipped = 0;
  const histogram = metrics.pingRtt;
  const observe = histogram.observe.bind(histogram);
  // How late the event loop runs its turns while the samples are taken: what the node's own
  // loop adds under every ping, whatever the network does.
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  // The samples the node itself measures, before they are folded into histogram buckets. The
  // first `warmup` are dropped: until V8 has optimised the ping path they measure the JIT.
  histogram.observe = (seconds: number) => {
    observe(seconds);
    if (skipped < opts.warmup) {
      if (++skipped === opts.warmup) loopDelay.enable();
      return;
    }
    if (rttMicros.length < opts.samples) {
      rttMicros.push(seconds * 1e6);
      takenAtMs.push(performance.timeOrigin + performance.now());
      if (rttMicros.length === opts.samples) {
        loopDelay.disable();
        // The histogram counts nanoseconds.
        const us = (ns: number) => ns / 1000;
        emit({
          event: "rtt",
          samples: rttMicros,
          takenAtMs,
          loopDelayUs: {
            p50: us(loopDelay.percentile(50)),
            p99: us(loopDelay.percentile(99)),
            max: us(loopDelay.max),
          },
        });
      }
    }
  };
  service.onPeerReady((p) => emit({ event: "peer-ready", key: p.key }));
  await service.start();
  markGcClock();
  if (opts.listenPort !== null) emit({ event: "listening", address: service.listenAddress });
  return service;
}

/**
 * With `--v8-flags=--expose-gc,--trace-gc`, forces one full GC and reports when (on
 * `performance.now()`'s clock): its trace line (reason "testing") carries V8's own clock, so
 * the parent can place every traced GC on the clock of the RTT samples. Without, a no-op.
 */
function markGcClock(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  const atMs = performance.now();
  gc();
  emit({ event: "gc-mark", atEpochMs: performance.timeOrigin + atMs });
}

// ---- raw TCP echo ----------------------------------------------------------------------------

function runEchoServer(): () => void {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const addr = listener.addr as Deno.NetAddr;
  emit({ event: "listening", address: `127.0.0.1:${addr.port}` });
  const conns = new Set<Deno.TcpConn>();
  (async () => {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            let off = 0;
            while (off < n) off += await conn.write(buf.subarray(off, n));
          }
        } catch {
          // The client went away; the echo has nothing left to do.
        }
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      })();
    }
  })().catch(() => {});
  return () => {
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // Already closed.
      }
    }
  };
}

async function runEchoClient(
  target: string,
  rounds: number,
  size: number,
  gapMs: number,
  warmup: number,
): Promise<void> {
  const [hostname, port] = target.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  conn.setNoDelay(true);
  const out = new Uint8Array(size).fill(1);
  const buf = new Uint8Array(64 * 1024);
  const samples: number[] = [];
  // Unmeasured back-to-back round trips first warm up the JIT and the socket path.
  for (let i = 0; i < warmup + rounds; i++) {
    const t0 = performance.now();
    await conn.write(out);
    let got = 0;
    while (got < size) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("echo server closed the connection");
      got += n;
    }
    if (i >= warmup) samples.push((performance.now() - t0) * 1000);
    // With a gap, both processes go idle between round trips, as between two pings.
    if (gapMs > 0 && i >= warmup) await new Promise((r) => setTimeout(r, gapMs));
  }
  conn.close();
  emit({ event: "echo", samples });
}

// ---- entry -----------------------------------------------------------------------------------

function int(v: string | undefined, name: string, fallback?: number): number {
  if (v === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      "listen-port": { type: "string" },
      peer: { type: "string" },
      kinds: { type: "string" },
      count: { type: "string" },
      rounds: { type: "string" },
      "high-water": { type: "string" },
      "interval-ms": { type: "string" },
      samples: { type: "string" },
      target: { type: "string" },
      size: { type: "string" },
      "gap-ms": { type: "string" },
      warmup: { type: "string" },
    },
  });
  quietLogging();
  const role = positionals[0];
  let stop: () => Promise<void> | void = () => {};
  switch (role) {
    case "receiver": {
      const s = await runReceiver(
        int(values["listen-port"], "listen-port", 0),
        int(
          values.count,
          "count",
        ),
      );
      stop = () => s.stop();
      break;
    }
    case "sender": {
      const kinds = (values.kinds ?? BENCH_KINDS.join(",")).split(",") as BenchKind[];
      for (const k of kinds) if (!BENCH_KINDS.includes(k)) throw new Error(`unknown kind ${k}`);
      // The rounds run in the background so that a stdin close still stops the sender.
      const sender = startSender({
        peer: values.peer ?? "",
        kinds,
        count: int(values.count, "count"),
        rounds: int(values.rounds, "rounds", 1),
        highWater: int(values["high-water"], "high-water", DEFAULT_HIGH_WATER_BYTES),
      });
      sender.rounds.catch((e) => emit({ event: "error", message: (e as Error).message }));
      stop = () => sender.service.stop();
      break;
    }
    case "ping": {
      const s = await runPing({
        listenPort: values.peer ? null : int(values["listen-port"], "listen-port", 0),
        peer: values.peer ?? null,
        intervalMs: int(values["interval-ms"], "interval-ms", 10),
        samples: int(values.samples, "samples", 2000),
        warmup: int(values.warmup, "warmup", 0),
      });
      stop = () => s.stop();
      break;
    }
    case "echo-server":
      stop = runEchoServer();
      break;
    case "echo-client":
      await runEchoClient(
        values.target ?? "",
        int(values.rounds, "rounds", 2000),
        int(values.size, "size", 64),
        int(values["gap-ms"], "gap-ms", 0),
        int(values.warmup, "warmup", 200),
      );
      return;
    default:
      throw new Error(`unknown role ${role}; expected receiver, sender, ping, echo-*`);
  }
  await stdinClosed();
  await stop();
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
