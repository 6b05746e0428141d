import assert from "node:assert/strict";
import { renderStatus, type StatusSnapshot, statusWarnings } from "../../../node/status.ts";

const NOW = 1_800_000_000_000;
const ME = "aa".repeat(32);

function snapshot(over: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    at: NOW,
    uptimeSeconds: 125,
    network: { version: "0.1.0", network: "devnet", nodeId: ME, listen: "127.0.0.1:24300" },
    chain: {
      genesisHash: "cd".repeat(32),
      height: 40,
      bestTime: NOW - 800,
      blockIntervalMs: 1_000,
      syncState: "synced",
      targetHeight: 40,
      progress: 1,
      stall: { stalled: false, quietSeconds: 0, thresholdSeconds: 60 },
    },
    peers: [
      { direction: "inbound", bestHeight: 40, key: "a" },
      { direction: "outbound", bestHeight: 39, key: "b" },
    ],
    consensus: {
      height: 41,
      round: 0,
      step: "propose",
      proposer: "bb".repeat(32),
      isValidator: true,
      nodeId: ME,
      totalPower: 3,
      validators: [],
      lastCommit: { height: 40, round: 0, at: NOW - 790 },
    },
    masternodes: [{ nodeId: ME, power: 1, activeFrom: 1, leavingFrom: null }],
    ...over,
  };
}

Deno.test("a healthy node: one line per topic, no warnings", () => {
  assert.deepEqual(renderStatus(snapshot()), [
    "network     devnet, genesis cdcdcdcdcdcd…, node aaaaaaaaaaaa… (timenode 0.1.0, up 2m 5s)",
    "chain       height 40, last block 0.8 s ago (block interval 1.0 s)",
    "sync        synced",
    "peers       2 (1 in, 1 out), heights 40, 39",
    "consensus   height 41, round 0, step propose, proposer bbbbbbbbbbbb…",
    "masternode  validator, power 1 of 3",
    "warnings    none",
  ]);
});

Deno.test("warnings: no peers, a stalled chain, clock skew, many rounds", () => {
  const s = snapshot({
    peers: [],
    chain: {
      ...snapshot().chain,
      bestTime: NOW - 60_000,
      syncState: "idle",
      stall: { stalled: true, quietSeconds: 61, thresholdSeconds: 60 },
    },
    consensus: { ...snapshot().consensus, round: 7 },
  });
  const w = statusWarnings(s);
  assert.equal(w.length, 3);
  assert.match(w[0], /^no peers/);
  assert.match(w[1], /^chain stalled: no block for 61 s while connected \(threshold 60 s/);
  assert.match(w[2], /round 7 of height 41/);
  const lines = renderStatus(s);
  assert.match(lines[6], /^warnings {4}no peers/);
  assert.match(lines[7], /^ {12}chain stalled/);

  const skewed = snapshot({ chain: { ...snapshot().chain, bestTime: NOW + 5_000 } });
  assert.match(statusWarnings(skewed)[0], /^clock skew: the last block is stamped 5\.8 s ahead/);
  // (5.8 s: measured against the moment this node committed it, 0.8 s before the snapshot.)
  // An old block alone is no stall: the node's watch decides (it ignores time without peers).
  const quiet = snapshot({ chain: { ...snapshot().chain, bestTime: NOW - 600_000 } });
  assert.deepEqual(statusWarnings(quiet), []);
});

Deno.test("masternode states: not one, pending, leaving", () => {
  const line = (s: StatusSnapshot) => renderStatus(s)[5];
  assert.equal(line(snapshot({ masternodes: [] })), "masternode  not a masternode");
  assert.equal(
    line(snapshot({ masternodes: [{ nodeId: ME, power: 1, activeFrom: 42, leavingFrom: null }] })),
    "masternode  registered, validating from height 42",
  );
  assert.equal(
    line(snapshot({ masternodes: [{ nodeId: ME, power: 1, activeFrom: 1, leavingFrom: 43 }] })),
    "masternode  leaving the validator set at height 43",
  );
});
