/**
 * `timenode wallet register | deregister | unjail`: bond a masternode with this wallet's coins,
 * leave, and come back from jail (docs/operations.md#stake).
 *
 * Owns: building and co-signing the collateral registration (the wallet key as owner, the node
 * key either from `--node-key FILE` or through the node's own RPC `signcollateralregistration`),
 * the balance check before it, and submitting records through the node's RPC.
 * Must never: send the wallet key or the node key anywhere, or submit a registration the chain
 * would refuse for a reason the wallet can check first (tier, reward address, balance).
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { signBytes } from "../crypto/ed25519.ts";
import type { KeyPair } from "../crypto/ed25519.ts";
import { decodeKeyFile } from "../crypto/node_key.ts";
import type { BlockRecord } from "../chain/block.ts";
import { addressOf, checkAddress } from "../state/address.ts";
import { formatAmount, parseAmount, parseUnits } from "../state/amount.ts";
import {
  assembleCollateralRegistration,
  type CollateralRegistrationParams,
  collateralRegistrationSignBytes,
  signCollateralRegistration,
  signDeregistration,
  signUnjail,
} from "../state/records.ts";
import { loadWallet, WalletError } from "./file.ts";
import type { WalletRpc } from "./rpc.ts";

export type PaidTier = "bronze" | "silver" | "gold";
export const PAID_TIERS: readonly PaidTier[] = ["bronze", "silver", "gold"];

/** `--wait`: how long to wait for the record to take effect (it may still land later). */
const WAIT_TIMEOUT_MS = 120_000;
const WAIT_POLL_MS = 250;

export interface StakeCommand {
  sub: "register" | "deregister" | "unjail";
  walletFile: string;
  /** The node key file; without it the node at the RPC signs with its own key. */
  nodeKeyFile?: string;
  tier?: PaidTier;
  rewardAddress?: string;
  /** The host:port other masternodes dial the node at (default: the RPC node's --listen). */
  address?: string;
  wait: boolean;
}

interface ChainInfo {
  network: string;
  genesisHash: string;
  height: number;
}

interface MasternodeJson {
  nodeId: string;
  status: string;
  power: number;
  activeFrom: number;
  jailedUntil: number | null;
}

async function readNodeKey(path: string): Promise<KeyPair> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new WalletError(`--node-key: no file at ${path}`);
    throw e;
  }
  return decodeKeyFile(text, path);
}

async function submit(rpc: WalletRpc, record: BlockRecord) {
  return await rpc.call("sendrawrecord", [record.type, toHex(record.data)]) as {
    id: string;
    status: string;
  };
}

/** The RPC node's announced p2p address, when it is the node being registered. */
async function ownListenAddress(rpc: WalletRpc, nodeId: string): Promise<string> {
  const net = await rpc.call("getnetworkinfo") as { nodeId: string; listen: string | null };
  if (net.nodeId !== nodeId || !net.listen) {
    throw new RangeError(
      "--address: required when the node at --rpc is not the node being registered " +
        "(the host:port other masternodes dial it at)",
    );
  }
  return net.listen;
}

export async function runStakeCommand(
  cmd: StakeCommand,
  rpc: WalletRpc,
  print: (o: unknown) => void,
): Promise<number> {
  switch (cmd.sub) {
    case "register":
      return await register(cmd, rpc, print);
    case "deregister":
    case "unjail":
      return await leaveOrUnjail(cmd, rpc, print);
  }
}

async function register(cmd: StakeCommand, rpc: WalletRpc, print: (o: unknown) => void) {
  const wallet = await loadWallet(cmd.walletFile);
  const tier = cmd.tier!;
  const info = await rpc.call("getblockchaininfo") as ChainInfo;
  const reward = checkAddress(info.network, cmd.rewardAddress!);
  if (!reward.ok) throw new RangeError(`--reward-address ${cmd.rewardAddress}: ${reward.why}`);
  const owner = addressOf(info.network, wallet.key.publicKey);
  const params = await rpc.call("getstakeparams") as { tierCollateral: Record<string, string> };
  const collateral = parseAmount(params.tierCollateral[tier]);
  const account = await rpc.call("getaccount", [owner]) as { balanceUnits: string };
  const spendable = parseUnits(account.balanceUnits);
  if (spendable < collateral) {
    throw new RangeError(
      `insufficient spendable balance: a ${tier} registration locks ${formatAmount(collateral)} ` +
        `TIME; ${owner} has ${formatAmount(spendable)} spendable ` +
        `(${formatAmount(collateral - spendable)} TIME missing)`,
    );
  }
  let record: BlockRecord;
  let nodeId: string;
  if (cmd.nodeKeyFile !== undefined) {
    const nodeKey = await readNodeKey(cmd.nodeKeyFile);
    nodeId = toHex(nodeKey.publicKey);
    const address = cmd.address ?? await ownListenAddress(rpc, nodeId);
    const n = await rpc.call("getrecordnonce", [nodeId]) as { nonce: number; expiresAt: number };
    record = signCollateralRegistration(nodeKey, wallet.key, {
      genesisHash: fromHex(info.genesisHash),
      nonce: n.nonce,
      expiresAt: n.expiresAt,
      tier,
      rewardAddress: cmd.rewardAddress!,
      address,
      owner,
    });
  } else {
    // The node at --rpc signs its half with its own key; the wallet signs the same bytes.
    const s = await rpc.call("signcollateralregistration", {
      tier,
      rewardAddress: cmd.rewardAddress,
      ownerKey: toHex(wallet.key.publicKey),
      ...(cmd.address !== undefined ? { address: cmd.address } : {}),
    }) as {
      nodeId: string;
      nonce: number;
      expiresAt: number;
      address: string;
      nodeSignature: string;
    };
    nodeId = s.nodeId;
    const p: CollateralRegistrationParams = {
      genesisHash: fromHex(info.genesisHash),
      nonce: s.nonce,
      expiresAt: s.expiresAt,
      tier,
      rewardAddress: cmd.rewardAddress!,
      address: s.address,
      owner,
      ownerKey: wallet.key.publicKey,
      nodeId: fromHex(s.nodeId),
    };
    const ownerSignature = signBytes(wallet.key, collateralRegistrationSignBytes(p));
    record = assembleCollateralRegistration(p, fromHex(s.nodeSignature), ownerSignature);
  }
  const sent = await submit(rpc, record);
  print({
    id: sent.id,
    status: sent.status,
    nodeId,
    tier,
    owner,
    collateral: formatAmount(collateral),
  });
  if (!cmd.wait) return 0;
  return await waitFor(rpc, print, nodeId, (m) => m !== undefined, "listed");
}

async function leaveOrUnjail(cmd: StakeCommand, rpc: WalletRpc, print: (o: unknown) => void) {
  let sent: { id: string; status: string };
  let nodeId: string;
  if (cmd.nodeKeyFile !== undefined) {
    const nodeKey = await readNodeKey(cmd.nodeKeyFile);
    nodeId = toHex(nodeKey.publicKey);
    const info = await rpc.call("getblockchaininfo") as ChainInfo;
    const n = await rpc.call("getrecordnonce", [nodeId]) as { nonce: number; expiresAt: number };
    const sign = cmd.sub === "unjail" ? signUnjail : signDeregistration;
    sent = await submit(
      rpc,
      sign(nodeKey, {
        genesisHash: fromHex(info.genesisHash),
        nonce: n.nonce,
        expiresAt: n.expiresAt,
      }),
    );
  } else {
    nodeId = (await rpc.call("getnetworkinfo") as { nodeId: string }).nodeId;
    sent = await rpc.call(cmd.sub === "unjail" ? "unjailmasternode" : "deregistermasternode") as {
      id: string;
      status: string;
    };
  }
  print({ id: sent.id, status: sent.status, nodeId, record: cmd.sub });
  if (!cmd.wait) return 0;
  return cmd.sub === "unjail"
    ? await waitFor(
      rpc,
      print,
      nodeId,
      (m) => m?.status === "active" || m?.status === "pending",
      "unjailed",
    )
    : await waitFor(
      rpc,
      print,
      nodeId,
      (m) => m === undefined || m.status === "unbonding",
      "leaving",
    );
}

async function waitFor(
  rpc: WalletRpc,
  print: (o: unknown) => void,
  nodeId: string,
  done: (m: MasternodeJson | undefined) => boolean,
  what: string,
): Promise<number> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const list = await rpc.call("masternodelist") as MasternodeJson[];
    const m = list.find((e) => e.nodeId === nodeId);
    if (done(m)) {
      print({ nodeId, [what]: true, status: m?.status ?? null, activeFrom: m?.activeFrom ?? null });
      return 0;
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  console.error(`timenode wallet: ${nodeId} not ${what} after ${WAIT_TIMEOUT_MS / 1000} s`);
  return 1;
}
