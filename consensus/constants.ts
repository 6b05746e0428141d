/**
 * Consensus tunables: timeouts and the bounds on what the engine stores, each with the reason
 * for its value (see docs/consensus.md §6 and §8).
 *
 * Owns: numbers and the one formula that turns a timeout configuration into a delay.
 * Must never: hold state. Tests override timeouts through `EngineOptions.timeouts`, never by
 * editing this file.
 */

/** Per-step timeout = base + round × delta (the paper's timeoutX(r)), in milliseconds. */
export interface TimeoutConfig {
  proposeMs: number;
  proposeDeltaMs: number;
  prevoteMs: number;
  prevoteDeltaMs: number;
  precommitMs: number;
  precommitDeltaMs: number;
  /** How long a round may stall before the engine re-emits its own messages. */
  resendMs: number;
}

/**
 * Defaults, CometBFT's proven values. Propose waits longest because it covers building,
 * transmitting and validating a whole block (up to 4 MiB); prevote and precommit only wait for
 * 141-byte votes. The 500 ms per round growth makes the timeouts overtake any real delay after
 * a few rounds, which is what liveness after GST needs. Resend at 2 s: rare enough to cost
 * nothing when healthy, quick enough that a dropped connection costs one round, not a height.
 */
export const DEFAULT_TIMEOUTS: TimeoutConfig = {
  proposeMs: 3_000,
  proposeDeltaMs: 500,
  prevoteMs: 1_000,
  prevoteDeltaMs: 500,
  precommitMs: 1_000,
  precommitDeltaMs: 500,
  resendMs: 2_000,
};

/**
 * Ceiling for any one timeout. Far above real network delays (so it never breaks the "timeouts
 * eventually exceed the delay" argument), yet keeps a huge round from scheduling a timer years
 * away or overflowing a timer API.
 */
export const MAX_TIMEOUT_MS = 600_000;

/**
 * Highest round accepted. With timeouts growing 500 ms per round, honest nodes need years to
 * get here; the bound keeps proposer computation and timers sane against hostile input.
 */
export const MAX_ROUND = 10_000;

/**
 * Distinct rounds beyond `round + 1` in which one validator's votes are stored. Two lets an
 * honest validator that is ahead count toward the f+1 round skip, while one byzantine key
 * cannot make us store a vote set for every round number.
 */
export const MAX_FAR_FUTURE_ROUNDS_PER_VALIDATOR = 2;

/** Proposals are stored up to this many rounds ahead; the proposer resends its proposal. */
export const MAX_FUTURE_PROPOSAL_ROUNDS = 4;

/**
 * Stored proposals per round: the first, plus one conflicting one as evidence (and whose block
 * may be the one the network commits). A third adds nothing and could be 4 MiB.
 */
export const MAX_PROPOSALS_PER_ROUND = 2;

/**
 * Blocks held per height. Each may be 4 MiB; 16 covers a valid value, a locked one and every
 * proposal of the last few rounds, with the protected ones never evicted.
 */
export const MAX_KNOWN_BLOCKS = 16;

/**
 * Next-height votes held per voting member of the next height's set: a prevote and a
 * precommit for round 0 and round 1 each, which is what arrives during the pacing gap.
 */
export const MAX_NEXT_HEIGHT_VOTES_PER_VALIDATOR = 4;

/**
 * Next-height proposals held per proposer: its proposal of round 0 and, if it also proposes a
 * later round, that one. A resend carries the same signature and is not counted again.
 */
export const MAX_NEXT_HEIGHT_PROPOSALS_PER_PROPOSER = 2;

/**
 * Next-height proposals held in all (each may carry a 4 MiB block): round 0 and the next few
 * rounds' proposers.
 */
export const MAX_NEXT_HEIGHT_PROPOSALS = 4;

/**
 * Resend intervals a round may sit in a prevote or precommit step with no timeout armed (no
 * 2f+1 of anything arrived) before the node moves to the next round (docs/consensus.md §6).
 * Five intervals (10 s by default) never fire while a quorum is alive and connected, since its
 * votes arrive within one network delay; they only end a round whose missing votes are lost for
 * good, such as a vote a restarted validator signed before its crash and may not sign again.
 */
export const STALL_RESENDS = 5;

/**
 * The last-commit collection window's ceiling (docs/consensus.md §15). After committing height
 * h a node keeps collecting precommits for h, and a proposer of h + 1 builds no sooner than
 * min(block interval, this) after that commit, so a member online but slower than the quorum
 * (one extra network delay: a few hundred ms between continents) is named in the next block's
 * `lastCommit` and never counted as down. The pacing gap is a whole block interval already, so
 * the window costs no throughput; the ceiling keeps a long interval from meaning a long wait
 * should the pacing ever shrink: a member later than a second is not slow for that height.
 */
export const LAST_COMMIT_WINDOW_MAX_MS = 1_000;

/**
 * Verdicts on proposed blocks' last commits kept, so a proposal re-sent each round (and once
 * per peer) is verified once. A height sees a proposal per round; 64 rounds is far past any.
 */
export const MAX_LAST_COMMIT_VERDICTS = 64;

/** Safety net for the rule fixpoint loop; each pass fires one rule, a height needs few. */
export const MAX_RULE_PASSES = 1_000;

export type TimedStep = "propose" | "prevote" | "precommit";

/** The paper's timeoutPropose/Prevote/Precommit(round): base + round × delta, capped. */
export function timeoutDelay(config: TimeoutConfig, step: TimedStep, round: number): number {
  let delay: number;
  switch (step) {
    case "propose":
      delay = config.proposeMs + round * config.proposeDeltaMs;
      break;
    case "prevote":
      delay = config.prevoteMs + round * config.prevoteDeltaMs;
      break;
    case "precommit":
      delay = config.precommitMs + round * config.precommitDeltaMs;
      break;
  }
  return Math.min(Math.max(0, delay), MAX_TIMEOUT_MS);
}
