/**
 * Hostile certificates and `blocks` answers, for the tests and the bench that show a certificate
 * flood costs no signature verification (docs/security.md).
 *
 * Owns: building the worst certificates a peer can send (many copies of one signer, strangers'
 * valid signatures, too little power) on top of real blocks, and a counting verifier.
 * Must never: be imported by production code.
 */
import { type KeyPair, keyPairFromSeed, signBytes, verifySignature } from "../../crypto/ed25519.ts";
import { sha256 } from "../../crypto/hash.ts";
import {
  type Certificate,
  CHAIN_LIMITS,
  type CommittedBlock,
  encodeCommittedBlock,
  voteSignBytes,
  VoteType,
} from "../../chain/block.ts";
import type { SignatureVerifier } from "../../chain/certificate.ts";

export type HostileCertificate = "copies-of-one" | "strangers" | "too-little-power";

/** Keys nobody registered; deterministic so a failure reproduces. */
export function strangerKey(i: number): KeyPair {
  return keyPairFromSeed(sha256(new TextEncoder().encode(`timenode/stranger/${i}`)));
}

/**
 * A certificate for `cb`'s block that a cheap check must refuse, with `size` entries (at most
 * the certificate bound of 1,000). Every signature is a correct precommit signature by the key
 * it names, so only the cheap checks stand between it and `size` verifications.
 */
export function hostileCertificate(
  genesisHash: Uint8Array,
  cb: CommittedBlock,
  kind: HostileCertificate,
  size: number = CHAIN_LIMITS.maxValidators,
  strangers: readonly KeyPair[] = [],
): Certificate {
  const real = cb.certificate;
  const message = voteSignBytes(
    genesisHash,
    VoteType.Precommit,
    real.height,
    real.round,
    real.blockHash,
  );
  let signatures: Certificate["signatures"];
  switch (kind) {
    case "copies-of-one":
      signatures = Array.from({ length: size }, () => real.signatures[0]);
      break;
    case "strangers": {
      const keys = strangers.length >= size
        ? strangers.slice(0, size)
        : Array.from({ length: size }, (_, i) => strangerKey(i));
      signatures = keys.map((k) => ({ validator: k.publicKey, signature: signBytes(k, message) }));
      break;
    }
    case "too-little-power":
      signatures = real.signatures.slice(0, 1);
      break;
  }
  return { ...real, signatures };
}

/** The committed block re-encoded with another certificate. */
export function withCertificate(cb: CommittedBlock, certificate: Certificate): Uint8Array {
  return encodeCommittedBlock({ block: cb.block, certificate });
}

/** A verifier that counts its calls and then verifies for real. */
export function countingVerifier(): { verify: SignatureVerifier; calls: () => number } {
  let calls = 0;
  return {
    verify: (publicKey, message, signature) => {
      calls++;
      return verifySignature(publicKey, message, signature);
    },
    calls: () => calls,
  };
}
