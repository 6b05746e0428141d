/**
 * Commit certificate checks, split in two so the expensive half can run in parallel:
 *  - `verifyCertificateSignatures`: every signature is a valid precommit by the key it names.
 *    Pure and self-contained, so sync runs it in workers on whole batches.
 *  - `checkCertificateQuorum`: the signers are distinct members of the block's validator set
 *    and hold more than 2/3 of its power. Cheap; runs in order at apply time.
 * Must never: count a validator twice or count power of a non-member.
 */
import { bytesEqual, toHex } from "../encoding/binary.ts";
import { verifySignature } from "../crypto/ed25519.ts";
import { type Certificate, voteSignBytes, VoteType } from "./block.ts";
import { hasQuorum, type ValidatorSet } from "./validators.ts";

export function verifyCertificateSignatures(genesisHash: Uint8Array, cert: Certificate): boolean {
  const message = voteSignBytes(
    genesisHash,
    VoteType.Precommit,
    cert.height,
    cert.round,
    cert.blockHash,
  );
  for (const s of cert.signatures) {
    if (!verifySignature(s.validator, message, s.signature)) return false;
  }
  return true;
}

export type QuorumCheck = { ok: true } | { ok: false; why: string };

export function checkCertificateQuorum(
  cert: Certificate,
  height: number,
  blockHash: Uint8Array,
  set: ValidatorSet,
): QuorumCheck {
  if (cert.height !== height) {
    return { ok: false, why: `certificate height ${cert.height} != ${height}` };
  }
  if (!bytesEqual(cert.blockHash, blockHash)) {
    return { ok: false, why: "certificate is for another block" };
  }
  const seen = new Set<string>();
  let power = 0;
  for (const s of cert.signatures) {
    const id = toHex(s.validator);
    if (seen.has(id)) return { ok: false, why: `validator ${id.slice(0, 12)} signed twice` };
    seen.add(id);
    const p = set.powerOf(id);
    if (p === 0) return { ok: false, why: `signer ${id.slice(0, 12)} is not in the validator set` };
    power += p;
  }
  if (!hasQuorum(power, set.totalPower)) {
    return { ok: false, why: `signers hold ${power} of ${set.totalPower} power, need > 2/3` };
  }
  return { ok: true };
}
