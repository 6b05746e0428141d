/**
 * The double-sign guard: the node's durable memory of the last proposal or vote it signed and
 * of its consensus lock, so that a crash and restart can never make it sign a conflicting one.
 *
 * Owns: the sign-guard file in the data dir (its format and its crash-safe replacement), and
 * the rule that decides whether a new signature is allowed: a position (height, round, step)
 * strictly above the last signed one, or the very same message being re-sent.
 * Must never: let a caller send a signed message before `recordSigned` resolved (the write is
 * on disk, fsynced and renamed into place by then); start from an empty state when the file
 * exists but cannot be read (that would forget what was signed); or move backwards.
 *
 * The caller's order is: `maySign` → sign → `await recordSigned` → send.
 */
import { replaceFileDurably } from "../storage/durable_file.ts";
import { ByteReader, bytesEqual, ByteWriter, DecodeError } from "../encoding/binary.ts";
import { HASH_LENGTH, sha256 } from "../crypto/hash.ts";
import {
  comparePositions,
  type LockState,
  type SignedPosition,
  SignStep,
} from "./sign_position.ts";

/** File name inside the data dir. */
export const SIGN_GUARD_FILE = "sign_guard.bin";

/** Far above the ~130 bytes the file holds; a larger file is not ours and is refused. */
const MAX_FILE_BYTES = 4096;

const FILE_MAGIC = new TextEncoder().encode("timenode/sign-guard/v1");

export class SignGuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignGuardError";
  }
}

function checkPosition(height: number, round: number, step: number, blockHash: Uint8Array): void {
  if (!Number.isSafeInteger(height) || height < 0) throw new RangeError(`bad height ${height}`);
  if (!Number.isInteger(round) || round < 0 || round > 0xffffffff) {
    throw new RangeError(`bad round ${round}`);
  }
  if (step !== SignStep.Propose && step !== SignStep.Prevote && step !== SignStep.Precommit) {
    throw new RangeError(`bad step ${step}`);
  }
  if (blockHash.length !== HASH_LENGTH) throw new RangeError("block hash must be 32 bytes");
}

function encodeGuardFile(last: SignedPosition | null, lock: LockState | null): Uint8Array {
  const w = new ByteWriter(160).raw(FILE_MAGIC).bool(last !== null);
  if (last) {
    w.u64(last.height).u32(last.round).u8(last.step).fixed(last.blockHash, HASH_LENGTH);
  }
  w.bool(lock !== null);
  if (lock) w.u64(lock.height).u32(lock.round).fixed(lock.blockHash, HASH_LENGTH);
  // A checksum, so a damaged file is refused instead of being read as a different position.
  const body = w.finish();
  return new ByteWriter(body.length + HASH_LENGTH).raw(body).fixed(sha256(body), HASH_LENGTH)
    .finish();
}

function decodeGuardFile(
  bytes: Uint8Array,
): { last: SignedPosition | null; lock: LockState | null } {
  if (bytes.length < FILE_MAGIC.length + HASH_LENGTH) throw new DecodeError("file too short");
  const body = bytes.subarray(0, bytes.length - HASH_LENGTH);
  if (!bytesEqual(sha256(body), bytes.subarray(bytes.length - HASH_LENGTH))) {
    throw new DecodeError("checksum mismatch");
  }
  const r = new ByteReader(body);
  if (!bytesEqual(r.fixed(FILE_MAGIC.length), FILE_MAGIC)) throw new DecodeError("bad magic");
  let last: SignedPosition | null = null;
  if (r.bool()) {
    const height = r.u64();
    const round = r.u32();
    const step = r.u8();
    if (step !== SignStep.Propose && step !== SignStep.Prevote && step !== SignStep.Precommit) {
      throw new DecodeError(`bad step ${step}`);
    }
    last = { height, round, step, blockHash: r.fixed(HASH_LENGTH).slice() };
  }
  let lock: LockState | null = null;
  if (r.bool()) {
    lock = { height: r.u64(), round: r.u32(), blockHash: r.fixed(HASH_LENGTH).slice() };
  }
  r.end();
  return { last, lock };
}

export class SignGuard {
  readonly path: string;
  #last: SignedPosition | null;
  #lock: LockState | null;
  /** Bumped on every change; `#durable` is the newest generation known to be on disk. */
  #generation = 0;
  #durable = 0;
  /** Writes run one at a time, in call order, so an older state never lands last. */
  #tail: Promise<void> = Promise.resolve();

  private constructor(path: string, last: SignedPosition | null, lock: LockState | null) {
    this.path = path;
    this.#last = last;
    this.#lock = lock;
  }

  /**
   * Loads the guard file at `path`, or starts empty when it does not exist. Throws
   * `SignGuardError` when the file exists but is damaged: the operator must decide, because
   * guessing could double-sign.
   */
  static async open(path: string): Promise<SignGuard> {
    let bytes: Uint8Array;
    try {
      const info = await Deno.stat(path);
      if (info.size > MAX_FILE_BYTES) {
        throw new SignGuardError(`sign guard file ${path} is ${info.size} bytes: not a guard file`);
      }
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return new SignGuard(path, null, null);
      throw e;
    }
    try {
      const { last, lock } = decodeGuardFile(bytes);
      return new SignGuard(path, last, lock);
    } catch (e) {
      throw new SignGuardError(
        `sign guard file ${path} is damaged (${(e as Error).message}); refusing to start, ` +
          "since signing without it could double-sign",
      );
    }
  }

  /** The last signed position, or null when this node never signed. */
  get lastSigned(): SignedPosition | null {
    return this.#last;
  }

  /** The persisted lock, or null. The engine ignores a lock of an earlier height. */
  get lock(): LockState | null {
    return this.#lock;
  }

  /**
   * True when signing this message cannot conflict with anything signed before: its position
   * is above the last signed one, or it is the very same message (same position and block).
   */
  maySign(height: number, round: number, step: SignStep, blockHash: Uint8Array): boolean {
    checkPosition(height, round, step, blockHash);
    const last = this.#last;
    if (last === null) return true;
    const order = comparePositions({ height, round, step }, last);
    return order > 0 || (order === 0 && bytesEqual(blockHash, last.blockHash));
  }

  /**
   * Makes the signature durable. Resolve before sending it. Updates the in-memory position at
   * once, so a concurrent `maySign` already refuses a conflicting message. `lock`, when given,
   * is stored in the same write (a precommit and the lock it implies cost one fsync).
   * Throws `SignGuardError` if the message conflicts with what was signed before.
   */
  recordSigned(
    height: number,
    round: number,
    step: SignStep,
    blockHash: Uint8Array,
    lock?: LockState,
  ): Promise<void> {
    if (!this.maySign(height, round, step, blockHash)) {
      return Promise.reject(
        new SignGuardError(`refusing to record a conflicting signature at ${height}/${round}`),
      );
    }
    if (lock) checkPosition(lock.height, lock.round, SignStep.Propose, lock.blockHash);
    const sameMessage = this.#last !== null &&
      comparePositions({ height, round, step }, this.#last) === 0;
    if (!sameMessage) {
      this.#last = { height, round, step, blockHash: blockHash.slice() };
      this.#generation++;
    }
    if (lock) this.#setLock(lock);
    return this.#persist();
  }

  /** Persists the lock (Tendermint's lockedRound and lockedValue) for `height`. */
  recordLock(height: number, round: number, blockHash: Uint8Array): Promise<void> {
    checkPosition(height, round, SignStep.Propose, blockHash);
    this.#setLock({ height, round, blockHash });
    return this.#persist();
  }

  #setLock(lock: LockState): void {
    const cur = this.#lock;
    if (
      cur && cur.height === lock.height && cur.round === lock.round &&
      bytesEqual(cur.blockHash, lock.blockHash)
    ) return;
    this.#lock = { height: lock.height, round: lock.round, blockHash: lock.blockHash.slice() };
    this.#generation++;
  }

  /** Writes the current state unless it is already on disk. */
  #persist(): Promise<void> {
    const generation = this.#generation;
    if (this.#durable >= generation) return this.#tail;
    const bytes = encodeGuardFile(this.#last, this.#lock);
    const run = this.#tail.then(async () => {
      await replaceFileDurably(this.path, bytes);
      if (generation > this.#durable) this.#durable = generation;
    });
    // The chain continues after a failed write; the failure reaches this call's caller only.
    this.#tail = run.catch(() => {});
    return run;
  }
}
