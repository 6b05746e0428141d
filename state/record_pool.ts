/**
 * The pool of records (masternode registrations and deregistrations, data records) waiting to
 * be included in a block. Pure: validity comes from an injected check that runs the chain's
 * own state machine, so a record is judged exactly as a block containing it would be.
 *
 * Owns: de-duplication by record hash, the bounds, arrival order, and choosing the records of
 * the next block so that together they still apply.
 * Must never: grow past its bounds, or hand a proposer a set of records that does not apply.
 */
import { toHex } from "../encoding/binary.ts";
import { sha256 } from "../crypto/hash.ts";
import { type BlockRecord, CHAIN_LIMITS, encodeRecord } from "../chain/block.ts";

/** Records waiting: registrations are rare, so a thousand covers any honest burst. */
export const MAX_POOL_RECORDS = 1_000;
/** Bytes waiting, so large data records cannot exhaust memory either. */
export const MAX_POOL_BYTES = 4 * 1024 * 1024;
/** Records per proposed block: keeps block building and validation cheap. */
export const MAX_RECORDS_PER_BLOCK = 100;
/** Record bytes per proposed block: far inside the 4 MiB body bound, so a proposal always fits. */
export const MAX_RECORD_BYTES_PER_BLOCK = 1024 * 1024;

export type AddResult = "added" | "duplicate" | "full" | { invalid: string };

/** Throws with the reason when the records, in this order, would not apply on the tip. */
export type RecordsCheck = (records: readonly BlockRecord[]) => void;

export function recordId(record: BlockRecord): string {
  return toHex(sha256(encodeRecord(record)));
}

export class RecordPool {
  readonly #records = new Map<string, BlockRecord>();
  #bytes = 0;

  get size(): number {
    return this.#records.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  has(id: string): boolean {
    return this.#records.has(id);
  }

  add(record: BlockRecord, check: RecordsCheck): AddResult {
    const id = recordId(record);
    if (this.#records.has(id)) return "duplicate";
    if (record.data.length > CHAIN_LIMITS.maxRecordBytes) return { invalid: "record too large" };
    if (
      this.#records.size >= MAX_POOL_RECORDS || this.#bytes + record.data.length > MAX_POOL_BYTES
    ) {
      return "full";
    }
    try {
      check([record]);
    } catch (e) {
      return { invalid: (e as Error).message };
    }
    this.#records.set(id, record);
    this.#bytes += record.data.length;
    return "added";
  }

  /**
   * Records for the next block, in arrival order, each kept only if it still applies after the
   * ones chosen before it (two registrations of one node: the second is left out).
   */
  select(check: RecordsCheck): BlockRecord[] {
    const chosen: BlockRecord[] = [];
    let bytes = 0;
    for (const record of this.#records.values()) {
      if (chosen.length >= MAX_RECORDS_PER_BLOCK) break;
      if (bytes + record.data.length > MAX_RECORD_BYTES_PER_BLOCK) continue;
      try {
        check([...chosen, record]);
        chosen.push(record);
        bytes += record.data.length;
      } catch {
        // Left for a later block, or dropped by `revalidate`.
      }
    }
    return chosen;
  }

  /** After a block: drops what it included and whatever no longer applies on the new tip. */
  revalidate(included: readonly BlockRecord[], check: RecordsCheck): number {
    // The common case during sync: nothing pooled, so nothing to hash or check per block.
    if (this.#records.size === 0) return 0;
    for (const r of included) this.#delete(recordId(r));
    let dropped = 0;
    for (const [id, record] of [...this.#records]) {
      try {
        check([record]);
      } catch {
        this.#delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  #delete(id: string): void {
    const r = this.#records.get(id);
    if (!r) return;
    this.#records.delete(id);
    this.#bytes -= r.data.length;
  }
}
