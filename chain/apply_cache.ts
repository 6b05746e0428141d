/**
 * The state writes of blocks already judged valid, kept so the block is not run through the
 * state machine a second time when it commits. A validator judges each proposal once
 * (`Chain.checkProposal`) and, a moment later, applies the same block with its certificate; with
 * full blocks the state machine is most of the cost of both.
 *
 * The state after a committed block is a function of that block's hash (the chain is a hash
 * chain from genesis), so a result computed on parent P holds for the same block on P wherever
 * and whenever it is applied. An entry is keyed by the block's hash and used only on the same
 * parent and for the very same body objects: the header hash binds the body only through
 * `payloadRoot`, which the cache does not recompute, so a block with the same header but another
 * body (a relay that swapped it) never matches. Decoded blocks are never mutated in place.
 *
 * Owns: those entries, bounded by MAX_ENTRIES, and dropping the ones whose parent is no longer
 * the tip.
 * Must never: return writes for a different block or a different parent, hold writes of a block
 * that failed its check, or grow without bound.
 */
import type { StateWrites } from "./api.ts";
import type { Block } from "./block.ts";

/**
 * Proposals of one height that one node judges: one per round, and a height that needs more
 * than a few rounds is already far off its normal path. Writes of a full block take a few
 * hundred KiB, so a handful of entries is cheap.
 */
export const MAX_ENTRIES = 8;

interface Entry {
  parent: string;
  body: Body;
  writes: StateWrites;
}

/** What the state machine reads beside the header, compared by identity. */
type Body = Pick<Block, "records" | "transactions" | "lastCommit">;

function sameBody(a: Body, b: Body): boolean {
  return a.records === b.records && a.transactions === b.transactions &&
    a.lastCommit === b.lastCommit;
}

export class ApplyCache {
  /** Block key → entry; Map order is insertion order, so the first key is the oldest. */
  readonly #entries = new Map<string, Entry>();
  #hits = 0;
  #misses = 0;

  get size(): number {
    return this.#entries.size;
  }

  /** Lookups that found an entry, and lookups that did not (for the bench and tests). */
  get stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  /**
   * Remembers that block `blockKey` (hex header hash) with `body`, applied on `parent`, produced
   * `writes`. Neither side may change `writes` afterwards.
   */
  put(parent: string, blockKey: string, body: Body, writes: StateWrites): void {
    this.#entries.delete(blockKey);
    const { records, transactions, lastCommit } = body;
    this.#entries.set(blockKey, { parent, body: { records, transactions, lastCommit }, writes });
    while (this.#entries.size > MAX_ENTRIES) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** The writes of `blockKey` with `body` on `parent`, if they were computed; used up. */
  take(parent: string, blockKey: string, body: Body): StateWrites | undefined {
    const e = this.#entries.get(blockKey);
    if (e === undefined || e.parent !== parent || !sameBody(e.body, body)) {
      this.#misses++;
      return undefined;
    }
    this.#entries.delete(blockKey);
    this.#hits++;
    return e.writes;
  }

  /** The tip is now `tip`: entries computed on any other parent can never be used again. */
  retainParent(tip: string): void {
    for (const [key, e] of this.#entries) {
      if (e.parent !== tip) this.#entries.delete(key);
    }
  }
}
