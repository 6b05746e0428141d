/**
 * The height-independent checks of a block record: what makes it invalid at every state of this
 * chain, so that a peer relaying it can be blamed (docs/protocol.md#misbehavior).
 *
 * Owns: for every signed record type, "decodes strictly and every signature in it verifies for
 * this chain" (the node key; for a collateral registration also the owner key and that the key
 * hashes to the owner address; for evidence both halves).
 * Must never: read chain state (nonce, membership, balances, heights are the state machine's:
 * a record can be valid at the sender's tip and not at ours), or throw on hostile bytes.
 */
import type { BlockRecord } from "../chain/block.ts";
import { addressOf } from "./address.ts";
import { decodeEvidence, verifyEvidenceSignatures } from "./evidence.ts";
import {
  decodeRecord,
  RecordType,
  verifyOwnerSignature,
  verifyRecordSignature,
} from "./records.ts";

/** Why `record` is invalid at every height of the chain `genesisHash` of `network`, or null. */
export function recordFaultAtEveryHeight(
  genesisHash: Uint8Array,
  network: string,
  record: BlockRecord,
): string | null {
  try {
    if (record.type === RecordType.Data) return null;
    if (record.type === RecordType.Evidence) {
      return verifyEvidenceSignatures(genesisHash, decodeEvidence(record))
        ? null
        : "evidence signature does not verify for this chain";
    }
    const decoded = decodeRecord(record);
    if (!verifyRecordSignature(genesisHash, decoded)) {
      return "record signature does not verify for this chain";
    }
    if (decoded.type === RecordType.CollateralRegistration) {
      if (addressOf(network, decoded.ownerKey) !== decoded.owner) {
        return "owner key does not match owner address";
      }
      if (!verifyOwnerSignature(genesisHash, decoded)) {
        return "owner signature does not verify for this chain";
      }
    }
    return null;
  } catch (e) {
    return `malformed record: ${(e as Error).message}`;
  }
}
