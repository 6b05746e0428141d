/**
 * Per-peer limits on serving `getBlocks`: a token bucket in blocks per second, with a small
 * queue for requests over the rate so they are answered later instead of refused.
 *
 * Owns: the buckets and the deferred queues. Pure: time comes in as `now`.
 * Must never: refuse a legitimate sync. The rate is far above what any honest node asks (see
 * constants.ts), and a burst is deferred, not punished; only a peer that overflows the queue
 * is refused (docs/lessons.md#18).
 */
import {
  SERVE_BURST_BLOCKS,
  SERVE_MAX_DEFERRED_PER_PEER,
  SERVE_RATE_BLOCKS_PER_SEC,
} from "./constants.ts";
import { MESSAGE_LIMITS } from "../network/messages.ts";

export interface ServeLimiterConfig {
  ratePerSec: number;
  /** Must be at least one maximal request (500 blocks), or such a request could never pass. */
  burst: number;
  maxDeferred: number;
}

export const DEFAULT_SERVE_LIMITER_CONFIG: Readonly<ServeLimiterConfig> = {
  ratePerSec: SERVE_RATE_BLOCKS_PER_SEC,
  burst: SERVE_BURST_BLOCKS,
  maxDeferred: SERVE_MAX_DEFERRED_PER_PEER,
};

export interface BlockRequest {
  fromHeight: number;
  count: number;
}

export type Admission = "serve" | "deferred" | "refused";

interface Bucket {
  tokens: number;
  updatedAt: number;
  queue: BlockRequest[];
}

export interface ServeStats {
  served: number;
  deferred: number;
  refused: number;
}

export class ServeLimiter {
  readonly #config: ServeLimiterConfig;
  readonly #buckets = new Map<string, Bucket>();
  readonly #stats: ServeStats = { served: 0, deferred: 0, refused: 0 };

  constructor(config: Partial<ServeLimiterConfig> = {}) {
    const c = { ...DEFAULT_SERVE_LIMITER_CONFIG, ...config };
    this.#config = { ...c, burst: Math.max(c.burst, MESSAGE_LIMITS.maxBlocksPerBatch) };
  }

  /** Whether to answer `req` now, later (it is queued) or never. */
  admit(peer: string, req: BlockRequest, now: number): Admission {
    const b = this.#bucket(peer, now);
    const cost = costOf(req);
    if (b.queue.length === 0 && b.tokens >= cost) {
      b.tokens -= cost;
      this.#stats.served++;
      return "serve";
    }
    if (b.queue.length >= this.#config.maxDeferred) {
      this.#stats.refused++;
      return "refused";
    }
    b.queue.push(req);
    this.#stats.deferred++;
    return "deferred";
  }

  /** Deferred requests whose tokens have refilled, in arrival order per peer. */
  due(now: number): { peer: string; req: BlockRequest }[] {
    const out: { peer: string; req: BlockRequest }[] = [];
    for (const [peer, b] of this.#buckets) {
      if (b.queue.length === 0) continue;
      this.#refill(b, now);
      while (b.queue.length > 0 && b.tokens >= costOf(b.queue[0])) {
        const req = b.queue.shift()!;
        b.tokens -= costOf(req);
        this.#stats.served++;
        out.push({ peer, req });
      }
    }
    return out;
  }

  forget(peer: string): void {
    this.#buckets.delete(peer);
  }

  stats(): ServeStats {
    return { ...this.#stats };
  }

  #bucket(peer: string, now: number): Bucket {
    let b = this.#buckets.get(peer);
    if (!b) {
      b = { tokens: this.#config.burst, updatedAt: now, queue: [] };
      this.#buckets.set(peer, b);
    }
    this.#refill(b, now);
    return b;
  }

  #refill(b: Bucket, now: number): void {
    const elapsed = Math.max(0, now - b.updatedAt);
    b.tokens = Math.min(this.#config.burst, b.tokens + elapsed * this.#config.ratePerSec / 1000);
    b.updatedAt = now;
  }
}

/** Even an empty request costs a token, so a flood of them is still a flood. */
function costOf(req: BlockRequest): number {
  return Math.max(1, Math.min(req.count, MESSAGE_LIMITS.maxBlocksPerBatch));
}
