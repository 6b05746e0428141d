/**
 * Injected randomness: the only way protocol logic gets random numbers.
 *
 * Owns: the `Random` interface, a seeded deterministic generator for tests and simulations
 * (`SeededRandom`, xoshiro128** seeded through splitmix32), a crypto-backed one for production
 * (`cryptoRandom`), and small helpers built on the interface (`randomInt`, `shuffleInPlace`).
 * Must never: be used for keys, nonces or anything an attacker gains from predicting when it is
 * a `SeededRandom`. Handshake nonces and node keys come from `cryptoRandom` or node:crypto.
 */
import { getRandomValues } from "node:crypto";

/** Source of uniform randomness. Everything else derives from these three calls. */
export interface Random {
  /** Uniform float in [0, 1) with 53 bits of precision. */
  next(): number;
  /** Uniform 64-bit unsigned integer. */
  u64(): bigint;
  /** `n` uniform bytes. */
  bytes(n: number): Uint8Array;
}

/** getRandomValues refuses more than 65,536 bytes per call (Web Crypto rule). */
const MAX_CRYPTO_CHUNK_BYTES = 65_536;
/** Refill the crypto pool in blocks so `next()` is not one syscall per call. */
const CRYPTO_POOL_WORDS = 256;

const TWO_POW_32 = 4_294_967_296;
/** 2^53: dividing a 53-bit integer by this gives a uniform float in [0, 1). */
const TWO_POW_53 = 9_007_199_254_740_992;

function floatFrom(hi: number, lo: number): number {
  // 27 high bits of one word and 26 of the other make the 53 bits a double holds exactly.
  return ((hi >>> 5) * 67_108_864 + (lo >>> 6)) / TWO_POW_53;
}

/** splitmix32 step: spreads an arbitrary seed into well-mixed state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units, so string seeds ("node-3") are convenient in tests. */
function hashSeed(seed: number | string): number {
  if (typeof seed === "number") {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be finite: ${seed}`);
    // Fold the high part in so seeds above 2^32 still differ from each other.
    return ((seed >>> 0) ^ Math.floor(seed / TWO_POW_32)) >>> 0;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Deterministic xoshiro128** generator: the same seed always yields the same sequence, so a
 * failing fuzz case or simulation replays exactly from its seed.
 */
export class SeededRandom implements Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number | string) {
    const st = { s: hashSeed(seed) };
    this.#a = splitmix32(st);
    this.#b = splitmix32(st);
    this.#c = splitmix32(st);
    this.#d = splitmix32(st);
    // The all-zero state is the one state xoshiro never leaves.
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1;
  }

  /** Next 32-bit output as an unsigned integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  next(): number {
    const hi = this.u32();
    return floatFrom(hi, this.u32());
  }

  u64(): bigint {
    const hi = BigInt(this.u32());
    return (hi << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Uint8Array {
    checkByteCount(n);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let w = this.u32();
      for (let j = i; j < Math.min(n, i + 4); j++) {
        out[j] = w & 0xff;
        w >>>= 8;
      }
    }
    return out;
  }

  /** An independent generator derived from this one (e.g. one per simulated node). */
  fork(): SeededRandom {
    return new SeededRandom(this.u32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function checkByteCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid byte count: ${n}`);
}

class CryptoRandom implements Random {
  #pool = new Uint32Array(CRYPTO_POOL_WORDS);
  #used = CRYPTO_POOL_WORDS;

  #word(): number {
    if (this.#used === CRYPTO_POOL_WORDS) {
      getRandomValues(this.#pool);
      this.#used = 0;
    }
    return this.#pool[this.#used++];
  }

  next(): number {
    const hi = this.#word();
    return floatFrom(hi, this.#word());
  }

  u64(): bigint {
    const hi = BigInt(this.#word());
    return (hi << 32n) | BigInt(this.#word());
  }

  bytes(n: number): Uint8Array {
    checkByteCount(n);
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += MAX_CRYPTO_CHUNK_BYTES) {
      getRandomValues(out.subarray(off, Math.min(n, off + MAX_CRYPTO_CHUNK_BYTES)));
    }
    return out;
  }
}

/** Production randomness from the operating system's CSPRNG. */
export const cryptoRandom: Random = new CryptoRandom();

/** Uniform integer in [0, maxExclusive). `maxExclusive` must be a positive safe integer. */
export function randomInt(random: Random, maxExclusive: number): number {
  if (!Number.isSafeInteger(maxExclusive) || maxExclusive <= 0) {
    throw new RangeError(`maxExclusive must be a positive integer: ${maxExclusive}`);
  }
  return Math.floor(random.next() * maxExclusive);
}

/** Fisher–Yates shuffle; returns the same array for chaining. */
export function shuffleInPlace<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1);
    const tmp = items[i];
    items[i] = items[j];
    items[j] = tmp;
  }
  return items;
}
