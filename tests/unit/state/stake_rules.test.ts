/**
 * The stake rules of the state machine (state/state.ts) at their edges, where mutation testing
 * found them unpinned (docs/testing.md, third pass): which `lastCommit` counts, who is counted
 * for downtime and who earns without signing, evidence of the block's own height and against a
 * member without collateral or against the last member with power, the pay for the last height
 * of a membership, the miss records and set snapshots a block leaves behind, a corrupt stored
 * set, and what `masternodeList` says between a jailing or an unjail record and its effect.
 */
import assert from "node:assert/strict";
import type { Block } from "../../../chain/block.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { createStateMachine } from "../../../state/state.ts";
import { idOf, StakeChain, stakeGenesis } from "./stake_support.ts";

/** Applies a hand-changed block (the harness builds the usual ones). */
function applyBlock(c: StakeChain, block: Block): void {
  const writes = c.sm.apply(c.view, block);
  for (const [k, v] of writes) {
    v === null ? c.entries.delete(k) : c.entries.set(k, v);
  }
  c.tip++;
}

const rewardOf = (c: StakeChain, name: string) => c.account(`reward-${name}`).balance;

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
  const delta = ["g0", "g1", "g2", "g3"].map((n, i) => rewardOf(c, n) - before[i]);
  assert.equal(delta[2], 0n, "a voting member that did not sign earns nothing");
  assert.ok(delta[3] > 0n, "the voteless free member earns its weight");
  assert.equal(delta[3], delta[1], "the same weight as a bronze signer");
});

Deno.test("stake rules: after an unjail record the member shows jailed until it takes effect", () => {
  const c = new StakeChain();
  const online = ["g0", "g1", "g2"];
  c.apply();
  c.run(4, online); // block 5 jails g3 from 7, until 10
  assert.equal(c.info("g3")!.status, "jailed");
  assert.equal(
    c.info("g3")!.power,
    1,
    "the set of block 6 was fixed before the jailing",
  );
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
  assert.equal(g3.power, 0, "the power it certifies the next block with");
  c.run(1);
  assert.equal(c.info("g3")!.status, "active");
  assert.equal(c.info("g3")!.jailedUntil, null);
});

const liveKey = (name: string) => `mn/live/${idOf(name)}`;

Deno.test("stake rules: a member without voting power is never counted as missing", () => {
  const c = new StakeChain(
    stakeGenesis(["bronze", "bronze", "bronze", "free"]),
  );
  c.apply();
  c.run(8, ["g0", "g1", "g2"]); // g3 (free) never signs: it is never asked to
  assert.equal(c.info("g3")!.status, "active");
  assert.equal(c.info("g3")!.missedBlocks, 0);
  assert.equal(c.entries.has(liveKey("g3")), false);
});

Deno.test("stake rules: a member that leaves takes its miss record with it", () => {
  const c = new StakeChain();
  c.apply();
  c.run(2, ["g0", "g1", "g2"]);
  assert.equal(c.entries.has(liveKey("g3")), true, "g3 has misses");
  c.apply({ records: [c.dereg("g3")], signers: ["g0", "g1", "g2"] });
  assert.equal(c.entries.has(liveKey("g3")), false);
});

Deno.test("stake rules: a tombstoned member's miss record goes too", () => {
  const c = new StakeChain();
  c.apply();
  c.run(2, ["g0", "g1", "g2"]);
  assert.equal(c.entries.has(liveKey("g3")), true);
  c.apply({
    records: [evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2))],
  });
  assert.equal(c.entries.has(liveKey("g3")), false);
});

Deno.test("stake rules: evidence against a member without collateral burns and unbonds nothing", () => {
  // g3 is a genesis member of the bronze tier that no owner backs: nothing is locked for it.
  const g = stakeGenesis();
  const genesis = {
    ...g,
    masternodes: g.masternodes.map((
      m,
      i,
    ) => (i === 3 ? { ...m, owner: undefined } : m)),
  };
  const c = new StakeChain(genesis);
  c.run(2);
  const before = new Set(c.entries.keys());
  c.apply({
    records: [evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2))],
  });
  assert.equal(c.info("g3")!.status, "tombstoned");
  const added = [...c.entries.keys()].filter((k) => !before.has(k));
  assert.equal(
    added.some((k) => k.startsWith("unbond") || k === "acct/"),
    false,
    added.join(),
  );
});

Deno.test("stake rules: a block that leaves the set as it was writes no new snapshot", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // block 2: g3 leaves from 4
  c.run(2); // tip 4: g3 is gone
  // Evidence against g3 (at height 2 it was a member) slashes its unbonding collateral but
  // changes no membership.
  const evidence = evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2));
  const keys = c.writtenKeys({ records: [evidence] });
  assert.ok(keys.some((k) => k.startsWith("mn/tomb/")), "tombstoned");
  assert.equal(keys.some((k) => k.startsWith("vs/")), false, keys.join());
});

Deno.test("stake rules: a set whose content is already stored is not written again", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // block 2: the set without g3, stored from 4
  c.apply({ records: [c.freeReg("n1")] }); // block 3: plus n1 from 5
  // Block 4: n1 leaves again, so the set of 6 has the content of the set of 4.
  const keys = c.writtenKeys({ records: [c.dereg("n1")] });
  assert.ok(keys.includes("vs/at/6"), "a pointer for the change");
  assert.equal(keys.some((k) => k.startsWith("vs/set/")), false, keys.join());
  c.apply({ records: [c.dereg("n1")] });
  c.run(2);
  assert.deepEqual(c.set(6).hash, c.set(4).hash);
});

Deno.test("stake rules: a stored set that lists a member twice is corrupt", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // the set of 4 is stored: g0, g1, g2
  const dataKey = [...c.entries.keys()].find((k) => k.startsWith("vs/set/"))!;
  const bytes = c.entries.get(dataKey)!.slice();
  const ids = ["g0", "g1", "g2"].map(idOf).sort();
  const at = (hex: string) => {
    const id = Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
    for (let i = 0; i + 32 <= bytes.length; i++) {
      if (id.every((b, j) => bytes[i + j] === b)) return i;
    }
    throw new Error("id not found");
  };
  // The second member becomes a copy of the first's id: still sorted, but not strictly.
  bytes.set(bytes.subarray(at(ids[0]), at(ids[0]) + 32), at(ids[1]));
  c.entries.set(dataKey, bytes);
  const fresh = createStateMachine(c.genesis); // no cached sets
  assert.throws(
    () => fresh.validatorSetFor(c.view, c.tip, 4),
    /consensus state is corrupt \(vs\/set\/[0-9a-f]{64}\): .*set members not in ascending node id order/,
  );
});

Deno.test("stake rules: evidence that would leave the set without voting power is refused", () => {
  // Only g0 has power (the others are free): removing it would leave nobody to certify.
  const c = new StakeChain(stakeGenesis(["bronze", "free", "free", "free"]));
  c.run(2);
  const evidence = evidenceRecord(c.vote("g0", 2, 1), c.vote("g0", 2, 2));
  assert.match(
    c.refusal({ records: [evidence] }),
    /would leave the set without voting power/,
  );
});

Deno.test("stake rules: a member is paid for signing the last height of its membership", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // block 2: g3 certifies up to height 3
  c.apply(); // block 3
  const before = rewardOf(c, "g3");
  c.apply(); // block 4: its lastCommit (height 3) carries g3's signature
  assert.equal(c.power("g3", 4), 0, "no longer a member at 4");
  assert.ok(
    rewardOf(c, "g3") > before,
    "paid from the set of height 3, which it signed for",
  );
  const after = rewardOf(c, "g3");
  c.apply();
  assert.equal(rewardOf(c, "g3"), after, "and nothing after that");
});
