/**
 * Makes the genesis of a private network (devnet, test chain) from a list of masternode keys.
 * Used by `timenode genesis`, `timenode devnet` and the test chain builder.
 *
 * Owns: the derivation of a fresh network's frame magic and default masternode fields.
 * Must never: produce a genesis that `parseGenesis` would refuse (the result is round-tripped
 * through it), or reuse a built-in network's magic.
 */
import { ByteReader, toHex } from "../encoding/binary.ts";
import { sha256 } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH } from "../crypto/ed25519.ts";
import {
  builtinGenesis,
  DEFAULT_GENESIS_TIER,
  DEFAULT_REWARDS,
  DEFAULT_TIER_POWER,
  type Genesis,
  NETWORKS,
  parseGenesis,
  STAKE_DEFAULTS,
  stakeFieldsOf,
  type Tier,
} from "./genesis.ts";
import { addressOf } from "../state/address.ts";
import { formatAmount, parseAmount } from "../state/amount.ts";

/**
 * Genesis times are whole seconds: a time typed on a command line (or shown in a log) then
 * reproduces the same genesis hash exactly.
 */
const GENESIS_TIME_GRANULARITY_MS = 1_000;

const MAGIC_DOMAIN = "timenode/devnet-magic/v1";

/**
 * Stake values of a private network made here (devnets, test chains): small, so a test sees a
 * jail, an unjail or a release within seconds of 1 s blocks. Collateral is a hundredth of
 * TIME Coin's so funded test wallets can bond many nodes.
 */
export const DEVNET_STAKE = {
  ...STAKE_DEFAULTS,
  tierCollateral: { free: "0", bronze: "10", silver: "100", gold: "1000" },
  unbondingBlocks: 20,
  signedBlocksWindow: 20,
  missedBlocksMax: 10,
  jailBlocks: 10,
  evidenceMaxAge: 20,
} as const;

export interface DevnetNode {
  publicKey: Uint8Array;
  /** Announced p2p address, "host:port". */
  address: string;
  tier?: Tier;
  /** Defaults to a name derived from the node id. */
  rewardAddress?: string;
  /**
   * Whose collateral a paid member locks; defaults to the reward address. Its collateral is
   * added to its `alloc` entry, so the allocation given stays spendable.
   */
  owner?: string;
}

export interface DevnetGenesisOptions {
  network: string;
  nodes: readonly DevnetNode[];
  blockIntervalMs: number;
  /** Milliseconds since the epoch; defaults to now, rounded down to the second. */
  genesisTime?: number;
  /** Address → amount in TIME ("12.5"): funded by block 1. */
  alloc?: Record<string, string>;
  /** Stake values to use instead of `stakeDefaultsFor(network)` (collateral in TIME strings). */
  stake?: Partial<ReturnType<typeof stakeFieldsOf>>;
}

/**
 * The stake values a new genesis of `network` gets: TIME Coin's for a network named mainnet or
 * testnet (an operator writing one means the real thing), the small devnet values otherwise.
 */
export function stakeDefaultsFor(network: string): typeof STAKE_DEFAULTS | typeof DEVNET_STAKE {
  return network === "mainnet" || network === "testnet" ? STAKE_DEFAULTS : DEVNET_STAKE;
}

/**
 * Frame magic of a private network: a hash of its name and genesis time, so two devnets started
 * at different times (or with different names) never parse each other's frames.
 */
export function devnetMagic(network: string, genesisTime: number): number {
  const reserved = new Set(NETWORKS.map((n) => builtinGenesis(n).magic));
  for (let attempt = 0;; attempt++) {
    const digest = sha256(
      new TextEncoder().encode(`${MAGIC_DOMAIN}/${network}/${genesisTime}/${attempt}`),
    );
    const magic = new ByteReader(digest).u32();
    if (magic !== 0 && !reserved.has(magic)) return magic;
  }
}

export function makeDevnetGenesis(opts: DevnetGenesisOptions): Genesis {
  if (opts.nodes.length === 0) throw new Error("a genesis needs at least one masternode");
  const genesisTime = opts.genesisTime ??
    Math.floor(Date.now() / GENESIS_TIME_GRANULARITY_MS) * GENESIS_TIME_GRANULARITY_MS;
  const masternodes = opts.nodes.map((n) => {
    if (n.publicKey.length !== PUBLIC_KEY_LENGTH) {
      throw new Error(`node public key must be ${PUBLIC_KEY_LENGTH} bytes`);
    }
    const nodeId = toHex(n.publicKey);
    const tier = n.tier ?? DEFAULT_GENESIS_TIER;
    // The node key is an Ed25519 key like a wallet's, so its address is a valid default.
    const rewardAddress = n.rewardAddress ?? addressOf(opts.network, n.publicKey);
    return {
      nodeId,
      tier,
      rewardAddress,
      address: n.address,
      ...(tier === "free" ? {} : { owner: n.owner ?? rewardAddress }),
    };
  });
  const stake = { ...stakeFieldsOf(stakeDefaultsFor(opts.network)), ...opts.stake };
  // Fund each owner with its members' collateral on top of what it was given.
  const units = new Map(
    Object.entries(opts.alloc ?? {}).map(([a, amount]) => [a, parseAmount(amount)]),
  );
  for (const m of masternodes) {
    if (!m.owner) continue;
    const collateral = parseAmount(stake.tierCollateral[m.tier]);
    units.set(m.owner, (units.get(m.owner) ?? 0n) + collateral);
  }
  const alloc = Object.fromEntries([...units].map(([a, u]) => [a, formatAmount(u)]));
  // parseGenesis is the gate every genesis file passes; going through it here means a bad name,
  // interval or duplicate key fails now with its message instead of at the nodes' startup.
  return parseGenesis({
    network: opts.network,
    magic: devnetMagic(opts.network, genesisTime),
    genesisTime,
    blockIntervalMs: opts.blockIntervalMs,
    tierPower: { ...DEFAULT_TIER_POWER },
    rewards: { ...DEFAULT_REWARDS },
    masternodes,
    alloc,
    ...stake,
  });
}

/** The genesis as the JSON file operators share (`parseGenesis`/`loadGenesisFile` read it). */
export function genesisToJson(g: Genesis): string {
  return JSON.stringify(g, null, 2) + "\n";
}
