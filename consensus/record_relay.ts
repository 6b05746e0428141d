/**
 * What a relayed record says about its sender, whatever our own tip.
 *
 * Owns: the height-independent checks of a record from the network (it decodes, its signature
 * verifies for this chain). Only these may cost the sender: a record can be valid at the
 * sender's tip and not at ours (a nonce used meanwhile, an expiry passed, a lagging node that
 * has not seen the registration yet), so "does not apply here" is dropped without blame, or
 * up-to-date peers could be made to ban a lagging node with crafted records.
 * Must never: read chain state, or throw on hostile bytes.
 */
import type { BlockRecord } from "../chain/block.ts";
import {
  decodeRecord,
  RecordType,
  verifyOwnerSignature,
  verifyRecordSignature,
} from "../state/records.ts";
import { decodeEvidence, verifyEvidenceSignatures } from "../state/evidence.ts";

/** Why `record` is invalid at every height (malformed, bad signature, another chain), or null. */
export function recordFaultAtEveryHeight(
  genesisHash: Uint8Array,
  record: BlockRecord,
): string | null {
  if (record.type === RecordType.Evidence) {
    // Unsigned by its submitter: the two halves carry the offender's signatures.
    let evidence;
    try {
      evidence = decodeEvidence(record);
    } catch (e) {
      return `malformed evidence: ${(e as Error).message}`;
    }
    return verifyEvidenceSignatures(genesisHash, evidence)
      ? null
      : "evidence signatures do not verify for this chain";
  }
  let decoded;
  try {
    decoded = decodeRecord(record);
  } catch (e) {
    return `malformed record: ${(e as Error).message}`;
  }
  if (!verifyRecordSignature(genesisHash, decoded)) {
    return "record signature does not verify for this chain";
  }
  if (
    decoded.type === RecordType.CollateralRegistration &&
    !verifyOwnerSignature(genesisHash, decoded)
  ) {
    return "owner signature does not verify for this chain";
  }
  return null;
}
