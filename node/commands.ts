/**
 * The small one-shot commands: `keygen` and `genesis`.
 *
 * Owns: turning their parsed arguments into files, and the one-line errors for what only the
 * files can tell (a `--key` that is neither a node id nor a key file, a masternode given twice,
 * an `--out` that exists): `UsageError`s, so main.ts exits 2 without a stack trace.
 * Must never: overwrite an existing key, or an existing genesis file without `--force`.
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { createKeyFile, decodeKeyFile } from "../crypto/node_key.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { GenesisError, genesisHash } from "../chain/genesis.ts";
import { genesisToJson, makeDevnetGenesis } from "../chain/genesis_tool.ts";
import { type CliCommand, UsageError } from "./cli.ts";

/** A node id written out: 32 bytes of Ed25519 public key in hex. */
const NODE_ID_HEX_CHARS = 64;

export async function runKeygenCommand(
  cmd: Extract<CliCommand, { kind: "keygen" }>,
): Promise<number> {
  const keyFile = cmd.keyFile;
  if (cmd.show) return await showKey(keyFile);
  const key = generateKeyPair();
  const dir = keyFile.includes("/") ? keyFile.slice(0, keyFile.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await createKeyFile(keyFile, key);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      console.error(
        `timenode: ${keyFile} already exists; refusing to overwrite a node key ` +
          "(timenode keygen --show prints its node id)",
      );
      return 1;
    }
    throw e;
  }
  console.log(JSON.stringify({ keyFile, nodeId: toHex(key.publicKey) }));
  return 0;
}

/** `keygen --show`: the node id of an existing key; exit 1 when there is none. */
async function showKey(keyFile: string): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(keyFile);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file (timenode keygen creates one)"
      : (e as Error).message;
    console.error(`timenode: cannot read the node key ${keyFile}: ${why}`);
    return 1;
  }
  let nodeId: string;
  try {
    nodeId = toHex(decodeKeyFile(text, keyFile).publicKey);
  } catch (e) {
    console.error(`timenode: ${(e as Error).message}`);
    return 1;
  }
  console.log(JSON.stringify({ keyFile, nodeId }));
  return 0;
}

export async function runGenesisCommand(
  cmd: Extract<CliCommand, { kind: "genesis" }>,
): Promise<number> {
  const publicKeys: Uint8Array[] = [];
  const givenAs = new Map<string, string>();
  for (const k of cmd.keys) {
    const publicKey = k.kind === "hex" ? fromHex(k.nodeId) : await readGenesisKeyFile(k.path);
    const id = toHex(publicKey);
    const raw = k.kind === "hex" ? k.nodeId : k.path;
    const earlier = givenAs.get(id);
    if (earlier !== undefined) {
      throw new UsageError(
        `--key: masternode ${id.slice(0, 16)}… given twice (${JSON.stringify(earlier)} and ` +
          `${JSON.stringify(raw)}); each masternode appears once`,
      );
    }
    givenAs.set(id, raw);
    publicKeys.push(publicKey);
  }
  let genesis;
  try {
    genesis = makeDevnetGenesis({
      network: cmd.network,
      blockIntervalMs: cmd.blockIntervalMs,
      nodes: publicKeys.map((publicKey, i) => ({
        publicKey,
        address: cmd.addresses[i] ?? "",
      })),
      alloc: cmd.alloc,
    });
  } catch (e) {
    if (e instanceof GenesisError) throw new UsageError(e.message);
    throw e;
  }
  try {
    await Deno.writeTextFile(cmd.out, genesisToJson(genesis), { createNew: !cmd.force });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new UsageError(`--out: ${cmd.out} exists; pass --force to replace it`);
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`--out: cannot write ${cmd.out}: ${(e as Error).message}`);
    }
    throw e;
  }
  console.log(JSON.stringify({ genesis: cmd.out, hash: toHex(genesisHash(genesis)) }));
  return 0;
}

/** The public key in a `--key` file, or a `UsageError` that says what the value was taken for. */
async function readGenesisKeyFile(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && /^[0-9a-fA-F]+$/.test(path)) {
      throw new UsageError(
        `--key: ${JSON.stringify(path)} is not a node id (${NODE_ID_HEX_CHARS} hex characters, ` +
          `got ${path.length}) nor a key file`,
      );
    }
    const why = e instanceof Deno.errors.NotFound
      ? `no such key file (a node id is ${NODE_ID_HEX_CHARS} hex characters)`
      : (e as Error).message;
    throw new UsageError(`--key: ${JSON.stringify(path)}: ${why}`);
  }
  try {
    return decodeKeyFile(text, path).publicKey;
  } catch (e) {
    throw new UsageError(`--key: ${(e as Error).message}`);
  }
}
