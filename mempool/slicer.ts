/**
 * Runs queued jobs on the event loop in short slices, giving the loop back between slices so
 * that consensus messages, pings, RPC calls and timers that arrived meanwhile run first.
 *
 * Owns: the slice budget and the queue of jobs not yet run.
 * Must never: run a slice longer than its budget plus one job, grow beyond `maxPending` (the
 * caller refuses what does not fit), or leave a timer behind after `drain`.
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["timenode", "mempool"]);

/**
 * Event-loop time one slice may take: a consensus message waits at most about this long behind
 * transfer work, far below the round timeouts (seconds), while a slice still admits a few
 * hundred transfers.
 */
export const SLICE_BUDGET_MS = 5;

export class Slicer {
  #jobs: (() => void)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #budgetMs: number;
  readonly #now: () => number;

  constructor(budgetMs = SLICE_BUDGET_MS, now: () => number = () => performance.now()) {
    this.#budgetMs = budgetMs;
    this.#now = now;
  }

  get pending(): number {
    return this.#jobs.length - this.#head;
  }

  /** Queues `job` to run in a later turn of the event loop, never inside this call. */
  push(job: () => void): void {
    this.#jobs.push(job);
    this.#schedule();
  }

  /** Runs every queued job now (shutdown), and cancels the pending turn. */
  drain(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.pending > 0) this.#runOne();
    this.#jobs = [];
    this.#head = 0;
  }

  #schedule(): void {
    // A timer, not a microtask: a macrotask lets I/O (consensus messages) run in between.
    if (this.#timer === undefined && this.pending > 0) {
      this.#timer = setTimeout(() => this.#run(), 0);
    }
  }

  #runOne(): void {
    try {
      this.#jobs[this.#head++]();
    } catch (e) {
      // One failing job must not stall the rest of the queue.
      log.error("mempool job failed: {error}", { error: (e as Error).stack ?? String(e) });
    }
  }

  #run(): void {
    this.#timer = undefined;
    const start = this.#now();
    while (this.pending > 0) {
      this.#runOne();
      if (this.#now() - start >= this.#budgetMs) break;
    }
    this.#jobs = this.#jobs.slice(this.#head);
    this.#head = 0;
    this.#schedule();
  }
}
