/**
 * The wallet file: one Ed25519 key whose address receives and sends TIME.
 *
 * Owns: the file format ({"version":1,"network":…,"secretKey":hex,"address":…}), creating it
 * with mode 0600 and never over an existing file, and reading it back with checks.
 * Must never: overwrite a wallet, write the key anywhere else, or print it.
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { generateKeyPair, type KeyPair, keyPairFromSeed } from "../crypto/ed25519.ts";
import { addressOf } from "../state/address.ts";

export const WALLET_FILE = "wallet.json";
const VERSION = 1;

export interface Wallet {
  key: KeyPair;
  /** The network it was created for (its address prefix). */
  network: string;
  address: string;
}

export class WalletError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WalletError";
  }
}

export function encodeWallet(w: Wallet): string {
  return JSON.stringify(
    { version: VERSION, network: w.network, address: w.address, secretKey: toHex(w.key.secretKey) },
    null,
    2,
  ) + "\n";
}

export function decodeWallet(text: string, path: string): Wallet {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    throw new WalletError(`wallet ${path} is not valid JSON`);
  }
  if (o?.version !== VERSION) throw new WalletError(`wallet ${path}: unknown version`);
  if (typeof o.secretKey !== "string" || !/^[0-9a-f]{64}$/.test(o.secretKey)) {
    throw new WalletError(`wallet ${path} has no valid secretKey`);
  }
  if (typeof o.network !== "string" || !/^[a-z0-9-]{1,32}$/.test(o.network)) {
    throw new WalletError(`wallet ${path} has no valid network`);
  }
  const key = keyPairFromSeed(fromHex(o.secretKey));
  const address = addressOf(o.network, key.publicKey);
  if (o.address !== undefined && o.address !== address) {
    throw new WalletError(`wallet ${path}: address does not match its key`);
  }
  return { key, network: o.network, address };
}

/** A fresh wallet for `network`, written to `path` with mode 0600; fails if `path` exists. */
export async function createWallet(path: string, network: string, key = generateKeyPair()) {
  const wallet: Wallet = { key, network, address: addressOf(network, key.publicKey) };
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true, mode: 0o700 });
  try {
    await Deno.writeTextFile(path, encodeWallet(wallet), { mode: 0o600, createNew: true });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new WalletError(`${path} already exists; refusing to overwrite a wallet`);
    }
    throw e;
  }
  // createNew applies the umask to the mode; the key must never be readable by others.
  await Deno.chmod(path, 0o600);
  return wallet;
}

export async function loadWallet(path: string): Promise<Wallet> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new WalletError(`no wallet at ${path} (create one with timenode wallet new)`);
    }
    throw e;
  }
  return decodeWallet(text, path);
}
