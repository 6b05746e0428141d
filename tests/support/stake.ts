/**
 * Helpers of the stake integration tests: the `timenode wallet` command as an operator runs it,
 * an extra node that joins a devnet, and reading `masternodelist`, accounts and block signers.
 */
import { freePort, NodeProcess, tempDir } from "./cluster.ts";
import type { TestDevnet } from "./devnet.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface MasternodeJson {
  nodeId: string;
  tier: string;
  power: number;
  status: string;
  owner: string | null;
  collateral: string;
  activeFrom: number;
  leavingFrom: number | null;
  missedBlocks: number;
  jailedUntil: number | null;
  rewardAddress: string;
}

export interface AccountJson {
  balance: string;
  balanceUnits: string;
  locked: string;
  lockedUnits: string;
  unbonding: { nodeId: string; amount: string; amountUnits: string; releaseHeight: number }[];
  height: number;
}

export interface WalletRun {
  code: number;
  /** stdout, one JSON object per line. */
  out: Record<string, unknown>[];
  err: string;
}

/** `timenode wallet ARGS --network devnet --rpc <node> --data-dir <node's dir>`. */
export async function runWallet(node: NodeProcess, args: string[]): Promise<WalletRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "wallet",
      ...args,
      "--network",
      "devnet",
      "--data-dir",
      node.opts.dataDir,
      "--rpc",
      node.rpcUrl.replace("http://", ""),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return {
    code: out.code,
    out: text ? text.split("\n").map((l) => JSON.parse(l)) : [],
    err: new TextDecoder().decode(out.stderr),
  };
}

/** A node outside the genesis set that follows `devnet` (not started). */
export async function extraNode(devnet: TestDevnet, name: string): Promise<NodeProcess> {
  return new NodeProcess({
    name,
    dataDir: await tempDir(name),
    p2pPort: freePort(),
    rpcPort: freePort(),
    genesis: devnet.manifest.genesis,
    peers: devnet.manifest.nodes.map((n) => n.p2p),
    logLevel: "info",
  });
}

export async function entryOf(
  node: NodeProcess,
  nodeId: string,
): Promise<MasternodeJson | undefined> {
  const list = await node.rpc<MasternodeJson[]>("masternodelist");
  return list.find((m) => m.nodeId === nodeId);
}

export function accountOf(node: NodeProcess, address: string): Promise<AccountJson> {
  return node.rpc<AccountJson>("getaccount", [address]);
}

/** Node ids that signed `height`, as block `height + 1` carries them (its `lastCommit`). */
export async function signersOf(node: NodeProcess, height: number): Promise<string[]> {
  const b = await node.rpc<
    { lastCommit: { height: number; signatures: { validator: string }[] } | null }
  >("getblock", [height + 1]);
  if (!b.lastCommit || b.lastCommit.height !== height) {
    throw new Error(`block ${height + 1} carries no lastCommit of ${height}`);
  }
  return b.lastCommit.signatures.map((s) => s.validator);
}

/** The node id in a data dir's node_key.json. */
export async function nodeIdOf(dataDir: string): Promise<string> {
  return JSON.parse(await Deno.readTextFile(`${dataDir}/node_key.json`)).publicKey;
}
