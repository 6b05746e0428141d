/**
 * The node's stake plumbing: a double sign the consensus service saw becomes an evidence
 * record for the record pool, and the stake metrics follow the chain.
 *
 * Owns: turning engine evidence into a block record, and what the stake metrics count
 * (docs/metrics.md#stake).
 * Must never: decide whether evidence is valid (the state machine does, when the pool checks the
 * record against the tip), or throw into the consensus service or the chain's apply loop.
 */
import { getLogger } from "@logtape/logtape";
import { toHex } from "../encoding/binary.ts";
import { blockHash, type BlockRecord, type CommittedBlock } from "../chain/block.ts";
import type { Evidence as EngineEvidence } from "../consensus/engine.ts";
import { decodeEvidence, evidenceRecord, proposalEvidenceRecord } from "../state/evidence.ts";
import { RecordType } from "../state/records.ts";
import type { NodeMetrics } from "../metrics/definitions.ts";
import { type MasternodeEntry, ownStakeStatus, setPower } from "./stake_status.ts";

const log = getLogger(["timenode", "stake"]);

/** The block record that proves a double sign the engine saw. */
export function evidenceToRecord(e: EngineEvidence): BlockRecord {
  if (e.kind === "duplicateVote") return evidenceRecord(e.first, e.second);
  const half = (p: typeof e.first) => ({
    height: p.height,
    round: p.round,
    validRound: p.validRound,
    blockHash: blockHash(p.block.header),
    signature: p.signature,
  });
  return proposalEvidenceRecord(e.first.block.header.proposer, half(e.first), half(e.second));
}

/** Offers the evidence of a double sign to the record pool (it relays it to every peer). */
export function submitEvidence(
  e: EngineEvidence,
  submitRecord: (r: BlockRecord) => unknown,
): void {
  let record: BlockRecord;
  try {
    record = evidenceToRecord(e);
  } catch (err) {
    log.warn("double sign not turned into evidence: {error}", { error: (err as Error).message });
    return;
  }
  const r = submitRecord(record);
  log.info("double-sign evidence submitted: {result}", {
    result: typeof r === "object" ? JSON.stringify(r) : String(r),
  });
}

export interface StakeMetricsSource {
  nodeId: string;
  /** `masternodelist` at the tip. */
  list: () => readonly MasternodeEntry[];
  downtime: { signedBlocksWindow: number; missedBlocksMax: number };
  tierPower: Readonly<Record<string, number>>;
}

/** Gauges read the state at scrape time; `countBlock` is called for every applied block. */
export function wireStakeMetrics(metrics: NodeMetrics, s: StakeMetricsSource) {
  const own = () => ownStakeStatus(s.list(), s.nodeId, s.downtime);
  metrics.stakeMissedBlocks.collectFrom(() => own().missedBlocks);
  metrics.stakeJailed.collectFrom(() => own().status === "jailed" ? 1 : 0);
  metrics.stakeSetPower.collectFrom(() => {
    const p = setPower(s.list(), s.tierPower);
    return [
      { labels: { kind: "total" }, value: p.total },
      { labels: { kind: "active" }, value: p.active },
    ];
  });
  return {
    countBlock(cb: CommittedBlock): void {
      for (const r of cb.block.records) {
        if (r.type !== RecordType.Evidence) continue;
        metrics.evidenceIncluded.inc();
        let offender = "";
        try {
          offender = toHex(decodeEvidence(r).validator);
        } catch {
          // A committed block's evidence decodes; counted as another's if it ever did not.
        }
        metrics.slashes.inc({ member: offender === s.nodeId ? "self" : "other" });
        log.warn("double-sign evidence included at height {height}: {offender} slashed", {
          height: cb.block.header.height,
          offender,
        });
      }
    },
  };
}
