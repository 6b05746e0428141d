/**
 * The bounded send queue feeding a connection's single writer. Pure.
 *
 * Two lanes: control frames (ping, pong, handshake, votes, proposals) always leave before bulk
 * frames (block batches, addresses), so a pong never waits behind megabytes of blocks. The
 * bound counts bytes across both lanes; `push` refuses once it would be exceeded and the
 * caller disconnects the peer (`send-queue-full`), so memory stays bounded whatever the peer
 * does (upstream lesson 5).
 *
 * Must never: split a frame, reorder frames within a lane, or hold more than `maxBytes`.
 */

class Lane {
  #items: Uint8Array[] = [];
  #head = 0;

  get empty(): boolean {
    return this.#head === this.#items.length;
  }

  push(b: Uint8Array): void {
    this.#items.push(b);
  }

  peek(): Uint8Array | undefined {
    return this.#items[this.#head];
  }

  shift(): Uint8Array {
    const b = this.#items[this.#head];
    this.#items[this.#head++] = undefined as unknown as Uint8Array;
    // Compact occasionally so a long-lived connection does not keep a growing array.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return b;
  }

  clear(): void {
    this.#items = [];
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

  /** False when the frame would push the queue past its bound; nothing is queued then. */
  push(frame: Uint8Array, control: boolean): boolean {
    if (this.#bytes + frame.length > this.maxBytes) return false;
    (control ? this.#control : this.#bulk).push(frame);
    this.#bytes += frame.length;
    return true;
  }

  /**
   * Frames for one write, control first, coalesced into one buffer up to `maxBytes` (a single
   * larger frame is returned alone). Empty when the queue is empty.
   */
  takeBatch(maxBytes: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    fill: for (const lane of [this.#control, this.#bulk]) {
      while (!lane.empty) {
        const next = lane.peek()!;
        // Stop at the first frame that does not fit: taking a later bulk frame instead would
        // let it overtake a control frame.
        if (total > 0 && total + next.length > maxBytes) break fill;
        parts.push(lane.shift());
        total += next.length;
        if (total >= maxBytes) break fill;
      }
    }
    this.#bytes -= total;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  clear(): void {
    this.#control.clear();
    this.#bulk.clear();
    this.#bytes = 0;
  }
}
