import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import type { BlockRecord } from "../../../chain/block.ts";
import { ledgerOf, stakeOf } from "../../../chain/genesis.ts";
import { accountOf } from "../../../state/accounts.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { GENESIS_MEMBERS, key, StakeChain } from "./stake_support.ts";

const SEEDS = 60;
const BLOCKS = 40;

/** Seeded MINSTD generator: reproducible variety without Math.random. */
function rng(seed: number) {
  let s = seed % 2147483647 || 1;
  return (n: number) => {
    s = (s * 48271) % 2147483647;
    return s % n;
  };
}

/** All coins by part, over every account in the state. */
function totals(c: StakeChain) {
  let spendable = 0n, locked = 0n, unbonding = 0n;
  for (const k of c.entries.keys()) {
    if (!k.startsWith("acct/")) continue;
    const a = accountOf(c.view, k.slice("acct/".length));
    spendable += a.balance;
    locked += a.locked;
    unbonding += a.unbonding.reduce((s, e) => s + e.amount, 0n);
  }
  return { spendable, locked, unbonding, all: spendable + locked + unbonding };
}

Deno.test("stake (random): supply, locked collateral and voting power stay consistent", () => {
  const nodeNames = [...GENESIS_MEMBERS, "n0", "n1", "n2", "n3", "n4", "n5"];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const next = rng(seed * 7919);
    const c = new StakeChain();
    const reward = BigInt(c.genesis.rewards.blockReward);
    const stake = stakeOf(c.genesis);
    const alloc = ledgerOf(c.genesis).alloc.reduce((s, a) => s + a.units, 0n);
    let burnedMax = 0n;
    for (let b = 1; b <= BLOCKS; b++) {
      const height = c.tip + 1;
      const voting = c.set(Math.max(1, height - 1)).voting.map((v) => toHex(v.nodeId));
      const signers = height === 1
        ? null
        : nodeNames.filter((n) => voting.includes(toHex(key(n).publicKey)) && next(10) < 7);
      const candidates: BlockRecord[] = [];
      const pick = () => nodeNames[next(nodeNames.length)];
      for (let i = next(3); i > 0; i--) {
        switch (next(5)) {
          case 0:
            candidates.push(c.bond(pick(), "alice"));
            break;
          case 1:
            candidates.push(c.dereg(pick()));
            break;
          case 2:
            candidates.push(c.unjail(pick()));
            break;
          case 3: {
            const who = pick();
            const h = Math.max(1, c.tip - next(3));
            candidates.push(evidenceRecord(c.vote(who, h, 1 + next(5)), c.vote(who, h, 7)));
            break;
          }
          default:
            candidates.push(c.freeReg(pick()));
        }
      }
      // Keep the candidates that apply together, in order (nonces count within the block).
      const records: BlockRecord[] = [];
      for (const r of candidates) {
        if (c.refusal({ records: [...records, r], signers }) === "accepted") records.push(r);
      }
      const evidence = records.filter((r) => r.type === 6).length;
      const before = totals(c).all;
      c.apply({ records, signers });
      const after = totals(c);
      const ctx = `seed ${seed}, height ${height}`;
      // Blocks mint exactly blockReward; evidence burns at most slashPercent of 1,000 TIME each.
      const minted = reward + (height === 1 ? alloc : 0n); // block 1 credits the allocations
      const burned = before + minted - after.all;
      assert.ok(burned >= 0n, ctx);
      assert.ok(burned <= BigInt(evidence) * stake.tierCollateral.gold, ctx);
      if (evidence === 0) assert.equal(burned, 0n, ctx);
      burnedMax += burned;
      assert.equal(after.all, alloc + BigInt(height) * reward - burnedMax, ctx);
      // Locked coins are exactly the collateral of the owned members of the newest set.
      const newest = c.sm.masternodeList(c.view, c.tip)
        .filter((m) => m.status !== "unbonding" && m.status !== "tombstoned");
      const expectedLocked = newest.reduce((s, m) => s + BigInt(m.collateralUnits), 0n);
      assert.equal(after.locked, expectedLocked, ctx);
      // The set always keeps voting power, for every height now defined.
      for (let h = 1; h <= c.tip + 2; h++) assert.ok(c.set(h).totalPower > 0, `${ctx}, set ${h}`);
    }
  }
});
