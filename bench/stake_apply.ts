/**
 * What the stake rules cost per applied block: the state machine alone (no store, no
 * signatures), over an in-memory state, for sets of 4, 100 and 1,000 bronze members whose
 * blocks carry a `lastCommit` in which a tenth of the members are missing (downtime counting,
 * miss bitmaps, jails and the reward split by weight all run).
 *
 *   deno run -A bench/stake_apply.ts [--blocks N]
 *
 * Prints one JSON line per set size: microseconds per block (median of the timed blocks).
 *
 * Owns: that measurement. Must never: change how `apply` works (it calls the production state
 * machine) or assert a timing (docs/testing.md: timings are measured here, not tested).
 */
import { parseArgs } from "node:util";
import { sha256 } from "../crypto/hash.ts";
import { keyPairFromSeed } from "../crypto/ed25519.ts";
import { type Block, payloadRoot } from "../chain/block.ts";
import { genesisHash } from "../chain/genesis.ts";
import { makeDevnetGenesis } from "../chain/genesis_tool.ts";
import type { StateView } from "../chain/api.ts";
import { createStateMachine } from "../state/state.ts";

/** Blocks applied before timing, so the JIT has compiled the hot path. */
const WARMUP_BLOCKS = 50;
const DEFAULT_BLOCKS = 500;
/** One member in this many misses each height: enough to keep bitmaps written and jails coming. */
const MISSING_ONE_IN = 10;

function measure(members: number, blocks: number): { members: number; usPerBlock: number } {
  const keys = Array.from(
    { length: members },
    (_, i) => keyPairFromSeed(sha256(new TextEncoder().encode(`stake-bench/${i}`))),
  );
  const genesis = makeDevnetGenesis({
    network: "stakebench",
    blockIntervalMs: 1_000,
    genesisTime: 1_000_000_000,
    nodes: keys.map((k, i) => ({ publicKey: k.publicKey, address: `127.0.0.1:${20_000 + i}` })),
  });
  const sm = createStateMachine(genesis);
  const chainId = genesisHash(genesis);
  const entries = new Map<string, Uint8Array>();
  const view: StateView = { get: (k) => entries.get(k) };
  const times: number[] = [];
  for (let height = 1; height <= WARMUP_BLOCKS + blocks; height++) {
    const set = sm.validatorSetFor(view, height - 1, height)!;
    const previous = height > 1 ? sm.validatorSetFor(view, height - 1, height - 1)! : undefined;
    const block: Block = {
      header: {
        version: 2,
        chainId,
        height,
        prevHash: new Uint8Array(32),
        timestamp: genesis.genesisTime + height * 1_000,
        proposer: set.voting[height % set.voting.length].nodeId,
        round: 0,
        payloadRoot: payloadRoot([], []),
        validatorSetHash: set.hash,
      },
      records: [],
    };
    if (previous) {
      block.lastCommit = {
        height: height - 1,
        round: 0,
        blockHash: new Uint8Array(32),
        signatures: previous.voting
          .filter((_, i) => (i + height) % MISSING_ONE_IN !== 0)
          .map((v) => ({ validator: v.nodeId, signature: new Uint8Array(64) })),
      };
    }
    const start = performance.now();
    const writes = sm.apply(view, block);
    const elapsed = performance.now() - start;
    for (const [k, v] of writes) v === null ? entries.delete(k) : entries.set(k, v);
    if (height > WARMUP_BLOCKS) times.push(elapsed);
  }
  times.sort((a, b) => a - b);
  return { members, usPerBlock: Math.round(times[Math.floor(times.length / 2)] * 1_000) };
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { blocks: { type: "string" } } });
  const blocks = Number(values.blocks ?? DEFAULT_BLOCKS);
  for (const members of [4, 100, 1_000]) console.log(JSON.stringify(measure(members, blocks)));
}
