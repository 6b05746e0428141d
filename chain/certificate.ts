/**
 * Commit certificate checks, cheapest first, so hostile input costs no signature verification:
 *  - `checkCertificateSigners`: the signature count fits the set, no signer appears twice, every
 *    signer is a member with voting power and (when the set is exactly known) they hold more than
 *    2/3 of its power. A few map lookups per signature; never verifies anything.
 *  - `verifyCertificateSignatures`: every signature is a valid precommit by the key it names.
 *    Pure and self-contained, so sync runs it in workers on whole batches.
 *  - `checkCertificate`: both, in that order, for callers that hold the set.
 * Every path that accepts a certificate (sync workers, `chain/verify.ts`, and through it
 * consensus commits and RPC reads of stored blocks) runs the signer checks before the first
 * signature is verified: one block with 1,000 copies of a signature, or 1,000 signatures by
 * strangers, is refused for the price of a hash lookup (docs/security.md).
 * Must never: count a validator twice, count power of a non-member, or verify a signature of a
 * certificate that fails a cheap check.
 */
import { bytesEqual, toHex } from "../encoding/binary.ts";
import { verifySignature } from "../crypto/ed25519.ts";
import { type Certificate, voteSignBytes, VoteType } from "./block.ts";
import { hasQuorum } from "./validators.ts";

/** Why a certificate was refused; also the label of the metric counting refusals. */
export type CertificateFault =
  | "wrong-block"
  | "too-many-signatures"
  | "duplicate-signer"
  | "not-a-member"
  | "no-quorum"
  | "bad-signature";

export type QuorumCheck = { ok: true } | { ok: false; fault: CertificateFault; why: string };

export type SignatureVerifier = (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => boolean;

/**
 * What the cheap checks need of a validator set; `ValidatorSet` is one. Sync workers rebuild it
 * from plain data (sync/verify_worker.ts).
 */
export interface SignerSet {
  readonly totalPower: number;
  /** Members with power > 0: no certificate can carry more distinct useful signatures. */
  readonly voting: readonly unknown[];
  /** 0 for a non-member or a member without voting power. */
  powerOf(nodeIdHex: string): number;
}

/**
 * The cheap half: count, duplicates, membership with power, and quorum. With `exact` false the
 * set is a superset of the real one's voting members (sync beyond the known sets), so quorum
 * is left to the in-order check that knows the real set; the rest still applies.
 */
export function checkCertificateSigners(
  cert: Certificate,
  set: SignerSet,
  exact = true,
): QuorumCheck {
  const n = cert.signatures.length;
  if (n > set.voting.length) {
    return {
      ok: false,
      fault: "too-many-signatures",
      why: `${n} signatures, the set has ${set.voting.length} voting members`,
    };
  }
  const seen = new Set<string>();
  let power = 0;
  for (const s of cert.signatures) {
    const id = toHex(s.validator);
    if (seen.has(id)) {
      return { ok: false, fault: "duplicate-signer", why: `${id.slice(0, 12)} signed twice` };
    }
    seen.add(id);
    const p = set.powerOf(id);
    if (p === 0) {
      return {
        ok: false,
        fault: "not-a-member",
        why: `signer ${id.slice(0, 12)} is not a voting member of the validator set`,
      };
    }
    power += p;
  }
  if (exact && !hasQuorum(power, set.totalPower)) {
    return {
      ok: false,
      fault: "no-quorum",
      why: `signers hold ${power} of ${set.totalPower} power, need > 2/3`,
    };
  }
  return { ok: true };
}

/** The certificate names block `blockHash` at `height`, and passes `checkCertificateSigners`. */
export function checkCertificateQuorum(
  cert: Certificate,
  height: number,
  blockHash: Uint8Array,
  set: SignerSet,
): QuorumCheck {
  if (cert.height !== height) {
    return {
      ok: false,
      fault: "wrong-block",
      why: `certificate height ${cert.height} != ${height}`,
    };
  }
  if (!bytesEqual(cert.blockHash, blockHash)) {
    return { ok: false, fault: "wrong-block", why: "certificate is for another block" };
  }
  return checkCertificateSigners(cert, set);
}

/** Every signature is a precommit by the key it names. Call only after the cheap checks. */
export function verifyCertificateSignatures(
  genesisHash: Uint8Array,
  cert: Certificate,
  verify: SignatureVerifier = verifySignature,
): boolean {
  const message = voteSignBytes(
    genesisHash,
    VoteType.Precommit,
    cert.height,
    cert.round,
    cert.blockHash,
  );
  for (const s of cert.signatures) {
    if (!verify(s.validator, message, s.signature)) return false;
  }
  return true;
}

/** The whole check, cheap half first: no signature is verified unless it all passes. */
export function checkCertificate(
  genesisHash: Uint8Array,
  cert: Certificate,
  height: number,
  blockHash: Uint8Array,
  set: SignerSet,
  verify: SignatureVerifier = verifySignature,
): QuorumCheck {
  const cheap = checkCertificateQuorum(cert, height, blockHash, set);
  if (!cheap.ok) return cheap;
  if (!verifyCertificateSignatures(genesisHash, cert, verify)) {
    return { ok: false, fault: "bad-signature", why: "a certificate signature does not verify" };
  }
  return { ok: true };
}
