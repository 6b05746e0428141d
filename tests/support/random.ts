/**
 * The one seeded PRNG of the tests: production's `SeededRandom` (network/random.ts) plus the
 * small conveniences scenario code wants (an integer in a closed range, a coin flip, a plain
 * `() => number` for APIs that take one such as `SyncScheduler`).
 *
 * Owns: those conveniences. Must never: implement another generator; a failing simulation must
 * replay from its seed with the same algorithm production code is tested with.
 */
import { randomInt, SeededRandom } from "../../network/random.ts";

export class TestRandom extends SeededRandom {
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number {
    return min + randomInt(this, max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[randomInt(this, items.length)];
  }
}

/** A seeded `() => number` in [0, 1), for APIs that take a bare function (sync). */
export function seededRandomFn(seed: number | string): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}
