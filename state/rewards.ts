/**
 * The block reward rule: how one block's reward is split across reward addresses.
 *
 * Owns: the arithmetic only (see docs/state.md, "Rewards"). The proposer's reward address gets
 * `proposerSharePercent` of the reward (rounded down); the rest is split across the earners
 * (chosen by state/state.ts: the members that signed the previous height, or the set), in
 * proportion to reward weight (each share rounded down; an earner of weight 0 gets nothing);
 * what rounding leaves over goes to the proposer too. The credits always sum to exactly the
 * reward.
 * Must never: use floating point, depend on iteration order of anything but the earners as
 * given, or read or write state (state/state.ts turns credits into balance writes).
 */
import type { Genesis } from "../chain/genesis.ts";

export interface RewardCredit {
  rewardAddress: string;
  amount: bigint;
}

/** One member that earns from this block, with its tier's reward weight. */
export interface Earner {
  rewardAddress: string;
  weight: number;
}

/**
 * Credits of one block, one entry per distinct reward address with a non-zero amount, sorted by
 * address (UTF-16 code unit order) so every node produces them in the same order. When the
 * earners' weights sum to 0 the whole reward goes to the proposer.
 */
export function splitBlockReward(
  earners: readonly Earner[],
  proposerRewardAddress: string,
  rewards: Genesis["rewards"],
): RewardCredit[] {
  const { blockReward, proposerSharePercent } = rewards;
  if (!Number.isSafeInteger(blockReward) || blockReward < 0) {
    throw new RangeError(`invalid blockReward ${blockReward}`);
  }
  if (
    !Number.isInteger(proposerSharePercent) || proposerSharePercent < 0 ||
    proposerSharePercent > 100
  ) {
    throw new RangeError(`invalid proposerSharePercent ${proposerSharePercent}`);
  }

  // BigInt: reward (up to 1e15) times weight (up to 1e9 in total) overflows 2^53.
  const reward = BigInt(blockReward);
  const proposerShare = reward * BigInt(proposerSharePercent) / 100n;
  const pool = reward - proposerShare;
  const totalWeight = earners.reduce((sum, e) => sum + BigInt(e.weight), 0n);

  const credits = new Map<string, bigint>();
  const add = (address: string, amount: bigint) => {
    credits.set(address, (credits.get(address) ?? 0n) + amount);
  };
  let distributed = 0n;
  if (totalWeight > 0n) {
    for (const e of earners) {
      const share = pool * BigInt(e.weight) / totalWeight;
      add(e.rewardAddress, share);
      distributed += share;
    }
  }
  add(proposerRewardAddress, proposerShare + (pool - distributed));

  return [...credits]
    .filter(([, amount]) => amount > 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([rewardAddress, amount]) => ({ rewardAddress, amount }));
}
