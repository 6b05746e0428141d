/**
 * Where sync time goes, measured in one process over the blocks of a made chain: decoding,
 * signature checking (one thread, then the sync verify pool), and applying (decode + validate +
 * state machine + SQLite) into a fresh store, with the apply time split by stage.
 *
 *   deno run -A bench/sync_profile.ts --dir D [--blocks N] [--workers 2]
 *
 * `D` is a `tests/support/make_chain.ts` output (`D/genesis.json`, `D/data`). Standalone, it
 * prints the rows as JSON; `bench/sync.ts` calls `profileSync` for the same rows in the table.
 *
 * Owns: those stage timings. Must never: write to the made chain (it is only read), leave a
 * worker, a store or a temp dir behind, or replace how sync does the work: every stage calls
 * the production function the node calls.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { decodeCommittedBlock } from "../chain/block.ts";
import type { CommittedBlock } from "../chain/block.ts";
import { verifyCertificateSignatures } from "../chain/certificate.ts";
import { Chain } from "../chain/chain.ts";
import { ChainStore } from "../chain/store.ts";
import { genesisHash, loadGenesisFile } from "../chain/genesis.ts";
import type { StateMachine } from "../chain/api.ts";
import { createStateMachine } from "../state/state.ts";
import { APPLY_CHUNK_BLOCKS, REQUEST_BATCH_BLOCKS } from "../sync/constants.ts";
import { VerifyPool } from "../sync/verify_pool.ts";
import { checkEncodedBlocks } from "../sync/verify_worker.ts";
import { type BenchRow, benchRow, formatNumber } from "./table.ts";

const SUITE = "sync";
/** Rows read per store query: the store's own cap on one range read. */
const READ_CHUNK_BLOCKS = 10_000;
/** No byte cap on the reads: the bench wants every block, and 20k × 1.4 KB is small. */
const READ_MAX_BYTES = 1 << 30;
/** Blocks run through each stage once before timing, so the JIT has compiled the hot path. */
const WARMUP_BLOCKS = 500;
/** Workers of the pool row: the machine's two cores, as the issue states the 43k sigs/s for. */
const DEFAULT_POOL_WORKERS = 2;

export interface ProfileOptions {
  /** A make_chain.ts output directory. */
  dir: string;
  /** Blocks to profile from height 1; default all of them. */
  blocks?: number;
  workers?: number;
  progress?: (line: string) => void;
}

/** One stage's cost: total wall time over `blocks`. */
export interface StageTiming {
  stage: string;
  blocks: number;
  ms: number;
  note: string;
}

export async function profileSync(opts: ProfileOptions): Promise<BenchRow[]> {
  return (await measureStages(opts)).map(stageRow);
}

export function stageRow(t: StageTiming): BenchRow {
  const perBlockUs = (t.ms * 1000) / t.blocks;
  return benchRow(
    SUITE,
    t.stage,
    (t.blocks / t.ms) * 1000,
    "blocks/s",
    null,
    `${formatNumber(perBlockUs)} µs/block over ${t.blocks} blocks${t.note ? `; ${t.note}` : ""}`,
  );
}

export async function measureStages(opts: ProfileOptions): Promise<StageTiming[]> {
  const progress = opts.progress ?? (() => {});
  const genesis = await loadGenesisFile(join(opts.dir, "genesis.json"));
  const gHash = genesisHash(genesis);
  const encoded = readEncoded(join(opts.dir, "data"), gHash, opts.blocks);
  const n = encoded.length;
  if (n === 0) throw new Error(`no blocks in ${opts.dir}/data`);
  const bytes = encoded.reduce((s, b) => s + b.length, 0);
  progress(`sync profile: ${n} blocks, ${formatNumber(bytes / n)} B each`);
  const out: StageTiming[] = [];

  // Decode alone: what the main thread pays per block before applying it.
  timeIt(() => encoded.slice(0, WARMUP_BLOCKS).forEach((b) => decodeCommittedBlock(b)));
  let decoded: CommittedBlock[] = [];
  const decodeMs = timeIt(() => (decoded = encoded.map((b) => decodeCommittedBlock(b))));
  out.push({
    stage: "decodeCommittedBlock",
    blocks: n,
    ms: decodeMs,
    note: "copying fields; in the workers now, not on the main thread",
  });

  const sigs = decoded[0].certificate.signatures.length;
  timeIt(() => {
    for (const cb of decoded.slice(0, WARMUP_BLOCKS)) {
      verifyCertificateSignatures(gHash, cb.certificate);
    }
  });
  const verifyMs = timeIt(() => {
    for (const cb of decoded) {
      if (!verifyCertificateSignatures(gHash, cb.certificate)) throw new Error("bad signature");
    }
  });
  out.push({
    stage: "verifyCertificateSignatures, 1 thread",
    blocks: n,
    ms: verifyMs,
    note: `${sigs} sigs/block = ${formatNumber((n * sigs * 1000) / verifyMs)} sigs/s`,
  });
  decoded = [];

  // What one worker does per block (decode + hash + signatures), on this thread.
  const checkMs = timeIt(() => {
    const c = checkEncodedBlocks(gHash, 1, encoded);
    if (c.okCount !== n) throw new Error(`block ${c.okCount + 1} failed: ${c.failure?.reason}`);
  });
  out.push({
    stage: "worker check (decode+hash+sigs), 1 thread",
    blocks: n,
    ms: checkMs,
    note: "checkEncodedBlocks on the main thread",
  });

  const workers = opts.workers ?? DEFAULT_POOL_WORKERS;
  progress(`sync profile: verify pool, ${workers} workers`);
  out.push(await timePool(gHash, encoded, workers));

  progress("sync profile: applying into a fresh store");
  out.push(...await timeApply(genesis, encoded));
  return out;
}

export function readEncoded(dataDir: string, gHash: Uint8Array, limit?: number): Uint8Array[] {
  const store = ChainStore.open(dataDir, gHash);
  try {
    const top = Math.min(store.height(), limit ?? Infinity);
    const out: Uint8Array[] = [];
    while (out.length < top) {
      const want = Math.min(READ_CHUNK_BLOCKS, top - out.length);
      const got = store.getEncodedRange(out.length + 1, want, READ_MAX_BYTES);
      if (got.length === 0) break;
      out.push(...got);
    }
    return out;
  } finally {
    store.close();
  }
}

/**
 * The verify bound: batches of 500 all handed to the pool at once (sync keeps up to 16 requests
 * in flight), so the workers never wait for the main thread.
 */
export async function timePool(
  gHash: Uint8Array,
  encoded: readonly Uint8Array[],
  workers: number,
): Promise<StageTiming> {
  const pool = new VerifyPool({ genesisHash: gHash, workers });
  try {
    // Warm-up: worker start-up (module load, JIT) is paid once per node, not per block.
    await Promise.all(
      Array.from({ length: workers }, () => pool.verify(1, encoded.slice(0, WARMUP_BLOCKS))),
    );
    const started = performance.now();
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < encoded.length; i += REQUEST_BATCH_BLOCKS) {
      const batch = encoded.slice(i, i + REQUEST_BATCH_BLOCKS);
      batches.push(
        pool.verify(i + 1, batch).then((c) => {
          if (c.okCount !== batch.length) throw new Error(`pool rejected a block near ${i + 1}`);
        }),
      );
    }
    await Promise.all(batches);
    const ms = performance.now() - started;
    return {
      stage: `VerifyPool, ${workers} workers`,
      blocks: encoded.length,
      ms,
      note: `batches of ${REQUEST_BATCH_BLOCKS}, all in flight; includes packing and transfer`,
    };
  } finally {
    pool.close();
  }
}

/**
 * Decode + `Chain.applyBlocks(signaturesVerified)` in the service's chunks, with the store's
 * write and the state machine timed through wrappers, so the apply total splits into stages.
 */
async function timeApply(
  genesis: Awaited<ReturnType<typeof loadGenesisFile>>,
  encoded: readonly Uint8Array[],
): Promise<StageTiming[]> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-bench-apply-" });
  const gHash = genesisHash(genesis);
  const store = ChainStore.open(dir, gHash);
  let sqliteMs = 0;
  const append = store.appendBlocks.bind(store);
  store.appendBlocks = (entries) => {
    const t = performance.now();
    append(entries);
    sqliteMs += performance.now() - t;
  };
  const real = createStateMachine(genesis);
  let setMs = 0;
  let stateMs = 0;
  const timed: StateMachine = {
    validatorSetFor: (view, tip, height) => {
      const t = performance.now();
      const set = real.validatorSetFor(view, tip, height);
      setMs += performance.now() - t;
      return set;
    },
    apply: (view, block) => {
      const t = performance.now();
      try {
        return real.apply(view, block);
      } finally {
        stateMs += performance.now() - t;
      }
    },
  };
  const chain = new Chain({ store, genesis, stateMachine: timed });
  try {
    // What the workers hand the main thread: the bytes with their hashes (not timed here).
    const checked = checkEncodedBlocks(gHash, 1, encoded, undefined, { fields: "view" });
    if (checked.okCount !== encoded.length) throw new Error("a made block failed its check");
    let decodeMs = 0;
    let applyMs = 0;
    const n = encoded.length;
    for (let i = 0; i < n; i += APPLY_CHUNK_BLOCKS) {
      const t0 = performance.now();
      const items = checked.blocks.slice(i, i + APPLY_CHUNK_BLOCKS).map((b) => ({
        cb: decodeCommittedBlock(b.encoded, "view"),
        encoded: b.encoded,
        workerHash: b.hash,
      }));
      const t1 = performance.now();
      const r = chain.applyBlocks(items, { signaturesVerified: true });
      const t2 = performance.now();
      if (r.error) throw r.error;
      decodeMs += t1 - t0;
      applyMs += t2 - t1;
    }
    const checksMs = applyMs - sqliteMs - setMs - stateMs;
    const chunks = `chunks of ${APPLY_CHUNK_BLOCKS}, one transaction each`;
    return [
      {
        stage: "apply total (decode as views + applyBlocks)",
        blocks: n,
        ms: decodeMs + applyMs,
        note: `${chunks}; fresh store; worker-checked blocks: the main thread's share`,
      },
      { stage: "  apply: decode (views)", blocks: n, ms: decodeMs, note: "" },
      {
        stage: "  apply: checks against the tip",
        blocks: n,
        ms: checksMs,
        note:
          "checkBlock (header, link, set, quorum); decode, hash and payload root were the worker's",
      },
      { stage: "  apply: validatorSetFor", blocks: n, ms: setMs, note: "state lookups" },
      { stage: "  apply: state machine", blocks: n, ms: stateMs, note: "records, rewards" },
      {
        stage: "  apply: SQLite appendBlocks",
        blocks: n,
        ms: sqliteMs,
        note: "insert block + state writes, COMMIT (WAL, synchronous=NORMAL)",
      },
    ];
  } finally {
    chain.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function timeIt(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dir: { type: "string" },
      blocks: { type: "string" },
      workers: { type: "string" },
    },
    strict: true,
  });
  if (!values.dir) {
    console.error("usage: sync_profile.ts --dir D [--blocks N] [--workers 2]");
    Deno.exit(2);
  }
  const timings = await measureStages({
    dir: values.dir,
    blocks: values.blocks ? Number(values.blocks) : undefined,
    workers: values.workers ? Number(values.workers) : undefined,
    progress: (l) => console.error(l),
  });
  for (const t of timings) {
    console.log(
      `${t.stage.padEnd(44)} ${formatNumber((t.blocks / t.ms) * 1000).padStart(8)} blocks/s ` +
        `${formatNumber((t.ms * 1000) / t.blocks).padStart(6)} µs/block  ${t.note}`,
    );
  }
}
