/**
 * Hashing. SHA-256 through node:crypto, which is an order of magnitude faster here than
 * WebCrypto for the small inputs that dominate (headers, votes).
 *
 * Must never: be bypassed. Every hash in the protocol comes from `sha256` so that a change of
 * implementation cannot make two components disagree.
 */
import { createHash } from "node:crypto";

export const HASH_LENGTH = 32;
export const ZERO_HASH: Uint8Array = new Uint8Array(HASH_LENGTH);

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * Binary Merkle root over leaf hashes, Bitcoin-style (odd node paired with itself), with
 * domain-separated leaves and inner nodes so a leaf can never pose as an inner node.
 * The root of an empty list is the zero hash.
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return ZERO_HASH;
  const LEAF = new Uint8Array([0]);
  const NODE = new Uint8Array([1]);
  let level = leaves.map((l) => sha256(LEAF, l));
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(sha256(NODE, level[i], level[i + 1] ?? level[i]));
    }
    level = next;
  }
  return level[0];
}
