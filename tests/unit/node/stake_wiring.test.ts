import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import { VoteType } from "../../../chain/block.ts";
import { decodeEvidence, EvidenceKind, verifyEvidenceSignatures } from "../../../state/evidence.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { counterValue, metricValue } from "../../support/cluster.ts";
import {
  buildBlock,
  KEYS,
  makeBlock,
  PREVIOUS,
  proposerIndex,
  SET,
  signProposal,
  signVote,
  TEST_GENESIS_HASH,
} from "../../support/consensus_sim.ts";
import { evidenceToRecord, submitEvidence, wireStakeMetrics } from "../../../node/stake_wiring.ts";

const hash = (b: number) => new Uint8Array(32).fill(b);

Deno.test("stake wiring: a double vote and a double proposal become verifiable evidence records", () => {
  const first = signVote(KEYS[1], VoteType.Precommit, 7, 2, hash(1));
  const second = signVote(KEYS[1], VoteType.Precommit, 7, 2, hash(2));
  const votes = decodeEvidence(evidenceToRecord({ kind: "duplicateVote", first, second }));
  assert.equal(votes.kind, EvidenceKind.Votes);
  assert.deepEqual(votes.validator, KEYS[1].publicKey);
  assert.equal(votes.height, 7);
  assert.ok(verifyEvidenceSignatures(TEST_GENESIS_HASH, votes));

  const p = proposerIndex(0);
  const a = signProposal(KEYS[p], 1, 0, -1, makeBlock(0, 1));
  const b = signProposal(KEYS[p], 1, 0, -1, makeBlock(0, 2));
  const props = decodeEvidence(
    evidenceToRecord({ kind: "duplicateProposal", first: a, second: b }),
  );
  assert.equal(props.kind, EvidenceKind.Proposals);
  assert.deepEqual(props.validator, KEYS[p].publicKey);
  assert.ok(verifyEvidenceSignatures(TEST_GENESIS_HASH, props));
});

Deno.test("stake wiring: votes that do not conflict are logged, never submitted", () => {
  const v = signVote(KEYS[1], VoteType.Precommit, 7, 2, hash(1));
  const submitted: unknown[] = [];
  submitEvidence({ kind: "duplicateVote", first: v, second: v }, (r) => submitted.push(r));
  assert.equal(submitted.length, 0);
});

Deno.test("stake wiring: metrics count evidence per applied block, self or other, and read the list", () => {
  const metrics = createNodeMetrics();
  const self = toHex(KEYS[1].publicKey);
  const wired = wireStakeMetrics(metrics, {
    nodeId: self,
    list: () => [
      {
        nodeId: self,
        tier: "bronze",
        power: 0,
        status: "jailed",
        missedBlocks: 11,
        jailedUntil: 9,
      },
      {
        nodeId: "bb",
        tier: "silver",
        power: 10,
        status: "active",
        missedBlocks: 0,
        jailedUntil: null,
      },
    ],
    downtime: { signedBlocksWindow: 20, missedBlocksMax: 10 },
    tierPower: { free: 0, bronze: 1, silver: 10, gold: 100 },
  });
  const evidence = (k: number, h: number) =>
    evidenceToRecord({
      kind: "duplicateVote",
      first: signVote(KEYS[k], VoteType.Prevote, h, 0, hash(1)),
      second: signVote(KEYS[k], VoteType.Prevote, h, 0, hash(2)),
    });
  const block = buildBlock({
    set: SET,
    height: 9,
    previous: PREVIOUS,
    round: 0,
    records: [evidence(1, 8), evidence(2, 8)],
  });
  wired.countBlock({
    block,
    certificate: { height: 9, round: 0, blockHash: hash(0), signatures: [] },
  });
  const text = metrics.registry.render();
  assert.equal(metricValue(text, "timenode_evidence_included_total"), 2);
  assert.equal(counterValue(text, "timenode_slashes_total", { member: "self" }), 1);
  assert.equal(counterValue(text, "timenode_slashes_total", { member: "other" }), 1);
  assert.equal(metricValue(text, "timenode_stake_missed_blocks"), 11);
  assert.equal(metricValue(text, "timenode_stake_jailed"), 1);
  assert.equal(metricValue(text, "timenode_stake_set_power", { kind: "total" }), 11);
  assert.equal(metricValue(text, "timenode_stake_set_power", { kind: "active" }), 10);
});
