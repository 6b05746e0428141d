/**
 * The double-sign guard: the node's durable memory of the last proposal or vote it signed and
 * of its consensus lock, so that a crash and restart can never make it sign a conflicting one.
 *
 * Owns: the sign-guard file in the data dir (its format and its crash-safe replacement), and
 * the rule that decides whether a new signature is allowed: a position (height, round, step)
 * strictly above the last signed one, or the very same message being re-sent. The file also
 * keeps the signed messages of the last (height, round) (its proposal when small, its prevote
 * and precommit), written in the same fsync, so a restarted node re-sends them instead of
 * waiting out the round: a whole-network restart otherwise stalls until the stall escape, since
 * no node may sign those positions again (CometBFT keeps its last signature the same way).
 * Must never: let a caller send a signed message before `recordSigned` resolved (the write is
 * on disk, fsynced and renamed into place by then); start from an empty state when the file
 * exists but cannot be read (that would forget what was signed); or move backwards.
 *
 * The caller's order is: `maySign` → sign → `await recordSigned` → send.
 */
import { replaceFileDurably } from "../storage/durable_file.ts";
import { ByteReader, bytesEqual, ByteWriter, DecodeError } from "../encoding/binary.ts";
import { HASH_LENGTH, sha256 } from "../crypto/hash.ts";
import { readProposal, readVote, writeProposal, writeVote } from "../chain/block.ts";
import type { ConsensusMessage } from "./engine.ts";
import {
  comparePositions,
  type LockState,
  type SignedPosition,
  SignStep,
} from "./sign_position.ts";

/** File name inside the data dir. */
export const SIGN_GUARD_FILE = "sign_guard.bin";

/**
 * A proposal is kept for re-sending only when its encoding is at most this large: the file is
 * rewritten before every signature, and a full 4 MiB block each time would cost more than the
 * round it saves. A restarted proposer without it still has its lock evidence, and the others
 * their votes.
 */
export const MAX_KEPT_PROPOSAL_BYTES = 64 * 1024;

/** Above a kept proposal and two votes; a larger file is not ours and is refused. */
const MAX_FILE_BYTES = MAX_KEPT_PROPOSAL_BYTES + 4096;

/** Messages kept at most: one proposal, one prevote, one precommit. */
const MAX_KEPT_MESSAGES = 3;

/** v1 files (no messages) are still read, so an upgrade keeps its guard. */
const FILE_MAGIC_V1 = new TextEncoder().encode("timenode/sign-guard/v1");
const FILE_MAGIC = new TextEncoder().encode("timenode/sign-guard/v2");

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

interface GuardState {
  last: SignedPosition | null;
  lock: LockState | null;
  /** Signed messages of the last position's (height, round), in signing order. */
  messages: ConsensusMessage[];
}

function encodeGuardFile(state: GuardState): Uint8Array {
  const { last, lock, messages } = state;
  const w = new ByteWriter(256).raw(FILE_MAGIC).bool(last !== null);
  if (last) {
    w.u64(last.height).u32(last.round).u8(last.step).fixed(last.blockHash, HASH_LENGTH);
  }
  w.bool(lock !== null);
  if (lock) w.u64(lock.height).u32(lock.round).fixed(lock.blockHash, HASH_LENGTH);
  w.u8(messages.length);
  for (const m of messages) {
    if (m.kind === "proposal") writeProposal(w.u8(0), m.proposal);
    else writeVote(w.u8(1), m.vote);
  }
  // A checksum, so a damaged file is refused instead of being read as a different position.
  const body = w.finish();
  return new ByteWriter(body.length + HASH_LENGTH).raw(body).fixed(sha256(body), HASH_LENGTH)
    .finish();
}

function decodeGuardFile(bytes: Uint8Array): GuardState {
  if (bytes.length < FILE_MAGIC.length + HASH_LENGTH) throw new DecodeError("file too short");
  const body = bytes.subarray(0, bytes.length - HASH_LENGTH);
  if (!bytesEqual(sha256(body), bytes.subarray(bytes.length - HASH_LENGTH))) {
    throw new DecodeError("checksum mismatch");
  }
  const r = new ByteReader(body);
  const magic = r.fixed(FILE_MAGIC.length);
  const v1 = bytesEqual(magic, FILE_MAGIC_V1);
  if (!v1 && !bytesEqual(magic, FILE_MAGIC)) throw new DecodeError("bad magic");
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
  const messages: ConsensusMessage[] = [];
  if (!v1) {
    const count = r.u8();
    if (count > MAX_KEPT_MESSAGES) throw new DecodeError(`${count} kept messages`);
    for (let i = 0; i < count; i++) {
      const kind = r.u8();
      if (kind === 0) messages.push({ kind: "proposal", proposal: readProposal(r) });
      else if (kind === 1) messages.push({ kind: "vote", vote: readVote(r) });
      else throw new DecodeError(`bad message kind ${kind}`);
    }
  }
  r.end();
  return { last, lock, messages };
}

function messagePosition(m: ConsensusMessage): { height: number; round: number } {
  return m.kind === "vote" ? m.vote : m.proposal;
}

/** The proposal's encoded size, to decide whether it is kept. */
function proposalBytes(m: ConsensusMessage): number {
  if (m.kind !== "proposal") return 0;
  const w = new ByteWriter(1024);
  writeProposal(w, m.proposal);
  return w.length;
}

export class SignGuard {
  readonly path: string;
  #last: SignedPosition | null;
  #lock: LockState | null;
  #messages: ConsensusMessage[];
  /** Bumped on every change; `#durable` is the newest generation known to be on disk. */
  #generation = 0;
  #durable = 0;
  /** Writes run one at a time, in call order, so an older state never lands last. */
  #tail: Promise<void> = Promise.resolve();

  private constructor(path: string, state: GuardState) {
    this.path = path;
    this.#last = state.last;
    this.#lock = state.lock;
    this.#messages = state.messages;
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
      if (e instanceof Deno.errors.NotFound) {
        return new SignGuard(path, { last: null, lock: null, messages: [] });
      }
      throw e;
    }
    try {
      return new SignGuard(path, decodeGuardFile(bytes));
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
   * The signed messages of the last signed (height, round), for re-sending after a restart.
   * Not trusted: the engine verifies them like any message.
   */
  get lastMessages(): readonly ConsensusMessage[] {
    return this.#messages;
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
   * is stored in the same write (a precommit and the lock it implies cost one fsync), and so is
   * `message`, the signed message itself, kept for re-sending after a restart.
   * Throws `SignGuardError` if the message conflicts with what was signed before.
   */
  recordSigned(
    height: number,
    round: number,
    step: SignStep,
    blockHash: Uint8Array,
    lock?: LockState,
    message?: ConsensusMessage,
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
    if (message) this.#keep(message, height, round);
    return this.#persist();
  }

  #keep(message: ConsensusMessage, height: number, round: number): void {
    const at = messagePosition(message);
    if (at.height !== height || at.round !== round) return;
    if (proposalBytes(message) > MAX_KEPT_PROPOSAL_BYTES) return;
    const same = (m: ConsensusMessage) =>
      m.kind === message.kind &&
      (m.kind === "proposal" || (message.kind === "vote" && m.vote.type === message.vote.type));
    // Only the current (height, round) is worth re-sending: older positions are superseded.
    const kept = this.#messages.filter((m) => {
      const p = messagePosition(m);
      return p.height === height && p.round === round && !same(m);
    });
    kept.push(message);
    this.#messages = kept;
    this.#generation++;
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
    const bytes = encodeGuardFile({
      last: this.#last,
      lock: this.#lock,
      messages: this.#messages,
    });
    const run = this.#tail.then(async () => {
      await replaceFileDurably(this.path, bytes);
      if (generation > this.#durable) this.#durable = generation;
    });
    // The chain continues after a failed write; the failure reaches this call's caller only.
    this.#tail = run.catch(() => {});
    return run;
  }
}
