/**
 * Ed25519 keys and signatures through node:crypto (about 3x faster here than WebCrypto).
 *
 * Owns: raw 32-byte public keys (the node id), 64-byte signatures, and the node key file.
 * Must never: throw on a malformed key or signature from the network; `verify` returns false.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  sign,
  verify,
} from "node:crypto";

export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

// DER prefixes for raw Ed25519 keys (RFC 8410); node:crypto imports raw keys only via DER/JWK.
const SPKI_PREFIX = Uint8Array.from([
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
]);
const PKCS8_PREFIX = Uint8Array.from([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
]);

export interface KeyPair {
  /** 32-byte seed. */
  readonly secretKey: Uint8Array;
  /** 32-byte public key; this is the node id. */
  readonly publicKey: Uint8Array;
  readonly privateKeyObject: KeyObject;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (seed.length !== 32) throw new RangeError("Ed25519 seed must be 32 bytes");
  const privateKeyObject = createPrivateKey({
    key: concat(PKCS8_PREFIX, seed) as unknown as Buffer,
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKeyObject).export({ format: "der", type: "spki" });
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32));
  return { secretKey: seed.slice(), publicKey, privateKeyObject };
}

export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
  return keyPairFromSeed(new Uint8Array(pkcs8.subarray(pkcs8.length - 32)));
}

export function signBytes(key: KeyPair, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key.privateKeyObject));
}

// Public keys repeat constantly (validators, peers); caching their KeyObjects avoids a DER parse
// per verify. Bounded so hostile peers cannot grow it without limit.
const PUBLIC_KEY_CACHE_LIMIT = 4096;
const publicKeyCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = String.fromCharCode(...publicKey);
  let k = publicKeyCache.get(id);
  if (!k) {
    k = createPublicKey({
      key: concat(SPKI_PREFIX, publicKey) as unknown as Buffer,
      format: "der",
      type: "spki",
    });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) publicKeyCache.clear();
    publicKeyCache.set(id, k);
  }
  return k;
}

export function verifySignature(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
  try {
    return verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}
