/**
 * Rate limits: a token bucket, and a bounded map of buckets keyed by IP or peer key.
 *
 * Owns: refill arithmetic, the per-key bucket table and its LRU bound, and the loopback
 * exemption.
 * Must never: read a clock, or throttle a loopback key when `exemptLoopback` is set: local
 * devnets, tests and benchmarks must never be throttled by their neighbours, because on
 * loopback every node shares one IP (docs/lessons.md#18). Callers size limits so that
 * legitimate sync traffic never hits them; a limit is a guard against floods, not a scheduler.
 */
import { isLoopbackKey } from "./peer_key.ts";

export interface TokenBucketOptions {
  /** Tokens added per second. */
  ratePerSec: number;
  /** Bucket size: the largest burst allowed after a quiet period. */
  burst: number;
}

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #updatedAt: number;

  /** Starts full: a newcomer gets its whole burst. */
  constructor(opts: TokenBucketOptions, now: number) {
    if (!(opts.ratePerSec >= 0) || !(opts.burst > 0) || !Number.isFinite(opts.burst)) {
      throw new RangeError(`invalid token bucket options: ${JSON.stringify(opts)}`);
    }
    this.#ratePerMs = opts.ratePerSec / 1000;
    this.#burst = opts.burst;
    this.#tokens = opts.burst;
    this.#updatedAt = now;
  }

  #refill(now: number): void {
    // A clock stepping backwards must not mint or destroy tokens.
    if (now > this.#updatedAt) {
      this.#tokens = Math.min(
        this.#burst,
        this.#tokens + (now - this.#updatedAt) * this.#ratePerMs,
      );
      this.#updatedAt = now;
    }
  }

  /** Takes `n` tokens if there are that many; otherwise takes none and returns false. */
  take(now: number, n = 1): boolean {
    this.#refill(now);
    if (!(n >= 0) || this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  /** True once the bucket has refilled completely: it then holds no information. */
  isFull(now: number): boolean {
    return this.available(now) >= this.#burst;
  }
}

export interface PerKeyLimiterOptions extends TokenBucketOptions {
  /** Buckets kept; the least recently used is dropped beyond this. */
  maxKeys?: number;
  /** Always allow loopback keys ("127.0.0.1", "[::1]:24300", ...). Default: true. */
  exemptLoopback?: boolean;
}

/**
 * Default bucket count: a flood from more distinct IPs than this only recycles buckets; 4,096
 * buckets cost a few hundred KB.
 */
export const DEFAULT_MAX_KEYS = 4_096;

/**
 * One token bucket per key, e.g. inbound connection attempts per remote IP, or `getAddresses`
 * per peer. Bounded: a flood of fresh keys evicts the least recently used buckets, which at
 * worst hands an evicted key a fresh burst; it never grows memory.
 */
export class PerKeyLimiter {
  readonly #opts: Required<PerKeyLimiterOptions>;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(opts: PerKeyLimiterOptions) {
    const o = { maxKeys: DEFAULT_MAX_KEYS, exemptLoopback: true, ...opts };
    if (!Number.isInteger(o.maxKeys) || o.maxKeys < 1) {
      throw new RangeError(`maxKeys must be a positive integer: ${o.maxKeys}`);
    }
    // Validates rate and burst once, up front, rather than on the first allow().
    new TokenBucket(o, 0);
    this.#opts = o;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Spends `n` tokens of `key`'s budget; false when the budget is exhausted. */
  allow(key: string, now: number, n = 1): boolean {
    if (this.#opts.exemptLoopback && isLoopbackKey(key)) return true;
    let bucket = this.#buckets.get(key);
    if (bucket) {
      // Re-insert to mark as most recently used (Map iterates in insertion order).
      this.#buckets.delete(key);
    } else {
      if (this.#buckets.size >= this.#opts.maxKeys) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      bucket = new TokenBucket(this.#opts, now);
    }
    this.#buckets.set(key, bucket);
    return bucket.take(now, n);
  }

  /** Tokens `key` has left (Infinity for an exempt key). */
  available(key: string, now: number): number {
    if (this.#opts.exemptLoopback && isLoopbackKey(key)) return Infinity;
    return this.#buckets.get(key)?.available(now) ?? this.#opts.burst;
  }

  /** Forgets a key, e.g. when its peer disconnects. */
  delete(key: string): void {
    this.#buckets.delete(key);
  }

  /** Drops buckets that have refilled: a fresh bucket would behave identically. */
  prune(now: number): void {
    for (const [k, b] of this.#buckets) if (b.isFull(now)) this.#buckets.delete(k);
  }
}
