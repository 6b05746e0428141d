import assert from "node:assert/strict";
import { splitBlockReward as splitByWeight } from "../../../state/rewards.ts";
import { makeValidatorSet, type Validator, type ValidatorSet } from "../../../chain/validators.ts";
import type { Genesis, Tier } from "../../../chain/genesis.ts";
import { toHex } from "../../../encoding/binary.ts";

/** The split with each member of `set` earning by a weight equal to its power. */
function splitBlockReward(set: ValidatorSet, proposer: Uint8Array, rewards: Genesis["rewards"]) {
  const earners = set.validators.map((v) => ({ rewardAddress: v.rewardAddress, weight: v.power }));
  return splitByWeight(earners, set.get(toHex(proposer))!.rewardAddress, rewards);
}

function nodeId(i: number): Uint8Array {
  const id = new Uint8Array(32);
  id[0] = i;
  return id;
}

function validator(i: number, power: number, rewardAddress = `addr-${i}`): Validator {
  const tier: Tier = "free";
  return { nodeId: nodeId(i), tier, power, rewardAddress, address: `127.0.0.1:${1000 + i}` };
}

function total(credits: { amount: bigint }[]): bigint {
  return credits.reduce((s, c) => s + c.amount, 0n);
}

function creditOf(credits: { rewardAddress: string; amount: bigint }[], address: string) {
  return credits.find((c) => c.rewardAddress === address)?.amount ?? 0n;
}

Deno.test("proposer share first, then the rest split by reward weight", () => {
  const set = makeValidatorSet([validator(1, 1), validator(2, 100), validator(3, 1000)]);
  // Pool of 1,101,000 divides exactly by the total power 1,101.
  const credits = splitBlockReward(set, nodeId(1), {
    blockReward: 1_223_334,
    proposerSharePercent: 10,
  });
  // proposer share = floor(1,223,334 / 10) = 122,333; pool = 1,101,001: 1 unit of remainder.
  assert.equal(creditOf(credits, "addr-1"), 122_333n + 1_000n + 1n);
  assert.equal(creditOf(credits, "addr-2"), 100_000n);
  assert.equal(creditOf(credits, "addr-3"), 1_000_000n);
  assert.equal(total(credits), 1_223_334n);
});

Deno.test("the rounding remainder goes to the proposer", () => {
  const set = makeValidatorSet([validator(1, 1), validator(2, 1), validator(3, 1)]);
  const credits = splitBlockReward(set, nodeId(2), { blockReward: 11, proposerSharePercent: 0 });
  assert.deepEqual(credits, [
    { rewardAddress: "addr-1", amount: 3n },
    { rewardAddress: "addr-2", amount: 5n },
    { rewardAddress: "addr-3", amount: 3n },
  ]);
});

Deno.test("credits to a shared reward address are merged, zero credits are left out", () => {
  const set = makeValidatorSet([
    validator(1, 1, "shared"),
    validator(2, 1, "shared"),
    validator(3, 1000, "big"),
  ]);
  const credits = splitBlockReward(set, nodeId(3), { blockReward: 100, proposerSharePercent: 0 });
  // Each small validator's share rounds down to 0 (100 * 1 / 1002); all of it goes to "big".
  assert.deepEqual(credits, [{ rewardAddress: "big", amount: 100n }]);
  const larger = splitBlockReward(set, nodeId(3), { blockReward: 10_020, proposerSharePercent: 0 });
  assert.deepEqual(larger, [
    { rewardAddress: "big", amount: 10_000n },
    { rewardAddress: "shared", amount: 20n },
  ]);
});

Deno.test("edge shares: 100 % to the proposer, zero reward credits nothing", () => {
  const set = makeValidatorSet([validator(1, 10), validator(2, 10)]);
  assert.deepEqual(
    splitBlockReward(set, nodeId(2), { blockReward: 77, proposerSharePercent: 100 }),
    [
      { rewardAddress: "addr-2", amount: 77n },
    ],
  );
  assert.deepEqual(
    splitBlockReward(set, nodeId(2), { blockReward: 0, proposerSharePercent: 10 }),
    [],
  );
});

Deno.test("credits sum exactly to the reward for many sets and rewards, without float error", () => {
  // Seeded MINSTD generator: reproducible variety without Math.random.
  let seed = 12345;
  const next = (n: number) => {
    seed = (seed * 48271) % 2147483647;
    return seed % n;
  };
  const powers = [1, 10, 100, 1000];
  for (let round = 0; round < 300; round++) {
    const count = 1 + next(40);
    const members = Array.from(
      { length: count },
      (_, i) => validator(i, powers[next(4)], `addr-${next(count)}`),
    );
    const set = makeValidatorSet(members);
    // Up to 1e15: products with the power exceed 2^53, which float arithmetic would get wrong.
    const blockReward = round % 2 === 0 ? next(1_000_000_000) : 1e15 - next(1000);
    const proposerSharePercent = next(101);
    const proposer = members[next(count)].nodeId;
    const credits = splitBlockReward(set, proposer, { blockReward, proposerSharePercent });
    assert.equal(total(credits), BigInt(blockReward), `round ${round}`);
    for (const c of credits) assert.ok(c.amount > 0n);
    const addresses = credits.map((c) => c.rewardAddress);
    assert.deepEqual(addresses, [...addresses].sort());
  }
});

Deno.test("earners of weight 0 get nothing; with no weight at all the proposer gets it all", () => {
  const rewards = { blockReward: 1_000, proposerSharePercent: 10 };
  assert.deepEqual(
    splitByWeight(
      [{ rewardAddress: "zero", weight: 0 }, { rewardAddress: "one", weight: 1 }],
      "prop",
      rewards,
    ),
    [{ rewardAddress: "one", amount: 900n }, { rewardAddress: "prop", amount: 100n }],
  );
  assert.deepEqual(splitByWeight([{ rewardAddress: "zero", weight: 0 }], "prop", rewards), [
    { rewardAddress: "prop", amount: 1_000n },
  ]);
  assert.deepEqual(splitByWeight([], "prop", rewards), [{ rewardAddress: "prop", amount: 1_000n }]);
});

Deno.test("invalid parameters are refused", () => {
  const one = [{ rewardAddress: "a", weight: 1 }];
  assert.throws(() => splitByWeight(one, "a", { blockReward: -1, proposerSharePercent: 0 }));
  assert.throws(() => splitByWeight(one, "a", { blockReward: 1, proposerSharePercent: 101 }));
});
