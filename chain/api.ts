/**
 * The contract between the chain (store + validation + state) and its users: sync, consensus,
 * RPC and the network's tip announcements.
 *
 * Owns: the interfaces only. `chain/chain.ts` implements `ChainApi`; `state/state.ts`
 * implements `StateMachine`.
 */
import type { Block, CommittedBlock } from "./block.ts";
import type { Genesis } from "./genesis.ts";
import type { ValidatorSet } from "./validators.ts";

export interface ChainTip {
  height: number;
  /** At height 0, the genesis hash. */
  hash: Uint8Array;
  /** At height 0, `genesis.genesisTime`. */
  timestamp: number;
}

/** Why a block was refused; used as the `reason` label of `timenode_blocks_rejected_total`. */
export type RejectReason =
  | "decode"
  | "bad-height"
  | "bad-link"
  | "bad-timestamp"
  /** Ahead of our clock: our clock may be the one that is wrong, so the peer is not blamed. */
  | "future-timestamp"
  | "bad-payload-root"
  | "bad-validator-set"
  | "bad-certificate"
  /** The previous height's commit the block carries is missing, misplaced or short of quorum. */
  | "bad-last-commit"
  | "bad-signature"
  | "bad-proposer"
  | "bad-records"
  | "bad-transactions"
  | "wrong-chain";

export class InvalidBlockError extends Error {
  constructor(readonly reason: RejectReason, message: string) {
    super(message);
    this.name = "InvalidBlockError";
  }
}

/** Read access to consensus state (key → value) as of the current tip. */
export interface StateView {
  get(key: string): Uint8Array | undefined;
}

/** State writes of one block: a value, or null to delete. Applied in the block's transaction. */
export type StateWrites = Map<string, Uint8Array | null>;

/** The deterministic state transition; implemented by state/state.ts. */
export interface StateMachine {
  /**
   * The validator set that must certify block `height`, from the state after the block at
   * `tipHeight` (the current tip). Defined for heights up to tipHeight + ACTIVATION_DELAY;
   * returns undefined for heights further ahead, whose set is not yet determined.
   */
  validatorSetFor(view: StateView, tipHeight: number, height: number): ValidatorSet | undefined;
  /**
   * Checks the block's records and transactions and returns the state writes of applying it.
   * `signaturesVerified`: a verify worker already checked every transaction signature of it.
   */
  apply(view: StateView, block: Block, opts?: { signaturesVerified?: boolean }): StateWrites;
}

/** One block for `applyBlocks`. */
export interface ApplyItem {
  cb: CommittedBlock;
  /** The bytes to store; must be exactly `cb`'s encoding (checked unless `workerHash` is set). */
  encoded: Uint8Array;
  /**
   * Only from a verify worker that decoded `cb` from exactly `encoded`, checked its payload
   * root and hashed its header (sync/verify_worker.ts): the chain then skips those three. Named
   * apart from any `hash` field so that no caller opts in by accident.
   */
  workerHash?: Uint8Array;
}

export interface ChainApi {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  tip(): ChainTip;
  getBlock(height: number): CommittedBlock | undefined;
  getHeightOfHash(hash: Uint8Array): number | undefined;
  /**
   * Stored encodings of blocks `from`, `from + 1`, ... stopping at `count` blocks, at the tip,
   * or before `maxBytes` would be exceeded (always at least one block when one exists).
   */
  getEncodedBlocks(from: number, count: number, maxBytes: number): Uint8Array[];
  validatorSetFor(height: number): ValidatorSet | undefined;
  stateView(): StateView;
  /**
   * Judges a proposed block on top of the tip: it must extend the tip, and its records and
   * transactions must apply (the state machine runs). Throws `InvalidBlockError`, or another
   * error for a block the state machine cannot judge. The caller has checked the proposal's
   * signature and payload root. Keeps the state writes so that `applyBlock` of the same block
   * on the same tip stores them instead of running the state machine again.
   */
  checkProposal(block: Block): void;
  /**
   * Validates `cb` fully against the tip (height, link, timestamp, payload root, validator set
   * hash, certificate quorum and signatures, records) and stores it with its state writes in
   * one transaction. Throws `InvalidBlockError`; nothing is stored then. Pass
   * `signaturesVerified` only when `verifyCertificateSignatures` already passed for it.
   */
  applyBlock(
    cb: CommittedBlock,
    encoded?: Uint8Array,
    opts?: { signaturesVerified?: boolean },
  ): void;
  /**
   * Applies consecutive blocks in order, several per SQLite transaction for sync throughput;
   * each block is still validated fully and atomically with its state. Stops at the first
   * invalid block: the blocks before it stay applied, and the error is returned, not thrown.
   */
  applyBlocks(
    items: readonly ApplyItem[],
    opts?: { signaturesVerified?: boolean },
  ): { applied: number; error?: InvalidBlockError };
  onBlockApplied(handler: (cb: CommittedBlock, hash: Uint8Array) => void): void;
  close(): void;
}
