/**
 * The last commit: every precommit for the block this node last saw committed, gathered after
 * the commit too, so the next block's `lastCommit` names each member that signed, not only the
 * quorum that happened to be first (docs/consensus.md §15). Pure: the shell feeds it the
 * certificate of each applied block and the late precommits, and reads the certificate back
 * when it builds a proposal.
 *
 * Owns: the signatures collected for one (height, round, block hash), their verification, and
 * the collection window (how long a proposer waits after the commit before building).
 * Must never: hold a signature it did not verify or that is not from a voting member of that
 * height's set, hold two for one member, or grow beyond the set.
 */
import { bytesEqual, toHex } from "../encoding/binary.ts";
import {
  type Certificate,
  type CommitSignature,
  sortedCommit,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../chain/block.ts";
import type { SignatureVerifier, SignerSet } from "../chain/certificate.ts";
import { LAST_COMMIT_WINDOW_MAX_MS } from "./constants.ts";

/** What became of a precommit offered to the collector. */
export type LateVoteResult =
  /** A new signer: verified and added. */
  | "added"
  /** A signer already held: nothing to do. */
  | "known"
  /** Not a precommit for the collected (height, round, block): not ours to judge. */
  | "other"
  /** Claims to be from a member without power at that height. */
  | "not-member"
  | "bad-signature";

/**
 * Milliseconds a proposer waits at least after the commit of the previous height before it
 * builds: the block interval, capped (constants.ts gives the reasons).
 */
export function lastCommitWindowMs(blockIntervalMs: number): number {
  return Math.max(0, Math.min(blockIntervalMs, LAST_COMMIT_WINDOW_MAX_MS));
}

/** How much longer a proposal must wait for the window that opened at `committedAt`. */
export function windowRemainingMs(committedAt: number, now: number, windowMs: number): number {
  return Math.max(0, committedAt + windowMs - now);
}

export class LastCommitCollector {
  readonly #genesisHash: Uint8Array;
  readonly #verify: SignatureVerifier;
  #base: Certificate | null = null;
  #set: SignerSet | null = null;
  /** Signer (hex node id) → its signature, in arrival order. */
  readonly #signatures = new Map<string, CommitSignature>();
  #committedAt = 0;
  #message: Uint8Array | null = null;

  constructor(genesisHash: Uint8Array, verify: SignatureVerifier) {
    this.#genesisHash = genesisHash;
    this.#verify = verify;
  }

  /** Height being collected, or 0 before the first commit. */
  get height(): number {
    return this.#base?.height ?? 0;
  }

  /** Clock reading when the collected height was committed or applied. */
  get committedAt(): number {
    return this.#committedAt;
  }

  get size(): number {
    return this.#signatures.size;
  }

  /**
   * Starts collecting for a newly applied block, from its certificate (already verified by the
   * chain) and the set that certified it. A certificate for the height and block already being
   * collected is merged instead: its signers join those gathered so far.
   */
  reset(certificate: Certificate, set: SignerSet, now: number): void {
    const same = this.#base !== null && this.#base.height === certificate.height &&
      this.#base.round === certificate.round &&
      bytesEqual(this.#base.blockHash, certificate.blockHash);
    if (!same) {
      this.#base = certificate;
      this.#set = set;
      this.#signatures.clear();
      this.#committedAt = now;
      this.#message = voteSignBytes(
        this.#genesisHash,
        VoteType.Precommit,
        certificate.height,
        certificate.round,
        certificate.blockHash,
      );
    }
    for (const s of certificate.signatures) {
      const id = toHex(s.validator);
      if (!this.#signatures.has(id) && set.powerOf(id) > 0) this.#signatures.set(id, s);
    }
  }

  /**
   * A precommit that may belong to the collected commit. Cheap checks (height, round, block,
   * membership, already held) come before the one signature verification.
   */
  offer(vote: Vote): LateVoteResult {
    const base = this.#base;
    if (
      base === null || vote.type !== VoteType.Precommit || vote.height !== base.height ||
      vote.round !== base.round || !bytesEqual(vote.blockHash, base.blockHash)
    ) {
      return "other";
    }
    const id = toHex(vote.validator);
    if (this.#signatures.has(id)) return "known";
    if (this.#set!.powerOf(id) === 0) return "not-member";
    if (!this.#verify(vote.validator, this.#message!, vote.signature)) return "bad-signature";
    this.#signatures.set(id, { validator: vote.validator, signature: vote.signature });
    return "added";
  }

  /**
   * Every signer collected for `height`, sorted for a block's `lastCommit`; null when the
   * collector holds another height.
   */
  certificateFor(height: number): Certificate | null {
    const base = this.#base;
    if (base === null || base.height !== height) return null;
    return sortedCommit({ ...base, signatures: [...this.#signatures.values()] });
  }
}
