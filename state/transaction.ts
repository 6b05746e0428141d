/**
 * Transfer transactions: the byte layout, the bytes the sender signs, the id, strict decoding
 * and the checks that need no state (docs/state.md#transfer-transactions).
 *
 * Owns: the transaction codec, `TxRejectReason` (one reason per validity rule) and which reasons
 * are stateless (invalid at every state of this chain, so a peer relaying one is at fault).
 * Must never: accept trailing bytes or an unknown version, sign bytes that omit the domain tag
 * or the genesis hash, or look at balances and nonces (state/accounts.ts does).
 */
import { ByteReader, bytesEqual, ByteWriter, DecodeError, toHex } from "../encoding/binary.ts";
import { HASH_LENGTH, sha256 } from "../crypto/hash.ts";
import {
  type KeyPair,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  signBytes,
  verifySignature,
} from "../crypto/ed25519.ts";
import { ADDRESS_HASH_LENGTH } from "./address.ts";
import { MAX_AMOUNT } from "./amount.ts";

export const TX_VERSION = 1;

export const TX_LIMITS = {
  /** Memo bytes a valid transaction may carry: a payment reference, not a data channel. */
  maxMemoBytes: 80,
  /**
   * Memo bytes the decoder reads before refusing, so an oversized memo gets its own reason
   * (`memo-too-long`) instead of "malformed", while the encoding stays bounded.
   */
  maxDecodedMemoBytes: 256,
  /** Bytes of the chain tag: enough to tell networks apart before checking any signature. */
  chainTagBytes: 4,
} as const;

/** Fixed part: version, tag, sender, nonce, recipient, amount, fee, expiry, memo length, sig. */
const FIXED_BYTES = 1 + TX_LIMITS.chainTagBytes + PUBLIC_KEY_LENGTH + 8 + ADDRESS_HASH_LENGTH +
  16 + 8 + 8 + 4 + SIGNATURE_LENGTH;
/** Largest encoding a valid transaction has (165 + 80 = 245 bytes). */
export const MAX_TX_BYTES = FIXED_BYTES + TX_LIMITS.maxMemoBytes;
/** Largest encoding the decoder reads (so `memo-too-long` can be told apart). */
export const MAX_DECODED_TX_BYTES = FIXED_BYTES + TX_LIMITS.maxDecodedMemoBytes;

const U64_MAX = (1n << 64n) - 1n;
const U64_MASK = U64_MAX;

export interface Transaction {
  version: number;
  /** First bytes of the genesis hash of the chain it was signed for. */
  chainTag: Uint8Array;
  /** Ed25519 public key of the sender; its address is `addressOf(network, sender)`. */
  sender: Uint8Array;
  /** Must equal the sender's account nonce when applied. */
  nonce: number;
  /** Address hash (20 bytes) of the recipient. */
  recipient: Uint8Array;
  amount: bigint;
  fee: bigint;
  /** Last block height that may include it. */
  expiresAt: number;
  memo: Uint8Array;
  signature: Uint8Array;
}

/** Why a transaction is invalid: one reason per rule, in checking order (docs/state.md). */
export type TxRejectReason =
  | "malformed"
  | "wrong-chain"
  | "memo-too-long"
  | "fee-too-low"
  | "bad-signature"
  | "expired"
  | "nonce-used"
  | "nonce-gap"
  | "amount-overflow"
  | "insufficient-balance";

/** Reasons that hold at every state of the chain: a peer relaying such a transaction is at fault. */
export const STATELESS_REASONS: ReadonlySet<TxRejectReason> = new Set([
  "malformed",
  "wrong-chain",
  "memo-too-long",
  "fee-too-low",
  "bad-signature",
]);

export class TxInvalidError extends Error {
  constructor(readonly reason: TxRejectReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = "TxInvalidError";
  }
}

/** What the chain's rules need to judge a transaction without state. */
export interface TxRules {
  genesisHash: Uint8Array;
  minFeePerByte: bigint;
}

const TX_DOMAIN = new TextEncoder().encode("timenode/tx/v1");

export function chainTagOf(genesisHash: Uint8Array): Uint8Array {
  return genesisHash.subarray(0, TX_LIMITS.chainTagBytes);
}

function writeBody(w: ByteWriter, tx: Omit<Transaction, "signature">): void {
  w.u8(tx.version).fixed(tx.chainTag, TX_LIMITS.chainTagBytes)
    .fixed(tx.sender, PUBLIC_KEY_LENGTH).u64(tx.nonce)
    .fixed(tx.recipient, ADDRESS_HASH_LENGTH)
    .u64big(tx.amount & U64_MASK).u64big(tx.amount >> 64n)
    .u64big(tx.fee).u64(tx.expiresAt).bytes(tx.memo);
}

export function encodeTransaction(tx: Transaction): Uint8Array {
  if (tx.amount < 0n || tx.amount > MAX_AMOUNT) throw new RangeError("amount out of range");
  if (tx.fee < 0n || tx.fee > U64_MAX) throw new RangeError("fee out of range");
  if (tx.memo.length > TX_LIMITS.maxDecodedMemoBytes) throw new RangeError("memo too long");
  const w = new ByteWriter(FIXED_BYTES + tx.memo.length);
  writeBody(w, tx);
  w.fixed(tx.signature, SIGNATURE_LENGTH);
  return w.finish();
}

/** Strict decode. Throws `DecodeError` for anything not canonical. */
export function decodeTransaction(bytes: Uint8Array): Transaction {
  if (bytes.length > MAX_DECODED_TX_BYTES) {
    throw new DecodeError(`transaction of ${bytes.length} bytes exceeds ${MAX_DECODED_TX_BYTES}`);
  }
  const r = new ByteReader(bytes);
  const version = r.u8();
  if (version !== TX_VERSION) throw new DecodeError(`unknown transaction version ${version}`);
  const chainTag = r.fixed(TX_LIMITS.chainTagBytes).slice();
  const sender = r.fixed(PUBLIC_KEY_LENGTH).slice();
  const nonce = r.u64();
  const recipient = r.fixed(ADDRESS_HASH_LENGTH).slice();
  const lo = r.u64big();
  const hi = r.u64big();
  const fee = r.u64big();
  const expiresAt = r.u64();
  const memo = r.bytes(TX_LIMITS.maxDecodedMemoBytes).slice();
  const signature = r.fixed(SIGNATURE_LENGTH).slice();
  r.end();
  return {
    version,
    chainTag,
    sender,
    nonce,
    recipient,
    amount: (hi << 64n) | lo,
    fee,
    expiresAt,
    memo,
    signature,
  };
}

/** Transactions already decoded, by encoding object (see `decodeTransactionOnce`). */
const decodedByBytes = new WeakMap<Uint8Array, Transaction>();

/**
 * `decodeTransaction`, once per encoding object: a block's transfers are decoded when it is
 * judged, again when it is indexed at commit and when the pool counts its fees. Safe for the
 * reason `transactionIdsOf` gives; callers treat the result as read-only, like every decoded
 * value. A failed decode is not remembered (it throws each time).
 */
export function decodeTransactionOnce(bytes: Uint8Array): Transaction {
  let tx = decodedByBytes.get(bytes);
  if (tx === undefined) {
    tx = decodeTransaction(bytes);
    decodedByBytes.set(bytes, tx);
  }
  return tx;
}

/** The transaction id: SHA-256 of the whole encoding (signature included). */
export function transactionId(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

export function transactionIdHex(bytes: Uint8Array): string {
  return toHex(sha256(bytes));
}

/** Ids of block transaction lists already hashed, by list object (see `transactionIdsOf`). */
const idsByList = new WeakMap<readonly Uint8Array[], readonly string[]>();

/**
 * The ids (hex) of a block's transactions, hashed once per list object. A validator reads them
 * when it prepares a proposal, judges it, commits it and revalidates its pool, each time on the
 * same decoded block; a SHA-256 through node:crypto costs 10 to 20 µs here, so hashing a
 * 3,000-transfer block four times was a visible share of a validator's loop. Safe because a
 * decoded block is never changed in place (chain/apply_cache.ts relies on the same rule) and
 * decoding copies every byte field out of the frame buffer.
 */
export function transactionIdsOf(txs: readonly Uint8Array[]): readonly string[] {
  let ids = idsByList.get(txs);
  if (ids === undefined) {
    ids = txs.map(transactionIdHex);
    idsByList.set(txs, ids);
  }
  return ids;
}

/** The bytes the sender signs: domain, genesis hash, then the encoding without the signature. */
export function txSignBytes(
  genesisHash: Uint8Array,
  tx: Omit<Transaction, "signature">,
): Uint8Array {
  const w = new ByteWriter(TX_DOMAIN.length + HASH_LENGTH + FIXED_BYTES + tx.memo.length);
  w.raw(TX_DOMAIN).fixed(genesisHash, HASH_LENGTH);
  writeBody(w, tx);
  return w.finish();
}

export function verifyTxSignature(genesisHash: Uint8Array, tx: Transaction): boolean {
  return verifySignature(tx.sender, txSignBytes(genesisHash, tx), tx.signature);
}

/** The smallest fee a transaction of `encodedBytes` bytes may pay. */
export function minimumFee(rules: TxRules, encodedBytes: number): bigint {
  return rules.minFeePerByte * BigInt(encodedBytes);
}

/**
 * Every stateless rule except the signature, in order: decoding, chain, memo, fee. Cheap enough
 * for the event loop; the signature goes to a verify worker (or `verifyTxSignature`).
 */
export function checkTxFormat(rules: TxRules, bytes: Uint8Array): Transaction {
  let tx: Transaction;
  try {
    tx = decodeTransactionOnce(bytes);
  } catch (e) {
    if (e instanceof DecodeError) throw new TxInvalidError("malformed", e.message);
    throw e;
  }
  if (!bytesEqual(tx.chainTag, chainTagOf(rules.genesisHash))) {
    throw new TxInvalidError("wrong-chain", `signed for chain ${toHex(tx.chainTag)}…`);
  }
  if (tx.memo.length > TX_LIMITS.maxMemoBytes) {
    throw new TxInvalidError(
      "memo-too-long",
      `memo of ${tx.memo.length} bytes exceeds ${TX_LIMITS.maxMemoBytes}`,
    );
  }
  const min = minimumFee(rules, bytes.length);
  if (tx.fee < min) {
    throw new TxInvalidError("fee-too-low", `fee ${tx.fee} below the minimum ${min}`);
  }
  return tx;
}

/** All stateless rules, signature included. */
export function checkTxStateless(rules: TxRules, bytes: Uint8Array): Transaction {
  const tx = checkTxFormat(rules, bytes);
  if (!verifyTxSignature(rules.genesisHash, tx)) {
    throw new TxInvalidError("bad-signature", "the signature does not verify");
  }
  return tx;
}

export interface TransferParams {
  genesisHash: Uint8Array;
  nonce: number;
  /** Address hash of the recipient (`parseAddress`). */
  recipient: Uint8Array;
  amount: bigint;
  fee: bigint;
  expiresAt: number;
  memo?: Uint8Array;
}

/** A transfer from `key`, signed, encoded: ready for `sendrawtransaction`. */
export function signTransfer(key: KeyPair, p: TransferParams): Uint8Array {
  const unsigned = {
    version: TX_VERSION,
    chainTag: chainTagOf(p.genesisHash),
    sender: key.publicKey,
    nonce: p.nonce,
    recipient: p.recipient,
    amount: p.amount,
    fee: p.fee,
    expiresAt: p.expiresAt,
    memo: p.memo ?? new Uint8Array(0),
  };
  return encodeTransaction({
    ...unsigned,
    signature: signBytes(key, txSignBytes(p.genesisHash, unsigned)),
  });
}

/** Encoded size of a transfer with a memo of `memoBytes` bytes (for fee estimates). */
export function transferSize(memoBytes: number): number {
  return FIXED_BYTES + memoBytes;
}
