/**
 * Addresses: the bech32m (BIP-350) encoding of a 20-byte hash of an Ed25519 public key, with a
 * human-readable prefix per network (docs/state.md#addresses).
 *
 * Owns: the key → address derivation, the prefix of each network, parsing with a reason.
 * Must never: implement bech32m itself (the audited `@scure/base` does), accept an address of
 * another network, or accept anything but the canonical lower-case form.
 */
import { bech32m } from "@scure/base";
import { sha256 } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH } from "../crypto/ed25519.ts";

/** Bytes of the key hash an address encodes: as in Bitcoin's P2WPKH, ample against collisions. */
export const ADDRESS_HASH_LENGTH = 20;
/** hrp "ttime" + "1" + 32 data chars + 6 checksum chars = 44; 90 is BIP-173's ceiling. */
const MAX_ADDRESS_CHARS = 90;

const ADDRESS_DOMAIN = new TextEncoder().encode("timenode/address/v1");

/**
 * Encoded addresses by network and hash. Bech32m encoding costs tens of microseconds, and every
 * transfer admitted or applied needs its sender's and recipient's address, over and over for
 * the same few accounts. Cleared when full: the hot accounts come straight back.
 */
const ENCODED_CACHE_ENTRIES = 65_536;
const encodedCache = new Map<string, string>();

function cacheKey(network: string, bytes: Uint8Array): string {
  return network + "/" + String.fromCharCode(...bytes);
}

/** `time` on mainnet, `ttime` on every other network (testnet, devnet, private networks). */
export function addressPrefix(network: string): string {
  return network === "mainnet" ? "time" : "ttime";
}

/** The 20-byte hash an address of `publicKey` encodes. */
export function addressHash(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) throw new RangeError("public key must be 32 bytes");
  return sha256(ADDRESS_DOMAIN, publicKey).subarray(0, ADDRESS_HASH_LENGTH);
}

export function encodeAddress(network: string, hash: Uint8Array): string {
  if (hash.length !== ADDRESS_HASH_LENGTH) throw new RangeError("address hash must be 20 bytes");
  const key = cacheKey(network, hash);
  let address = encodedCache.get(key);
  if (address === undefined) {
    address = bech32m.encode(addressPrefix(network), bech32m.toWords(hash), MAX_ADDRESS_CHARS);
    if (encodedCache.size >= ENCODED_CACHE_ENTRIES) encodedCache.clear();
    encodedCache.set(key, address);
  }
  return address;
}

/** The address of a wallet (or node) key on `network`. */
export function addressOf(network: string, publicKey: Uint8Array): string {
  // Cached by key as well, which skips the hash too ("k" keeps the two kinds of entry apart).
  const key = "k" + cacheKey(network, publicKey);
  let address = encodedCache.get(key);
  if (address === undefined) {
    address = encodeAddress(network, addressHash(publicKey));
    if (encodedCache.size >= ENCODED_CACHE_ENTRIES) encodedCache.clear();
    encodedCache.set(key, address);
  }
  return address;
}

export type AddressCheck = { ok: true; hash: Uint8Array } | { ok: false; why: string };

/** Checks `text` is an address of `network`; the reason says what is wrong when it is not. */
export function checkAddress(network: string, text: string): AddressCheck {
  const prefix = addressPrefix(network);
  if (typeof text !== "string" || text.length === 0) return { ok: false, why: "empty address" };
  if (text.length > MAX_ADDRESS_CHARS) return { ok: false, why: "address too long" };
  if (text !== text.toLowerCase()) {
    return { ok: false, why: "address must be lower case" };
  }
  const sep = text.lastIndexOf("1");
  if (sep <= 0) return { ok: false, why: `not an address (expected ${prefix}1…)` };
  if (text.slice(0, sep) !== prefix) {
    return {
      ok: false,
      why: `address prefix "${text.slice(0, sep)}" is not this network's "${prefix}"`,
    };
  }
  let words: number[];
  try {
    words = bech32m.decode(text as `${string}1${string}`, MAX_ADDRESS_CHARS).words;
  } catch (e) {
    return { ok: false, why: `bad address (${(e as Error).message}): a typo?` };
  }
  let hash: Uint8Array;
  try {
    hash = bech32m.fromWords(words);
  } catch {
    return { ok: false, why: "bad address padding" };
  }
  if (hash.length !== ADDRESS_HASH_LENGTH) {
    return { ok: false, why: `address holds ${hash.length} bytes, expected 20` };
  }
  return { ok: true, hash };
}

/** Like `checkAddress`, throwing a `RangeError` with the reason. */
export function parseAddress(network: string, text: string): Uint8Array {
  const c = checkAddress(network, text);
  if (!c.ok) throw new RangeError(`invalid address ${JSON.stringify(text)}: ${c.why}`);
  return c.hash;
}
