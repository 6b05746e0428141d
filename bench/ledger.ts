/**
 * Ledger benchmarks (`deno task bench --only ledger`): transfers admitted to one node's mempool
 * per second; transfers committed per second, sustained for 60 s, by 4 masternodes at a 1 s
 * block interval, with the latency from submission to inclusion; and a fresh node syncing that
 * chain (blocks/s, transfers/s).
 *
 * Owns: the ledger suite: its genesis (funded senders), its load generator (pre-signed
 * transfers submitted open-loop through the nodes' RPC), and its measurements.
 * Must never: be imported by tests, or leave a node running (every run stops what it started).
 */
import { toHex } from "../encoding/binary.ts";
import { generateKeyPair, type KeyPair } from "../crypto/ed25519.ts";
import { genesisHash } from "../chain/genesis.ts";
import { genesisToJson, makeDevnetGenesis } from "../chain/genesis_tool.ts";
import { encodeKeyFile, NODE_KEY_FILE } from "../crypto/node_key.ts";
import { addressHash, addressOf } from "../state/address.ts";
import { signTransfer, transactionIdHex } from "../state/transaction.ts";
import { type NodeOptions, NodeProcess, tempDir } from "../tests/support/cluster.ts";
import { freePortRange } from "../tests/support/devnet.ts";
import { rpcBatch as batchCall } from "../tests/support/rpc_batch.ts";
import { VerifyPool } from "../sync/verify_pool.ts";
import { type BenchOptions, type BenchRow, benchRow, errorRow, percentile } from "./table.ts";

const SUITE = "ledger";
/** The target for sustained commits on this machine; the aim is 3,000/s. */
const COMMIT_TARGET_PER_SEC = 1_000;
/**
 * Offered load of the target runs: a quarter above the target, so a network that keeps up
 * commits all of it and one that does not falls behind within the window (latency grows, not
 * everything is included). `LEDGER_OFFERED_PER_SEC` overrides it, for capacity searches.
 */
const OFFERED_PER_SEC = Number(Deno.env.get("LEDGER_OFFERED_PER_SEC") ?? 1_250);
/**
 * Offered load of the saturation run: far above what 4 validators sharing 2 cores commit, to
 * show what over-offering costs (admission work for transfers that wait or are evicted).
 */
const SATURATION_OFFERED_PER_SEC = 3_000;
const COMMIT_WINDOW_MS = 60_000;
const QUICK_COMMIT_WINDOW_MS = 10_000;
/** Senders of the commit run: each stays far below the 64 pending per sender. */
const SENDERS = 400;
/** Transfers for the admission measurement (senders × per sender). */
const ADMISSION_SENDERS = 500;
const ADMISSION_PER_SENDER = 60;
const FEE_UNITS = 2_000n;
/**
 * When set, masternode 1 (a validator that is not the first to propose) runs with
 * `--cpu-prof` and writes its profile there on exit; `bench/cpu_profile.ts` summarises it.
 */
const PROFILE_DIR = Deno.env.get("LEDGER_PROFILE_DIR");

/** A node process whose Deno runs with the V8 CPU profiler, written to `dir` on exit. */
class ProfiledNode extends NodeProcess {
  constructor(opts: NodeOptions, private readonly dir: string) {
    super(opts);
  }
  override args(): string[] {
    const [run, ...rest] = super.args();
    return [run, "--cpu-prof", `--cpu-prof-dir=${this.dir}`, ...rest];
  }
}

interface Net {
  dir: string;
  nodes: NodeProcess[];
  genesisHash: Uint8Array;
  senders: KeyPair[];
  stop(): Promise<void>;
}

/** A fresh network of `count` masternodes whose genesis funds `senders` wallets. */
async function startNet(count: number, intervalMs: number, senders: number): Promise<Net> {
  const dir = await tempDir(`bench-ledger${count}`);
  const basePort = freePortRange(2 * count);
  const keys = Array.from({ length: count }, () => generateKeyPair());
  const wallets = Array.from({ length: senders }, () => generateKeyPair());
  const genesis = makeDevnetGenesis({
    network: "devnet",
    blockIntervalMs: intervalMs,
    nodes: keys.map((k, i) => ({
      publicKey: k.publicKey,
      address: `127.0.0.1:${basePort + 2 * i}`,
    })),
    alloc: Object.fromEntries(wallets.map((w) => [addressOf("devnet", w.publicKey), "100000"])),
  });
  const genesisFile = `${dir}/genesis.json`;
  await Deno.writeTextFile(genesisFile, genesisToJson(genesis));
  const nodes = keys.map((k, i) => {
    const dataDir = `${dir}/node-${i}`;
    Deno.mkdirSync(dataDir, { recursive: true });
    Deno.writeTextFileSync(`${dataDir}/${NODE_KEY_FILE}`, encodeKeyFile(k), { mode: 0o600 });
    const opts: NodeOptions = {
      name: `mn${i}`,
      dataDir,
      p2pPort: basePort + 2 * i,
      rpcPort: basePort + 2 * i + 1,
      genesis: genesisFile,
      peers: keys.map((_, j) => `127.0.0.1:${basePort + 2 * j}`).filter((_, j) => j !== i),
      logLevel: "warning",
    };
    return PROFILE_DIR && i === 1 && count > 1
      ? new ProfiledNode(opts, PROFILE_DIR)
      : new NodeProcess(opts);
  });
  for (const n of nodes) n.start();
  return {
    dir,
    nodes,
    genesisHash: genesisHash(genesis),
    senders: wallets,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function rpcBatch<T>(node: NodeProcess, calls: [string, unknown[]][]): Promise<T[]> {
  // A loaded node answers slowly; the benchmark reports that rather than failing on it.
  return batchCall<T>({ rpc: node.rpcUrl, dataDir: node.opts.dataDir }, calls, 180_000);
}

async function waitHeight(node: NodeProcess, height: number, timeoutMs: number): Promise<void> {
  await node.waitFor(
    async () => (await node.rpc<number>("getblockcount")) >= height,
    `height ${height}`,
    timeoutMs,
  );
}

/** Transfers from sender `s`, nonces `from`..`from + n - 1`, to a fixed sink. */
function signRange(net: Net, s: number, from: number, n: number, expiresAt: number): Uint8Array[] {
  const sink = addressHash(net.senders[(s + 1) % net.senders.length].publicKey);
  return Array.from({ length: n }, (_, k) =>
    signTransfer(net.senders[s], {
      genesisHash: net.genesisHash,
      nonce: from + k,
      recipient: sink,
      amount: 1_000n,
      fee: FEE_UNITS,
      expiresAt,
    }));
}

/** Transfers per `sendrawtransactions` call and calls in flight per node. */
const SUBMIT_CHUNK = 1_000;
const SUBMIT_PARALLEL = 2;

/** A client told `busy` waits this long before offering those transfers again. */
const BUSY_RETRY_MS = 200;

/**
 * Submits `txs` in `sendrawtransactions` calls, a few in flight; transfers refused `busy` (the
 * node's admission budget) are offered again after a pause, as a well-behaved client does.
 * Returns how many `busy` refusals it got.
 */
async function submit(node: NodeProcess, txs: Uint8Array[]): Promise<number> {
  const queue = [...txs];
  let busy = 0;
  let inFlight = 0;
  await Promise.all(Array.from({ length: SUBMIT_PARALLEL }, async () => {
    while (queue.length > 0 || inFlight > 0) {
      if (queue.length === 0) {
        await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
        continue;
      }
      const c = queue.splice(0, SUBMIT_CHUNK);
      inFlight++;
      const refused = await rpcBatch<{ status: string; reason?: string }[]>(node, [[
        "sendrawtransactions",
        [c.map(toHex)],
      ]]).then(
        ([out]) => c.filter((_, i) => out[i].reason === "busy"),
        (e) => {
          // A node over its admission budget refuses the whole call.
          if (!/busy/.test((e as Error).message)) throw e;
          return c;
        },
      ).finally(() => inFlight--);
      busy += refused.length;
      if (refused.length > 0) {
        queue.push(...refused);
        await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
      }
    }
  }));
  return busy;
}

/** One submitter per node: transfers queue up and leave in chunks, never too many in flight. */
class NodeFeeder {
  readonly #queue: Uint8Array[] = [];
  /** Refusals `busy` seen (each retried). */
  busy = 0;
  #running: Promise<void> | null = null;
  constructor(private readonly node: NodeProcess) {}
  push(txs: Uint8Array[]): void {
    this.#queue.push(...txs);
    this.#running ??= this.#drain().finally(() => (this.#running = null));
  }
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) this.busy += await submit(this.node, this.#queue.splice(0));
  }
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }
}

async function admission(opts: BenchOptions): Promise<BenchRow[]> {
  const senders = opts.quick ? 100 : ADMISSION_SENDERS;
  // A long interval: no block takes transfers out of the pool while it is measured.
  const net = await startNet(1, 600_000, senders);
  const rows: BenchRow[] = [];
  try {
    const node = net.nodes[0];
    await node.waitFor(async () => (await node.rpc<number>("getblockcount")) >= 0, "rpc", 60_000);
    opts.progress(`ledger: signing ${senders * ADMISSION_PER_SENDER} transfers...`);
    const plan = net.senders.map((_, s) => signRange(net, s, 0, ADMISSION_PER_SENDER, 1_000_000));
    // Senders interleaved, as a real flood arrives; each sender's transfers in nonce order.
    const txs = plan[0].flatMap((_, n) => plan.map((p) => p[n]));
    rows.push(await verifyBound(net, txs));
    opts.progress("ledger: admission on one node...");
    const t0 = performance.now();
    await submit(node, txs);
    await node.waitFor(
      async () => {
        const info = await node.rpc<{ size: number }>("getmempoolinfo");
        return info.size >= txs.length;
      },
      "every transfer pooled",
      120_000,
    );
    const seconds = (performance.now() - t0) / 1000;
    return [
      ...rows,
      benchRow(
        SUITE,
        "mempool admission, one node",
        txs.length / seconds,
        "tx/s",
        null,
        `${txs.length} transfers of ${senders} senders, sendrawtransactions of ${SUBMIT_CHUNK}, ` +
          `${SUBMIT_PARALLEL} in flight; signatures in the node's verify workers`,
      ),
    ];
  } finally {
    await net.stop();
  }
}

/** Transfers per job of the verify-bound measurement: the node's admission batch size. */
const VERIFY_BOUND_BATCH = 512;

/**
 * The machine's signature bound, measured now (the load of the moment applies to both): the
 * transfers' signatures checked in a verify pool of the node's default size, in this process,
 * with the node idle (its block interval is 600 s and nothing was submitted yet).
 */
async function verifyBound(net: Net, txs: Uint8Array[]): Promise<BenchRow> {
  const pool = new VerifyPool({ genesisHash: net.genesisHash });
  try {
    const t0 = performance.now();
    const jobs: Promise<boolean[]>[] = [];
    for (let i = 0; i < txs.length; i += VERIFY_BOUND_BATCH) {
      jobs.push(pool.verifyTransactions(txs.slice(i, i + VERIFY_BOUND_BATCH)));
    }
    const ok = (await Promise.all(jobs)).flat().filter(Boolean).length;
    const rate = ok / ((performance.now() - t0) / 1000);
    return benchRow(
      SUITE,
      "signature verify bound",
      rate,
      "tx/s",
      null,
      `${ok} transfer signatures in ${pool.size} verify workers (the node's default), jobs of ` +
        `${VERIFY_BOUND_BATCH}; the ceiling for any node's admission on this machine now`,
    );
  } finally {
    pool.close();
  }
}

export async function runLedgerBenchmarks(opts: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [name, run] of [["admission", admission], ["commit", commitAndSync]] as const) {
    if (opts.signal.aborted) break;
    try {
      rows.push(...await run(opts));
    } catch (e) {
      rows.push(errorRow(SUITE, name, "", e));
    }
  }
  return rows;
}

/** What one commit run measured. */
interface CommitRun {
  /** Transfers in blocks whose timestamp falls in the offered window, per second of it. */
  rate: number;
  blocksPerSec: number;
  blocksInWindow: number;
  seconds: number;
  /** Submitted per second of the window: the generator's own pace (below offered: it lagged). */
  submittedPerSec: number;
  latencies: number[];
  submitted: number;
  busy: number;
  maxInBlock: number;
  top: number;
  /** Masternode 1's consensus timeouts by step, and its mean proposal → commit time. */
  consensus: string;
}

/** Why heights were slow, from masternode 1's metrics: timeouts by step, proposal → commit. */
async function consensusNote(node: NodeProcess): Promise<string> {
  const text = await node.metrics();
  const timeouts: string[] = [];
  let sum = 0;
  let count = 0;
  for (const line of text.split("\n")) {
    const t = line.match(/^timenode_rounds_timed_out_total\{step="(\w+)"\} (\S+)/);
    if (t) timeouts.push(`${t[1]} ${t[2]}`);
    const s = line.match(/^timenode_commit_latency_seconds_sum (\S+)/);
    if (s) sum = Number(s[1]);
    const c = line.match(/^timenode_commit_latency_seconds_count (\S+)/);
    if (c) count = Number(c[1]);
  }
  const mean = count > 0 ? `${(1000 * sum / count).toFixed(0)} ms` : "n/a";
  return `mn1: timeouts ${timeouts.join(", ") || "none"}; proposal → commit mean ${mean}`;
}

/** One run on `net`: the open-loop flood, then the chain read back from masternode 0. */
async function commitRun(
  net: Net,
  opts: BenchOptions,
  windowMs: number,
  offeredPerSec: number,
): Promise<CommitRun> {
  await Promise.all(net.nodes.map((n) => waitHeight(n, 3, 120_000)));
  const perSender = Math.ceil(offeredPerSec * windowMs / 1000 / SENDERS);
  opts.progress(`ledger: signing ${perSender * SENDERS} transfers...`);
  const tip = await net.nodes[0].rpc<number>("getblockcount");
  const plan = net.senders.map((_, s) => signRange(net, s, 0, perSender, tip + 10_000));
  // Ids before the window: the generator's clock is for offering, not hashing.
  const idOf = new Map(plan.flat().map((tx) => [tx, transactionIdHex(tx)]));
  // Open loop: every 100 ms a slice of offeredPerSec / 10 transfers, round-robin over
  // senders (each in nonce order), sender s through node s % 4.
  const submittedAt = new Map<string, number>();
  const cursor = net.senders.map(() => 0);
  let nextSender = 0;
  const tickMs = 100;
  const perTick = offeredPerSec * tickMs / 1000;
  opts.progress(`ledger: offering ${offeredPerSec} tx/s for ${windowMs / 1000} s...`);
  const start = Date.now();
  const feeders = net.nodes.map((n) => new NodeFeeder(n));
  for (let tick = 0; Date.now() - start < windowMs && !opts.signal.aborted; tick++) {
    const byNode: Uint8Array[][] = net.nodes.map(() => []);
    const now = Date.now();
    for (let k = 0; k < perTick; k++) {
      const s = nextSender;
      nextSender = (nextSender + 1) % SENDERS;
      if (cursor[s] >= perSender) continue;
      const tx = plan[s][cursor[s]++];
      byNode[s % net.nodes.length].push(tx);
      submittedAt.set(idOf.get(tx)!, now);
    }
    byNode.forEach((txs, i) => {
      if (txs.length > 0) feeders[i].push(txs);
    });
    const wait = start + (tick + 1) * tickMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const windowEnd = Date.now();
  await Promise.all(feeders.map((f) => f.idle()));
  const end = Date.now();
  const busy = feeders.reduce((n, f) => n + f.busy, 0);
  opts.progress(
    `ledger: offered for ${(windowEnd - start) / 1000} s, all submitted after ` +
      `${(end - start) / 1000} s; draining...`,
  );
  // Let what is pooled drain, then read the chain.
  const lastHeight = await net.nodes[0].rpc<number>("getblockcount");
  await waitHeight(net.nodes[0], lastHeight + 5, 60_000);
  const top = await net.nodes[0].rpc<number>("getblockcount");
  const latencies: number[] = [];
  let inWindow = 0;
  let maxInBlock = 0;
  let blocksInWindow = 0;
  for (let h = 1; h <= top; h += 20) {
    const blocks = await rpcBatch<{ timestamp: number; transactions: { id: string }[] }>(
      net.nodes[0],
      Array.from({ length: Math.min(20, top - h + 1) }, (_, k) => ["getblock", [h + k]]),
    );
    for (const b of blocks) {
      maxInBlock = Math.max(maxInBlock, b.transactions.length);
      if (b.timestamp >= start && b.timestamp <= end) blocksInWindow++;
      for (const t of b.transactions) {
        const at = submittedAt.get(t.id);
        if (at === undefined) continue;
        latencies.push(b.timestamp - at);
        if (b.timestamp >= start && b.timestamp <= end) inWindow++;
      }
    }
  }
  const seconds = (end - start) / 1000;
  const consensus = await consensusNote(net.nodes[1]).catch((e) => `mn1 metrics: ${e}`);
  opts.progress(`ledger: ${consensus}`);
  return {
    rate: inWindow / seconds,
    blocksPerSec: blocksInWindow / seconds,
    blocksInWindow,
    seconds,
    submittedPerSec: submittedAt.size / ((windowEnd - start) / 1000),
    latencies,
    submitted: submittedAt.size,
    busy,
    maxInBlock,
    top,
    consensus,
  };
}

/** Commit runs of the full benchmark, each on a fresh network: the row reports their median. */
const COMMIT_RUNS = Number(Deno.env.get("LEDGER_COMMIT_RUNS") ?? 3);

function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

async function commitAndSync(opts: BenchOptions): Promise<BenchRow[]> {
  const windowMs = opts.quick ? QUICK_COMMIT_WINDOW_MS : COMMIT_WINDOW_MS;
  const runs = opts.quick ? 1 : COMMIT_RUNS;
  const done: CommitRun[] = [];
  let net: Net | null = null;
  const rows: BenchRow[] = [];
  try {
    // The saturation run first: the target runs' last network is the one the follower syncs.
    opts.progress(`ledger: saturation run (${SATURATION_OFFERED_PER_SEC}/s offered)...`);
    net = await startNet(4, 1_000, SENDERS);
    const saturated = await commitRun(net, opts, windowMs, SATURATION_OFFERED_PER_SEC);
    rows.push(benchRow(
      SUITE,
      `committed transfers, over-offered ${SATURATION_OFFERED_PER_SEC}/s, ${windowMs / 1000} s`,
      saturated.rate,
      "tx/s",
      null,
      `1 run; ${saturated.latencies.length} of ${saturated.submitted} included; ` +
        `${saturated.blocksPerSec.toFixed(2)} blocks/s; largest block ${saturated.maxInBlock}; ` +
        `${saturated.busy} busy retried; p50 ${percentile(saturated.latencies, 50).toFixed(0)} ms`,
    ));
    for (let r = 0; r < runs && !opts.signal.aborted; r++) {
      if (net) await net.stop();
      opts.progress(`ledger: commit run ${r + 1} of ${runs}...`);
      net = await startNet(4, 1_000, SENDERS);
      done.push(await commitRun(net, opts, windowMs, OFFERED_PER_SEC));
    }
    if (!net || done.length === 0) return rows;
    // The median run by committed rate: its latency and block rate are reported beside it.
    const byRate = [...done].sort((a, b) => a.rate - b.rate);
    const mid = byRate[Math.floor((byRate.length - 1) / 2)];
    const range = (f: (c: CommitRun) => number, digits = 0) =>
      done.length > 1
        ? `; ${done.length} runs: ${Math.min(...done.map(f)).toFixed(digits)} to ` +
          `${Math.max(...done.map(f)).toFixed(digits)}`
        : "";
    rows.push(
      benchRow(
        SUITE,
        `committed transfers, 4 masternodes, 1 s blocks, ${windowMs / 1000} s`,
        median(done.map((c) => c.rate)),
        "tx/s",
        { op: ">=", value: COMMIT_TARGET_PER_SEC },
        `median${range((c) => c.rate)}; offered ${OFFERED_PER_SEC}/s by ${SENDERS} senders via ` +
          `4 nodes, submitted ${mid.submittedPerSec.toFixed(0)}/s; ${mid.latencies.length} of ` +
          `${mid.submitted} included; largest block ${mid.maxInBlock}; ${mid.busy} busy retried`,
      ),
      benchRow(
        SUITE,
        "blocks committed while the flood lasts",
        median(done.map((c) => c.blocksPerSec)),
        "blocks/s",
        null,
        `median${range((c) => c.blocksPerSec, 2)}; the median run: ${mid.blocksInWindow} ` +
          `blocks in ${mid.seconds.toFixed(1)} s; 1 s interval (1/s unloaded); ${mid.consensus}`,
      ),
    );
    if (mid.latencies.length > 0) {
      rows.push(
        benchRow(
          SUITE,
          "submission → inclusion p50",
          percentile(mid.latencies, 50),
          "ms",
          null,
          "the median run",
        ),
        benchRow(
          SUITE,
          "submission → inclusion p99",
          percentile(mid.latencies, 99),
          "ms",
          null,
          "the median run",
        ),
      );
    }
    const top = done[done.length - 1].top;
    const included = done[done.length - 1].latencies.length;
    const maxInBlock = done[done.length - 1].maxInBlock;

    // A fresh follower syncs the chain just built from one masternode.
    opts.progress(`ledger: a fresh node syncs ${top} blocks...`);
    const followerDir = `${net.dir}/follower`;
    const followerPort = freePortRange(2);
    const follower = new NodeProcess({
      name: "follower",
      dataDir: followerDir,
      // Ports picked now: the ones spared at start-up may have been taken by other processes
      // during the minutes of the commit runs (a full run lost its sync row that way).
      p2pPort: followerPort,
      rpcPort: followerPort + 1,
      genesis: `${net.dir}/genesis.json`,
      peers: [net.nodes[0].p2p],
      logLevel: "warning",
    });
    const t0 = performance.now();
    follower.start();
    try {
      // A sync that fails is reported in its own row: the commit rows above stand.
      await waitHeight(follower, top, 300_000).catch((e) => {
        rows.push(errorRow(SUITE, "sync of the loaded chain", "", e));
        throw e;
      });
      const seconds = (performance.now() - t0) / 1000;
      rows.push(
        benchRow(
          SUITE,
          "sync of the loaded chain",
          top / seconds,
          "blocks/s",
          null,
          `${top} blocks from one peer, including start-up`,
        ),
        benchRow(
          SUITE,
          "sync of the loaded chain",
          included / seconds,
          "tx/s",
          null,
          `${included} transfers; blocks hold up to ${maxInBlock} (not full 2 MiB blocks)`,
        ),
      );
    } catch {
      // Reported above; the follower's last words say why.
      const last = follower.logs.slice(-3).map((e) => `${e.level} ${e.message}`);
      opts.progress(`ledger: follower's last log lines: ${last.join(" | ") || "none"}`);
    } finally {
      const code = await follower.stop();
      if (code !== 0) opts.progress(`ledger: the follower exited with code ${code}`);
    }
    return rows;
  } finally {
    await net?.stop();
  }
}
