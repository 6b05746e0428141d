/**
 * Double signing between real node processes (docs/state.md#double-signing): a test-only tool
 * signs two conflicting precommits with a member's key and sends them to a node over a raw
 * peer connection; the node turns them into evidence, a block includes it, and the member is
 * slashed (5% of its 10 TIME collateral burned) and tombstoned for good.
 */
import assert from "node:assert/strict";
import { decodeKeyFile } from "../../crypto/node_key.ts";
import { loadGenesisFile } from "../../chain/genesis.ts";
import { counterValue, metricValue } from "../support/cluster.ts";
import { doubleSign } from "../support/double_sign.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { accountOf, entryOf, runWallet } from "../support/stake.ts";

const INTERVAL_MS = 250;
const TIME = 100_000_000n;

Deno.test("stake: a double-signing member is slashed and tombstoned by evidence", async () => {
  const devnet = await startDevnet(4, INTERVAL_MS);
  const [mn0] = devnet.nodes;
  const mn3 = devnet.nodes[3];
  const info3 = devnet.manifest.nodes[3];
  try {
    await waitAllAtHeight(devnet.nodes, 2);
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    const key3 = decodeKeyFile(
      await Deno.readTextFile(`${info3.dataDir}/node_key.json`),
      "node_key.json",
    );
    const owner = info3.address!;
    const before = await accountOf(mn0, owner);
    assert.equal(before.lockedUnits, (10n * TIME).toString());

    // Two precommits per height around mn0's current one, again until a block holds evidence
    // (a pair for a height mn0 already left is dropped, so some pairs may miss).
    const tomb = await mn0.waitFor(
      async () => {
        const e = await entryOf(mn0, info3.id);
        if (e?.status === "tombstoned") return e;
        const h = await heightOf(mn0);
        await doubleSign(genesis, mn0.p2p, key3, [h + 1, h + 2]);
        return undefined;
      },
      "mn3 tombstoned",
      60_000,
    );
    // It leaves the set two blocks after the evidence, and the list.
    assert.notEqual(tomb.leavingFrom, null);
    await mn0.waitFor(async () => {
      const c = await mn0.rpc<{ validators: { nodeId: string }[] }>("getconsensusinfo");
      return !c.validators.some((v) => v.nodeId === info3.id) &&
        (await entryOf(mn0, info3.id)) === undefined;
    }, "mn3 out of the set");

    // Out of the list, the slashed node still tells its operator why.
    await mn3.waitFor(async () => {
      const c = await mn3.rpc<{ self: { status: string; warning: string | null } }>(
        "getconsensusinfo",
      );
      return c.self.status === "tombstoned" && /tombstoned/.test(c.self.warning ?? "");
    }, "mn3's own status reads tombstoned");

    const after = await accountOf(mn0, owner);
    assert.equal(after.lockedUnits, "0");
    assert.equal(after.unbonding.length, 1);
    // 5% of 10 TIME burned, the rest unbonds.
    assert.equal(after.unbonding[0].amountUnits, (95n * TIME / 10n).toString());

    const m0 = await mn0.metrics();
    assert.equal(metricValue(m0, "timenode_evidence_included_total"), 1);
    assert.equal(counterValue(m0, "timenode_slashes_total", { member: "other" }), 1);
    assert.ok(metricValue(m0, "timenode_equivocations_total") >= 1);
    await mn3.waitFor(
      async () => counterValue(await mn3.metrics(), "timenode_slashes_total", { member: "self" }),
      "mn3 counts its own slash",
    );

    // The chain goes on with three, and the tombstoned id can never bond again: refused as
    // tombstoned while its collateral still unbonds, and once it is released.
    const early = await runWallet(mn3, ["register", "--tier", "bronze", "--reward-address", owner]);
    assert.equal(early.code, 1);
    assert.match(early.err, /tombstoned/);
    await waitAllAtHeight(devnet.nodes, after.unbonding[0].releaseHeight);
    assert.equal((await accountOf(mn0, owner)).unbonding.length, 0);
    const again = await runWallet(mn3, [
      "register",
      "--tier",
      "bronze",
      "--reward-address",
      owner,
    ]);
    assert.equal(again.code, 1);
    assert.match(again.err, /tombstoned/);
  } finally {
    await devnet.stop();
  }
});
