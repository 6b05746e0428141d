/**
 * `timenode wallet …`: create a wallet, show its address and balance, send TIME, list history,
 * and bond a masternode (register, deregister, unjail: wallet/stake.ts).
 *
 * Owns: the wallet subcommands and their flags, signing transfers locally, and talking to the
 * node through `WalletRpc` (wallet/rpc.ts). Output is one JSON object per line on stdout.
 * Must never: send or print the private key, or sign a transfer the node would refuse for
 * a reason the wallet can check first (address, amount, memo).
 */
import { parseArgs } from "node:util";
import { fromHex, toHex } from "../encoding/binary.ts";
import { DEFAULT_P2P_PORT, type NetworkName, NETWORKS } from "../chain/genesis.ts";
import { addressOf, checkAddress } from "../state/address.ts";
import { formatAmount, parseAmount, parseUnits } from "../state/amount.ts";
import { signTransfer, TX_LIMITS } from "../state/transaction.ts";
import { UsageError } from "../node/cli.ts";
import { cookiePath } from "../rpc/auth.ts";
import { formatHostPort, parseHostPortExplained } from "../network/peer_key.ts";
import { createWallet, loadWallet, WALLET_FILE, WalletError } from "./file.ts";
import { httpWalletRpc, type WalletRpc, WalletRpcError } from "./rpc.ts";
import { PAID_TIERS, type PaidTier, runStakeCommand } from "./stake.ts";
import { NodeKeyError } from "../crypto/node_key.ts";

/**
 * Blocks a signed transfer stays valid for. Long enough to ride out a congested mempool or a
 * node restart, short enough that a transfer that never made it does not linger for days
 * (1,000 blocks: 17 minutes on devnet, a week at mainnet's 10 minute interval).
 */
export const WALLET_TX_TTL_BLOCKS = 1_000;
/** `--wait`: how long to wait for inclusion before giving up (the transfer may still land). */
const WAIT_TIMEOUT_MS = 120_000;
const WAIT_POLL_MS = 250;

export const WALLET_HELP = `timenode wallet COMMAND [flags]

Commands:
  new                     create a wallet (never overwrites one) and print its address
  address                 print the wallet's address
  balance [ADDRESS]       balance and nonce of the wallet (or of ADDRESS)
  send --to ADDRESS --amount 12.5 [--fee AMOUNT|auto] [--memo TEXT] [--wait]
                          sign a transfer locally and submit it through the node's RPC;
                          prints the transaction id, and with --wait the block height
  history [ADDRESS]       transfers from and to the wallet (or ADDRESS), newest first
  register --tier bronze --reward-address ADDRESS [--node-key FILE] [--address HOST:PORT] [--wait]
                          bond a masternode: lock the tier's collateral from this wallet
                          (the owner); the node key co-signs, from FILE or, without
                          --node-key, through the node at --rpc (signcollateralregistration)
  deregister [--node-key FILE] [--wait]
                          the node leaves from h + 2; its collateral unbonds
  unjail [--node-key FILE] [--wait]
                          bring a jailed node back (valid once jailBlocks have passed)

Flags:
  --wallet FILE           the wallet file (default DATA_DIR/wallet.json, mode 0600)
  --network NAME          mainnet, testnet or devnet: default data dir and RPC port
  --data-dir DIR          the node's data dir (its RPC cookie); default ~/.timenode/<network>
  --rpc HOST:PORT         the node's RPC (default 127.0.0.1:24101, testnet 24201, devnet 24301)
  --node-key FILE         the masternode's node_key.json (register, deregister, unjail);
                          without it the node at --rpc signs for itself
`;

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  wallet: { type: "string" },
  network: { type: "string" },
  "data-dir": { type: "string" },
  rpc: { type: "string" },
  to: { type: "string" },
  amount: { type: "string" },
  fee: { type: "string" },
  memo: { type: "string" },
  wait: { type: "boolean" },
  "node-key": { type: "string" },
  tier: { type: "string" },
  "reward-address": { type: "string" },
  address: { type: "string" },
} as const;

const STAKE_SUBS = ["register", "deregister", "unjail"];

export interface WalletCommand {
  sub:
    | "new"
    | "address"
    | "balance"
    | "send"
    | "history"
    | "register"
    | "deregister"
    | "unjail"
    | "help";
  walletFile: string;
  network: NetworkName;
  rpcUrl: string;
  /** The node's cookie (its data dir's `.cookie`), for logging in to its RPC. */
  cookieFile: string;
  address?: string;
  to?: string;
  amount?: string;
  fee?: string;
  memo?: string;
  wait: boolean;
  nodeKeyFile?: string;
  tier?: PaidTier;
  rewardAddress?: string;
  /** `--address`: the host:port the registered node is dialed at. */
  p2pAddress?: string;
}

export function parseWalletArgs(args: string[], home: string | undefined): WalletCommand {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(`wallet: ${(e as Error).message.split("\n")[0]}`);
  }
  const v = parsed.values;
  const [sub, ...rest] = parsed.positionals;
  if (v.help || sub === undefined || sub === "help") {
    return {
      sub: "help",
      walletFile: "",
      network: "mainnet",
      rpcUrl: "",
      cookieFile: "",
      wait: false,
    };
  }
  if (!["new", "address", "balance", "send", "history", ...STAKE_SUBS].includes(sub)) {
    throw new UsageError(`wallet: unknown command "${sub}" (see timenode wallet --help)`);
  }
  const network = (v.network ?? "mainnet") as NetworkName;
  if (!NETWORKS.includes(network)) {
    throw new UsageError(`--network: expected one of ${NETWORKS.join(", ")}`);
  }
  const maxPositionals = sub === "balance" || sub === "history" ? 1 : 0;
  if (rest.length > maxPositionals) {
    throw new UsageError(`wallet ${sub}: unexpected argument "${rest[maxPositionals]}"`);
  }
  let dataDir = v["data-dir"];
  if (dataDir === undefined) {
    if (!home) throw new UsageError("--data-dir: HOME is not set, so give the data dir");
    dataDir = `${home}/.timenode/${network}`;
  }
  let rpcUrl = `http://127.0.0.1:${DEFAULT_P2P_PORT[network] + 1}`;
  if (v.rpc !== undefined) {
    const hp = parseHostPortExplained(v.rpc);
    if (!hp.ok) throw new UsageError(`--rpc: ${hp.reason}`);
    rpcUrl = `http://${formatHostPort(hp.value.host, hp.value.port)}`;
  }
  if (sub === "send") {
    if (v.to === undefined) throw new UsageError("--to: required (the recipient's address)");
    if (v.amount === undefined) throw new UsageError("--amount: required (in TIME, e.g. 12.5)");
  } else {
    for (const f of ["to", "amount", "fee", "memo"] as const) {
      if (v[f] !== undefined) throw new UsageError(`--${f}: only for wallet send`);
    }
    if (v.wait !== undefined && !STAKE_SUBS.includes(sub)) {
      throw new UsageError("--wait: only for wallet send, register, deregister and unjail");
    }
  }
  if (!STAKE_SUBS.includes(sub) && v["node-key"] !== undefined) {
    throw new UsageError("--node-key: only for wallet register, deregister and unjail");
  }
  if (sub === "register") {
    if (v.tier === undefined || !PAID_TIERS.includes(v.tier as PaidTier)) {
      throw new UsageError(
        "--tier: required, one of bronze, silver, gold (a free node registers with " +
          "timenode rpc registermasternode)",
      );
    }
    if (v["reward-address"] === undefined) {
      throw new UsageError("--reward-address: required (where the node's rewards go)");
    }
  } else {
    for (const f of ["tier", "reward-address", "address"] as const) {
      if (v[f] !== undefined) throw new UsageError(`--${f}: only for wallet register`);
    }
  }
  return {
    sub: sub as WalletCommand["sub"],
    walletFile: v.wallet ?? `${dataDir}/${WALLET_FILE}`,
    cookieFile: cookiePath(dataDir),
    network,
    rpcUrl,
    address: rest[0],
    to: v.to,
    amount: v.amount,
    fee: v.fee,
    memo: v.memo,
    wait: v.wait ?? false,
    nodeKeyFile: v["node-key"],
    tier: v.tier as PaidTier | undefined,
    rewardAddress: v["reward-address"],
    p2pAddress: v.address,
  };
}

interface ChainInfo {
  network: string;
  genesisHash: string;
  height: number;
}

/** Runs a wallet command; returns the exit code. `rpc` is injectable for tests. */
export async function runWalletCommand(
  cmd: WalletCommand,
  rpc: WalletRpc = httpWalletRpc(cmd.rpcUrl, cmd.cookieFile),
  print: (o: unknown) => void = (o) => console.log(JSON.stringify(o)),
): Promise<number> {
  try {
    switch (cmd.sub) {
      case "help":
        console.log(WALLET_HELP);
        return 0;
      case "new": {
        const w = await createWallet(cmd.walletFile, cmd.network);
        print({ wallet: cmd.walletFile, address: w.address });
        return 0;
      }
      case "address": {
        const w = await loadWallet(cmd.walletFile);
        print({ address: w.address });
        return 0;
      }
      case "balance": {
        const address = cmd.address ?? (await loadWallet(cmd.walletFile)).address;
        print(await rpc.call("getaccount", [address]));
        return 0;
      }
      case "history": {
        const address = cmd.address ?? (await loadWallet(cmd.walletFile)).address;
        const list = await rpc.call("listtransactions", [address, 100]) as unknown[];
        for (const t of list) print(t);
        return 0;
      }
      case "send":
        return await send(cmd, rpc, print);
      case "register":
      case "deregister":
      case "unjail":
        return await runStakeCommand(
          {
            sub: cmd.sub,
            walletFile: cmd.walletFile,
            nodeKeyFile: cmd.nodeKeyFile,
            tier: cmd.tier,
            rewardAddress: cmd.rewardAddress,
            address: cmd.p2pAddress,
            wait: cmd.wait,
          },
          rpc,
          print,
        );
    }
  } catch (e) {
    if (
      e instanceof WalletError || e instanceof WalletRpcError || e instanceof RangeError ||
      e instanceof NodeKeyError
    ) {
      console.error(`timenode wallet: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

async function send(cmd: WalletCommand, rpc: WalletRpc, print: (o: unknown) => void) {
  const wallet = await loadWallet(cmd.walletFile);
  const info = await rpc.call("getblockchaininfo") as ChainInfo;
  const to = checkAddress(info.network, cmd.to!);
  if (!to.ok) throw new RangeError(`--to ${cmd.to}: ${to.why}`);
  const amount = parseAmount(cmd.amount!);
  if (amount === 0n) throw new RangeError("--amount must be more than 0");
  const memo = new TextEncoder().encode(cmd.memo ?? "");
  if (memo.length > TX_LIMITS.maxMemoBytes) {
    throw new RangeError(`--memo: at most ${TX_LIMITS.maxMemoBytes} bytes`);
  }
  let fee: bigint;
  if (cmd.fee === undefined || cmd.fee === "auto") {
    const est = await rpc.call("estimatefee", [memo.length]) as { feeUnits: string };
    fee = parseUnits(est.feeUnits);
  } else {
    fee = parseAmount(cmd.fee);
  }
  // The sender's address on the node's network (a devnet wallet also works on testnet).
  const from = addressOf(info.network, wallet.key.publicKey);
  const account = await rpc.call("getaccount", [from]) as { nextNonce: number };
  const bytes = signTransfer(wallet.key, {
    genesisHash: fromHex(info.genesisHash),
    nonce: account.nextNonce,
    recipient: to.hash,
    amount,
    fee,
    expiresAt: info.height + WALLET_TX_TTL_BLOCKS,
    memo,
  });
  const sent = await rpc.call("sendrawtransaction", [toHex(bytes)]) as { id: string };
  print({ id: sent.id, from, to: cmd.to, amount: formatAmount(amount), fee: formatAmount(fee) });
  if (!cmd.wait) return 0;
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const t = await rpc.call("gettransaction", [sent.id]) as { status: string; height?: number };
    if (t.status === "confirmed") {
      print({ id: sent.id, height: t.height });
      return 0;
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  console.error(`timenode wallet: ${sent.id} not included after ${WAIT_TIMEOUT_MS / 1000} s`);
  return 1;
}
