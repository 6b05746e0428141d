/**
 * Writes a long valid chain to disk so integration tests and benchmarks can start a real node
 * that serves it:
 *
 *   deno run -A tests/support/make_chain.ts --dir D --blocks N [--validators 4] [--body-bytes 1000]
 *     [--network testchain] [--block-interval-ms 1000] [--force]
 *
 * Produces `D/genesis.json`, `D/data/chain.db` (the data dir of a node) and `D/keys/<i>.json`
 * (the test validators' node key files), then prints one JSON line: tip height, tip hash and
 * genesis hash (hex).
 *
 * Owns: that layout. Must never: write blocks that skip validation (they go through `Chain`),
 * or overwrite an existing chain without `--force`.
 */
import { createStateMachine } from "../../state/state.ts";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { toHex } from "../../encoding/binary.ts";
import { encodeKeyFile } from "../../crypto/node_key.ts";
import { Chain } from "../../chain/chain.ts";
import { chainDbPath, ChainStore } from "../../chain/store.ts";
import { genesisToJson } from "../../chain/genesis_tool.ts";
import type { Genesis } from "../../chain/genesis.ts";
import type { StateMachine } from "../../chain/api.ts";
import { ChainBuilder } from "./chain_builder.ts";

/** Blocks built and applied per step: one SQLite transaction, bounded memory for big bodies. */
const BLOCKS_PER_STEP = 1_000;

export interface MakeChainOptions {
  dir: string;
  blocks: number;
  validators?: number;
  /** Signatures per certificate (the first `signers` of the set); default every validator. */
  signers?: number;
  bodyBytes?: number;
  network?: string;
  blockIntervalMs?: number;
  /** Replace an existing `D/data` instead of refusing. */
  force?: boolean;
  /**
   * Defaults to the node's own state machine (state/state.ts), so a node process started
   * on the result finds the state it would have computed itself.
   */
  stateMachine?: (genesis: Genesis) => StateMachine;
}

export interface MakeChainSummary {
  tipHeight: number;
  tipHash: string;
  genesisHash: string;
  dataDir: string;
  genesisFile: string;
  elapsedMs: number;
}

export async function makeChain(opts: MakeChainOptions): Promise<MakeChainSummary> {
  const started = performance.now();
  const dataDir = join(opts.dir, "data");
  const genesisFile = join(opts.dir, "genesis.json");
  if (await exists(chainDbPath(dataDir))) {
    if (!opts.force) throw new Error(`${chainDbPath(dataDir)} exists; pass --force to replace it`);
    await Deno.remove(dataDir, { recursive: true });
  }
  const builder = ChainBuilder.create({
    validators: opts.validators,
    bodyBytes: opts.bodyBytes,
    network: opts.network,
    blockIntervalMs: opts.blockIntervalMs,
    stateMachine: opts.stateMachine ?? createStateMachine,
  });
  await Deno.mkdir(join(opts.dir, "keys"), { recursive: true });
  await Deno.writeTextFile(genesisFile, genesisToJson(builder.genesis));
  for (const [i, key] of builder.keys.entries()) {
    await Deno.writeTextFile(join(opts.dir, "keys", `${i}.json`), encodeKeyFile(key), {
      mode: 0o600,
    });
  }
  const chain = new Chain({
    store: ChainStore.open(dataDir, builder.genesisHash),
    genesis: builder.genesis,
    stateMachine: builder.stateMachine,
  });
  try {
    for (let done = 0; done < opts.blocks;) {
      const batch = builder.build(Math.min(BLOCKS_PER_STEP, opts.blocks - done), {
        signers: opts.signers,
      });
      // The builder signed these itself; skipping re-verification keeps big chains fast, while
      // every other check still runs.
      const { applied, error } = chain.applyBlocks(batch, { signaturesVerified: true });
      if (error) throw error;
      done += applied;
    }
    const tip = chain.tip();
    return {
      tipHeight: tip.height,
      tipHash: toHex(tip.hash),
      genesisHash: toHex(builder.genesisHash),
      dataDir,
      genesisFile,
      elapsedMs: Math.round(performance.now() - started),
    };
  } finally {
    chain.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function intFlag(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer >= ${min}`);
  }
  return n;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        dir: { type: "string" },
        blocks: { type: "string" },
        validators: { type: "string" },
        "body-bytes": { type: "string" },
        network: { type: "string" },
        "block-interval-ms": { type: "string" },
        force: { type: "boolean" },
      },
      strict: true,
    });
    if (!values.dir || values.blocks === undefined) {
      throw new Error(
        "usage: make_chain.ts --dir D --blocks N [--validators 4] [--body-bytes 1000] " +
          "[--network testchain] [--block-interval-ms 1000] [--force]",
      );
    }
    const summary = await makeChain({
      dir: values.dir,
      blocks: intFlag(values.blocks, "blocks", 0, 0),
      validators: intFlag(values.validators, "validators", 4, 1),
      bodyBytes: intFlag(values["body-bytes"], "body-bytes", 1_000, 0),
      network: values.network,
      blockIntervalMs: intFlag(values["block-interval-ms"], "block-interval-ms", 1_000, 100),
      force: values.force ?? false,
    });
    console.log(JSON.stringify(summary));
  } catch (e) {
    console.error(`make_chain: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
