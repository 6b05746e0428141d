/**
 * Redial backoff for one persistent peer: how long to wait before the next dial.
 *
 * Owns: the delay schedule (1 s doubling to a 60 s cap, jittered) and the reset rule.
 * Must never: read a clock, set a timer or dial. The dial planner asks `nextDelay()` and
 * schedules the dial itself; time comes in as `now` on the connect/disconnect events.
 *
 * Jitter: "equal jitter". Attempt n draws uniformly from [w/2, w] where
 * w = min(maxMs, initialMs * 2^n). Full jitter ([0, w]) can return delays near zero at any attempt,
 * so a peer that accepts and immediately drops us (crash loop, genesis mismatch) would still
 * get bursts of instant redials; decorrelated jitter does not grow monotonically, which makes
 * "a dead peer is dialed less and less often" hard to guarantee. Equal jitter keeps a floor
 * that doubles with the window (never below initialMs/2, so never a hot loop), never exceeds
 * maxMs, and still spreads redials so two nodes that lost the same connection at the same
 * instant do not redial each other in lockstep (docs/lessons.md#1).
 *
 * Reset: only after a connection has *lived* `resetAfterMs`, judged at disconnect. Resetting
 * on connect would turn a peer that accepts then closes into a 1 s redial loop forever.
 */
import type { Random } from "./random.ts";

export interface BackoffOptions {
  /** First window, ms. */
  initialMs: number;
  /** Largest window, ms. */
  maxMs: number;
  /** A connection that lived at least this long resets the schedule, ms. */
  resetAfterMs: number;
}

export const BACKOFF_DEFAULTS: BackoffOptions = {
  /** One second: a restarting neighbour is usually back within a few seconds. */
  initialMs: 1_000,
  /** One minute: a persistent peer (another masternode) is worth a dial per minute forever. */
  maxMs: 60_000,
  /** A connection that survived a minute was healthy; its next failure starts from scratch. */
  resetAfterMs: 60_000,
};

/** 2^30 times any sane initialMs is far past any maxMs; keeps the power finite. */
const MAX_EXPONENT = 30;

export class Backoff {
  readonly #opts: BackoffOptions;
  readonly #random: Random;
  #attempts = 0;
  #connectedAt: number | null = null;

  constructor(opts: Partial<BackoffOptions>, random: Random) {
    const o = { ...BACKOFF_DEFAULTS, ...opts };
    if (!(o.initialMs > 0) || !(o.maxMs >= o.initialMs) || !(o.resetAfterMs >= 0)) {
      throw new RangeError(`invalid backoff options: ${JSON.stringify(o)}`);
    }
    this.#opts = o;
    this.#random = random;
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.#attempts;
  }

  /** The window the next delay is drawn from: [window/2, window]. */
  get currentWindowMs(): number {
    const { initialMs, maxMs } = this.#opts;
    return Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempts, MAX_EXPONENT));
  }

  /** Delay in ms before the next dial; each call advances the schedule. */
  nextDelay(): number {
    const window = this.currentWindowMs;
    this.#attempts++;
    return Math.round(window / 2 + this.#random.next() * (window / 2));
  }

  onConnected(now: number): void {
    this.#connectedAt = now;
  }

  onDisconnected(now: number): void {
    if (this.#connectedAt !== null && now - this.#connectedAt >= this.#opts.resetAfterMs) {
      this.#attempts = 0;
    }
    this.#connectedAt = null;
  }

  /** Forget the history, e.g. when the operator re-adds the peer. */
  reset(): void {
    this.#attempts = 0;
    this.#connectedAt = null;
  }
}
