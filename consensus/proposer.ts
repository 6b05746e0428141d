/**
 * Proposer selection: CometBFT's weighted proposer priority as a pure function of
 * (validator set, height, round). See docs/consensus.md §2.
 *
 * The sequence: all priorities start at 0; each step adds every validator's power to its
 * priority, picks the highest (ties: lowest node id) and subtracts the total power W from it.
 * The proposer of (h, r) is the pick of step k + 1 with k = (h − 1 + r) mod W. Over any W
 * consecutive steps each validator is picked exactly `power` times (the priorities return to
 * zero), so selection is proportional to power, and a round change moves to the next pick.
 *
 * Owns: the definition of that sequence and its cheap evaluation.
 * Must never: depend on anything but the set's node ids and powers, the height and the round:
 * no chain state, clock, randomness or local view (docs/lessons.md#14).
 */
import { toHex } from "../encoding/binary.ts";
import type { Validator, ValidatorSet } from "../chain/validators.ts";

/** Sequences kept per process: the current set, the next one and a few recent ones. */
const SEQUENCE_CACHE_SIZE = 8;
/** Picks remembered per sequence: the engine asks for the same few rounds again and again. */
const RECENT_PICKS_SIZE = 64;

/**
 * Validators of equal power always hold the same priority except for their pick counts, so
 * within a group the next pick is simply the next member in node-id order (round robin). That
 * makes one step cost one comparison per distinct power instead of one per validator.
 */
interface PowerGroup {
  power: number;
  /** Members in node-id order, with their index in the whole set for tie-breaking. */
  members: { validator: Validator; rank: number }[];
  /** Picks of this group so far in the current pass. */
  picks: number;
}

/** One set's sequence with a cursor, so consecutive heights cost O(groups) each. */
class ProposerSequence {
  readonly totalPower: number;
  readonly #groups: PowerGroup[];
  /** Steps taken since the all-zero start. */
  #steps = 0;
  #recent = new Map<number, Validator>();

  constructor(set: ValidatorSet) {
    const byPower = new Map<number, PowerGroup>();
    let total = 0;
    set.validators.forEach((validator, rank) => {
      if (!(validator.power > 0)) return;
      total += validator.power;
      let group = byPower.get(validator.power);
      if (!group) {
        group = { power: validator.power, members: [], picks: 0 };
        byPower.set(validator.power, group);
      }
      group.members.push({ validator, rank });
    });
    if (total === 0) throw new RangeError("validator set has no voting power");
    this.totalPower = total;
    this.#groups = [...byPower.values()];
  }

  /** The pick of step `index + 1`, for 0 ≤ index < totalPower. */
  pick(index: number): Validator {
    const cached = this.#recent.get(index);
    if (cached) return cached;
    if (index < this.#steps) this.#rewind();
    let picked: Validator | undefined;
    while (this.#steps <= index) picked = this.#advance();
    if (this.#recent.size >= RECENT_PICKS_SIZE) this.#recent.clear();
    this.#recent.set(index, picked!);
    return picked!;
  }

  #rewind(): void {
    this.#steps = 0;
    for (const g of this.#groups) g.picks = 0;
  }

  #advance(): Validator {
    // Priority of a group's next member after `t` increments: power·t − W·(its pick count).
    const t = this.#steps + 1;
    let best: PowerGroup | undefined;
    let bestPriority = 0;
    let bestRank = 0;
    for (const g of this.#groups) {
      const m = g.members.length;
      const priority = g.power * t - this.totalPower * Math.floor(g.picks / m);
      const rank = g.members[g.picks % m].rank;
      if (!best || priority > bestPriority || (priority === bestPriority && rank < bestRank)) {
        best = g;
        bestPriority = priority;
        bestRank = rank;
      }
    }
    const chosen = best!.members[best!.picks % best!.members.length].validator;
    best!.picks++;
    this.#steps++;
    return chosen;
  }
}

const sequences = new Map<string, ProposerSequence>();

function sequenceFor(set: ValidatorSet): ProposerSequence {
  const key = toHex(set.hash);
  let seq = sequences.get(key);
  if (seq) {
    // Re-insert: Map order is the eviction order, oldest use first.
    sequences.delete(key);
  } else {
    seq = new ProposerSequence(set);
    if (sequences.size >= SEQUENCE_CACHE_SIZE) {
      sequences.delete(sequences.keys().next().value!);
    }
  }
  sequences.set(key, seq);
  return seq;
}

/**
 * The validator that proposes in (`height`, `round`). Deterministic: every node with the same
 * set computes the same answer. Throws RangeError for a set without power or a height < 1.
 */
export function proposerAt(set: ValidatorSet, height: number, round: number): Validator {
  if (!Number.isSafeInteger(height) || height < 1) throw new RangeError(`bad height ${height}`);
  if (!Number.isSafeInteger(round) || round < 0) throw new RangeError(`bad round ${round}`);
  const seq = sequenceFor(set);
  const w = seq.totalPower;
  return seq.pick((((height - 1) % w) + (round % w)) % w);
}
