/**
 * Persistence of the lock evidence: the block a validator is locked on and the prevotes that
 * justified the lock, written next to the sign guard so a restarted validator can re-propose
 * its locked value (docs/consensus.md §11).
 *
 * Owns: the file format (`lock_evidence.bin`: block, then a list of votes, then a CRC-32) and
 * its atomic, synced write. Must never: be trusted blindly: the engine re-checks the evidence
 * against the guard's lock, so a damaged or stale file only costs liveness, never safety.
 */
import { replaceFileDurably } from "../storage/durable_file.ts";
import { crc32 } from "node:zlib";
import { ByteReader, ByteWriter, writeList } from "../encoding/binary.ts";
import { readBlock, readVote, writeBlock, writeVote } from "../chain/block.ts";
import type { LockEvidence } from "./engine.ts";

export const LOCK_EVIDENCE_FILE = "lock_evidence.bin";
/** Prevotes in a proof of lock: one per validator at most. */
const MAX_PROOF_VOTES = 1_000;

export function encodeLockEvidence(e: LockEvidence): Uint8Array {
  const w = new ByteWriter(1024);
  writeBlock(w, e.block);
  writeList(w, e.proofOfLock, writeVote);
  const body = w.finish();
  return new ByteWriter(body.length + 4).raw(body).u32(crc32(body) >>> 0).finish();
}

export function decodeLockEvidence(bytes: Uint8Array): LockEvidence {
  if (bytes.length < 4) throw new Error("lock evidence file is truncated");
  const body = bytes.subarray(0, bytes.length - 4);
  const sum = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4).getUint32(0, true);
  if ((crc32(body) >>> 0) !== sum) throw new Error("lock evidence file fails its checksum");
  const r = new ByteReader(body);
  const block = readBlock(r);
  const proofOfLock = r.list(MAX_PROOF_VOTES, readVote);
  r.end();
  return { block, proofOfLock };
}

/** Written durably (storage/durable_file.ts) before the vote that carries it leaves. */
export async function saveLockEvidence(dataDir: string, e: LockEvidence): Promise<void> {
  await replaceFileDurably(`${dataDir}/${LOCK_EVIDENCE_FILE}`, encodeLockEvidence(e));
}

/** The saved evidence, or null when there is none or it cannot be read (logged by the caller). */
export async function loadLockEvidence(dataDir: string): Promise<LockEvidence | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${dataDir}/${LOCK_EVIDENCE_FILE}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return decodeLockEvidence(bytes);
}
