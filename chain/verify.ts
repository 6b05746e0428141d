/**
 * Block validation against the tip it extends: the one function every path that accepts a
 * block (sync, consensus commit, the store's users) goes through.
 *
 * Owns: the order and the `RejectReason` of every header, body and certificate check.
 * Must never: do I/O, read a clock (the caller passes `nowMs`), look up state (the caller passes
 * the validator set) or accept a block on any check it skipped. Pure: same inputs, same verdict.
 */
import { bytesEqual, compareBytes, toHex } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../crypto/ed25519.ts";
import {
  BLOCK_VERSION,
  blockHash,
  type Certificate,
  CHAIN_LIMITS,
  type CommittedBlock,
  payloadRoot,
  transactionsOf,
} from "./block.ts";
import {
  checkCertificateQuorum,
  type QuorumCheck,
  type SignatureVerifier,
  type SignerSet,
  verifyCertificateSignatures,
} from "./certificate.ts";
import { type ChainTip, InvalidBlockError } from "./api.ts";
import type { ValidatorSet } from "./validators.ts";

/**
 * How far a block's timestamp may run ahead of our clock. Masternodes on VPSes drift a few
 * seconds without NTP discipline; 15 s tolerates that (and a slow proposer's clock) while a
 * proposer still cannot push the chain's clock minutes ahead, which would stall every later
 * proposer whose honest timestamp must exceed it.
 */
export const MAX_FUTURE_DRIFT_MS = 15_000;

/** Bytes a record adds to the encoded body: type (u8) + length prefix (u32) + data. */
const RECORD_OVERHEAD_BYTES = 5;
/** The u32 record count that precedes the records. */
const RECORD_COUNT_BYTES = 4;
/** Bytes a transaction adds: its u32 length prefix. */
const TX_OVERHEAD_BYTES = 4;
/** The u32 transaction count. */
const TX_COUNT_BYTES = 4;

/** Encoded size of a block body (records and transactions), as `writeBlock` lays it out. */
export function bodySize(
  records: readonly { data: Uint8Array }[],
  transactions: readonly Uint8Array[],
): number {
  let n = RECORD_COUNT_BYTES + TX_COUNT_BYTES;
  for (const r of records) n += RECORD_OVERHEAD_BYTES + r.data.length;
  for (const t of transactions) n += TX_OVERHEAD_BYTES + t.length;
  return n;
}

export interface CheckContext {
  genesisHash: Uint8Array;
  /** The set that must certify height `prev.height + 1`; undefined when not yet determined. */
  validatorSet: ValidatorSet | undefined;
  /**
   * The set of height `prev.height` (the block's `lastCommit` signers must hold > 2/3 of it);
   * unused at height 1.
   */
  lastCommitSet?: SignerSet;
  nowMs: number;
  maxFutureDriftMs: number;
  /** True only when `verifyCertificateSignatures` already passed for this certificate. */
  signaturesVerified?: boolean;
  /** The signature check; tests inject a counting one. Default: crypto/ed25519. */
  verify?: SignatureVerifier;
}

function reject(reason: ConstructorParameters<typeof InvalidBlockError>[0], msg: string): never {
  throw new InvalidBlockError(reason, msg);
}

/**
 * The shape rules of a block's `lastCommit` that need no validator set: absent at height 1,
 * present above it, for block `height - 1` (`prevHash`), with well-formed fields and signers
 * sorted by node id, each once, at most `CHAIN_LIMITS.maxValidators`. Returns the commit to
 * check against the set (null at height 1); throws `InvalidBlockError("bad-last-commit")`.
 */
export function checkLastCommitPlacement(
  lastCommit: Certificate | undefined,
  height: number,
  prevHash: Uint8Array,
): Certificate | null {
  if (height === 1) {
    if (lastCommit !== undefined) reject("bad-last-commit", "block 1 carries a last commit");
    return null;
  }
  if (lastCommit === undefined) {
    reject("bad-last-commit", `block ${height} carries no last commit`);
  }
  if (lastCommit.height !== height - 1) {
    reject("bad-last-commit", `last commit is for height ${lastCommit.height}, not ${height - 1}`);
  }
  if (
    !Number.isInteger(lastCommit.round) || lastCommit.round < 0 || lastCommit.round > 0xffffffff
  ) {
    reject("bad-last-commit", "last commit round out of range");
  }
  if (lastCommit.blockHash.length !== HASH_LENGTH || !bytesEqual(lastCommit.blockHash, prevHash)) {
    reject("bad-last-commit", "last commit is for another block than prevHash");
  }
  const sigs = lastCommit.signatures;
  if (sigs.length > CHAIN_LIMITS.maxValidators) {
    reject("bad-last-commit", `${sigs.length} last commit signatures exceed the bound`);
  }
  for (let i = 0; i < sigs.length; i++) {
    const s = sigs[i];
    if (s.validator.length !== PUBLIC_KEY_LENGTH || s.signature.length !== SIGNATURE_LENGTH) {
      reject("bad-last-commit", "last commit signature entry has the wrong length");
    }
    if (i > 0 && compareBytes(sigs[i - 1].validator, s.validator) >= 0) {
      reject("bad-last-commit", "last commit signers are not sorted by node id and unique");
    }
  }
  return lastCommit;
}

/**
 * The whole check of a proposed block's `lastCommit`, for consensus: placement, signers of
 * the set of `height - 1` with > 2/3 of its power, and (only then) every signature. A syncing
 * node skips the signatures (`checkBlock`); a validator judging a proposal must not.
 */
export function checkProposedLastCommit(
  genesisHash: Uint8Array,
  lastCommit: Certificate | undefined,
  height: number,
  prevHash: Uint8Array,
  set: SignerSet,
  verify?: SignatureVerifier,
): QuorumCheck {
  let placed: Certificate | null;
  try {
    placed = checkLastCommitPlacement(lastCommit, height, prevHash);
  } catch (e) {
    return { ok: false, fault: "wrong-block", why: (e as Error).message };
  }
  if (placed === null) return { ok: true };
  const signers = checkCertificateQuorum(placed, height - 1, prevHash, set);
  if (!signers.ok) return signers;
  if (!verifyCertificateSignatures(genesisHash, placed, verify)) {
    return { ok: false, fault: "bad-signature", why: "a last commit signature does not verify" };
  }
  return { ok: true };
}

/**
 * Throws `InvalidBlockError` unless `cb` is a valid successor of `prev`. Returns the block hash
 * so callers need not hash the header a second time.
 */
export function checkBlock(prev: ChainTip, cb: CommittedBlock, ctx: CheckContext): Uint8Array {
  const { header, records } = cb.block;
  const transactions = transactionsOf(cb.block);
  const cert = cb.certificate;
  const expectedHeight = prev.height + 1;

  // Field lengths: a block built in memory (not decoded) could carry any array; hashing it
  // would throw a RangeError instead of a verdict.
  if (
    header.chainId.length !== HASH_LENGTH || header.prevHash.length !== HASH_LENGTH ||
    header.payloadRoot.length !== HASH_LENGTH || header.validatorSetHash.length !== HASH_LENGTH ||
    header.proposer.length !== PUBLIC_KEY_LENGTH || cert.blockHash.length !== HASH_LENGTH
  ) {
    reject("decode", "header or certificate field has the wrong length");
  }
  if (
    !Number.isSafeInteger(header.timestamp) || header.timestamp < 0 ||
    !Number.isInteger(header.round) || header.round < 0 || header.round > 0xffffffff
  ) {
    reject("decode", "timestamp or round out of range");
  }
  if (header.version !== BLOCK_VERSION) {
    reject("decode", `unsupported block version ${header.version}, expected ${BLOCK_VERSION}`);
  }
  if (!bytesEqual(header.chainId, ctx.genesisHash)) {
    reject("wrong-chain", `block belongs to chain ${toHex(header.chainId).slice(0, 16)}`);
  }
  if (header.height !== expectedHeight) {
    reject("bad-height", `block height ${header.height}, expected ${expectedHeight}`);
  }
  if (!bytesEqual(header.prevHash, prev.hash)) {
    reject("bad-link", `block ${header.height} does not extend the tip ${toHex(prev.hash)}`);
  }
  if (header.timestamp <= prev.timestamp) {
    reject("bad-timestamp", `timestamp ${header.timestamp} not after ${prev.timestamp}`);
  }
  if (header.timestamp > ctx.nowMs + ctx.maxFutureDriftMs) {
    reject(
      "future-timestamp",
      `timestamp ${header.timestamp} is more than ${ctx.maxFutureDriftMs} ms ahead of ${ctx.nowMs}`,
    );
  }

  if (records.length > CHAIN_LIMITS.maxRecords) {
    reject("bad-records", `${records.length} records exceed ${CHAIN_LIMITS.maxRecords}`);
  }
  let bodyBytes = RECORD_COUNT_BYTES;
  for (const rec of records) {
    if (!Number.isInteger(rec.type) || rec.type < 0 || rec.type > 0xff) {
      reject("bad-records", `record type ${rec.type} out of range`);
    }
    if (rec.data.length > CHAIN_LIMITS.maxRecordBytes) {
      reject("bad-records", `record of ${rec.data.length} bytes exceeds the bound`);
    }
    bodyBytes += RECORD_OVERHEAD_BYTES + rec.data.length;
  }
  if (transactions.length > CHAIN_LIMITS.maxTransactions) {
    reject("bad-transactions", `${transactions.length} transactions exceed the bound`);
  }
  bodyBytes += TX_COUNT_BYTES;
  for (const tx of transactions) {
    if (tx.length > CHAIN_LIMITS.maxTransactionBytes) {
      reject("bad-transactions", `transaction of ${tx.length} bytes exceeds the bound`);
    }
    bodyBytes += TX_OVERHEAD_BYTES + tx.length;
  }
  if (bodyBytes > CHAIN_LIMITS.maxBodyBytes) {
    reject("bad-records", `body of ${bodyBytes} bytes exceeds ${CHAIN_LIMITS.maxBodyBytes}`);
  }
  if (!bytesEqual(header.payloadRoot, payloadRoot(records, transactions, cb.block.lastCommit))) {
    reject("bad-payload-root", "payload root does not match the records");
  }
  const lastCommit = checkLastCommitPlacement(cb.block.lastCommit, expectedHeight, prev.hash);
  if (lastCommit !== null) {
    if (ctx.lastCommitSet === undefined) {
      reject("bad-validator-set", `validator set for height ${prev.height} is not known`);
    }
    // Signers only: the block's own certificate, from > 2/3 of the set of this height who
    // validated the whole proposal, vouches for the signatures (docs/consensus.md §15).
    const signers = checkCertificateQuorum(lastCommit, prev.height, prev.hash, ctx.lastCommitSet);
    if (!signers.ok) reject("bad-last-commit", `last commit: ${signers.why}`);
  }

  const set = ctx.validatorSet;
  if (set === undefined) {
    reject("bad-validator-set", `validator set for height ${expectedHeight} is not known yet`);
  }
  if (!bytesEqual(header.validatorSetHash, set.hash)) {
    reject("bad-validator-set", "validatorSetHash does not match the set for this height");
  }
  if (set.powerOf(toHex(header.proposer)) === 0) {
    reject("bad-proposer", `proposer ${toHex(header.proposer).slice(0, 12)} is not a validator`);
  }

  const hash = blockHash(header);
  // header.round is the round the block was built in; a re-proposed block keeps its header
  // and is committed in a later round, so the certificate's round may be later, never earlier.
  if (cert.round < header.round) {
    reject("bad-certificate", `certificate round ${cert.round} < block round ${header.round}`);
  }
  if (cert.signatures.length > CHAIN_LIMITS.maxValidators) {
    reject("bad-certificate", `${cert.signatures.length} signatures exceed the bound`);
  }
  for (const s of cert.signatures) {
    if (s.validator.length !== PUBLIC_KEY_LENGTH || s.signature.length !== SIGNATURE_LENGTH) {
      reject("bad-certificate", "certificate signature entry has the wrong length");
    }
  }
  // Count, duplicates, membership and quorum first: a hostile certificate must cost no
  // signature verification (chain/certificate.ts).
  const quorum = checkCertificateQuorum(cert, header.height, hash, set);
  if (!quorum.ok) reject("bad-certificate", quorum.why);
  if (!ctx.signaturesVerified && !verifyCertificateSignatures(ctx.genesisHash, cert, ctx.verify)) {
    reject("bad-signature", "a certificate signature does not verify");
  }
  return hash;
}
