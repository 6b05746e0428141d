/**
 * Stall detection: a chain that stopped while this node still has peers. With two members of
 * three offline, the third keeps its non-validator peers but no block can be made; "no peers"
 * never fires, and without this `/health` would stay 200.
 *
 * Owns: the rule "no new block for `stallBlocks` block intervals while peers are connected", the
 * quiet time it measures, and when to warn (at the start, then once per threshold) and to say
 * it is over. Pure: the node shell feeds it the height, the peer count and `now`.
 * Must never: count time without peers as a stall (that is the no-peers check's job, and a node
 * that just found peers needs a moment to sync).
 */

export interface StallStatus {
  stalled: boolean;
  /** Milliseconds since the last new block, counted only while peers were connected. */
  quietMs: number;
  /** 0 when the watch is off. */
  thresholdMs: number;
}

/** What the shell should log after an observation. */
export type StallNotice = "warn" | "recovered" | null;

export class StallWatch {
  readonly #thresholdMs: number;
  #height = -1;
  #quietSince: number;
  #warnedAt: number | null = null;

  /** `stallBlocks` 0 turns the watch off. */
  constructor(o: { stallBlocks: number; blockIntervalMs: number; now: number }) {
    this.#thresholdMs = o.stallBlocks * o.blockIntervalMs;
    this.#quietSince = o.now;
  }

  /** The status now; no side effects beyond moving the quiet clock. */
  observe(now: number, height: number, peers: number): StallStatus {
    if (height > this.#height || peers === 0) {
      this.#height = Math.max(height, this.#height);
      this.#quietSince = now;
    }
    const quietMs = Math.max(0, now - this.#quietSince);
    return {
      stalled: this.#thresholdMs > 0 && quietMs > this.#thresholdMs,
      quietMs,
      thresholdMs: this.#thresholdMs,
    };
  }

  /**
   * Whether to log now: "warn" when a stall starts and once per threshold while it lasts (a
   * chain stuck for a day logs a line per threshold, not per check), "recovered" once when
   * blocks come again after a warning.
   */
  notice(now: number, status: StallStatus): StallNotice {
    if (!status.stalled) {
      if (this.#warnedAt === null) return null;
      this.#warnedAt = null;
      return "recovered";
    }
    if (this.#warnedAt !== null && now - this.#warnedAt < status.thresholdMs) return null;
    this.#warnedAt = now;
    return "warn";
  }
}
