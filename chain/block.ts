/**
 * Blocks, commit certificates and votes: types and their one canonical encoding.
 *
 * Owns: the byte layout of headers, bodies, certificates, votes and proposals, the block hash,
 * and the bytes a validator signs. The producer, the validators, sync and storage all call
 * these functions; nobody else lays out these bytes (docs/lessons.md#15).
 * Must never: do I/O, check signatures against a validator set (see `chain/verify.ts`) or
 * accept a value that exceeds a bound in `CHAIN_LIMITS`.
 */
import {
  ByteReader,
  ByteWriter,
  compareBytes,
  DecodeError,
  writeList,
} from "../encoding/binary.ts";
import { HASH_LENGTH, merkleRoot, sha256, ZERO_HASH } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../crypto/ed25519.ts";

/**
 * 2: the body carries transactions after the records, and `payloadRoot` covers both.
 * 3: the body ends with the previous height's commit (`lastCommit`), also under `payloadRoot`.
 */
export const BLOCK_VERSION = 3;

export const CHAIN_LIMITS = {
  /** Records per block: generous for a masternode chain, small enough to verify in one tick. */
  maxRecords: 10_000,
  /** One record's data. Registrations and transfers are a few hundred bytes. */
  maxRecordBytes: 64 * 1024,
  /** Whole encoded block body; keeps one block well inside the 8 MiB frame limit. */
  maxBodyBytes: 4 * 1024 * 1024,
  /** Signatures per certificate = the largest validator set we support. */
  maxValidators: 1_000,
  /** Transactions per block: the body bound divided by the smallest transfer (165 bytes). */
  maxTransactions: 25_000,
  /** One encoded transaction as the decoder reads it (state/transaction.ts MAX_DECODED_TX_BYTES). */
  maxTransactionBytes: 421,
} as const;

export interface BlockHeader {
  version: number;
  /** The genesis hash: binds every block to one network. */
  chainId: Uint8Array;
  height: number;
  prevHash: Uint8Array;
  /** Milliseconds since the Unix epoch; strictly increasing along the chain. */
  timestamp: number;
  /** Node id (Ed25519 public key) of the masternode that proposed the block. */
  proposer: Uint8Array;
  /** Round in which the block was built and first proposed; its certificate's round is the same or later. */
  round: number;
  /** Merkle root over the body's records (see `payloadRoot`). */
  payloadRoot: Uint8Array;
  /** Hash of the validator set that must certify this block (see consensus/validator_set.ts). */
  validatorSetHash: Uint8Array;
}

/** A typed body entry. Semantics live in the consensus state machine; here they are opaque. */
export interface BlockRecord {
  type: number;
  data: Uint8Array;
}

export interface Block {
  header: BlockHeader;
  records: BlockRecord[];
  /**
   * Encoded transfers (state/transaction.ts), applied after the records. Absent means none
   * (decoding leaves it out when empty). Read it with `transactionsOf`.
   */
  transactions?: Uint8Array[];
  /**
   * The commit of the previous height (block h carries precommits for block h - 1), chosen by
   * this block's proposer after a short collection window; it is what downtime accounting
   * reads, because a block's own certificate differs between nodes and cannot drive state.
   * Required from height 2 on, absent at height 1 (chain/verify.ts). Signers are sorted by
   * node id, each once (`readBlock` refuses anything else; build it with `sortedCommit`).
   */
  lastCommit?: Certificate;
}

const NO_TRANSACTIONS: readonly Uint8Array[] = Object.freeze([]);

/** The block's transactions, `[]` when absent. */
export function transactionsOf(b: Block): readonly Uint8Array[] {
  return b.transactions ?? NO_TRANSACTIONS;
}

export interface CommitSignature {
  validator: Uint8Array;
  signature: Uint8Array;
}

/** Precommits for (height, round, blockHash) from validators holding > 2/3 of the power. */
export interface Certificate {
  height: number;
  round: number;
  blockHash: Uint8Array;
  signatures: CommitSignature[];
}

export interface CommittedBlock {
  block: Block;
  certificate: Certificate;
}

export const VoteType = { Prevote: 1, Precommit: 2 } as const;
export type VoteType = typeof VoteType[keyof typeof VoteType];

export interface Vote {
  type: VoteType;
  height: number;
  round: number;
  /** All-zero means nil. */
  blockHash: Uint8Array;
  validator: Uint8Array;
  signature: Uint8Array;
}

export interface Proposal {
  height: number;
  round: number;
  /** -1 when the proposer has no valid value from an earlier round. */
  validRound: number;
  block: Block;
  signature: Uint8Array;
}

// Domain tags keep a signature for one purpose from being replayed as another.
const VOTE_DOMAIN = new TextEncoder().encode("timenode/vote/v1");
const PROPOSAL_DOMAIN = new TextEncoder().encode("timenode/proposal/v1");

/**
 * Bytes that are only hashed (a header for its hash, records for the payload root) are written
 * into reused buffers and hashed in place: a fresh buffer and a copy per block were a visible
 * share of applying a block during sync. Bodies above this size get a buffer of their own, so
 * one large block does not pin its size in memory for good.
 */
const HASH_SCRATCH_MAX_BYTES = 64 * 1024;
const headerScratch = new ByteWriter(256);
const recordsScratch = new ByteWriter(4096);

export function writeHeader(w: ByteWriter, h: BlockHeader): void {
  w.u32(h.version)
    .fixed(h.chainId, HASH_LENGTH)
    .u64(h.height)
    .fixed(h.prevHash, HASH_LENGTH)
    .u64(h.timestamp)
    .fixed(h.proposer, PUBLIC_KEY_LENGTH)
    .u32(h.round)
    .fixed(h.payloadRoot, HASH_LENGTH)
    .fixed(h.validatorSetHash, HASH_LENGTH);
}

/**
 * How decoders hand out byte fields: `copy` (the default) gives each field its own buffer, so
 * a frame buffer that is reused later cannot change a decoded block; `view` leaves them as
 * views into the input, for a caller that owns the input for good (a verify worker's batch).
 */
export type ByteFields = "copy" | "view";

function take(bytes: Uint8Array, fields: ByteFields): Uint8Array {
  return fields === "copy" ? bytes.slice() : bytes;
}

export function readHeader(r: ByteReader, fields: ByteFields = "copy"): BlockHeader {
  return {
    version: r.u32(),
    chainId: take(r.fixed(HASH_LENGTH), fields),
    height: r.u64(),
    prevHash: take(r.fixed(HASH_LENGTH), fields),
    timestamp: r.u64(),
    proposer: take(r.fixed(PUBLIC_KEY_LENGTH), fields),
    round: r.u32(),
    payloadRoot: take(r.fixed(HASH_LENGTH), fields),
    validatorSetHash: take(r.fixed(HASH_LENGTH), fields),
  };
}

export function encodeHeader(h: BlockHeader): Uint8Array {
  const w = new ByteWriter(200);
  writeHeader(w, h);
  return w.finish();
}

/** Block hash: SHA-256 over the canonical header encoding (`encodeHeader`). */
export function blockHash(h: BlockHeader): Uint8Array {
  const w = headerScratch.reset();
  writeHeader(w, h);
  return sha256(w.view());
}

export function encodeRecord(rec: BlockRecord): Uint8Array {
  return new ByteWriter(rec.data.length + 8).u8(rec.type).bytes(rec.data).finish();
}

const PAYLOAD_DOMAIN = new TextEncoder().encode("timenode/payload/v3");
const LAST_COMMIT_DOMAIN = new TextEncoder().encode("timenode/last-commit/v1");

/**
 * The header's `payloadRoot`: SHA-256(domain | records root | transactions root | last commit
 * digest), so the block hash commits to the whole body. The domain prefix keeps it distinct
 * from any Merkle node, whose preimages start with 0x00 or 0x01.
 */
export function payloadRoot(
  records: readonly BlockRecord[],
  transactions: readonly Uint8Array[] = NO_TRANSACTIONS,
  lastCommit?: Certificate,
): Uint8Array {
  return sha256(
    PAYLOAD_DOMAIN,
    recordsRoot(records),
    transactionsRoot(transactions),
    lastCommitDigest(lastCommit),
  );
}

/** Merkle roots of transaction lists already computed, by list object. */
const rootByTransactions = new WeakMap<readonly Uint8Array[], Uint8Array>();

/**
 * The Merkle root of a block's transactions, computed once per list object: a proposal's root
 * is checked when it arrives and again when its block commits (and the proposer computed it
 * first), two hashes per transfer each time. Safe for the reason apply_cache.ts gives: a decoded
 * block is never changed in place, and decoding copies every byte field.
 */
function transactionsRoot(transactions: readonly Uint8Array[]): Uint8Array {
  let root = rootByTransactions.get(transactions);
  if (root === undefined) {
    root = merkleRoot(transactions);
    rootByTransactions.set(transactions, root);
  }
  return root;
}

/** `payloadRoot` of a whole block body. */
export function blockPayloadRoot(b: Block): Uint8Array {
  return payloadRoot(b.records, transactionsOf(b), b.lastCommit);
}

/** SHA-256(domain | canonical certificate encoding); all zero when there is no last commit. */
export function lastCommitDigest(lastCommit: Certificate | undefined): Uint8Array {
  if (lastCommit === undefined) return ZERO_HASH;
  return sha256(LAST_COMMIT_DOMAIN, encodeCertificate(lastCommit));
}

/**
 * A copy of `c` with its signatures in the canonical order of a `lastCommit`: by node id,
 * ascending (a set of signers has exactly one encoding, so one payload root).
 */
export function sortedCommit(c: Certificate): Certificate {
  return {
    height: c.height,
    round: c.round,
    blockHash: c.blockHash,
    signatures: [...c.signatures].sort((a, b) => compareBytes(a.validator, b.validator)),
  };
}

/** Merkle root over the canonical encodings of the records (`encodeRecord`). */
function recordsRoot(records: readonly BlockRecord[]): Uint8Array {
  let size = 0;
  for (const rec of records) size += rec.data.length + 8;
  const w = size <= HASH_SCRATCH_MAX_BYTES ? recordsScratch.reset() : new ByteWriter(size);
  const ends: number[] = [];
  for (const rec of records) {
    w.u8(rec.type).bytes(rec.data);
    ends.push(w.length);
  }
  // Views into one buffer: merkleRoot hashes the leaves and keeps none of them.
  const all = w.view();
  return merkleRoot(ends.map((end, i) => all.subarray(i === 0 ? 0 : ends[i - 1], end)));
}

/** The body's last byte before the commit: 0 = no last commit, 1 = a certificate follows. */
const LAST_COMMIT_ABSENT = 0;
const LAST_COMMIT_PRESENT = 1;

export function writeBlock(w: ByteWriter, b: Block): void {
  writeHeader(w, b.header);
  writeList(w, b.records, (w, rec) => w.u8(rec.type).bytes(rec.data));
  writeList(w, transactionsOf(b), (w, tx) => w.bytes(tx));
  if (b.lastCommit === undefined) {
    w.u8(LAST_COMMIT_ABSENT);
  } else {
    w.u8(LAST_COMMIT_PRESENT);
    writeCertificate(w, b.lastCommit);
  }
}

export function readBlock(r: ByteReader, fields: ByteFields = "copy"): Block {
  const start = r.position;
  const header = readHeader(r, fields);
  const records = r.list(CHAIN_LIMITS.maxRecords, (r) => ({
    type: r.u8(),
    data: take(r.bytes(CHAIN_LIMITS.maxRecordBytes), fields),
  }));
  const transactions = r.list(
    CHAIN_LIMITS.maxTransactions,
    (r) => take(r.bytes(CHAIN_LIMITS.maxTransactionBytes), fields),
  );
  if (r.position - start > CHAIN_LIMITS.maxBodyBytes + 256) {
    throw new DecodeError("block body exceeds maxBodyBytes");
  }
  // Absent when empty, so a block without transfers decodes to what was built (round trips).
  const block: Block = transactions.length > 0
    ? { header, records, transactions }
    : { header, records };
  const flag = r.u8();
  if (flag === LAST_COMMIT_PRESENT) block.lastCommit = readLastCommit(r, fields);
  else if (flag !== LAST_COMMIT_ABSENT) throw new DecodeError(`invalid last commit flag ${flag}`);
  return block;
}

/**
 * A certificate whose signers are strictly increasing by node id: sorted and unique, so a
 * `lastCommit` has one encoding and no signer is repeated (count bounded by `readCertificate`).
 */
function readLastCommit(r: ByteReader, fields: ByteFields): Certificate {
  const c = readCertificate(r, fields);
  for (let i = 1; i < c.signatures.length; i++) {
    if (compareBytes(c.signatures[i - 1].validator, c.signatures[i].validator) >= 0) {
      throw new DecodeError("last commit signers are not sorted and unique");
    }
  }
  return c;
}

export function writeCertificate(w: ByteWriter, c: Certificate): void {
  w.u64(c.height).u32(c.round).fixed(c.blockHash, HASH_LENGTH);
  writeList(w, c.signatures, (w, s) => {
    w.fixed(s.validator, PUBLIC_KEY_LENGTH).fixed(s.signature, SIGNATURE_LENGTH);
  });
}

export function readCertificate(r: ByteReader, fields: ByteFields = "copy"): Certificate {
  return {
    height: r.u64(),
    round: r.u32(),
    blockHash: take(r.fixed(HASH_LENGTH), fields),
    signatures: r.list(CHAIN_LIMITS.maxValidators, (r) => ({
      validator: take(r.fixed(PUBLIC_KEY_LENGTH), fields),
      signature: take(r.fixed(SIGNATURE_LENGTH), fields),
    })),
  };
}

export function encodeBlock(b: Block): Uint8Array {
  const w = new ByteWriter(512);
  writeBlock(w, b);
  return w.finish();
}

export function decodeBlock(bytes: Uint8Array): Block {
  const r = new ByteReader(bytes);
  const b = readBlock(r);
  r.end();
  return b;
}

export function encodeCertificate(c: Certificate): Uint8Array {
  const w = new ByteWriter(128 + c.signatures.length * 96);
  writeCertificate(w, c);
  return w.finish();
}

export function decodeCertificate(bytes: Uint8Array): Certificate {
  const r = new ByteReader(bytes);
  const c = readCertificate(r);
  r.end();
  return c;
}

export function encodeCommittedBlock(cb: CommittedBlock): Uint8Array {
  const w = new ByteWriter(1024);
  writeBlock(w, cb.block);
  writeCertificate(w, cb.certificate);
  return w.finish();
}

export function decodeCommittedBlock(
  bytes: Uint8Array,
  fields: ByteFields = "copy",
): CommittedBlock {
  const r = new ByteReader(bytes);
  const block = readBlock(r, fields);
  const certificate = readCertificate(r, fields);
  r.end();
  return { block, certificate };
}

/** The bytes a validator signs for a vote. Certificates are checked against the same bytes. */
export function voteSignBytes(
  genesisHash: Uint8Array,
  type: VoteType,
  height: number,
  round: number,
  blockHash: Uint8Array,
): Uint8Array {
  return new ByteWriter(96)
    .raw(VOTE_DOMAIN)
    .fixed(genesisHash, HASH_LENGTH)
    .u8(type)
    .u64(height)
    .u32(round)
    .fixed(blockHash, HASH_LENGTH)
    .finish();
}

export function proposalSignBytes(
  genesisHash: Uint8Array,
  height: number,
  round: number,
  validRound: number,
  blockHash: Uint8Array,
): Uint8Array {
  return new ByteWriter(96)
    .raw(PROPOSAL_DOMAIN)
    .fixed(genesisHash, HASH_LENGTH)
    .u64(height)
    .u32(round)
    .i32(validRound)
    .fixed(blockHash, HASH_LENGTH)
    .finish();
}

export function writeVote(w: ByteWriter, v: Vote): void {
  w.u8(v.type).u64(v.height).u32(v.round).fixed(v.blockHash, HASH_LENGTH)
    .fixed(v.validator, PUBLIC_KEY_LENGTH).fixed(v.signature, SIGNATURE_LENGTH);
}

export function readVote(r: ByteReader): Vote {
  const type = r.u8();
  if (type !== VoteType.Prevote && type !== VoteType.Precommit) {
    throw new DecodeError(`unknown vote type ${type}`);
  }
  return {
    type,
    height: r.u64(),
    round: r.u32(),
    blockHash: r.fixed(HASH_LENGTH).slice(),
    validator: r.fixed(PUBLIC_KEY_LENGTH).slice(),
    signature: r.fixed(SIGNATURE_LENGTH).slice(),
  };
}

export function writeProposal(w: ByteWriter, p: Proposal): void {
  w.u64(p.height).u32(p.round).i32(p.validRound);
  writeBlock(w, p.block);
  w.fixed(p.signature, SIGNATURE_LENGTH);
}

export function readProposal(r: ByteReader): Proposal {
  const height = r.u64();
  const round = r.u32();
  const validRound = r.i32();
  if (validRound < -1) throw new DecodeError(`invalid validRound ${validRound}`);
  const block = readBlock(r);
  return { height, round, validRound, block, signature: r.fixed(SIGNATURE_LENGTH).slice() };
}
