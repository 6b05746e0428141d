/**
 * The stake rules of the state machine (state/state.ts) at their edges, where mutation testing
 * found them unpinned (docs/testing.md, third pass): which `lastCommit` counts, the voteless
 * members that earn without signing, evidence of the block's own height, and what
 * `masternodeList` says between an unjail record and its effect.
 */
import assert from "node:assert/strict";
import type { Block } from "../../../chain/block.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { StakeChain, stakeGenesis } from "./stake_support.ts";

/** Applies a hand-changed block (the harness builds the usual ones). */
function applyBlock(c: StakeChain, block: Block): void {
  const writes = c.sm.apply(c.view, block);
  for (const [k, v] of writes) {
    v === null ? c.entries.delete(k) : c.entries.set(k, v);
  }
  c.tip++;
}

const rewardOf = (c: StakeChain, name: string) =>
  c.account(`reward-${name}`).balance;

Deno.test("stake rules: a lastCommit of another height counts nobody as missing", () => {
  const c = new StakeChain();
  c.apply();
  // Block 2 carries a commit of height 0 (not 1) naming only g0..g2: it is not height 1's.
  const block = c.block({ signers: ["g0", "g1", "g2"] });
  block.lastCommit!.height = 0;
  const before = rewardOf(c, "g3");
  applyBlock(c, block);
  assert.equal(
    c.info("g3")!.missedBlocks,
    0,
    "g3 is not counted as missing height 1",
  );
  assert.ok(
    rewardOf(c, "g3") > before,
    "and earns like every member without a lastCommit",
  );
});

Deno.test("stake rules: block 1 ignores a lastCommit: every member earns", () => {
  const c = new StakeChain();
  const block = c.block({ signers: null });
  // A commit "of height 0" naming only g0: height 1 has no previous height to certify.
  block.lastCommit = {
    height: 0,
    round: 0,
    blockHash: new Uint8Array(32),
    signatures: [{
      validator: c.set(1).voting[0].nodeId,
      signature: new Uint8Array(64),
    }],
  };
  applyBlock(c, block);
  for (const name of ["g0", "g1", "g2", "g3"]) {
    assert.ok(rewardOf(c, name) > 0n, `${name} earned from block 1`);
  }
});

Deno.test("stake rules: evidence of the block's own height is in time", () => {
  const c = new StakeChain();
  c.run(3); // tip 3; the next block is 4
  const evidence = evidenceRecord(c.vote("g2", 4, 1), c.vote("g2", 4, 2));
  assert.equal(c.refusal({ records: [evidence] }), "accepted");
  c.apply({ records: [evidence] });
  assert.equal(c.info("g2")!.status, "tombstoned");
});

Deno.test("stake rules: a free member earns by weight without signing; a paid one must sign", () => {
  const genesis = {
    ...stakeGenesis(["bronze", "bronze", "bronze", "free"]),
    tierRewardWeight: { free: 10, bronze: 10, silver: 100, gold: 1000 },
  };
  const c = new StakeChain(genesis);
  c.apply();
  const before = ["g0", "g1", "g2", "g3"].map((n) => rewardOf(c, n));
  // g3 is free (no voting power, never asked to sign); g2 has power and did not sign.
  c.apply({ proposer: "g0", signers: ["g0", "g1"] });
  const delta = ["g0", "g1", "g2", "g3"].map((n, i) =>
    rewardOf(c, n) - before[i]
  );
  assert.equal(delta[2], 0n, "a voting member that did not sign earns nothing");
  assert.ok(delta[3] > 0n, "the voteless free member earns its weight");
  assert.equal(delta[3], delta[1], "the same weight as a bronze signer");
});

Deno.test("stake rules: after an unjail record the member shows jailed until it takes effect", () => {
  const c = new StakeChain();
  const online = ["g0", "g1", "g2"];
  c.apply();
  c.run(4, online); // block 5 jails g3 from 7, until 10
  c.run(4, online); // tip 9
  c.apply({ records: [c.unjail("g3")], signers: online }); // block 10: unjailed from 12
  assert.equal(c.power("g3", 11), 0);
  const g3 = c.info("g3")!;
  assert.equal(
    g3.status,
    "jailed",
    "the set of the next block still has it jailed",
  );
  assert.equal(g3.jailedUntil, 10);
  c.run(1);
  assert.equal(c.info("g3")!.status, "active");
  assert.equal(c.info("g3")!.jailedUntil, null);
});
