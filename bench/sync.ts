/**
 * The sync benchmark suite: a fresh node catches up a made chain (4 validators, ~1 KB bodies)
 * from one real source node over loopback, then an in-process breakdown of where the time goes
 * (bench/sync_profile.ts) over the same blocks.
 *
 *   deno task bench --only sync [--quick]
 *   TIMENODE_BENCH_CPU_PROF=/tmp/prof deno task bench --only sync   # V8 profiles of both nodes
 *
 * End to end, each run starts the source on the made data dir and a fresh node (new data dir)
 * with `--peer source`, polls the fresh node's `getblockcount` every 50 ms, and takes the end
 * from its "Synced at" log line. It reports blocks per second from the first applied block
 * (the target), from process start, and from the node's own sync start; the median of the runs.
 *
 * Owns: that orchestration and its rows. Must never: leave a node, a timer or a temp dir behind,
 * whether a run passes, fails, throws or is interrupted; or report a run whose fresh node ended
 * on another tip than the source's.
 */
import { join } from "node:path";
import { makeChain, type MakeChainSummary } from "../tests/support/make_chain.ts";
import {
  counterValue,
  freePort,
  type LogEvent,
  metricValue,
  NodeProcess,
  tempDir,
  withTimeout,
} from "../tests/support/cluster.ts";
import {
  type BenchOptions,
  type BenchRow,
  benchRow,
  errorRow,
  formatNumber,
  median,
  type Target,
} from "./table.ts";
import { profileSync } from "./sync_profile.ts";

const SUITE = "sync";

/** The requirement; 10,000 blocks/s is the aim, noted in the row. */
const TARGET: Target = { op: ">=", value: 5_000 };
const AIM_BLOCKS_PER_SEC = 10_000;

/** The chain: 4 validators certify every block, ~1 KB of body each. */
const VALIDATORS = 4;
const BODY_BYTES = 1_000;

interface Sizes {
  blocks: number;
  runs: number;
}
const FULL: Sizes = { blocks: 20_000, runs: 3 };
/** One short run: the whole suite in well under a minute. */
const QUICK: Sizes = { blocks: 5_000, runs: 1 };

/** How often the fresh node's height is read; the first non-zero answer starts the clock. */
const POLL_MS = 50;
/** Node start-up to "listening" (module load, store open check). */
const START_TIMEOUT_MS = 30_000;
/** A catch-up slower than this pessimistic rate is reported as failed rather than awaited. */
const MIN_PLAUSIBLE_BLOCKS_PER_SEC = 200;
/** A clean stop takes well under a second; after this the node is killed. */
const STOP_GRACE_MS = 10_000;
/** Set to a directory to have both nodes write V8 CPU profiles there. */
const CPU_PROFILE_ENV = "TIMENODE_BENCH_CPU_PROF";

/** What one catch-up run measured. */
export interface CatchUpRun {
  blocks: number;
  /** Blocks per second from the first applied block (seen by polling) to the synced log line. */
  fromFirstBlock: number;
  /** Blocks per second from spawning the fresh node to the synced log line. */
  fromProcessStart: number;
  /** Blocks per second as the node measured it: sync start (a peer ahead) to synced. */
  fromSyncStart: number;
  /** Spawn to first applied block, ms: runtime start, handshake, first batch verified. */
  firstBlockMs: number;
  /**
   * CPU time (user + system, all threads) per block from the first applied block to synced, in
   * µs, of the fresh and the source node; null where /proc is not readable. Unlike wall time it
   * barely moves when other work shares the machine, so it shows what an optimisation saved.
   */
  freshCpuUsPerBlock: number | null;
  sourceCpuUsPerBlock: number | null;
  /** `timenode_sync_requests_total` by outcome, for the note. */
  outcomes: Record<string, number>;
}

export async function runSyncBenchmarks(opts: Partial<BenchOptions> = {}): Promise<BenchRow[]> {
  const sizes = opts.quick ? QUICK : FULL;
  const progress = opts.progress ?? ((line: string) => console.error(line));
  const signal = opts.signal ?? new AbortController().signal;
  const rows: BenchRow[] = [];
  const label = `catch-up ${formatNumber(sizes.blocks)} blocks, 1 peer`;
  const workDir = await tempDir("bench-sync");
  try {
    progress(`sync: making a ${sizes.blocks}-block chain (${VALIDATORS} validators, ~1 KB)...`);
    const chain = await makeChain({
      dir: join(workDir, "chain"),
      blocks: sizes.blocks,
      validators: VALIDATORS,
      bodyBytes: BODY_BYTES,
    });
    progress(`sync: chain made in ${formatNumber(chain.elapsedMs / 1000)} s`);

    const runs: CatchUpRun[] = [];
    let failure: unknown = null;
    for (let i = 0; i < sizes.runs && !signal.aborted; i++) {
      try {
        const run = await catchUp(chain, join(workDir, `fresh-${i}`), signal);
        runs.push(run);
        progress(
          `sync: run ${i + 1}/${sizes.runs}: ${formatNumber(run.fromFirstBlock)} blocks/s ` +
            `from the first block, ${formatNumber(run.fromProcessStart)} from process start`,
        );
      } catch (e) {
        failure = signal.aborted ? new Error("interrupted") : e;
        progress(`sync: run ${i + 1} failed: ${(failure as Error).message}`);
        break;
      }
    }
    rows.push(...catchUpRows(label, runs, failure));

    if (!signal.aborted) {
      progress("sync: in-process breakdown...");
      try {
        rows.push(...await profileSync({ dir: join(workDir, "chain"), progress }));
      } catch (e) {
        rows.push(errorRow(SUITE, "in-process breakdown", "blocks/s", e));
      }
    }
  } catch (e) {
    rows.push(errorRow(SUITE, label, "blocks/s", e, TARGET));
  } finally {
    await Deno.remove(workDir, { recursive: true }).catch(() => {});
  }
  return rows;
}

function catchUpRows(label: string, runs: CatchUpRun[], failure: unknown): BenchRow[] {
  if (runs.length === 0) {
    return [errorRow(SUITE, `${label}, from first block`, "blocks/s", failure, TARGET)];
  }
  const list = (f: (r: CatchUpRun) => number) =>
    `median of ${runs.length} (${runs.map((r) => formatNumber(f(r))).join(" / ")})`;
  const outcomes = new Map<string, number>();
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.outcomes)) outcomes.set(k, (outcomes.get(k) ?? 0) + v);
  }
  const requests = [...outcomes].map(([k, v]) => `${k} ${v}`).join(", ");
  const rows = [
    benchRow(
      SUITE,
      `${label}, from first block`,
      median(runs.map((r) => r.fromFirstBlock)),
      "blocks/s",
      TARGET,
      `${list((r) => r.fromFirstBlock)}; aim ${formatNumber(AIM_BLOCKS_PER_SEC)}; ` +
        `requests: ${requests}`,
    ),
    benchRow(
      SUITE,
      `${label}, from process start`,
      median(runs.map((r) => r.fromProcessStart)),
      "blocks/s",
      null,
      `${list((r) => r.fromProcessStart)}; includes runtime start-up and handshake`,
    ),
    benchRow(
      SUITE,
      `${label}, node's own sync timer`,
      median(runs.map((r) => r.fromSyncStart)),
      "blocks/s",
      null,
      `${list((r) => r.fromSyncStart)}; "Synced at" log: sync start to synced`,
    ),
    ...cpuRow("fresh node CPU per block", runs.map((r) => r.freshCpuUsPerBlock)),
    ...cpuRow("source node CPU per block", runs.map((r) => r.sourceCpuUsPerBlock)),
    benchRow(
      SUITE,
      "time to first applied block",
      median(runs.map((r) => r.firstBlockMs)),
      "ms",
      null,
      `${list((r) => r.firstBlockMs)}; spawn to getblockcount > 0`,
    ),
  ];
  if (failure) {
    rows.push(errorRow(SUITE, `${label}, a later run`, "blocks/s", failure));
  }
  return rows;
}

function cpuRow(name: string, values: (number | null)[]): BenchRow[] {
  if (values.some((v) => v === null)) return [];
  const us = values as number[];
  const runs = `median of ${us.length} (${us.map(formatNumber).join(" / ")})`;
  return [
    benchRow(
      SUITE,
      name,
      median(us),
      "µs",
      null,
      `${runs}; user+system, all threads, first block to synced (/proc)`,
    ),
  ];
}

/** One catch-up: a source on the made chain, a fresh node pointed at it, both stopped after. */
export async function catchUp(
  chain: MakeChainSummary,
  freshDir: string,
  signal: AbortSignal,
): Promise<CatchUpRun> {
  const source = await benchNode("source", chain.genesisFile, chain.dataDir);
  const fresh = await benchNode("fresh", chain.genesisFile, freshDir);
  const stopBoth = () => Promise.all([stopNode(fresh), stopNode(source)]);
  const onAbort = () => void stopBoth();
  signal.addEventListener("abort", onAbort);
  try {
    source.start();
    await source.waitForLog(
      (e) => e.message.startsWith("listening on") || e.level === "EXIT",
      "source listening",
      START_TIMEOUT_MS,
    );
    if (!source.running || signal.aborted) throw new Error("the source node did not start");
    fresh.opts.peers = [source.p2p];
    const budgetMs = START_TIMEOUT_MS + (chain.tipHeight / MIN_PLAUSIBLE_BLOCKS_PER_SEC) * 1000;

    const spawnedAt = Date.now();
    fresh.start();
    const synced = fresh.waitForLog(
      (e) => isSyncedLine(e) || e.level === "EXIT",
      `synced at ${chain.tipHeight}`,
      budgetMs,
    );
    // Settled either way below (stopping resolves it); never an unhandled rejection meanwhile.
    synced.catch(() => {});
    // Polling stops at the first block; the end comes from the log line's own timestamp.
    const first = await firstBlock(fresh, spawnedAt + budgetMs, signal);
    const freshCpu = await ProcessCpu.find(freshDir);
    const sourceCpu = await ProcessCpu.find(chain.dataDir);
    const end = await synced;
    if (!isSyncedLine(end)) throw new Error("the fresh node exited before it synced");
    const cpuPerBlock = (cpu: ProcessCpu | null) => {
      const us = cpu?.elapsedUs();
      return us === undefined || us === null ? null : us / (chain.tipHeight - first.height);
    };
    const freshCpuUsPerBlock = cpuPerBlock(freshCpu);
    const sourceCpuUsPerBlock = cpuPerBlock(sourceCpu);
    const endAt = Date.parse(end["@timestamp"]);

    const info = await fresh.rpc<{ height: number; bestHash: string }>("getblockchaininfo");
    if (info.height !== chain.tipHeight || info.bestHash !== chain.tipHash) {
      throw new Error(
        `fresh node ended at ${info.height} ${info.bestHash}, the source's tip is ` +
          `${chain.tipHeight} ${chain.tipHash}`,
      );
    }
    const metrics = await fresh.metrics();
    const rejected = metricValue(metrics, "timenode_blocks_rejected_total");
    if (rejected > 0) throw new Error(`${rejected} blocks were rejected from an honest source`);
    const outcomes: Record<string, number> = {};
    for (const o of ["ok", "timeout", "stalled", "disconnected", "invalid", "empty"]) {
      const v = counterValue(metrics, "timenode_sync_requests_total", { outcome: o });
      if (v > 0) outcomes[o] = v;
    }

    const n = chain.tipHeight;
    const seconds = Number(end.properties.seconds);
    const syncedBlocks = Number(end.properties.blocks);
    return {
      blocks: n,
      fromFirstBlock: ((n - first.height) / (endAt - first.at)) * 1000,
      fromProcessStart: (n / (endAt - spawnedAt)) * 1000,
      fromSyncStart: seconds > 0 ? syncedBlocks / seconds : NaN,
      firstBlockMs: first.at - spawnedAt,
      freshCpuUsPerBlock,
      sourceCpuUsPerBlock,
      outcomes,
    };
  } finally {
    signal.removeEventListener("abort", onAbort);
    await stopBoth();
  }
}

function isSyncedLine(e: LogEvent): boolean {
  return e.logger === "timenode.sync" && e.message.startsWith("Synced at");
}

/** The first time the fresh node reports a height above 0, and that height. */
async function firstBlock(
  node: NodeProcess,
  deadline: number,
  signal: AbortSignal,
): Promise<{ at: number; height: number }> {
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error("interrupted");
    if (!node.running) throw new Error(`${node.name} exited`);
    try {
      const height = await node.rpc<number>("getblockcount");
      if (height > 0) return { at: Date.now(), height };
    } catch {
      // RPC not up yet.
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`${node.name} applied no block in time`);
}

/** Node processes at `info`: the sync lines the bench reads, without per-message logging. */
async function benchNode(name: string, genesis: string, dataDir: string): Promise<NodeProcess> {
  return new ProfiledNode({
    name,
    dataDir,
    genesis,
    p2pPort: await freePort(),
    rpcPort: await freePort(),
    logLevel: "info",
  });
}

/** A node that writes a V8 CPU profile when `TIMENODE_BENCH_CPU_PROF` names a directory. */
class ProfiledNode extends NodeProcess {
  override args(): string[] {
    const args = super.args();
    const dir = Deno.env.get(CPU_PROFILE_ENV);
    // args[0] is deno's own "run": its flags go right after it, before the script.
    if (dir) {
      args.splice(
        1,
        0,
        "--cpu-prof",
        `--cpu-prof-dir=${dir}`,
        `--cpu-prof-name=${this.name}-${Date.now()}.cpuprofile`,
      );
    }
    return args;
  }
}

/** Linux clock ticks per second (`getconf CLK_TCK`), the unit of /proc/<pid>/stat times. */
const CLOCK_TICKS_PER_SEC = 100;

/** CPU time of one node process, read from /proc: a baseline now, the difference later. */
class ProcessCpu {
  readonly #pid: number;
  readonly #startTicks: number;

  private constructor(pid: number, startTicks: number) {
    this.#pid = pid;
    this.#startTicks = startTicks;
  }

  /** The node process whose command line names `dataDir`; null if none or no /proc. */
  static async find(dataDir: string): Promise<ProcessCpu | null> {
    try {
      for await (const entry of Deno.readDir("/proc")) {
        if (!/^\d+$/.test(entry.name)) continue;
        let args: string[];
        try {
          args = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`)).split("\0");
        } catch {
          continue; // Exited meanwhile.
        }
        const i = args.indexOf("--data-dir");
        if (i < 0 || args[i + 1] !== dataDir) continue;
        const pid = Number(entry.name);
        const ticks = cpuTicks(pid);
        return ticks === null ? null : new ProcessCpu(pid, ticks);
      }
    } catch {
      // No /proc (not Linux): the CPU rows are left out.
    }
    return null;
  }

  /** CPU µs since `find`, or null if the process is gone. */
  elapsedUs(): number | null {
    const ticks = cpuTicks(this.#pid);
    return ticks === null ? null : ((ticks - this.#startTicks) * 1e6) / CLOCK_TICKS_PER_SEC;
  }
}

/** utime + stime of a process, all threads, in clock ticks. */
function cpuTicks(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the parenthesised command name, which may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

async function stopNode(node: NodeProcess): Promise<void> {
  if (!node.running) return;
  await withTimeout(node.stop(), STOP_GRACE_MS, `${node.name} to stop`).catch(() => node.kill9());
}

if (import.meta.main) {
  const { formatTable } = await import("./table.ts");
  const rows = await runSyncBenchmarks({ quick: Deno.args.includes("--quick") });
  console.log(formatTable(rows));
}
