/**
 * Downtime jailing between real node processes (docs/state.md#downtime-and-jail): one of 4
 * bronze members stops, is jailed within the signed-blocks window while the other three keep
 * committing, and after a restart and `timenode wallet unjail` it votes again. Devnet values:
 * window 20, at most 10 misses, jail 10 blocks.
 */
import assert from "node:assert/strict";
import { metricValue } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { entryOf, runWallet, signersOf } from "../support/stake.ts";

const INTERVAL_MS = 250;
const WINDOW = 20;

Deno.test("stake: a stopped member is jailed within the window, the chain goes on, unjail brings it back", async () => {
  const devnet = await startDevnet(4, INTERVAL_MS);
  const [mn0] = devnet.nodes;
  const id3 = devnet.manifest.nodes[3].id;
  try {
    await waitAllAtHeight(devnet.nodes, 3);
    assert.equal((await entryOf(mn0, id3))?.status, "active");
    await devnet.nodes[3].stop();
    const stoppedAt = await heightOf(mn0);

    const jailed = await mn0.waitFor(
      async () => {
        const e = await entryOf(mn0, id3);
        return e?.status === "jailed" && e;
      },
      "mn3 jailed",
      60_000,
    );
    const jailedSeenAt = await heightOf(mn0);
    assert.ok(
      jailedSeenAt <= stoppedAt + WINDOW + 2,
      `jailed by ${jailedSeenAt}, stopped at ${stoppedAt}`,
    );
    assert.ok(jailed.missedBlocks > 10);
    assert.ok(jailed.jailedUntil !== null);
    // The other three keep committing, and mn3 has no power from its jail on.
    await waitAllAtHeight(devnet.nodes.slice(0, 3), jailedSeenAt + 3);
    assert.equal((await entryOf(mn0, id3))?.power, 0);

    // Restart: it syncs, sees itself jailed, and may unjail from jailedUntil on.
    const mn3 = devnet.nodes[3] = devnet.processFor(3);
    mn3.start();
    await mn3.waitFor(async () => (await heightOf(mn3)) >= jailed.jailedUntil!, "jailedUntil");
    const self = await mn3.rpc<{ self: { status: string; warning: string | null } }>(
      "getconsensusinfo",
    );
    assert.equal(self.self.status, "jailed");
    assert.match(self.self.warning ?? "", /wallet unjail/);
    assert.equal(metricValue(await mn3.metrics(), "timenode_stake_jailed"), 1);

    const unjail = await runWallet(mn3, ["unjail", "--wait"]);
    assert.equal(unjail.code, 0, unjail.err);
    const back = await mn0.waitFor(
      async () => {
        const e = await entryOf(mn0, id3);
        return e?.status === "active" && e.power === 1 && e;
      },
      "mn3 active again",
      30_000,
    );
    assert.equal(back.missedBlocks, 0);
    // It votes again: a height after the unjail took effect carries its signature.
    const from = await heightOf(mn0);
    await waitAllAtHeight([mn0], from + 4);
    let signed = false;
    for (let h = from; h <= from + 2; h++) signed ||= (await signersOf(mn0, h)).includes(id3);
    assert.ok(signed, `mn3 signed none of ${from}..${from + 2}`);
    assert.equal(metricValue(await mn3.metrics(), "timenode_stake_jailed"), 0);
  } finally {
    await devnet.stop();
  }
});
