/**
 * Block verification off the main thread: decodes encoded committed blocks and checks the
 * signatures of their certificates. Runs as a Deno Worker (see verify_pool.ts); the same check
 * is exported for the pool's fallback when a worker fails.
 *
 * Owns: the checks that need no chain state: strict decoding, the expected height, the chain
 * id, the certificate naming this very block, every certificate signature, and every
 * transaction signature (so applying the block skips them: `signaturesVerified`).
 * Must never: decide anything that needs the tip (link, timestamp, payload root, quorum of the
 * validator set): the chain checks those in order on the main thread. Never throws on hostile
 * bytes: every failure becomes a verdict.
 */
import { blockHash, decodeCommittedBlock, transactionsOf } from "../chain/block.ts";
import { decodeTransaction, verifyTxSignature } from "../state/transaction.ts";
import { verifyCertificateSignatures } from "../chain/certificate.ts";
import { bytesEqual } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import type { RejectReason } from "../chain/api.ts";

export type CheckFailure = Extract<
  RejectReason,
  "decode" | "bad-height" | "wrong-chain" | "bad-certificate" | "bad-signature" | "bad-transactions"
>;

export interface BatchCheck {
  /** Blocks that passed, from the start of the batch; checking stops at the first failure. */
  okCount: number;
  /** Hash of each passing block. */
  hashes: Uint8Array[];
  /** The first failing block, if any. */
  failure?: { index: number; reason: CheckFailure };
}

/** Checks blocks expected at `fromHeight`, `fromHeight + 1`, ... */
export function checkEncodedBlocks(
  genesisHash: Uint8Array,
  fromHeight: number,
  blocks: readonly Uint8Array[],
): BatchCheck {
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const reason = checkOne(genesisHash, fromHeight + i, blocks[i], hashes);
    if (reason) return { okCount: i, hashes, failure: { index: i, reason } };
  }
  return { okCount: blocks.length, hashes };
}

function checkOne(
  genesisHash: Uint8Array,
  height: number,
  encoded: Uint8Array,
  hashes: Uint8Array[],
): CheckFailure | null {
  let cb;
  try {
    cb = decodeCommittedBlock(encoded);
  } catch {
    return "decode";
  }
  const header = cb.block.header;
  if (header.height !== height) return "bad-height";
  if (!bytesEqual(header.chainId, genesisHash)) return "wrong-chain";
  const hash = blockHash(header);
  const cert = cb.certificate;
  if (cert.height !== height || !bytesEqual(cert.blockHash, hash)) return "bad-certificate";
  if (!verifyCertificateSignatures(genesisHash, cert)) return "bad-signature";
  for (const bytes of transactionsOf(cb.block)) {
    let ok = false;
    try {
      ok = verifyTxSignature(genesisHash, decodeTransaction(bytes));
    } catch {
      // Malformed: the chain's state machine refuses it with its reason on the main thread.
      ok = true;
    }
    if (!ok) return "bad-transactions";
  }
  hashes.push(hash);
  return null;
}

// ---- worker protocol ---------------------------------------------------------------------

/** Main → worker. Blocks travel packed in one transferred buffer. */
export interface VerifyJob {
  id: number;
  genesisHash: Uint8Array;
  fromHeight: number;
  packed: ArrayBuffer;
  lengths: Uint32Array;
}

/** Worker → main. `hashes` packs `okCount` hashes of 32 bytes. */
export interface VerifyReply {
  id: number;
  okCount: number;
  hashes: ArrayBuffer;
  failureIndex: number;
  failureReason: CheckFailure | null;
}

export function unpack(packed: ArrayBuffer, lengths: Uint32Array): Uint8Array[] {
  const out: Uint8Array[] = new Array(lengths.length);
  let offset = 0;
  for (let i = 0; i < lengths.length; i++) {
    out[i] = new Uint8Array(packed, offset, lengths[i]);
    offset += lengths[i];
  }
  return out;
}

function runJob(job: VerifyJob): VerifyReply {
  const check = checkEncodedBlocks(
    job.genesisHash,
    job.fromHeight,
    unpack(job.packed, job.lengths),
  );
  const hashes = new Uint8Array(check.hashes.length * HASH_LENGTH);
  check.hashes.forEach((h, i) => hashes.set(h, i * HASH_LENGTH));
  return {
    id: job.id,
    okCount: check.okCount,
    hashes: hashes.buffer,
    failureIndex: check.failure?.index ?? -1,
    failureReason: check.failure?.reason ?? null,
  };
}

/** Main → worker: transaction signatures to check (mempool admission). */
export interface TxVerifyJob {
  id: number;
  kind: "txs";
  genesisHash: Uint8Array;
  packed: ArrayBuffer;
  lengths: Uint32Array;
}

/** Worker → main: one byte per transaction, 1 when it decodes and its signature verifies. */
export interface TxVerifyReply {
  id: number;
  ok: ArrayBuffer;
}

/** 1 per transaction that decodes and whose signature verifies for this chain, else 0. */
export function checkTransactionSignatures(
  genesisHash: Uint8Array,
  txs: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  const ok = new Uint8Array(txs.length);
  for (let i = 0; i < txs.length; i++) {
    try {
      ok[i] = verifyTxSignature(genesisHash, decodeTransaction(txs[i])) ? 1 : 0;
    } catch {
      ok[i] = 0;
    }
  }
  return ok;
}

/** The slice of a worker's global scope this module uses (Deno types `self` as a window). */
interface WorkerScope {
  onmessage: ((e: MessageEvent<VerifyJob | TxVerifyJob>) => void) | null;
  postMessage(message: VerifyReply | TxVerifyReply, transfer: Transferable[]): void;
}

// Only install the handler inside a worker: the main thread imports this file for the fallback.
if (typeof (globalThis as Record<string, unknown>).WorkerGlobalScope === "function") {
  const scope = self as unknown as WorkerScope;
  scope.onmessage = (e) => {
    const job = e.data;
    if ("kind" in job && job.kind === "txs") {
      const ok = checkTransactionSignatures(job.genesisHash, unpack(job.packed, job.lengths));
      scope.postMessage({ id: job.id, ok: ok.buffer }, [ok.buffer]);
      return;
    }
    const reply = runJob(job as VerifyJob);
    scope.postMessage(reply, [reply.hashes]);
  };
}
