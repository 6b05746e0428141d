/**
 * A pool of Deno Workers that check block batches (decode + certificate signatures) in
 * parallel, so signature checking never blocks the event loop (docs/lessons.md#17).
 *
 * Owns: the workers, splitting a batch into chunks over them, and merging the verdicts back in
 * order. Must never: leave a worker running after `close()` (test sanitizers and clean
 * shutdown depend on it), or let a crashed worker lose a batch: its jobs are rejected so the
 * caller can check them another way, and the worker is replaced.
 */
import { MAX_VERIFY_WORKERS, MIN_VERIFY_WORKERS, VERIFY_CHUNK_BLOCKS } from "./constants.ts";
import {
  type BatchCheck,
  type CheckedBlock,
  type CommitVerifyJob,
  type SignerContext,
  signerContextFor,
  type TxVerifyJob,
  type TxVerifyReply,
  unpack,
  type VerifyJob,
  type VerifyReply,
} from "./verify_worker.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import { ByteWriter } from "../encoding/binary.ts";
import {
  type BlockHeader,
  type Certificate,
  writeCertificate,
  writeHeader,
} from "../chain/block.ts";
import type { ValidatorSet } from "../chain/validators.ts";
import type { CertificateMetrics } from "../metrics/definitions.ts";

export interface VerifyPoolOptions {
  genesisHash: Uint8Array;
  /**
   * The chain's `validatorSetFor`: with it, certificates are checked against their set (count,
   * duplicates, membership, quorum) before any signature is verified. Without it (tests of the
   * pool alone), only duplicates are.
   */
  validatorSetFor?: (height: number) => ValidatorSet | undefined;
  /** Counts certificates refused, by reason. */
  metrics?: CertificateMetrics;
  /** Defaults to the cores the runtime reports, within [1, 4]. */
  workers?: number;
  chunkBlocks?: number;
}

interface PendingJob {
  // Each job's own promise knows its reply type (block batch or transactions).
  resolve: (reply: VerifyReply & TxVerifyReply) => void;
  reject: (error: Error) => void;
  /** Units of load this job adds to its worker until it is answered. */
  load: number;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, PendingJob>;
  /** Work queued on this worker (in blocks); a new job goes to the least loaded one. */
  load: number;
}

export function defaultWorkerCount(): number {
  const cores = navigator.hardwareConcurrency || MIN_VERIFY_WORKERS;
  return Math.max(MIN_VERIFY_WORKERS, Math.min(MAX_VERIFY_WORKERS, cores));
}

export class VerifyPool {
  readonly #genesisHash: Uint8Array;
  readonly #validatorSetFor: VerifyPoolOptions["validatorSetFor"];
  readonly #metrics: CertificateMetrics | undefined;
  readonly #chunkBlocks: number;
  readonly #slots: Slot[] = [];
  #nextJobId = 1;
  #closed = false;

  constructor(opts: VerifyPoolOptions) {
    this.#genesisHash = opts.genesisHash.slice();
    this.#validatorSetFor = opts.validatorSetFor;
    this.#metrics = opts.metrics;
    this.#chunkBlocks = Math.max(1, opts.chunkBlocks ?? VERIFY_CHUNK_BLOCKS);
    const n = Math.max(1, Math.floor(opts.workers ?? defaultWorkerCount()));
    for (let i = 0; i < n; i++) this.#slots.push(this.#spawn());
  }

  get size(): number {
    return this.#slots.length;
  }

  /**
   * Checks blocks expected at `fromHeight`, ... The blocks are copied (packed, one buffer per
   * chunk) before transfer, so the caller keeps its arrays; the passing blocks come back as
   * views into that buffer, which the worker returns. Rejects if the pool is closed or a worker
   * crashes.
   */
  async verify(fromHeight: number, blocks: readonly Uint8Array[]): Promise<BatchCheck> {
    if (this.#closed) throw new Error("verify pool is closed");
    const signers = this.signersFor(fromHeight, blocks.length);
    const chunks: Promise<VerifyReply>[] = [];
    for (let i = 0; i < blocks.length; i += this.#chunkBlocks) {
      const part = signers && {
        sets: signers.sets,
        perBlock: signers.perBlock.slice(i, i + this.#chunkBlocks),
      };
      chunks.push(this.#dispatch(fromHeight + i, blocks.slice(i, i + this.#chunkBlocks), part));
    }
    const replies = await Promise.all(chunks);
    const checked: CheckedBlock[] = [];
    let offset = 0;
    for (const reply of replies) {
      const hashes = new Uint8Array(reply.hashes);
      const encoded = unpack(reply.packed, reply.lengths);
      for (let k = 0; k < reply.okCount; k++) {
        checked.push({
          encoded: encoded[k],
          hash: hashes.subarray(k * HASH_LENGTH, (k + 1) * HASH_LENGTH),
        });
      }
      if (reply.failureReason !== null) {
        const index = offset + reply.failureIndex;
        const fault = reply.failureFault;
        if (fault) this.#metrics?.certificatesRejected.inc({ reason: fault });
        const failure = fault
          ? { index, reason: reply.failureReason, fault }
          : { index, reason: reply.failureReason };
        return { okCount: index, blocks: checked, failure };
      }
      offset += reply.okCount;
    }
    return { okCount: offset, blocks: checked };
  }

  /**
   * The sets that certify blocks `fromHeight ..`, for the workers or for checking on the main
   * thread when a worker failed; undefined without a set lookup.
   */
  signersFor(fromHeight: number, count: number): SignerContext | undefined {
    return this.#validatorSetFor && signerContextFor(this.#validatorSetFor, fromHeight, count);
  }

  /**
   * Checks the signatures of encoded transactions (decoding included) in one worker: one
   * boolean per transaction. Rejects if the pool is closed or the worker crashes.
   */
  async verifyTransactions(txs: readonly Uint8Array[]): Promise<boolean[]> {
    if (this.#closed) throw new Error("verify pool is closed");
    if (txs.length === 0) return [];
    const { packed, lengths } = pack(txs);
    const job: TxVerifyJob = {
      id: this.#nextJobId++,
      kind: "txs",
      genesisHash: this.#genesisHash,
      packed: packed.buffer,
      lengths,
    };
    // A transaction costs about one block's certificate check divided by the set size: count
    // it as one unit of load per 64, so block batches and transactions share workers fairly.
    const load = Math.ceil(txs.length / 64);
    const reply = await this.#post<TxVerifyReply>(job, [packed.buffer, lengths.buffer], load);
    return [...new Uint8Array(reply.ok)].map((b) => b === 1);
  }

  /**
   * Verifies every signature of `certificate`, a commit of the block with `header`, in one
   * worker (a proposal's `lastCommit`; its signers were checked against the set already). False
   * when any signature fails or the certificate names another block. Rejects if the pool is
   * closed or the worker crashes.
   */
  async verifyCommit(header: BlockHeader, certificate: Certificate): Promise<boolean> {
    if (this.#closed) throw new Error("verify pool is closed");
    const w = new ByteWriter(256 + certificate.signatures.length * 96);
    writeHeader(w, header);
    writeCertificate(w, certificate);
    const packed = w.finish().slice().buffer;
    const job: CommitVerifyJob = {
      id: this.#nextJobId++,
      kind: "commit",
      genesisHash: this.#genesisHash,
      packed,
    };
    // As much work as one block's certificate check.
    const reply = await this.#post<TxVerifyReply>(job, [packed], 1);
    return new Uint8Array(reply.ok)[0] === 1;
  }

  #leastLoaded(): Slot {
    let slot = this.#slots[0];
    for (const s of this.#slots) if (s.load < slot.load) slot = s;
    return slot;
  }

  /** Terminates every worker; pending and later `verify` calls reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) {
      slot.worker.terminate();
      this.#failAll(slot, new Error("verify pool is closed"));
    }
  }

  #dispatch(
    fromHeight: number,
    blocks: readonly Uint8Array[],
    signers: SignerContext | undefined,
  ): Promise<VerifyReply> {
    const { packed, lengths } = pack(blocks);
    const job: VerifyJob = {
      id: this.#nextJobId++,
      genesisHash: this.#genesisHash,
      fromHeight,
      packed: packed.buffer,
      lengths,
      signers,
    };
    return this.#post<VerifyReply>(job, [packed.buffer, lengths.buffer], blocks.length);
  }

  /**
   * Hands `job` to the least loaded worker, moving `transfer` to it, and resolves with that
   * worker's reply to the job's id. The one place a job is registered and posted.
   */
  #post<R>(
    job: VerifyJob | TxVerifyJob | CommitVerifyJob,
    transfer: Transferable[],
    load: number,
  ): Promise<R> {
    const slot = this.#leastLoaded();
    return new Promise<R>((resolve, reject) => {
      // Each caller names the reply type its job gets back.
      slot.jobs.set(job.id, { resolve: resolve as PendingJob["resolve"], reject, load });
      slot.load += load;
      slot.worker.postMessage(job, transfer);
    });
  }

  #spawn(): Slot {
    const worker = new Worker(new URL("./verify_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const slot: Slot = { worker, jobs: new Map(), load: 0 };
    worker.onmessage = (e: MessageEvent<VerifyReply & TxVerifyReply>) => {
      const job = slot.jobs.get(e.data.id);
      if (!job) return;
      slot.jobs.delete(e.data.id);
      slot.load -= job.load;
      job.resolve(e.data);
    };
    const crashed = (e: Event) => {
      // Handled here: an unhandled worker error would take the whole process down.
      e.preventDefault();
      if (this.#closed) return;
      worker.terminate();
      this.#failAll(slot, new Error("verify worker crashed"));
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots[i] = this.#spawn();
    };
    worker.onerror = crashed;
    worker.onmessageerror = crashed;
    return slot;
  }

  #failAll(slot: Slot, error: Error): void {
    for (const job of slot.jobs.values()) job.reject(error);
    slot.jobs.clear();
    slot.load = 0;
  }
}

/** Byte arrays packed into one transferable buffer, with their lengths. */
function pack(
  items: readonly Uint8Array[],
): { packed: Uint8Array<ArrayBuffer>; lengths: Uint32Array<ArrayBuffer> } {
  const lengths = new Uint32Array(items.length);
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    lengths[i] = items[i].length;
    total += items[i].length;
  }
  const packed = new Uint8Array(total);
  let offset = 0;
  for (const b of items) {
    packed.set(b, offset);
    offset += b.length;
  }
  return { packed, lengths };
}
