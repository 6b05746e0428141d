/**
 * How a synced block's cost grows with its certificate and its body, in one process: per block,
 * what a verify worker does (`checkEncodedBlocks`: decode, payload root, hash, signatures) and
 * what the main thread then does (decoding as views and `Chain.applyBlocks` of the worker-checked
 * blocks into a fresh store: checks against the tip, state machine, SQLite). Each point is the median of 3 runs with
 * min and max; the predicted catch-up of a 2-core machine is printed beside the verify bound.
 *
 *   deno run -A bench/sync_curve.ts [--quick] [--plot DIR]   # DIR/sync_cost_*.svg
 *
 * Owns: those two curves and their charts. Must never: replace how sync does the work (it calls
 * the functions the node calls), or leave a store or a temp dir behind.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { decodeCommittedBlock } from "../chain/block.ts";
import { Chain } from "../chain/chain.ts";
import { ChainStore } from "../chain/store.ts";
import { createStateMachine } from "../state/state.ts";
import { APPLY_CHUNK_BLOCKS } from "../sync/constants.ts";
import { checkEncodedBlocks } from "../sync/verify_worker.ts";
import { ChainBuilder } from "../tests/support/chain_builder.ts";
import { formatNumber, median } from "./table.ts";
import { lineChart, type PlotPoint } from "./plot.ts";

/** Set sizes of the certificate curve; ⌊2n/3⌋ + 1 of them sign, the smallest quorum. */
const SET_SIZES = [4, 10, 25, 50, 100];
/** Body sizes of the block-size curve (bytes of filler records), 4 validators. */
const BODY_SIZES = [0, 4_096, 16_384, 65_536, 262_144];
const DEFAULT_BODY_BYTES = 1_000;
const RUNS = 3;
/** Blocks per point: enough for stable per-block times, few enough to sign 67 × each quickly. */
const BLOCKS = { full: 300, quick: 60 };
/** Cores of the machine the bound is stated for: the verify pool's 2 workers. */
const CORES = 2;

interface Point {
  x: number;
  sigs: number;
  bytes: number;
  /** µs per block, one entry per run. */
  workerUs: number[];
  mainUs: number[];
}

async function measure(validators: number, bodyBytes: number, blocks: number): Promise<Point> {
  const signers = Math.floor((2 * validators) / 3) + 1;
  const builder = ChainBuilder.create({ validators, bodyBytes, stateMachine: createStateMachine });
  const built = builder.build(blocks, { signers });
  const encoded = built.map((b) => b.encoded);
  const workerUs: number[] = [];
  const mainUs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    const check = checkEncodedBlocks(builder.genesisHash, 1, encoded, undefined, {
      fields: "view",
    });
    const t1 = performance.now();
    if (check.okCount !== blocks) throw new Error(`block ${check.okCount + 1} failed its check`);
    workerUs.push(((t1 - t0) * 1000) / blocks);
    const dir = await Deno.makeTempDir({ prefix: "timenode-bench-curve-" });
    const chain = new Chain({
      store: ChainStore.open(dir, builder.genesisHash),
      genesis: builder.genesis,
      stateMachine: createStateMachine(builder.genesis),
    });
    try {
      let ms = 0;
      for (let i = 0; i < blocks; i += APPLY_CHUNK_BLOCKS) {
        const t = performance.now();
        const items = check.blocks.slice(i, i + APPLY_CHUNK_BLOCKS).map((b) => ({
          cb: decodeCommittedBlock(b.encoded, "view"),
          encoded: b.encoded,
          workerHash: b.hash,
        }));
        const r = chain.applyBlocks(items, { signaturesVerified: true });
        ms += performance.now() - t;
        if (r.error) throw r.error;
      }
      mainUs.push((ms * 1000) / blocks);
    } finally {
      chain.close();
      await Deno.remove(dir, { recursive: true });
    }
  }
  return { x: 0, sigs: signers, bytes: encoded[0].length, workerUs, mainUs };
}

function stats(xs: number[]): string {
  return `${formatNumber(median(xs))} (${formatNumber(Math.min(...xs))}–${
    formatNumber(Math.max(...xs))
  })`;
}

/**
 * What 2 cores allow: the verify bound (both cores verifying) and the catch-up when the main
 * thread's work shares the same 2 cores, blocks/s.
 */
function predicted(p: Point): { bound: number; catchUp: number } {
  const w = median(p.workerUs);
  const m = median(p.mainUs);
  // Verification is spread over the cores; the main thread's share runs beside it.
  return { bound: (CORES * 1e6) / w, catchUp: (CORES * 1e6) / (w + m) };
}

function printTable(title: string, column: string, points: Point[]): void {
  console.log(`\n${title} (µs per block, median of ${RUNS} runs, min–max)`);
  console.log(
    `${column.padEnd(12)} ${"sigs".padStart(4)} ${"bytes".padStart(8)}  ${"worker".padEnd(20)} ${
      "main thread".padEnd(20)
    } bound/s   catch-up/s  ratio`,
  );
  for (const p of points) {
    const { bound, catchUp } = predicted(p);
    console.log(
      `${String(p.x).padEnd(12)} ${String(p.sigs).padStart(4)} ${
        formatNumber(p.bytes).padStart(8)
      }  ${stats(p.workerUs).padEnd(20)} ${stats(p.mainUs).padEnd(20)} ${
        formatNumber(bound).padStart(7)
      }  ${formatNumber(catchUp).padStart(10)}  ${formatNumber(catchUp / bound)}`,
    );
  }
}

function series(points: Point[], pick: (p: Point) => number[]): PlotPoint[] {
  return points.map((p) => {
    const v = pick(p);
    return { x: p.x, y: median(v), min: Math.min(...v), max: Math.max(...v) };
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean" }, plot: { type: "string" } },
    strict: true,
  });
  const blocks = values.quick ? BLOCKS.quick : BLOCKS.full;
  console.log(
    `sync cost curves: ${blocks} blocks per point, load average ${
      Deno.loadavg().map((l) => l.toFixed(1)).join(" ")
    } at the start`,
  );
  const bySet: Point[] = [];
  for (const n of SET_SIZES) {
    console.error(`curve: ${n} validators...`);
    bySet.push({ ...await measure(n, DEFAULT_BODY_BYTES, blocks), x: n });
  }
  printTable("by validator set (1 KB bodies)", "validators", bySet);
  const byBody: Point[] = [];
  for (const bytes of BODY_SIZES) {
    console.error(`curve: ${bytes} body bytes...`);
    byBody.push({ ...await measure(4, bytes, blocks), x: bytes / 1024 });
  }
  printTable("by body size (4 validators, 3 signatures)", "body KiB", byBody);
  if (values.plot) {
    await Deno.mkdir(values.plot, { recursive: true });
    const charts = [
      {
        file: "sync_cost_by_set.svg",
        points: bySet,
        title: "Sync cost per block by validator set (⌊2n/3⌋+1 signatures)",
        xLabel: "validators in the set",
      },
      {
        file: "sync_cost_by_body.svg",
        points: byBody,
        title: "Sync cost per block by body size (4 validators)",
        xLabel: "body KiB",
      },
    ];
    for (const c of charts) {
      await Deno.writeTextFile(
        join(values.plot, c.file),
        lineChart({
          title: c.title,
          xLabel: c.xLabel,
          yLabel: "µs per block (median of 3, min–max bars)",
          series: [
            {
              name: "verify worker (decode, hash, signatures)",
              points: series(c.points, (p) => p.workerUs),
            },
            {
              name: "main thread (checks, state, SQLite)",
              points: series(c.points, (p) => p.mainUs),
            },
          ],
        }),
      );
    }
    console.log(`\ncharts written to ${values.plot}`);
  }
}
