/**
 * Floods by connected peers against a real 3-masternode network, run together (they do not
 * interfere: one attacker gets banned, the other must not): a certificate flood (items 4 of
 * docs/security.md) and a next-height vote flood by strangers and by one byzantine member past
 * its per-signer cap (item 8). Both at once must leave block production at 90% or more of the
 * rate without them (heights per window, same run), and the honest sessions unchanged.
 */
import assert from "node:assert/strict";
import { loadGenesisFile } from "../../chain/genesis.ts";
import { decodeKeyFile, NODE_KEY_FILE } from "../../crypto/node_key.ts";
import { counterValue, metricValue } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { certificateFlood, nextHeightFlood } from "../support/attacks.ts";
import { heightsInWindow, holdsRate, honestSessions, nodeIds } from "../support/block_rate.ts";

/** Ten block intervals: one block is ~10% of a window. */
const WINDOW_MS = 10_000;
const BLOCK_INTERVAL_MS = 1_000;

Deno.test("certificate and next-height floods: refused unverified, flooder banned, voter kept, block rate holds", async () => {
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const [target] = devnet.nodes;
  const keyPath = `${devnet.manifest.nodes[2].dataDir}/${NODE_KEY_FILE}`;
  const ctx = {
    genesis: await loadGenesisFile(devnet.manifest.genesis),
    address: devnet.manifest.nodes[0].p2p,
    tip: () => heightOf(target),
  };
  const certificates = certificateFlood(ctx);
  // Masternode 2's own key, used by an attacker: a byzantine member flooding the next height.
  const votes = nextHeightFlood(ctx, decodeKeyFile(await Deno.readTextFile(keyPath), keyPath));
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const honest = await nodeIds(devnet.nodes);
    const before = await honestSessions(devnet.nodes, honest);
    const baseline = await heightsInWindow(devnet.nodes, WINDOW_MS);
    let started = Promise.resolve();
    const during = await heightsInWindow(devnet.nodes, WINDOW_MS, () => {
      started = Promise.all([certificates.start(), votes.start()]).then(() => {});
    });
    await started;
    console.log(
      `heights per ${WINDOW_MS / 1000} s: ${baseline} without, ${during} during ` +
        `(${certificates.summary()}; ${votes.summary()})`,
    );
    assert.ok(baseline >= 3, `the network commits without the attack (${baseline})`);
    assert.ok(holdsRate(during, baseline), `${during} heights during vs ${baseline} without`);
    assert.deepEqual(await honestSessions(devnet.nodes, honest), before, "no honest disconnect");

    // Every hostile certificate was refused before a signature was verified, and each flooder
    // key was banned for its first answer (judged in the verify workers: wait for it).
    await target.waitFor(
      async () =>
        metricValue(await target.metrics(), "timenode_certificates_rejected_unverified_total") >=
          1,
      "a hostile certificate refused unverified",
    );
    await certificates.stop();
    const m = await target.metrics();
    assert.ok(counterValue(m, "timenode_misbehavior_total", { reason: "invalid-block" }) >= 1);
    assert.ok(metricValue(m, "timenode_bans_total") >= 1, "the certificate flooder is banned");
    // Each ban is logged once (and counted with it), however many of its answers were still
    // judged after it.
    const banLines = () => target.logsMatching((e) => e.message.startsWith("banning "));
    await target.waitFor(
      async () => metricValue(await target.metrics(), "timenode_bans_total") === banLines().length,
      "every ban logged",
    );
    const keys = banLines().map((e) => e.properties.key);
    assert.equal(new Set(keys).size, keys.length, `one ban line per key: ${keys.join(", ")}`);
    // The next-height flood: strangers dropped unverified, the member held to its cap, and
    // nothing charged to the relaying peer, which stays connected.
    assert.ok(
      counterValue(m, "timenode_next_height_dropped_total", { reason: "not-member" }) >= 20,
    );
    assert.ok(
      counterValue(m, "timenode_next_height_dropped_total", { reason: "signer-cap" }) >= 16,
    );
    for (const reason of ["consensus-bad-signature", "consensus-not-validator"]) {
      assert.equal(counterValue(m, "timenode_misbehavior_total", { reason }), 0, reason);
    }
    assert.equal(votes.peers, 1, "the vote flooder is still connected");
  } finally {
    await certificates.stop();
    await votes.stop();
    await devnet.stop();
  }
});
