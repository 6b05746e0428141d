/**
 * The block reward rule: how one block's reward is split across reward addresses.
 *
 * Owns: the arithmetic only (see docs/state.md, "Rewards"). The proposer's reward address gets
 * `proposerSharePercent` of the reward (rounded down); the rest is split across the validator
 * set that certifies the block, in proportion to voting power (each share rounded down; a
 * member without power, such as a free-tier one, earns nothing); what rounding leaves over goes
 * to the proposer too. The credits always sum to exactly the reward.
 * Must never: use floating point, depend on iteration order of anything but the sorted set, or
 * read or write state (state/state.ts turns credits into balance writes).
 */
import { toHex } from "../encoding/binary.ts";
import type { Genesis } from "../chain/genesis.ts";
import type { ValidatorSet } from "../chain/validators.ts";

export interface RewardCredit {
  rewardAddress: string;
  amount: bigint;
}

/**
 * Credits of one block, one entry per distinct reward address with a non-zero amount, sorted by
 * address (UTF-16 code unit order) so every node produces them in the same order.
 * Throws if the proposer is not a member of `set` with voting power: the caller must have
 * refused the block.
 */
export function splitBlockReward(
  set: ValidatorSet,
  proposerNodeId: Uint8Array,
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
  const proposer = set.get(toHex(proposerNodeId));
  if (!proposer || proposer.power === 0) {
    throw new Error("block proposer is not a voting member of the validator set");
  }

  // BigInt: reward (up to 1e15) times power (up to 1e9 in total) overflows 2^53.
  const reward = BigInt(blockReward);
  const proposerShare = reward * BigInt(proposerSharePercent) / 100n;
  const pool = reward - proposerShare;
  const totalPower = BigInt(set.totalPower);

  const credits = new Map<string, bigint>();
  const add = (address: string, amount: bigint) => {
    credits.set(address, (credits.get(address) ?? 0n) + amount);
  };
  let distributed = 0n;
  for (const v of set.validators) {
    const share = pool * BigInt(v.power) / totalPower;
    add(v.rewardAddress, share);
    distributed += share;
  }
  add(proposer.rewardAddress, proposerShare + (pool - distributed));

  return [...credits]
    .filter(([, amount]) => amount > 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([rewardAddress, amount]) => ({ rewardAddress, amount }));
}
