/**
 * Block verification off the main thread: decodes encoded committed blocks and checks their
 * certificates. Runs as a Deno Worker (see verify_pool.ts); the same check is exported for the
 * pool's fallback when a worker fails.
 *
 * Owns: the checks that need no chain state beyond the validator sets the caller passes:
 * strict decoding, the expected height, the chain id, the payload root, the certificate naming
 * this very block, the certificate's signers (count, duplicates, membership with power, quorum
 * where the set is exactly known), and only then every certificate signature
 * (docs/security.md), and every transaction signature (so applying the block skips them:
 * `signaturesVerified`). It hands back each passing block's bytes with its hash, so the main
 * thread neither hashes it nor checks its payload root again (`ApplyItem.workerHash`).
 * Must never: verify a signature of a certificate that fails a cheap check; decide anything that
 * needs the tip (link, timestamp): the chain checks those, and the quorum of the real set, in
 * order on the main thread. Never throws on hostile bytes: every failure becomes a verdict.
 */
import {
  blockHash,
  blockPayloadRoot,
  type ByteFields,
  type Certificate,
  decodeCommittedBlock,
  readCertificate,
  readHeader,
  transactionsOf,
} from "../chain/block.ts";
import { decodeTransaction, verifyTxSignature } from "../state/transaction.ts";
import {
  type CertificateFault,
  checkCertificateSigners,
  type SignatureVerifier,
  type SignerSet,
  verifyCertificateSignatures,
} from "../chain/certificate.ts";
import type { ValidatorSet } from "../chain/validators.ts";
import { ByteReader, bytesEqual, toHex } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import type { RejectReason } from "../chain/api.ts";

export type CheckFailure = Extract<
  RejectReason,
  | "decode"
  | "bad-height"
  | "wrong-chain"
  | "bad-payload-root"
  | "bad-certificate"
  | "bad-signature"
  | "bad-transactions"
>;

/**
 * A block that passed: `encoded` decodes, matches its payload root, and its header hashes to
 * `hash`. Decoding it again is deterministic, so these hold for the main thread's decoding too.
 */
export interface CheckedBlock {
  encoded: Uint8Array;
  hash: Uint8Array;
}

export interface BatchCheck {
  /** Blocks that passed, from the start of the batch; checking stops at the first failure. */
  okCount: number;
  /** Each passing block, in order (`okCount` of them). */
  blocks: CheckedBlock[];
  /**
   * The first failing block, if any; `fault` says why its certificate was refused before any of
   * its signatures was verified.
   */
  failure?: { index: number; reason: CheckFailure; fault?: CertificateFault };
}

/** A set's voting members as plain data, so it can travel to a worker. */
export interface WireSignerSet {
  ids: string[];
  powers: number[];
}

/**
 * The validator sets that certify a batch: `perBlock[i]` is for block `fromHeight + i`, an index
 * into `sets` (or -1: none known) and whether it is the exact set (else a superset of its
 * voting members, see `signerContextFor`).
 */
export interface SignerContext {
  sets: WireSignerSet[];
  perBlock: { set: number; exact: boolean }[];
}

function toWire(set: ValidatorSet): WireSignerSet {
  const voting = set.validators.filter((v) => v.power > 0);
  return { ids: voting.map((v) => toHex(v.nodeId)), powers: voting.map((v) => v.power) };
}

function fromWire(w: WireSignerSet): SignerSet {
  const power = new Map<string, number>();
  let totalPower = 0;
  w.ids.forEach((id, i) => {
    power.set(id, w.powers[i]);
    totalPower += w.powers[i];
  });
  return { totalPower, voting: w.ids, powerOf: (id) => power.get(id) ?? 0 };
}

/**
 * The signer context of blocks `fromHeight .. fromHeight + count - 1`, from the chain's
 * `validatorSetFor` (defined up to tip + 2). Above the highest known height K the set is not
 * known yet, but its voting members are a subset of K's with the same powers: records can only
 * register free-tier members, which have no power (state/state.ts), or remove members. So the
 * membership check still applies there with K's set; only the quorum waits for the real set,
 * which the chain checks before applying. If paid registrations ever become possible, this
 * superset must grow by the batch's registrations.
 */
export function signerContextFor(
  validatorSetFor: (height: number) => ValidatorSet | undefined,
  fromHeight: number,
  count: number,
): SignerContext {
  const sets: WireSignerSet[] = [];
  const indexByHash = new Map<string, number>();
  const indexOf = (set: ValidatorSet): number => {
    const key = toHex(set.hash);
    let i = indexByHash.get(key);
    if (i === undefined) {
      i = sets.push(toWire(set)) - 1;
      indexByHash.set(key, i);
    }
    return i;
  };
  let last = fromHeight >= 1 ? validatorSetFor(fromHeight) : undefined;
  if (!last && fromHeight > 1) {
    // Known heights are 1 .. tip + 2: find the highest one below the batch.
    let lo = 1;
    let hi = fromHeight - 1;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const set = validatorSetFor(mid);
      if (set) {
        last = set;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
  }
  const perBlock: SignerContext["perBlock"] = [];
  for (let i = 0; i < count; i++) {
    const exact = fromHeight + i >= 1 ? validatorSetFor(fromHeight + i) : undefined;
    if (exact) last = exact;
    perBlock.push({ set: last ? indexOf(last) : -1, exact: exact !== undefined });
  }
  return { sets, perBlock };
}

/** No two signatures by one key: the one signer check that needs no set. */
function distinctSigners(cert: Certificate): boolean {
  const seen = new Set<string>();
  for (const s of cert.signatures) {
    const id = toHex(s.validator);
    if (seen.has(id)) return false;
    seen.add(id);
  }
  return true;
}

/** How `checkEncodedBlocks` is run: the defaults are the node's (copies, the real verifier). */
export interface CheckOptions {
  /**
   * `view` when the caller owns the encoded blocks (a worker's transferred batch): decoding then
   * points into them instead of copying every field, which costs more than the rest of decoding.
   */
  fields?: ByteFields;
  /** The signature check; tests inject a counting one. */
  verify?: SignatureVerifier;
}

/**
 * Checks blocks expected at `fromHeight`, `fromHeight + 1`, ... With `signers` (always, in the
 * node), every certificate's signers are checked against its set before any signature is
 * verified; without, only duplicates are.
 */
export function checkEncodedBlocks(
  genesisHash: Uint8Array,
  fromHeight: number,
  encoded: readonly Uint8Array[],
  signers?: SignerContext,
  opts: CheckOptions = {},
): BatchCheck {
  const blocks: CheckedBlock[] = [];
  const sets = signers?.sets.map(fromWire) ?? [];
  for (let i = 0; i < encoded.length; i++) {
    const at = signers?.perBlock[i];
    const set = at && at.set >= 0 ? { set: sets[at.set], exact: at.exact } : null;
    const verdict = checkOne(genesisHash, fromHeight + i, encoded[i], set, opts);
    if ("reason" in verdict) return { okCount: i, blocks, failure: { index: i, ...verdict } };
    blocks.push(verdict);
  }
  return { okCount: encoded.length, blocks };
}

function checkOne(
  genesisHash: Uint8Array,
  height: number,
  encoded: Uint8Array,
  signers: { set: SignerSet; exact: boolean } | null,
  opts: CheckOptions,
): CheckedBlock | { reason: CheckFailure; fault?: CertificateFault } {
  let cb;
  try {
    cb = decodeCommittedBlock(encoded, opts.fields);
  } catch {
    return { reason: "decode" };
  }
  const header = cb.block.header;
  if (header.height !== height) return { reason: "bad-height" };
  if (!bytesEqual(header.chainId, genesisHash)) return { reason: "wrong-chain" };
  // Tip-independent, and a hash per record: cheaper here than on the main thread.
  if (!bytesEqual(header.payloadRoot, blockPayloadRoot(cb.block))) {
    return { reason: "bad-payload-root" };
  }
  const hash = blockHash(header);
  const cert = cb.certificate;
  if (cert.height !== height || !bytesEqual(cert.blockHash, hash)) {
    return { reason: "bad-certificate", fault: "wrong-block" };
  }
  if (signers) {
    const cheap = checkCertificateSigners(cert, signers.set, signers.exact);
    if (!cheap.ok) return { reason: "bad-certificate", fault: cheap.fault };
  } else if (!distinctSigners(cert)) {
    return { reason: "bad-certificate", fault: "duplicate-signer" };
  }
  if (!verifyCertificateSignatures(genesisHash, cert, opts.verify)) {
    return { reason: "bad-signature" };
  }
  for (const bytes of transactionsOf(cb.block)) {
    let ok = false;
    try {
      ok = verifyTxSignature(genesisHash, decodeTransaction(bytes));
    } catch {
      // Malformed: the chain's state machine refuses it with its reason on the main thread.
      ok = true;
    }
    if (!ok) return { reason: "bad-transactions" };
  }
  return { encoded, hash };
}

// ---- worker protocol ---------------------------------------------------------------------

/** Main → worker. Blocks travel packed in one transferred buffer. */
export interface VerifyJob {
  id: number;
  genesisHash: Uint8Array;
  fromHeight: number;
  packed: ArrayBuffer;
  lengths: Uint32Array<ArrayBuffer>;
  /** The sets of the chunk's heights; absent only when the pool was given no set lookup. */
  signers?: SignerContext;
}

/**
 * Worker → main. The job's `packed` buffer comes back (transferred, not copied), so the main
 * thread can decode the passing blocks as views into it; `hashes` packs the hashes of the
 * `okCount` passing blocks, 32 bytes each. Decoded blocks do not travel: cloning their objects
 * cost the main thread more than decoding the bytes as views (docs/sync.md#performance).
 */
export interface VerifyReply {
  id: number;
  okCount: number;
  packed: ArrayBuffer;
  lengths: Uint32Array<ArrayBuffer>;
  hashes: ArrayBuffer;
  failureIndex: number;
  failureReason: CheckFailure | null;
  failureFault: CertificateFault | null;
}

export function unpack(packed: ArrayBuffer, lengths: Uint32Array<ArrayBuffer>): Uint8Array[] {
  const out: Uint8Array[] = new Array(lengths.length);
  let offset = 0;
  for (let i = 0; i < lengths.length; i++) {
    out[i] = new Uint8Array(packed, offset, lengths[i]);
    offset += lengths[i];
  }
  return out;
}

export function runJob(job: VerifyJob): VerifyReply {
  const check = checkEncodedBlocks(
    job.genesisHash,
    job.fromHeight,
    unpack(job.packed, job.lengths),
    job.signers,
    // The batch was transferred here: decoding may point into it.
    { fields: "view" },
  );
  const hashes = new Uint8Array(check.blocks.length * HASH_LENGTH);
  check.blocks.forEach((b, i) => hashes.set(b.hash, i * HASH_LENGTH));
  return {
    id: job.id,
    okCount: check.okCount,
    packed: job.packed,
    lengths: job.lengths,
    hashes: hashes.buffer,
    failureIndex: check.failure?.index ?? -1,
    failureReason: check.failure?.reason ?? null,
    failureFault: check.failure?.fault ?? null,
  };
}

/** Main → worker: transaction signatures to check (mempool admission). */
export interface TxVerifyJob {
  id: number;
  kind: "txs";
  genesisHash: Uint8Array;
  packed: ArrayBuffer;
  lengths: Uint32Array<ArrayBuffer>;
}

/** Worker → main: one byte per transaction, 1 when it decodes and its signature verifies. */
export interface TxVerifyReply {
  id: number;
  ok: ArrayBuffer;
}

/**
 * Main → worker: one block's commit (its header, for the hash the votes sign, and a certificate)
 * whose signers the caller already checked against the set: a proposal's `lastCommit`. The
 * body is not sent, so nothing else of the block is checked here.
 */
export interface CommitVerifyJob {
  id: number;
  kind: "commit";
  genesisHash: Uint8Array;
  /** `encodeHeader` bytes followed by `encodeCertificate` bytes. */
  packed: ArrayBuffer;
}

/** Whether every signature of the commit packed in `bytes` verifies for its header's hash. */
export function checkCommitSignatures(genesisHash: Uint8Array, bytes: Uint8Array): boolean {
  let header, cert;
  try {
    const r = new ByteReader(bytes);
    header = readHeader(r);
    cert = readCertificate(r);
    r.end();
  } catch {
    return false;
  }
  if (!bytesEqual(cert.blockHash, blockHash(header)) || !distinctSigners(cert)) return false;
  return verifyCertificateSignatures(genesisHash, cert);
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
  onmessage: ((e: MessageEvent<VerifyJob | TxVerifyJob | CommitVerifyJob>) => void) | null;
  postMessage(message: VerifyReply | TxVerifyReply, transfer: Transferable[]): void;
}

// Only install the handler inside a worker: the main thread imports this file for the fallback.
if (typeof (globalThis as Record<string, unknown>).WorkerGlobalScope === "function") {
  const scope = self as unknown as WorkerScope;
  scope.onmessage = (e) => {
    const job = e.data;
    if ("kind" in job && job.kind === "commit") {
      const ok = new Uint8Array([
        checkCommitSignatures(job.genesisHash, new Uint8Array(job.packed)) ? 1 : 0,
      ]);
      scope.postMessage({ id: job.id, ok: ok.buffer }, [ok.buffer]);
      return;
    }
    if ("kind" in job && job.kind === "txs") {
      const ok = checkTransactionSignatures(job.genesisHash, unpack(job.packed, job.lengths));
      scope.postMessage({ id: job.id, ok: ok.buffer }, [ok.buffer]);
      return;
    }
    const reply = runJob(job as VerifyJob);
    scope.postMessage(reply, [reply.packed, reply.lengths.buffer, reply.hashes]);
  };
}
