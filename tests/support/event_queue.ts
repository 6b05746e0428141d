/**
 * Virtual-time event queue for deterministic simulations: callbacks ordered by (time,
 * insertion order), so equal times run first-in first-out and a seed replays exactly.
 */

export interface ScheduledEvent {
  at: number;
  seq: number;
  run: () => void;
}

/** Binary min-heap on (at, seq). */
export class EventQueue {
  readonly #heap: ScheduledEvent[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, run: () => void): void {
    const h = this.#heap;
    h.push({ at, seq: this.#seq++, run });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  /** The earliest event's time, or Infinity when empty. */
  peekTime(): number {
    return this.#heap.length > 0 ? this.#heap[0].at : Infinity;
  }

  pop(): ScheduledEvent | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

function less(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
