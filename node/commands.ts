/**
 * The small one-shot commands: `keygen` and `genesis`.
 *
 * Owns: turning their parsed arguments into files. Must never: overwrite an existing key.
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { decodeKeyFile, encodeKeyFile } from "../crypto/node_key.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { genesisHash } from "../chain/genesis.ts";
import { genesisToJson, makeDevnetGenesis } from "../chain/genesis_tool.ts";
import type { CliCommand } from "./cli.ts";

export async function runKeygenCommand(keyFile: string): Promise<number> {
  const key = generateKeyPair();
  const dir = keyFile.includes("/") ? keyFile.slice(0, keyFile.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await Deno.writeTextFile(keyFile, encodeKeyFile(key), { mode: 0o600, createNew: true });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      console.error(`timenode: ${keyFile} already exists; refusing to overwrite a node key`);
      return 1;
    }
    throw e;
  }
  console.log(JSON.stringify({ keyFile, nodeId: toHex(key.publicKey) }));
  return 0;
}

export async function runGenesisCommand(
  cmd: Extract<CliCommand, { kind: "genesis" }>,
): Promise<number> {
  const publicKeys: Uint8Array[] = [];
  for (const k of cmd.keys) {
    if (k.kind === "hex") publicKeys.push(fromHex(k.nodeId));
    else publicKeys.push(decodeKeyFile(await Deno.readTextFile(k.path), k.path).publicKey);
  }
  const genesis = makeDevnetGenesis({
    network: cmd.network,
    blockIntervalMs: cmd.blockIntervalMs,
    nodes: publicKeys.map((publicKey, i) => ({
      publicKey,
      address: cmd.addresses[i] ?? "",
    })),
    alloc: cmd.alloc,
  });
  await Deno.writeTextFile(cmd.out, genesisToJson(genesis));
  console.log(JSON.stringify({ genesis: cmd.out, hash: toHex(genesisHash(genesis)) }));
  return 0;
}
