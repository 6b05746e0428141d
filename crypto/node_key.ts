/**
 * The node key file: created at first start (mode 0600) and reused afterwards.
 *
 * Format: JSON `{ "secretKey": hex seed, "publicKey": hex }`; the public key is the node id.
 * Owns: reading, checking and creating the file. Creation is durable and atomic like the sign
 * guard's writes (storage/durable_file.ts): after a crash the key is there whole or not at all.
 * Must never: overwrite an existing key, start with a key file whose public key does not match
 * its seed, or use a key file that other users may read (like ssh with a private key).
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { createFileDurably } from "../storage/durable_file.ts";
import { generateKeyPair, KeyPair, keyPairFromSeed } from "./ed25519.ts";

export const NODE_KEY_FILE = "node_key.json";

/** Permission bits that let anyone but the owner read, write or run the file. */
const GROUP_OR_OTHER_BITS = 0o077;

export class NodeKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NodeKeyError";
  }
}

export function encodeKeyFile(key: KeyPair): string {
  return JSON.stringify(
    { secretKey: toHex(key.secretKey), publicKey: toHex(key.publicKey) },
    null,
    2,
  ) + "\n";
}

export function decodeKeyFile(text: string, path: string): KeyPair {
  let parsed: { secretKey?: unknown; publicKey?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new NodeKeyError(`node key file ${path} is not valid JSON`);
  }
  if (typeof parsed.secretKey !== "string" || !/^[0-9a-f]{64}$/.test(parsed.secretKey)) {
    throw new NodeKeyError(`node key file ${path} has no valid secretKey`);
  }
  const key = keyPairFromSeed(fromHex(parsed.secretKey));
  if (parsed.publicKey !== undefined && parsed.publicKey !== toHex(key.publicKey)) {
    throw new NodeKeyError(`node key file ${path}: publicKey does not match secretKey`);
  }
  return key;
}

/**
 * Throws `NodeKeyError` when the file at `path` is accessible to group or others. `mode` is
 * `Deno.FileInfo.mode`; null (Windows) skips the check, since there are no such bits.
 */
export function checkKeyFileMode(path: string, mode: number | null): void {
  if (mode === null) return;
  if ((mode & GROUP_OR_OTHER_BITS) === 0) return;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  throw new NodeKeyError(
    `node key file ${path} has mode ${octal}: it is readable by group or others, so another ` +
      `user may have copied the key. Refusing to start; fix it with: chmod 600 ${path}`,
  );
}

/** Writes a new key file at `path` (mode 0600); throws `Deno.errors.AlreadyExists` if present. */
export async function createKeyFile(path: string, key: KeyPair): Promise<void> {
  await createFileDurably(path, new TextEncoder().encode(encodeKeyFile(key)), 0o600);
}

/** Loads the key at `path`, creating it with mode 0600 if absent. */
export async function loadOrCreateNodeKey(
  path: string,
): Promise<{ key: KeyPair; created: boolean }> {
  try {
    const info = await Deno.stat(path);
    checkKeyFileMode(path, info.mode);
    return { key: decodeKeyFile(await Deno.readTextFile(path), path), created: false };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const key = generateKeyPair();
  await createKeyFile(path, key);
  return { key, created: true };
}
