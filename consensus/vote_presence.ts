/**
 * Which validators this node hears votes from at the current height, so a stalled chain can
 * name the members whose votes are missing (`getconsensusinfo`, the stall warning).
 *
 * Owns: the highest round each validator voted in at one height. Pure and bounded: the shell
 * notes only votes of members of the height's validator set, and a new height starts afresh.
 * Must never: be used to decide anything. Votes are noted before the engine checks their
 * signature; this is a diagnostic, and a forged vote can at worst hide a missing member here.
 */

export class VotePresence {
  #height = -1;
  readonly #lastRound = new Map<string, number>();

  /** Starts `height`: everything noted for an earlier height is dropped. */
  startHeight(height: number): void {
    if (height === this.#height) return;
    this.#height = height;
    this.#lastRound.clear();
  }

  /** A vote of `validator` (hex id, a member of the set) for `height` and `round`. */
  note(height: number, round: number, validator: string): void {
    if (height !== this.#height) return;
    if ((this.#lastRound.get(validator) ?? -1) < round) this.#lastRound.set(validator, round);
  }

  /**
   * The members of `validators` not heard at this height in `round` or the round before: the
   * ones the current round waits for. `self` is never missing; its votes do not come over the
   * network.
   */
  missing(round: number, validators: readonly string[], self: string): string[] {
    return validators.filter((v) =>
      v !== self && (this.#lastRound.get(v) ?? -1) < Math.max(0, round - 1)
    );
  }
}
