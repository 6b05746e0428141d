/**
 * The bounded send queue feeding a connection's single writer. Pure.
 *
 * Two lanes: control frames (ping, pong, handshake, votes, proposals) always leave before bulk
 * frames (block batches, addresses), so a pong never waits behind megabytes of blocks. The
 * bound counts bytes across both lanes; `push` refuses once it would be exceeded and the
 * caller disconnects the peer (`send-queue-full`), so memory stays bounded whatever the peer
 * does (docs/lessons.md#5).
 *
 * Each lane copies its frames back to back into one growable byte buffer and keeps their
 * lengths, so queueing a frame allocates nothing: the caller may encode into one reused buffer
 * and push a view of it. A per-frame copy of a 100-byte message costs more than encoding it.
 *
 * Must never: split a frame, reorder frames within a lane, queue more than `maxBytes` (its
 * buffers are at most about twice that), or keep a reference to a pushed frame (it is copied,
 * so the caller may reuse its memory at once).
 */

/** First buffer of a lane: a handshake message or a ping fits, a busy lane grows from here. */
const MIN_LANE_BYTES = 1024;
/**
 * A drained lane keeps a buffer up to this size for its next frames, so a steady trickle of
 * small messages does not allocate per message; a larger buffer (left by a burst) is released,
 * so a thousand idle peers hold at most this much each.
 */
const KEEP_DRAINED_BYTES = 16 * 1024;
/** Frame lengths already sent are dropped from the front once this many have piled up. */
const LENGTHS_COMPACT_AT = 1024;

const EMPTY = new Uint8Array(0);

class Lane {
  #buf: Uint8Array = EMPTY;
  /** Bytes [start, end) of `buf` are the queued frames, oldest first. */
  #start = 0;
  #end = 0;
  /** Lengths of the queued frames from `head` on. */
  #lengths: number[] = [];
  #head = 0;

  get empty(): boolean {
    return this.#head === this.#lengths.length;
  }

  /** Number of frames queued. */
  get count(): number {
    return this.#lengths.length - this.#head;
  }

  /** Length of the `i`-th queued frame (0 is the oldest). */
  frameLength(i: number): number {
    return this.#lengths[this.#head + i];
  }

  push(frame: Uint8Array): void {
    if (this.#end + frame.length > this.#buf.length) this.#makeRoom(frame.length);
    this.#buf.set(frame, this.#end);
    this.#end += frame.length;
    this.#lengths.push(frame.length);
  }

  /** Moves the oldest `count` frames (`bytes` in total) into `out` at `offset`. */
  take(count: number, bytes: number, out: Uint8Array, offset: number): void {
    out.set(this.#buf.subarray(this.#start, this.#start + bytes), offset);
    this.#start += bytes;
    this.#head += count;
    if (this.empty) {
      this.#lengths.length = 0;
      this.#head = 0;
      this.#start = this.#end = 0;
      if (this.#buf.length > KEEP_DRAINED_BYTES) this.#buf = EMPTY;
    } else if (this.#head > LENGTHS_COMPACT_AT && this.#head * 2 > this.#lengths.length) {
      this.#lengths = this.#lengths.slice(this.#head);
      this.#head = 0;
    }
  }

  #makeRoom(extra: number): void {
    const live = this.#end - this.#start;
    // Compacting in place is safe (nothing outside the queue refers to this buffer), but only
    // worth it when it frees at least half the buffer; otherwise a queue hovering near its
    // peak would move all its bytes on every push.
    if (live + extra <= this.#buf.length && live * 2 <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let cap = Math.max(MIN_LANE_BYTES, this.#buf.length * 2);
      while (cap < live + extra) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = live;
  }

  clear(): void {
    this.#buf = EMPTY;
    this.#start = this.#end = 0;
    this.#lengths = [];
    this.#head = 0;
  }
}

export class SendQueue {
  readonly #control = new Lane();
  readonly #bulk = new Lane();
  #bytes = 0;
  readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get empty(): boolean {
    return this.#control.empty && this.#bulk.empty;
  }

  /**
   * Copies `frame` into the queue. False when it would push the queue past its bound; nothing
   * is queued then.
   */
  push(frame: Uint8Array, control: boolean): boolean {
    if (this.#bytes + frame.length > this.maxBytes) return false;
    (control ? this.#control : this.#bulk).push(frame);
    this.#bytes += frame.length;
    return true;
  }

  /**
   * Frames for one write, control first, coalesced into one new buffer up to `maxBytes` (a
   * single larger frame is returned alone). Empty when the queue is empty. The buffer belongs
   * to the caller: later pushes never touch it.
   */
  takeBatch(maxBytes: number): Uint8Array {
    let total = 0;
    let full = false;
    const counts = [0, 0];
    const sizes = [0, 0];
    const lanes = [this.#control, this.#bulk];
    for (let l = 0; l < 2 && !full; l++) {
      const lane = lanes[l];
      const n = lane.count;
      for (let i = 0; i < n; i++) {
        const len = lane.frameLength(i);
        // Stop at the first frame that does not fit: taking a later bulk frame instead would
        // let it overtake a control frame.
        if (total > 0 && total + len > maxBytes) {
          full = true;
          break;
        }
        counts[l]++;
        sizes[l] += len;
        total += len;
        if (total >= maxBytes) {
          full = true;
          break;
        }
      }
    }
    const out = new Uint8Array(total);
    if (counts[0] > 0) this.#control.take(counts[0], sizes[0], out, 0);
    if (counts[1] > 0) this.#bulk.take(counts[1], sizes[1], out, sizes[0]);
    this.#bytes -= total;
    return out;
  }

  clear(): void {
    this.#control.clear();
    this.#bulk.clear();
    this.#bytes = 0;
  }
}
