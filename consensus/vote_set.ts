/**
 * Vote tallies of one height: per (round, type) the votes of each validator and the power
 * behind each block hash, plus per round the validators heard from at all (for the f+1 round
 * skip of line 55).
 *
 * Counting rules (docs/consensus.md §9):
 *  - "any" tallies (2f+1 ⟨…, ∗⟩ of lines 34 and 47, and f+1 senders of line 55) count each
 *    validator once, by its first message;
 *  - a value's tally counts each validator at most once. An equivocating validator may appear
 *    in the tallies of two different values, exactly as the paper counts signed messages per
 *    value. That never inflates one quorum, and two values cannot both reach a quorum unless
 *    more than f power is byzantine; it is what lets every correct node see a proof of lock
 *    that contains an equivocator's vote.
 *
 * Owns: those counting rules, and telling a duplicate from a conflicting (equivocating) vote.
 * Must never: verify signatures (the engine verifies before adding) or count a non-member;
 * the caller passes the power from the validator set.
 */
import { toHex } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import { type Vote, VoteType } from "../chain/block.ts";
import { hasOneThird, hasQuorum } from "../chain/validators.ts";

/** Hex of the all-zero block hash: a nil vote. */
export const NIL_HEX = "00".repeat(HASH_LENGTH);

/** The votes of one (round, type). */
export class VoteSet {
  /** Each validator's first vote: the one that counts toward the "any" tally. */
  readonly #first = new Map<string, Vote>();
  /** Per block hash, the validators that voted for it and their votes. */
  readonly #byBlock = new Map<string, Map<string, Vote>>();
  readonly #powerByBlock = new Map<string, number>();
  readonly #totalPower: number;
  #anyPower = 0;
  /** Block hashes (or NIL_HEX) that reached > 2/3, in the order they did. */
  readonly #quorums: string[] = [];

  constructor(totalPower: number) {
    this.#totalPower = totalPower;
  }

  /** The validator's first vote here. */
  first(validatorHex: string): Vote | undefined {
    return this.#first.get(validatorHex);
  }

  /** True when this validator's vote for `blockHex` is already counted. */
  has(validatorHex: string, blockHex: string): boolean {
    return this.#byBlock.get(blockHex)?.has(validatorHex) ?? false;
  }

  /**
   * Counts a verified vote the caller checked is not counted yet (`has` is false). Returns
   * true when it made `blockHex` reach a quorum.
   */
  add(validatorHex: string, vote: Vote, blockHex: string, power: number): boolean {
    if (!this.#first.has(validatorHex)) {
      this.#first.set(validatorHex, vote);
      this.#anyPower += power;
    }
    let voters = this.#byBlock.get(blockHex);
    if (!voters) {
      voters = new Map();
      this.#byBlock.set(blockHex, voters);
    }
    voters.set(validatorHex, vote);
    const before = this.#powerByBlock.get(blockHex) ?? 0;
    const after = before + power;
    this.#powerByBlock.set(blockHex, after);
    const reached = !hasQuorum(before, this.#totalPower) && hasQuorum(after, this.#totalPower);
    if (reached) this.#quorums.push(blockHex);
    return reached;
  }

  /** Power of the votes for `blockHex` (NIL_HEX for nil). */
  powerFor(blockHex: string): number {
    return this.#powerByBlock.get(blockHex) ?? 0;
  }

  /** More than 2/3 of the power voted, for anything ("2f + 1 ⟨…, ∗⟩"), each validator once. */
  hasQuorumAny(): boolean {
    return hasQuorum(this.#anyPower, this.#totalPower);
  }

  /** The first block hash (or NIL_HEX) that gathered more than 2/3 of the power, if any. */
  quorumBlock(): string | null {
    return this.#quorums[0] ?? null;
  }

  /** Votes for `blockHex`, sorted by validator id (the certificate's canonical order). */
  votesFor(blockHex: string): Vote[] {
    const voters = this.#byBlock.get(blockHex);
    if (!voters) return [];
    return [...voters].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, v]) => v);
  }
}

export type Classification =
  | { kind: "new" }
  | { kind: "duplicate" }
  | { kind: "conflict"; first: Vote };

/** All tallies of one height. */
export class HeightVotes {
  readonly #totalPower: number;
  readonly #sets = new Map<string, VoteSet>();
  /** Per round: the validators heard from (any message) and their summed power. */
  readonly #senders = new Map<number, { ids: Set<string>; power: number }>();
  /** Per validator: the rounds it sent anything in. */
  readonly #roundsOf = new Map<string, Set<number>>();
  readonly #precommitQuorums: { round: number; blockHex: string }[] = [];

  constructor(totalPower: number) {
    this.#totalPower = totalPower;
  }

  #key(type: VoteType, round: number): string {
    return `${type}/${round}`;
  }

  get(type: VoteType, round: number): VoteSet | undefined {
    return this.#sets.get(this.#key(type, round));
  }

  /** Compares `vote` with what this validator already cast at (round, type). */
  classify(vote: Vote, validatorHex: string): Classification {
    const set = this.get(vote.type, vote.round);
    const first = set?.first(validatorHex);
    if (!set || !first) return { kind: "new" };
    // Ed25519 signatures are deterministic: the same block hash means the same vote.
    if (set.has(validatorHex, toHex(vote.blockHash))) return { kind: "duplicate" };
    return { kind: "conflict", first };
  }

  /** Counts a verified vote that `classify` called new or conflict (see the header). */
  add(vote: Vote, validatorHex: string, power: number): void {
    const key = this.#key(vote.type, vote.round);
    let set = this.#sets.get(key);
    if (!set) {
      set = new VoteSet(this.#totalPower);
      this.#sets.set(key, set);
    }
    const blockHex = toHex(vote.blockHash);
    const reached = set.add(validatorHex, vote, blockHex, power);
    if (reached && vote.type === VoteType.Precommit && blockHex !== NIL_HEX) {
      this.#precommitQuorums.push({ round: vote.round, blockHex });
    }
    this.noteSender(vote.round, validatorHex, power);
  }

  /** Records that a validator sent something (vote or proposal) in `round`. */
  noteSender(round: number, validatorHex: string, power: number): void {
    let s = this.#senders.get(round);
    if (!s) {
      s = { ids: new Set(), power: 0 };
      this.#senders.set(round, s);
    }
    if (!s.ids.has(validatorHex)) {
      s.ids.add(validatorHex);
      s.power += power;
    }
    let rounds = this.#roundsOf.get(validatorHex);
    if (!rounds) {
      rounds = new Set();
      this.#roundsOf.set(validatorHex, rounds);
    }
    rounds.add(round);
  }

  /** True when this validator already sent something in `round`. */
  hasSent(round: number, validatorHex: string): boolean {
    return this.#roundsOf.get(validatorHex)?.has(round) ?? false;
  }

  /** How many distinct rounds above `round` this validator sent anything in. */
  roundsAbove(validatorHex: string, round: number): number {
    let n = 0;
    for (const r of this.#roundsOf.get(validatorHex) ?? []) if (r > round) n++;
    return n;
  }

  /** The highest round above `round` from which f+1 power sent messages (line 55), or -1. */
  skipTarget(round: number): number {
    let best = -1;
    for (const [r, s] of this.#senders) {
      if (r > round && r > best && hasOneThird(s.power, this.#totalPower)) best = r;
    }
    return best;
  }

  /** Every (round, block) that gathered precommits from more than 2/3 of the power (non-nil). */
  precommitQuorums(): readonly { round: number; blockHex: string }[] {
    return this.#precommitQuorums;
  }
}
