/**
 * Sync progress arithmetic: blocks per second over a sliding window, the fraction done and the
 * time left.
 *
 * Owns: the samples of (time, height) and what is derived from them. Pure: time comes in as
 * `now`. Must never: log or read a clock; the service decides when to report.
 */
import { PROGRESS_RATE_WINDOW_MS } from "./constants.ts";

/** Samples kept at most; the window is what matters, this only bounds memory. */
const MAX_SAMPLES = 256;

export interface ProgressReport {
  height: number;
  targetHeight: number;
  /** 0..1; 1 when there is nothing to catch up on. */
  progress: number;
  blocksPerSecond: number;
  /** Seconds until the target at the current rate; null when the rate is zero. */
  etaSeconds: number | null;
}

export class SyncProgress {
  readonly #windowMs: number;
  #samples: { at: number; height: number }[] = [];

  constructor(windowMs = PROGRESS_RATE_WINDOW_MS) {
    this.#windowMs = windowMs;
  }

  record(now: number, height: number): void {
    const last = this.#samples[this.#samples.length - 1];
    if (last && last.at === now) {
      last.height = height;
    } else {
      this.#samples.push({ at: now, height });
    }
    this.#prune(now);
    if (this.#samples.length > MAX_SAMPLES) this.#samples.splice(1, 1);
  }

  blocksPerSecond(now: number): number {
    this.#prune(now);
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at <= first.at) return 0;
    return Math.max(0, (last.height - first.height) * 1000 / (now - first.at));
  }

  report(now: number, height: number, targetHeight: number): ProgressReport {
    const blocksPerSecond = this.blocksPerSecond(now);
    const left = Math.max(0, targetHeight - height);
    return {
      height,
      targetHeight,
      progress: targetHeight <= 0 || left === 0 ? 1 : Math.min(1, height / targetHeight),
      blocksPerSecond,
      etaSeconds: left === 0 ? 0 : blocksPerSecond > 0 ? left / blocksPerSecond : null,
    };
  }

  /** Keeps one sample at or before the window start, so the rate spans the whole window. */
  #prune(now: number): void {
    const cutoff = now - this.#windowMs;
    let drop = 0;
    while (drop + 1 < this.#samples.length && this.#samples[drop + 1].at <= cutoff) drop++;
    if (drop > 0) this.#samples.splice(0, drop);
  }
}
