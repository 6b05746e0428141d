/**
 * The node key file: created at first start (mode 0600) and reused afterwards.
 *
 * Format: JSON `{ "secretKey": hex seed, "publicKey": hex }`; the public key is the node id.
 * Must never: overwrite an existing key, or start with a key file whose public key does not
 * match its seed.
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { generateKeyPair, KeyPair, keyPairFromSeed } from "./ed25519.ts";

export const NODE_KEY_FILE = "node_key.json";

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
    throw new Error(`node key file ${path} is not valid JSON`);
  }
  if (typeof parsed.secretKey !== "string" || !/^[0-9a-f]{64}$/.test(parsed.secretKey)) {
    throw new Error(`node key file ${path} has no valid secretKey`);
  }
  const key = keyPairFromSeed(fromHex(parsed.secretKey));
  if (parsed.publicKey !== undefined && parsed.publicKey !== toHex(key.publicKey)) {
    throw new Error(`node key file ${path}: publicKey does not match secretKey`);
  }
  return key;
}

/** Loads the key at `path`, creating it with mode 0600 if absent. */
export async function loadOrCreateNodeKey(
  path: string,
): Promise<{ key: KeyPair; created: boolean }> {
  try {
    return { key: decodeKeyFile(await Deno.readTextFile(path), path), created: false };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const key = generateKeyPair();
  await Deno.writeTextFile(path, encodeKeyFile(key), { mode: 0o600, createNew: true });
  await Deno.chmod(path, 0o600);
  return { key, created: true };
}
