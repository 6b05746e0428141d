/**
 * The network benchmark suite: real OS processes talking over loopback.
 *
 *  1. Small-message throughput over one connection: two `NetworkService` processes
 *     (bench/net_peer.ts), `blockAnnounce` (54-byte frames) and `vote` (155-byte frames) sent
 *     through `NetworkApi.send`, counted at the receiver's `onMessage` subscriber, and timed by
 *     the sender from its first send to the receiver's ack of the last message.
 *  2. Ping RTT through the node's own ping loop (10 ms interval, both directions), with a raw
 *     Deno TCP echo round trip for scale.
 *  3. 1,000 concurrent peers: a real node (`main.ts run`) and a load generator
 *     (bench/load_gen.ts) completing 1,000 real handshakes, held, then the node's RSS.
 *
 * Every measurement that is cheap enough runs several times and reports the median.
 * Owns: orchestration of those processes and turning their events into `BenchRow`s.
 * Must never: leave a process, a data dir or a timer behind, whether a benchmark passes,
 * fails, throws or is interrupted.
 */
import {
  freePort,
  metricValue,
  NodeProcess,
  tempDir,
  withTimeout,
} from "../tests/support/cluster.ts";
import { gcEvents, overlapsGc } from "./gc_trace.ts";
import {
  type BenchOptions,
  type BenchRow,
  benchRow,
  errorRow,
  formatNumber,
  median,
  percentile,
  type Target,
} from "./table.ts";
import { RUN_PERMISSIONS } from "../node/devnet.ts";

const SUITE = "network";
const PEER_SCRIPT = new URL("./net_peer.ts", import.meta.url).pathname;
const LOAD_GEN_SCRIPT = new URL("./load_gen.ts", import.meta.url).pathname;
/** Set to a directory to have every bench child write a V8 CPU profile there. */
const CPU_PROFILE_ENV = "TIMENODE_BENCH_CPU_PROF";

/** Frame sizes on the wire: 14-byte header plus payload (network/messages.ts). */
const FRAME_BYTES = { blockAnnounce: 54, vote: 155 } as const;
/** The size the throughput target is stated for. */
const TARGET_FRAME_BYTES = 100;

const TARGETS = {
  throughput: { op: ">=", value: 200_000 },
  rttP50: { op: "<=", value: 200 },
  rttP99: { op: "<=", value: 1_000 },
  rssMb: { op: "<=", value: 200 },
  /** Issue 12: ping p99 through the node within 4× a raw TCP echo's p99 with the same gaps. */
  tailRatio: { op: "<=", value: 4 },
} satisfies Record<string, Target>;

/** Issue 12 asks for the tail target in every one of 5 consecutive runs. */
const PING_TAIL_RUNS = 5;
const TAIL_ROW = "ping p99 / raw echo p99, same gaps, worst of 5 runs";
/** The ping peers of the tail bench trace their collections, and mark V8's clock (net_peer.ts). */
const TRACE_GC_FLAGS = ["--v8-flags=--expose-gc,--trace-gc"];

/** How much each benchmark does; `quick` keeps the whole suite under half a minute. */
interface Sizes {
  messages: number;
  rounds: number;
  pingSamples: number;
  /** RTT samples dropped first per side: until V8 optimises the ping path, they time the JIT. */
  pingWarmup: number;
  /**
   * 1 ms: the node's loop, not the VM's wake-up from idle, is what this measures. With 10 ms
   * gaps even a raw TCP echo takes ~200 µs here (the idle driver's exit latency).
   */
  pingIntervalMs: number;
  echoRounds: number;
  /** Echo round trips with an idle gap as long as the ping interval: the floor under ping RTT. */
  echoGapRounds: number;
  connections: number;
  handshakeRounds: number;
  holdMs: number;
}

const FULL: Sizes = {
  messages: 500_000,
  rounds: 3,
  pingSamples: 2_000,
  pingWarmup: 500,
  pingIntervalMs: 1,
  echoRounds: 5_000,
  echoGapRounds: 1_000,
  connections: 1_000,
  handshakeRounds: 3,
  holdMs: 10_000,
};

const QUICK: Sizes = {
  messages: 100_000,
  rounds: 2,
  pingSamples: 300,
  pingWarmup: 400,
  pingIntervalMs: 1,
  echoRounds: 2_000,
  echoGapRounds: 200,
  connections: 1_000,
  handshakeRounds: 1,
  holdMs: 3_000,
};

/** Announced listen ports of load-generator peers start here (nothing listens on them). */
const LOAD_GEN_BASE_PORT = 20_000;
/**
 * Handshakes the load generator keeps in flight (see load_gen.ts). Below the node's handshake
 * budget (32 sockets in the handshake at once, loopback included: network/constants.ts), which
 * refuses the rest; a few in flight already keep the node's one thread busy.
 */
const LOAD_GEN_CONCURRENCY = 24;
/** A node saying goodbye to a thousand peers needs a moment; then it is killed. */
const NODE_STOP_GRACE_MS = 15_000;
/** How long a child gets to exit after its stdin closes, and after SIGTERM, before SIGKILL. */
const CHILD_EXIT_GRACE_MS = 5_000;
/** Lines of a child's stderr kept to explain a failure. */
const STDERR_TAIL_LINES = 20;

export async function runNetworkBenchmarks(opts: BenchOptions): Promise<BenchRow[]> {
  const sizes = opts.quick ? QUICK : FULL;
  const rows: BenchRow[] = [];
  const failed = (message: string, specs: [string, string, Target | null][]) =>
    specs.map(([name, unit, target]) => errorRow(SUITE, name, unit, message, target));
  const benches: {
    name: string;
    run: (g: ProcessGroup) => Promise<BenchRow[]>;
    /** The rows that stand in for the benchmark's results when it cannot finish. */
    rowsOnError: [string, string, Target | null][];
  }[] = [
    {
      name: "throughput",
      run: (g) => throughputBench(g, sizes, opts),
      rowsOnError: [
        [`throughput, ~${TARGET_FRAME_BYTES} B (interpolated)`, "msgs/s", TARGETS.throughput],
      ],
    },
    {
      name: "ping rtt",
      run: (g) => pingBench(g, sizes, opts),
      rowsOnError: [
        ["ping RTT p50", "µs", TARGETS.rttP50],
        ["ping RTT p99", "µs", TARGETS.rttP99],
      ],
    },
    {
      name: "tcp echo",
      run: (g) => echoBench(g, sizes, opts),
      rowsOnError: [["raw TCP echo RTT p50", "µs", null]],
    },
    {
      name: "ping tail",
      run: (g) => pingTailBench(g, sizes, opts),
      rowsOnError: [[TAIL_ROW, "ratio", TARGETS.tailRatio]],
    },
    {
      name: `${sizes.connections} peers`,
      run: (g) => connectionsBench(g, sizes, opts),
      rowsOnError: [[`node RSS, ${sizes.connections} peers`, "MB", TARGETS.rssMb]],
    },
  ];
  for (const bench of benches) {
    if (opts.signal.aborted) break;
    opts.progress(`network: ${bench.name}...`);
    const group = new ProcessGroup(opts.signal);
    try {
      rows.push(...await bench.run(group));
    } catch (e) {
      const message = opts.signal.aborted ? "interrupted" : (e as Error).message ?? String(e);
      opts.progress(`network: ${bench.name} failed: ${message}`);
      rows.push(...failed(message, bench.rowsOnError));
    } finally {
      await group.stopAll();
    }
  }
  return rows;
}

// ---- 1. throughput ---------------------------------------------------------------------------

/** The sender's report of one round: `count` messages delivered `ackedMs` after the first send. */
interface SentEvent {
  kind: "blockAnnounce" | "vote";
  count: number;
  ackedMs: number;
}

async function throughputBench(
  group: ProcessGroup,
  sizes: Sizes,
  opts: BenchOptions,
): Promise<BenchRow[]> {
  const receiver = group.spawn("receiver", PEER_SCRIPT, [
    "receiver",
    "--count",
    String(sizes.messages),
  ]);
  const { address } = await receiver.next("listening", 20_000);
  const sender = group.spawn("sender", PEER_SCRIPT, [
    "sender",
    "--peer",
    String(address),
    "--count",
    String(sizes.messages),
    // One more round per kind than measured: the first runs while V8 is still optimising.
    "--rounds",
    String(sizes.rounds + 1),
    "--kinds",
    "blockAnnounce,vote",
  ]);
  // Generous: 2 kinds × rounds at a pessimistic 20k msgs/s, plus start-up.
  const budgetMs = 20_000 + (2 * (sizes.rounds + 1) * sizes.messages) / 20;
  await sender.next("done", budgetMs);
  // End to end, timed by the sender: from its first send to the receiver's ack that its
  // subscriber got the last message. (The receiver's own first-to-last time would leave out
  // the encoding of every message the sender queued before the first one left.)
  const rounds = sender.events.filter((e) => e.event === "sent") as unknown as SentEvent[];
  const rates = (kind: SentEvent["kind"]) =>
    rounds.filter((r) => r.kind === kind).slice(1).map((r) => (r.count / r.ackedMs) * 1000);
  const announce = rates("blockAnnounce");
  const vote = rates("vote");
  if (announce.length === 0 || vote.length === 0) throw new Error("sender reported no rounds");
  opts.progress(
    `network: throughput blockAnnounce ${announce.map(formatNumber).join(", ")} msgs/s; ` +
      `vote ${vote.map(formatNumber).join(", ")} msgs/s`,
  );
  const a = median(announce);
  const v = median(vote);
  // Per-message cost is mostly fixed (objects, checksums, dispatch) plus a part that grows
  // with size; interpolating the time per message between the two sizes gives the ~100 B rate.
  const share = (TARGET_FRAME_BYTES - FRAME_BYTES.blockAnnounce) /
    (FRAME_BYTES.vote - FRAME_BYTES.blockAnnounce);
  const perMessageSec = 1 / a + share * (1 / v - 1 / a);
  const runs = (xs: number[]) =>
    `median of ${xs.length} × ${formatNumber(sizes.messages)} msgs (${
      xs.map(formatNumber).join(" / ")
    }) after a warm-up round`;
  return [
    benchRow(SUITE, "throughput, 54 B blockAnnounce", a, "msgs/s", null, runs(announce)),
    benchRow(SUITE, "throughput, 155 B vote", v, "msgs/s", null, runs(vote)),
    benchRow(
      SUITE,
      `throughput, ~${TARGET_FRAME_BYTES} B (interpolated)`,
      1 / perMessageSec,
      "msgs/s",
      TARGETS.throughput,
      "time per message interpolated linearly between the 54 B and 155 B medians",
    ),
  ];
}

// ---- 2. ping RTT and raw echo -----------------------------------------------------------------

async function pingBench(
  group: ProcessGroup,
  sizes: Sizes,
  opts: BenchOptions,
): Promise<BenchRow[]> {
  const { reports: [ra, rb] } = await pingPair(group, sizes);
  const samples = [...(ra.samples as number[]), ...(rb.samples as number[])];
  const note = `${samples.length} samples, ${sizes.pingIntervalMs} ms interval, both ` +
    `directions, after ${sizes.pingWarmup} warm-up pings per side`;
  opts.progress(`network: ping RTT p50 ${formatNumber(percentile(samples, 50))} µs`);
  return [
    benchRow(SUITE, "ping RTT p50", percentile(samples, 50), "µs", TARGETS.rttP50, note),
    benchRow(SUITE, "ping RTT p99", percentile(samples, 99), "µs", TARGETS.rttP99, note),
    benchRow(SUITE, "ping RTT max", Math.max(...samples), "µs", null, note),
  ];
}

/** Two ping peers pinging each other: both processes and their "rtt" reports. */
async function pingPair(
  group: ProcessGroup,
  sizes: Sizes,
  denoFlags: string[] = [],
): Promise<{ peers: BenchProcess[]; reports: Event[] }> {
  const common = [
    "--interval-ms",
    String(sizes.pingIntervalMs),
    "--samples",
    String(sizes.pingSamples),
    "--warmup",
    String(sizes.pingWarmup),
  ];
  const a = group.spawn(
    "ping-a",
    PEER_SCRIPT,
    ["ping", "--listen-port", "0", ...common],
    denoFlags,
  );
  const { address } = await a.next("listening", 20_000);
  const b = group.spawn(
    "ping-b",
    PEER_SCRIPT,
    ["ping", "--peer", String(address), ...common],
    denoFlags,
  );
  // One ping per interval per side; three times that covers a loaded machine.
  const budgetMs = 20_000 + 3 * (sizes.pingWarmup + sizes.pingSamples) * sizes.pingIntervalMs;
  const reports = await Promise.all([a.next("rtt", budgetMs), b.next("rtt", budgetMs)]);
  return { peers: [a, b], reports };
}

/** `rounds` echo round trips against the server at `address`, `gapMs` idle between: µs each. */
async function echoSamples(
  group: ProcessGroup,
  address: string,
  rounds: number,
  gapMs: number,
): Promise<number[]> {
  const client = group.spawn("echo-client", PEER_SCRIPT, [
    "echo-client",
    "--target",
    address,
    "--rounds",
    String(rounds),
    "--size",
    "64",
    "--gap-ms",
    String(gapMs),
  ]);
  const { samples } = await client.next("echo", 60_000 + rounds * gapMs * 3);
  await client.stop();
  return samples as number[];
}

async function echoBench(
  group: ProcessGroup,
  sizes: Sizes,
  opts: BenchOptions,
): Promise<BenchRow[]> {
  const server = group.spawn("echo-server", PEER_SCRIPT, ["echo-server"]);
  const { address } = await server.next("listening", 20_000);
  const echo = (rounds: number, gapMs: number) =>
    echoSamples(group, String(address), rounds, gapMs);
  const p50s: number[] = [];
  const runs = opts.quick ? 1 : 3;
  for (let i = 0; i < runs; i++) p50s.push(percentile(await echo(sizes.echoRounds, 0), 50));
  const gapped = await echo(sizes.echoGapRounds, sizes.pingIntervalMs);
  opts.progress(
    `network: raw echo p50 ${formatNumber(median(p50s))} µs back to back, ` +
      `${formatNumber(percentile(gapped, 50))} µs with ${sizes.pingIntervalMs} ms gaps`,
  );
  return [
    benchRow(
      SUITE,
      "raw TCP echo RTT p50",
      median(p50s),
      "µs",
      null,
      `Deno TCP, 64 B back to back, median of ${runs} × ${sizes.echoRounds} round trips (${
        p50s.map(formatNumber).join(" / ")
      })`,
    ),
    benchRow(
      SUITE,
      `raw TCP echo RTT p50, ${sizes.pingIntervalMs} ms gaps`,
      percentile(gapped, 50),
      "µs",
      null,
      `${sizes.echoGapRounds} round trips, idle between them like pings; ` +
        `p99 ${formatNumber(percentile(gapped, 99))} µs: the floor under ping RTT here`,
    ),
  ];
}

/** One run of the tail bench: an echo and a ping pair, one after the other, same gaps. */
interface TailRun {
  echoP99: number;
  pingP50: number;
  pingP99: number;
  /** Share of the samples at or above the ping p99 that a collection (either side) overlapped. */
  tailInGc: number;
  /** The same share over all samples: what chance alone would give. */
  allInGc: number;
  gcCount: number;
  gcPauseP50Ms: number;
  loopDelayP99Us: number;
  loopDelayMaxUs: number;
}

/**
 * Issue 12's tail check, 5 consecutive runs: per run a raw TCP echo with idle gaps as long as
 * the ping interval, then a ping pair through two `NetworkService`s, and p99 over p99. The ping
 * peers trace their garbage collections and the event loop's delay, so each run also says how
 * many of its tail samples a collection overlapped.
 */
async function pingTailBench(
  group: ProcessGroup,
  sizes: Sizes,
  opts: BenchOptions,
): Promise<BenchRow[]> {
  const runs: TailRun[] = [];
  for (let i = 0; i < PING_TAIL_RUNS && !opts.signal.aborted; i++) {
    const echo = await gappedEcho(group, sizes.pingSamples, sizes.pingIntervalMs);
    const run = await tracedPing(group, sizes, percentile(echo, 99));
    runs.push(run);
    opts.progress(
      `network: tail run ${i + 1}/${PING_TAIL_RUNS}: ping p99 ${formatNumber(run.pingP99)} µs, ` +
        `echo p99 ${formatNumber(run.echoP99)} µs, ratio ${
          formatNumber(run.pingP99 / run.echoP99)
        }; ${formatNumber(run.tailInGc * 100)}% of the tail in a GC ` +
        `(${formatNumber(run.allInGc * 100)}% of all samples)`,
    );
  }
  if (runs.length === 0) throw new Error("interrupted");
  const of = (f: (r: TailRun) => number) => runs.map(f);
  const list = (xs: number[]) =>
    `median ${formatNumber(median(xs))}, min ${formatNumber(Math.min(...xs))}, max ` +
    `${formatNumber(Math.max(...xs))} (${xs.map(formatNumber).join(" / ")})`;
  const ratios = of((r) => r.pingP99 / r.echoP99);
  const load = Deno.loadavg()[0];
  return [
    benchRow(
      SUITE,
      TAIL_ROW,
      Math.max(...ratios),
      "ratio",
      TARGETS.tailRatio,
      `runs ${ratios.map(formatNumber).join(" / ")}; ${sizes.pingSamples} samples per side, ` +
        `${sizes.pingIntervalMs} ms gaps; load average ${formatNumber(load)} at the end`,
    ),
    benchRow(
      SUITE,
      "  ping RTT p99 (tail runs)",
      median(of((r) => r.pingP99)),
      "µs",
      null,
      list(of((r) => r.pingP99)),
    ),
    benchRow(
      SUITE,
      "  ping RTT p50 (tail runs)",
      median(of((r) => r.pingP50)),
      "µs",
      null,
      list(of((r) => r.pingP50)),
    ),
    benchRow(
      SUITE,
      "  raw TCP echo p99, same gaps (the bound)",
      median(of((r) => r.echoP99)),
      "µs",
      null,
      list(of((r) => r.echoP99)),
    ),
    benchRow(
      SUITE,
      "  tail samples (≥ p99) overlapped by a GC",
      median(of((r) => r.tailInGc * 100)),
      "%",
      null,
      `${list(of((r) => r.tailInGc * 100))}; of all samples ${
        list(of((r) => r.allInGc * 100))
      }; GCs per run ${list(of((r) => r.gcCount))}, pause p50 ${
        list(of((r) => r.gcPauseP50Ms))
      } ms`,
    ),
    benchRow(
      SUITE,
      "  event loop delay p99 in the ping peers",
      median(of((r) => r.loopDelayP99Us)),
      "µs",
      null,
      `${list(of((r) => r.loopDelayP99Us))}; max ${list(of((r) => r.loopDelayMaxUs))} µs`,
    ),
  ];
}

/** `rounds` raw echo round trips with `gapMs` idle between them: RTT samples, µs. */
async function gappedEcho(group: ProcessGroup, rounds: number, gapMs: number): Promise<number[]> {
  const server = group.spawn("echo-server", PEER_SCRIPT, ["echo-server"]);
  try {
    const { address } = await server.next("listening", 20_000);
    return await echoSamples(group, String(address), rounds, gapMs);
  } finally {
    await server.stop();
  }
}

/** A ping pair with GC traces; its samples judged against the echo's p99. */
async function tracedPing(group: ProcessGroup, sizes: Sizes, echoP99: number): Promise<TailRun> {
  const { peers, reports: [ra, rb] } = await pingPair(group, sizes, TRACE_GC_FLAGS);
  // Stopped first: V8 writes its trace through a buffer that is flushed at exit.
  await Promise.all(peers.map((p) => p.stop()));
  const gcs = peers.flatMap((p) => {
    const mark = p.events.find((e) => e.event === "gc-mark");
    const lines = p.events.filter((e) => e.event === "raw").map((e) => String(e.line));
    return (mark && gcEvents(lines, Number(mark.atEpochMs))) ?? [];
  });
  const samples: { rttUs: number; atMs: number }[] = [];
  for (const r of [ra, rb]) {
    const rtt = r.samples as number[];
    const at = r.takenAtMs as number[];
    rtt.forEach((us, i) => samples.push({ rttUs: us, atMs: at[i] }));
  }
  const rtts = samples.map((x) => x.rttUs);
  const p99 = percentile(rtts, 99);
  const inGc = (x: { rttUs: number; atMs: number }) =>
    overlapsGc(gcs, x.atMs - x.rttUs / 1000, x.atMs);
  const tail = samples.filter((x) => x.rttUs >= p99);
  const pauses = gcs.map((g) => g.pauseMs);
  const loop = [ra, rb].map((r) => r.loopDelayUs as { p99: number; max: number });
  return {
    echoP99,
    pingP50: percentile(rtts, 50),
    pingP99: p99,
    tailInGc: tail.filter(inGc).length / tail.length,
    allInGc: samples.filter(inGc).length / samples.length,
    gcCount: gcs.length,
    gcPauseP50Ms: pauses.length > 0 ? percentile(pauses, 50) : 0,
    loopDelayP99Us: Math.max(...loop.map((l) => l.p99)),
    loopDelayMaxUs: Math.max(...loop.map((l) => l.max)),
  };
}

// ---- 3. 1,000 peers ----------------------------------------------------------------------------

async function connectionsBench(
  group: ProcessGroup,
  sizes: Sizes,
  opts: BenchOptions,
): Promise<BenchRow[]> {
  const dataDir = await tempDir("bench-peers");
  const node = new QuietNodeProcess({
    name: "node",
    dataDir,
    p2pPort: await freePort(),
    rpcPort: await freePort(),
    extra: ["--max-inbound", String(sizes.connections + 100)],
  });
  group.adopt({
    stop: async () => {
      await withTimeout(node.stop(), NODE_STOP_GRACE_MS, "the node to stop").catch(() =>
        node.kill9()
      );
    },
  }, async () => {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  });
  node.start();
  const rss = async () => metricValue(await node.metrics(), "timenode_resident_memory_bytes");
  // The node samples its RSS once a second; the first sample proves it is up and serving.
  const baseline = await node.waitFor(rss, "the node's first RSS sample", 30_000);
  const connected = () => node.rpc<number>("getconnectioncount");

  const connectAll = async (round: number) => {
    const gen = group.spawn(`load-gen-${round}`, LOAD_GEN_SCRIPT, [
      "--target",
      node.p2p,
      "--count",
      String(sizes.connections),
      // Fresh announced addresses each round, so no round inherits an earlier one's keys.
      "--base-port",
      String(LOAD_GEN_BASE_PORT + round * sizes.connections),
      "--concurrency",
      String(LOAD_GEN_CONCURRENCY),
    ]);
    const result = await gen.next("connected", 120_000);
    if (result.failed !== 0) {
      throw new Error(
        `${result.failed} of ${sizes.connections} handshakes failed: ${result.firstFailure}`,
      );
    }
    const rate = (sizes.connections / (result.elapsedMs as number)) * 1000;
    opts.progress(`network: ${sizes.connections} handshakes at ${formatNumber(rate)}/s`);
    return { gen, rate };
  };
  const disconnectAll = async (gen: BenchProcess) => {
    await gen.stop();
    await node.waitFor(async () => (await connected()) === 0 || null, "all peers gone", 30_000);
  };

  // The first round is held and measured on a fresh node, so the RSS is that of 1,000 peers
  // and not a high-water mark left by earlier rounds; later rounds only time handshakes.
  const first = await connectAll(0);
  const rates = [first.rate];
  await sleep(sizes.holdMs, opts.signal);
  // The node refreshes the RSS gauge every second, so this sample is from the hold.
  const held = await connected();
  const dropped = first.gen.events.filter((e) => e.event === "dropped").length;
  const rssBytes = await rss();
  await disconnectAll(first.gen);
  for (let r = 1; r < sizes.handshakeRounds; r++) {
    const { gen, rate } = await connectAll(r);
    rates.push(rate);
    await disconnectAll(gen);
  }
  const perPeerKb = (rssBytes - baseline) / held / 1024;
  const runs = `median of ${rates.length} × ${sizes.connections} (${
    rates.map(formatNumber).join(" / ")
  })`;
  return [
    benchRow(
      SUITE,
      `handshakes, ${sizes.connections} peers`,
      median(rates),
      "handshakes/s",
      null,
      `${runs}; first connect to last handshake, ${LOAD_GEN_CONCURRENCY} in flight`,
    ),
    benchRow(
      SUITE,
      `peers held after ${sizes.holdMs / 1000} s`,
      held,
      "peers",
      { op: ">=", value: sizes.connections },
      `getconnectioncount; ${dropped} dropped while held`,
    ),
    benchRow(
      SUITE,
      `node RSS, ${sizes.connections} peers`,
      rssBytes / 1e6,
      "MB",
      TARGETS.rssMb,
      `timenode_resident_memory_bytes after the hold; ${formatNumber(baseline / 1e6)} MB ` +
        `with no peers, ~${formatNumber(perPeerKb)} KiB per peer`,
    ),
  ];
}

/**
 * A real node that logs at warning level. The node logs every connection at info, and the
 * shared test harness runs nodes at debug; a thousand handshakes would measure the logger.
 * (The CLI refuses a flag given twice, so the level is replaced rather than appended.)
 */
class QuietNodeProcess extends NodeProcess {
  override args(): string[] {
    const args = super.args();
    const i = args.indexOf("--log-level");
    if (i >= 0) args[i + 1] = "warning";
    else args.push("--log-level", "warning");
    return args;
  }
}

// ---- child processes -------------------------------------------------------------------------

type Event = Record<string, unknown> & { event: string };

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Every process one benchmark starts. `stopAll` ends each of them (stdin close, then SIGTERM,
 * then SIGKILL) and runs cleanups; an abort of the run does the same at once.
 */
class ProcessGroup {
  readonly #members: Stoppable[] = [];
  readonly #cleanups: (() => Promise<void>)[] = [];
  readonly #signal: AbortSignal;
  readonly #onAbort = () => void this.stopAll();
  #stopping: Promise<void> | null = null;

  constructor(signal: AbortSignal) {
    this.#signal = signal;
    signal.addEventListener("abort", this.#onAbort);
  }

  spawn(name: string, script: string, args: string[], denoFlags: string[] = []): BenchProcess {
    if (this.#signal.aborted) throw new Error("interrupted");
    const p = new BenchProcess(name, script, args, denoFlags);
    this.#members.push(p);
    return p;
  }

  adopt(member: Stoppable, cleanup?: () => Promise<void>): void {
    this.#members.push(member);
    if (cleanup) this.#cleanups.push(cleanup);
  }

  stopAll(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#signal.removeEventListener("abort", this.#onAbort);
      // Load first, then the node: stopping in reverse start order avoids reconnect noise.
      for (const m of [...this.#members].reverse()) {
        await m.stop().catch(() => {});
      }
      for (const c of this.#cleanups) await c().catch(() => {});
    })();
    return this.#stopping;
  }
}

/** One bench child: JSON-line events on stdout, stderr kept for error messages. */
class BenchProcess implements Stoppable {
  readonly name: string;
  readonly events: Event[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderrTail: string[] = [];
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #readers: Promise<void>[];
  #listeners = new Set<() => void>();
  #exited = false;

  constructor(name: string, script: string, args: string[], denoFlags: string[]) {
    this.name = name;
    const profileDir = Deno.env.get(CPU_PROFILE_ENV);
    const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...RUN_PERMISSIONS, ...profile, ...denoFlags, script, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#status = this.#child.status.then((s) => {
      this.#exited = true;
      this.#notify();
      return s;
    });
    this.#readers = [
      this.#readLines(this.#child.stdout, (line) => this.#onStdout(line)),
      this.#readLines(this.#child.stderr, (line) => {
        this.#stderrTail.push(line);
        if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
      }),
    ];
  }

  async #readLines(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    }
    if (pending) onLine(pending);
  }

  #onStdout(line: string): void {
    let e: Event;
    try {
      e = JSON.parse(line);
    } catch {
      e = { event: "raw", line };
    }
    this.events.push(e);
    this.#notify();
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  #describeExit(): string {
    const tail = this.#stderrTail.slice(-5).join(" | ");
    return `${this.name} exited${tail ? `: ${tail}` : ""}`;
  }

  /** The first event named `name` (past or future); rejects on an error event or exit. */
  next(name: string, timeoutMs: number): Promise<Event> {
    return this.waitUntil(
      () => this.events.find((e) => e.event === name),
      `a "${name}" event`,
      timeoutMs,
    );
  }

  /** Re-checks `check` on every event until it returns a value; rejects on error or exit. */
  waitUntil<T>(check: () => T | undefined | false, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const poll = () => {
        const found = check();
        const failed = this.events.find((e) => e.event === "error");
        if (found) finish(() => resolve(found));
        else if (failed) finish(() => reject(new Error(`${this.name}: ${failed.message}`)));
        else if (this.#exited) finish(() => reject(new Error(this.#describeExit())));
      };
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(poll);
        settle();
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.#listeners.add(poll);
      poll();
    });
  }

  /** Asks politely (stdin EOF), then SIGTERM, then SIGKILL; waits for the exit either way. */
  async stop(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      if (await this.#exitWithin(CHILD_EXIT_GRACE_MS)) break;
      try {
        this.#child.kill(signal);
      } catch {
        // It exited in between.
      }
    }
    await this.#status;
    await Promise.all(this.#readers);
  }

  async #exitWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    const exited = await Promise.race([this.#status.then(() => true), timeout]);
    clearTimeout(timer);
    return exited;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/** `deno run -A bench/network.ts --tail [--quick]`: the tail runs alone (a few minutes). */
if (import.meta.main) {
  const { formatTable } = await import("./table.ts");
  const quick = Deno.args.includes("--quick");
  const opts: BenchOptions = {
    quick,
    signal: new AbortController().signal,
    progress: (line) => console.error(line),
  };
  let rows: BenchRow[];
  if (Deno.args.includes("--tail")) {
    const group = new ProcessGroup(opts.signal);
    try {
      rows = await pingTailBench(group, quick ? QUICK : FULL, opts);
    } finally {
      await group.stopAll();
    }
  } else {
    rows = await runNetworkBenchmarks(opts);
  }
  console.log(formatTable(rows));
}
