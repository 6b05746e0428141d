import assert from "node:assert/strict";
import { type MasternodeEntry, ownStakeStatus, setPower } from "../../../node/stake_status.ts";

const PARAMS = { signedBlocksWindow: 20, missedBlocksMax: 10 };
const entry = (o: Partial<MasternodeEntry>): MasternodeEntry => ({
  nodeId: "aa",
  tier: "bronze",
  power: 1,
  status: "active",
  missedBlocks: 0,
  jailedUntil: null,
  ...o,
});

Deno.test("own status: a node that is not listed has status none and no warning", () => {
  const s = ownStakeStatus([entry({ nodeId: "bb" })], "aa", PARAMS);
  assert.equal(s.status, "none");
  assert.equal(s.power, 0);
  assert.equal(s.warning, null);
  assert.equal(s.missedBlocksMax, 10);
});

Deno.test("own status: a slashed node out of the list reads tombstoned, with the reason", () => {
  const s = ownStakeStatus([entry({ nodeId: "bb" })], "aa", PARAMS, true);
  assert.equal(s.status, "tombstoned");
  assert.equal(s.power, 0);
  assert.match(s.warning ?? "", /double-signed: its id is tombstoned/);
});

Deno.test("own status: warns only past half of the allowed misses", () => {
  assert.equal(ownStakeStatus([entry({ missedBlocks: 5 })], "aa", PARAMS).warning, null);
  const near = ownStakeStatus([entry({ missedBlocks: 6 })], "aa", PARAMS);
  assert.match(near.warning ?? "", /near the jail threshold: missed 6 of the last 20/);
  assert.equal(near.missedBlocks, 6);
});

Deno.test("own status: a jailed node is told when it may unjail; a tombstoned one why", () => {
  const jailed = ownStakeStatus(
    [entry({ status: "jailed", power: 0, jailedUntil: 42, missedBlocks: 11 })],
    "aa",
    PARAMS,
  );
  assert.equal(jailed.status, "jailed");
  assert.match(jailed.warning ?? "", /wallet unjail from height 42/);
  const tomb = ownStakeStatus([entry({ status: "tombstoned", power: 0 })], "aa", PARAMS);
  assert.match(tomb.warning ?? "", /tombstoned/);
});

Deno.test("own status: a free member with misses gets no near-jail warning (it never votes)", () => {
  const s = ownStakeStatus([entry({ tier: "free", power: 0, missedBlocks: 9 })], "aa", PARAMS);
  assert.equal(s.warning, null);
});

Deno.test("set power: jailed members count in total, not in active", () => {
  const tierPower = { free: 0, bronze: 1, silver: 10, gold: 100 };
  const p = setPower([
    entry({ nodeId: "a", tier: "gold", power: 100 }),
    entry({ nodeId: "b", tier: "silver", power: 0, status: "jailed" }),
    // Jailed from tip + 2: still voting at tip + 1, counted once.
    entry({ nodeId: "c", tier: "bronze", power: 1, status: "jailed" }),
    entry({ nodeId: "d", tier: "free", power: 0 }),
  ], tierPower);
  assert.deepEqual(p, { total: 111, active: 101 });
});
