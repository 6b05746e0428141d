/**
 * The chain: the validated, stored sequence of committed blocks and the state they produce.
 * Implements `ChainApi` for sync, consensus and RPC.
 *
 * Owns: the in-memory tip, the apply path (validate with chain/verify.ts, run the state machine,
 * store with chain/store.ts), the judging of proposals (`checkProposal`, whose state writes
 * chain/apply_cache.ts keeps for the commit) and the `onBlockApplied` notifications.
 * Must never: store a block that failed any check, let a batch validate differently from the
 * same blocks applied one by one, move the tip before the store committed, or let a throwing
 * subscriber undo or interrupt an applied block.
 */
import { getLogger } from "@logtape/logtape";
import { bytesEqual, ByteWriter, DecodeError, fromHex, toHex } from "../encoding/binary.ts";
import {
  type Block,
  blockHash,
  type CommittedBlock,
  decodeCommittedBlock,
  writeBlock,
  writeCertificate,
} from "./block.ts";
import { type Genesis, genesisHash } from "./genesis.ts";
import type { ValidatorSet } from "./validators.ts";
import {
  type ApplyItem,
  type ChainApi,
  type ChainTip,
  InvalidBlockError,
  type StateMachine,
  type StateView,
  type StateWrites,
} from "./api.ts";
import { checkBlock, MAX_FUTURE_DRIFT_MS } from "./verify.ts";
import { ApplyCache } from "./apply_cache.ts";
import type { ChainStore, IndexedTx, StoreEntry } from "./store.ts";
import { transactionsOf } from "./block.ts";
import { addressOf, encodeAddress } from "../state/address.ts";
import { decodeTransactionOnce, transactionIdsOf } from "../state/transaction.ts";

/**
 * Blocks per SQLite transaction inside one `applyBlocks` call. A sync batch (≤ 500 blocks) fits
 * in one; the cap only bounds WAL growth and pending memory if a caller passes far more.
 */
const MAX_BLOCKS_PER_TRANSACTION = 2_000;
/** Encoded bytes per transaction, for the same reason (a few max-size blocks). */
const MAX_BYTES_PER_TRANSACTION = 64 * 1024 * 1024;

const log = getLogger(["timenode", "chain"]);

export interface ChainOptions {
  store: ChainStore;
  genesis: Genesis;
  stateMachine: StateMachine;
  /** Clock for the future-timestamp bound; injected so tests control it. */
  now?: () => number;
}

type AppliedHandler = (cb: CommittedBlock, hash: Uint8Array) => void;

/** Committed state with the not-yet-committed writes of earlier blocks in the batch on top. */
class OverlayView implements StateView {
  readonly pending = new Map<string, Uint8Array | null>();
  constructor(private readonly base: StateView) {}
  get(key: string): Uint8Array | undefined {
    if (this.pending.has(key)) return this.pending.get(key) ?? undefined;
    return this.base.get(key);
  }
  merge(writes: StateWrites): void {
    for (const [k, v] of writes) this.pending.set(k, v);
  }
}

export class Chain implements ChainApi {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  readonly #store: ChainStore;
  readonly #stateMachine: StateMachine;
  readonly #now: () => number;
  readonly #handlers: AppliedHandler[] = [];
  readonly #committedView: StateView;
  /** Reused to compare a caller's `encoded` bytes with the block without allocating. */
  readonly #writer = new ByteWriter(4096);
  /** State writes of proposals judged on the current tip, for their commit. */
  readonly #applyCache = new ApplyCache();
  #tip: ChainTip;

  constructor(opts: ChainOptions) {
    this.genesis = opts.genesis;
    this.genesisHash = genesisHash(opts.genesis);
    if (!bytesEqual(opts.store.genesisHash, this.genesisHash)) {
      throw new Error(
        `chain store was opened for genesis ${toHex(opts.store.genesisHash)}, ` +
          `not ${toHex(this.genesisHash)}`,
      );
    }
    this.#store = opts.store;
    this.#stateMachine = opts.stateMachine;
    this.#now = opts.now ?? Date.now;
    this.#committedView = { get: (key) => this.#store.getState(key) };
    this.#tip = opts.store.tip() ??
      Object.freeze({ height: 0, hash: this.genesisHash, timestamp: opts.genesis.genesisTime });
  }

  tip(): ChainTip {
    return this.#tip;
  }

  getBlock(height: number): CommittedBlock | undefined {
    const encoded = this.#store.getEncoded(height);
    return encoded === undefined ? undefined : decodeCommittedBlock(encoded);
  }

  getHeightOfHash(hash: Uint8Array): number | undefined {
    if (bytesEqual(hash, this.genesisHash)) return 0;
    return this.#store.heightOfHash(hash);
  }

  getEncodedBlocks(from: number, count: number, maxBytes: number): Uint8Array[] {
    return this.#store.getEncodedRange(from, count, maxBytes);
  }

  validatorSetFor(height: number): ValidatorSet | undefined {
    return this.#stateMachine.validatorSetFor(this.#committedView, this.#tip.height, height);
  }

  stateView(): StateView {
    return this.#committedView;
  }

  checkProposal(block: Block): void {
    const tip = this.#tip;
    const h = block.header;
    if (h.height !== tip.height + 1 || !bytesEqual(h.prevHash, tip.hash)) {
      throw new InvalidBlockError("bad-link", `block ${h.height} does not extend the tip`);
    }
    const writes = this.#runStateMachine(this.#committedView, block, false);
    this.#applyCache.put(toHex(tip.hash), toHex(blockHash(h)), block, writes);
  }

  /** Commits that reused a proposal's writes, and lookups that found none (bench, tests). */
  get applyCacheStats(): { hits: number; misses: number } {
    return this.#applyCache.stats;
  }

  onBlockApplied(handler: AppliedHandler): void {
    this.#handlers.push(handler);
  }

  applyBlock(
    cb: CommittedBlock,
    encoded?: Uint8Array,
    opts?: { signaturesVerified?: boolean },
  ): void {
    const { error } = this.#apply([{ cb, encoded }], opts?.signaturesVerified ?? false);
    if (error) throw error;
  }

  applyBlocks(
    items: readonly ApplyItem[],
    opts?: { signaturesVerified?: boolean },
  ): { applied: number; error?: InvalidBlockError } {
    return this.#apply(items, opts?.signaturesVerified ?? false);
  }

  close(): void {
    this.#store.close();
  }

  /** Height of the block that includes transaction `id` (32 bytes), if any. */
  transactionHeight(id: Uint8Array): number | undefined {
    return this.#store.transactionHeight(id);
  }

  /** Included transfers from or to `address`, newest first. */
  transactionsOf(address: string, limit: number): { id: Uint8Array; height: number }[] {
    return this.#store.transactionsOf(address, limit);
  }

  #apply(
    items: readonly { cb: CommittedBlock; encoded?: Uint8Array; workerHash?: Uint8Array }[],
    signaturesVerified: boolean,
  ): { applied: number; error?: InvalidBlockError } {
    let applied = 0;
    let i = 0;
    while (i < items.length) {
      // One transaction's worth: validate against a running tip and an overlay of the pending
      // writes, exactly as if each block had been committed before the next was checked.
      const view = new OverlayView(this.#committedView);
      const entries: StoreEntry[] = [];
      const blocks: CommittedBlock[] = [];
      let tip = this.#tip;
      let bytes = 0;
      let error: InvalidBlockError | undefined;
      const nowMs = this.#now();
      for (
        ;
        i < items.length && entries.length < MAX_BLOCKS_PER_TRANSACTION &&
        bytes < MAX_BYTES_PER_TRANSACTION;
        i++
      ) {
        const { cb, encoded } = items[i];
        // A worker's hash vouches that `cb` was decoded from exactly `encoded` (ApplyItem).
        const workerHash = encoded && items[i].workerHash;
        try {
          const hash = checkBlock(tip, cb, {
            genesisHash: this.genesisHash,
            validatorSet: this.#stateMachine.validatorSetFor(view, tip.height, tip.height + 1),
            lastCommitSet: this.#stateMachine.validatorSetFor(view, tip.height, tip.height),
            nowMs,
            maxFutureDriftMs: MAX_FUTURE_DRIFT_MS,
            signaturesVerified,
            workerHash,
          });
          const stored = workerHash ? encoded : this.#encodingOf(cb, encoded);
          // Sync's long batches never judged their blocks as proposals: skip the hex keys then.
          const cached = this.#applyCache.size === 0
            ? undefined
            : this.#applyCache.take(toHex(tip.hash), toHex(hash), cb.block);
          const writes = cached ?? this.#runStateMachine(view, cb.block, signaturesVerified);
          view.merge(writes);
          entries.push({
            height: cb.block.header.height,
            hash,
            encoded: stored,
            writes,
            txs: indexTransactions(this.genesis.network, cb.block),
          });
          blocks.push(cb);
          bytes += stored.length;
          tip = { height: cb.block.header.height, hash, timestamp: cb.block.header.timestamp };
        } catch (e) {
          // Anything else is a bug or an I/O failure, not a verdict on the block: it propagates,
          // this transaction's blocks are not stored, and the tip stays where it was.
          if (!(e instanceof InvalidBlockError)) throw e;
          error = e;
          break;
        }
      }
      // The tip moves only once the store has committed; a disk error throws before that.
      this.#store.appendBlocks(entries);
      this.#tip = Object.freeze(tip);
      if (this.#applyCache.size > 0 && entries.length > 0) {
        this.#applyCache.retainParent(toHex(tip.hash));
      }
      applied += entries.length;
      this.#notify(blocks, entries);
      if (error) return { applied, error };
    }
    return { applied };
  }

  /** Bytes to store for `cb`: the caller's encoding if it is exactly the block's, else refused. */
  #encodingOf(cb: CommittedBlock, encoded: Uint8Array | undefined): Uint8Array {
    const w = this.#writer.reset();
    writeBlock(w, cb.block);
    writeCertificate(w, cb.certificate);
    if (encoded === undefined) return w.finish();
    // A mismatch would store bytes whose hash differs from the indexed hash: a corrupt chain.
    if (!bytesEqual(w.view(), encoded)) {
      throw new InvalidBlockError("decode", "encoded bytes are not the block's encoding");
    }
    return encoded;
  }

  #runStateMachine(view: StateView, block: Block, signaturesVerified: boolean): StateWrites {
    try {
      // A worker that checked the certificate (sync) checked the transaction signatures too.
      return this.#stateMachine.apply(view, block, { signaturesVerified });
    } catch (e) {
      // Records are hostile input: a record the state machine cannot even parse is a bad block,
      // not a node failure.
      if (e instanceof DecodeError) throw new InvalidBlockError("bad-records", e.message);
      throw e;
    }
  }

  #notify(blocks: readonly CommittedBlock[], entries: readonly StoreEntry[]): void {
    for (let k = 0; k < blocks.length; k++) {
      for (const handler of this.#handlers) {
        try {
          handler(blocks[k], entries[k].hash);
        } catch (e) {
          log.error("onBlockApplied handler failed at height {height}: {error}", {
            height: entries[k].height,
            error: e,
          });
        }
      }
    }
  }
}

/** Index entries of a block's transfers (already validated by the state machine). */
function indexTransactions(network: string, block: CommittedBlock["block"]): IndexedTx[] {
  const txs = transactionsOf(block);
  if (txs.length === 0) return [];
  // Hashed when the block was judged (or applied just now): the same list object.
  const ids = transactionIdsOf(txs);
  return txs.map((bytes, i) => {
    const tx = decodeTransactionOnce(bytes);
    return {
      id: fromHex(ids[i]),
      sender: addressOf(network, tx.sender),
      recipient: encodeAddress(network, tx.recipient),
    };
  });
}
