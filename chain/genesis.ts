/**
 * Genesis: the JSON file that defines a network, its validation, and its canonical hash.
 *
 * Owns: the genesis format, the built-in genesis of each named network, and `genesisHash`,
 * which every handshake compares (docs/lessons.md#10).
 * Must never: hash the JSON text. The hash covers a canonical binary encoding of the parsed
 * fields, so whitespace or key order in the file cannot change the network's identity.
 */
import { ByteWriter, fromHex, toHex } from "../encoding/binary.ts";
import { sha256 } from "../crypto/hash.ts";
import { keyPairFromSeed } from "../crypto/ed25519.ts";
import { addressOf, checkAddress } from "../state/address.ts";
import { formatAmount, parseAmount } from "../state/amount.ts";

export const TIERS = ["free", "bronze", "silver", "gold"] as const;
export type Tier = typeof TIERS[number];

/**
 * The tier a genesis masternode gets when none is given (`timenode genesis`, `timenode devnet`,
 * the built-in networks). Not "free": until collateral exists, free-tier members carry no
 * voting power (docs/state.md), so a network of free members could never certify a block.
 */
export const DEFAULT_GENESIS_TIER: Tier = "bronze";

export interface GenesisMasternode {
  /** Hex Ed25519 public key. */
  nodeId: string;
  tier: Tier;
  rewardAddress: string;
  /** Announced p2p address, "host:port". */
  address: string;
  /**
   * The address whose collateral this member locks (paid tiers; absent for free). `parseGenesis`
   * requires it for a paid tier and requires `alloc` to cover it (docs/state.md#collateral).
   */
  owner?: string;
}

export interface Genesis {
  network: string;
  /** Frame magic, u32. Distinct per network so frames of one can never parse on another. */
  magic: number;
  /** Milliseconds since the epoch. Block 1 may not be earlier. */
  genesisTime: number;
  blockIntervalMs: number;
  /** Voting power per tier. */
  tierPower: Record<Tier, number>;
  rewards: {
    /** Units credited per block, split as in docs/state.md. */
    blockReward: number;
    /** Percentage of the block reward that goes to the proposer before the tier split. */
    proposerSharePercent: number;
  };
  masternodes: GenesisMasternode[];
  /**
   * Base units per encoded transaction byte a transfer must pay at least. Absent means
   * `LEDGER_DEFAULTS.minFeePerByte` (the ledger fields are optional so a genesis written before
   * them still parses; `parseGenesis` always fills them in).
   */
  minFeePerByte?: number;
  /** Encoded records and transactions per block. Absent: `LEDGER_DEFAULTS.maxBlockBytes`. */
  maxBlockBytes?: number;
  /** Address → amount in TIME (decimal string), credited by block 1. Absent: nothing. */
  alloc?: Record<string, string>;
  // The stake fields (docs/state.md#stake-parameters). Optional like the ledger fields so a
  // genesis object built in code still works; `parseGenesis` always fills them in.
  /** Collateral per tier in TIME (decimal string); free is always "0". */
  tierCollateral?: Record<Tier, string>;
  /** Reward weight per tier (rewards split by weight, not by voting power). */
  tierRewardWeight?: Record<Tier, number>;
  /** Blocks between a deregistration (or a tombstone) and its collateral becoming spendable. */
  unbondingBlocks?: number;
  /** Heights over which downtime is counted. */
  signedBlocksWindow?: number;
  /** Misses within the window a member may have; one more jails it. */
  missedBlocksMax?: number;
  /** Blocks a jailed member waits before its `unjail` record is valid. */
  jailBlocks?: number;
  /** How many heights back double-sign evidence may be included. */
  evidenceMaxAge?: number;
  /** Percent of a double signer's collateral that is burned. */
  slashPercent?: number;
}

/** The stake fields with defaults applied and amounts in base units (docs/state.md). */
export interface StakeParams {
  tierCollateral: Record<Tier, bigint>;
  tierRewardWeight: Record<Tier, number>;
  unbondingBlocks: number;
  signedBlocksWindow: number;
  missedBlocksMax: number;
  jailBlocks: number;
  evidenceMaxAge: number;
  slashPercent: number;
}

/**
 * Stake defaults: TIME Coin's values, used by the built-in networks and by a genesis that
 * omits a field. Heights assume the 10-minute mainnet interval.
 */
export const STAKE_DEFAULTS = {
  /** TIME Coin's collateral tiers: 1,000 / 10,000 / 100,000 TIME. */
  tierCollateral: { free: "0", bronze: "1000", silver: "10000", gold: "100000" },
  /**
   * TIME Coin's weights are 1 / 10 / 100 / 1,000; free is 0 here because a free registration
   * costs nothing, so any weight for it would let key farms dilute everyone's rewards.
   */
  tierRewardWeight: { free: 0, bronze: 10, silver: 100, gold: 1000 },
  /** 2,016 blocks: two weeks at 10 minutes, long enough to include evidence of a leaver. */
  unbondingBlocks: 2016,
  /** 1,008 heights: a week at 10 minutes. */
  signedBlocksWindow: 1008,
  /** Half the window: an operator may be down for three days before being jailed. */
  missedBlocksMax: 504,
  /** 144 blocks: a day at 10 minutes before an unjail is accepted. */
  jailBlocks: 144,
  /** Equal to the unbonding period, so a leaver stays slashable for all its evidence. */
  evidenceMaxAge: 2016,
  /** 5%: the double-sign slash of Cosmos chains. */
  slashPercent: 5,
} as const;

export const STAKE_BOUNDS = {
  /** Heights of the unbonding, jail and evidence periods: about 190 years at 10 minutes. */
  maxPeriodBlocks: 10_000_000,
  /** The missed-blocks bitmap is window / 8 bytes per member: 1,250 bytes at most. */
  maxSignedBlocksWindow: 10_000,
  maxRewardWeight: 1_000_000,
} as const;

/** The stake fields with defaults applied (base units for collateral). */
export function stakeOf(g: Genesis): StakeParams {
  const c = g.tierCollateral ?? STAKE_DEFAULTS.tierCollateral;
  return {
    tierCollateral: {
      free: 0n,
      bronze: parseAmount(c.bronze),
      silver: parseAmount(c.silver),
      gold: parseAmount(c.gold),
    },
    tierRewardWeight: { ...(g.tierRewardWeight ?? STAKE_DEFAULTS.tierRewardWeight) },
    unbondingBlocks: g.unbondingBlocks ?? STAKE_DEFAULTS.unbondingBlocks,
    signedBlocksWindow: g.signedBlocksWindow ?? STAKE_DEFAULTS.signedBlocksWindow,
    missedBlocksMax: g.missedBlocksMax ?? STAKE_DEFAULTS.missedBlocksMax,
    jailBlocks: g.jailBlocks ?? STAKE_DEFAULTS.jailBlocks,
    evidenceMaxAge: g.evidenceMaxAge ?? STAKE_DEFAULTS.evidenceMaxAge,
    slashPercent: g.slashPercent ?? STAKE_DEFAULTS.slashPercent,
  };
}

/** Defaults of the ledger fields, also those of the built-in networks (docs/state.md). */
export const LEDGER_DEFAULTS = {
  /** 10 units/byte: a 165-byte transfer pays 0.0000165 TIME, spam of 1 GiB costs 107 TIME. */
  minFeePerByte: 10,
  /** 2 MiB: ~12,000 transfers, four times the 3,000/s aim at a 1 s interval. */
  maxBlockBytes: 2 * 1024 * 1024,
} as const;

export const LEDGER_BOUNDS = {
  maxMinFeePerByte: 100_000_000,
  minBlockBytes: 64 * 1024,
  /** The block body bound (`CHAIN_LIMITS.maxBodyBytes`). */
  maxBlockBytes: 4 * 1024 * 1024,
  /** Allocations per genesis: block 1 credits them all. */
  maxAlloc: 10_000,
} as const;

/** The ledger fields with defaults applied, amounts in base units, alloc sorted by address. */
export interface LedgerParams {
  minFeePerByte: bigint;
  maxBlockBytes: number;
  alloc: readonly { address: string; units: bigint }[];
}

export function ledgerOf(g: Genesis): LedgerParams {
  return {
    minFeePerByte: BigInt(g.minFeePerByte ?? LEDGER_DEFAULTS.minFeePerByte),
    maxBlockBytes: g.maxBlockBytes ?? LEDGER_DEFAULTS.maxBlockBytes,
    alloc: Object.entries(g.alloc ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([address, amount]) => ({ address, units: parseAmount(amount) })),
  };
}

const U64_MASK = (1n << 64n) - 1n;

const GENESIS_DOMAIN = new TextEncoder().encode("timenode/genesis/v1");

export class GenesisError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GenesisError";
  }
}

/** Validates untrusted JSON (a file from an operator) into a `Genesis`. */
export function parseGenesis(json: unknown): Genesis {
  const fail = (m: string): never => {
    throw new GenesisError(`invalid genesis: ${m}`);
  };
  if (typeof json !== "object" || json === null) fail("not an object");
  const g = json as Record<string, unknown>;
  const int = (v: unknown, name: string, min: number, max: number): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      fail(`${name} must be an integer in [${min}, ${max}]`);
    }
    return v as number;
  };
  const str = (v: unknown, name: string, max: number): string => {
    if (typeof v !== "string" || v.length > max) {
      fail(`${name} must be a string of at most ${max} chars`);
    }
    return v as string;
  };
  const network = str(g.network, "network", 32);
  if (!/^[a-z0-9-]+$/.test(network)) fail("network must match [a-z0-9-]+");
  const tp = (g.tierPower ?? {}) as Record<string, unknown>;
  const rw = (g.rewards ?? {}) as Record<string, unknown>;
  if (!Array.isArray(g.masternodes)) fail("masternodes must be an array");
  const masternodes = (g.masternodes as unknown[]).map((m, i) => {
    const o = (m ?? {}) as Record<string, unknown>;
    const nodeId = str(o.nodeId, `masternodes[${i}].nodeId`, 64);
    if (!/^[0-9a-f]{64}$/.test(nodeId)) {
      fail(`masternodes[${i}].nodeId must be 64 lowercase hex chars`);
    }
    const tier = o.tier as Tier;
    if (!TIERS.includes(tier)) fail(`masternodes[${i}].tier must be one of ${TIERS.join(", ")}`);
    const rewardAddress = str(o.rewardAddress, `masternodes[${i}].rewardAddress`, 128);
    const check = checkAddress(network, rewardAddress);
    if (!check.ok) {
      fail(`masternodes[${i}].rewardAddress ${JSON.stringify(rewardAddress)}: ${check.why}`);
    }
    const member: GenesisMasternode = {
      nodeId,
      tier,
      rewardAddress,
      address: str(o.address, `masternodes[${i}].address`, 64),
    };
    if (tier === "free") {
      if (o.owner !== undefined) fail(`masternodes[${i}].owner: a free member locks nothing`);
    } else {
      const owner = str(o.owner, `masternodes[${i}].owner`, 128);
      const ownerCheck = checkAddress(network, owner);
      if (!ownerCheck.ok) {
        fail(`masternodes[${i}].owner ${JSON.stringify(owner)}: ${ownerCheck.why}`);
      }
      member.owner = owner;
    }
    return member;
  });
  if (new Set(masternodes.map((m) => m.nodeId)).size !== masternodes.length) {
    fail("duplicate masternode nodeId");
  }
  if (
    g.alloc !== undefined &&
    (typeof g.alloc !== "object" || g.alloc === null || Array.isArray(g.alloc))
  ) {
    fail("alloc must be an object of address → amount");
  }
  const allocIn = (g.alloc ?? {}) as Record<string, unknown>;
  if (Object.keys(allocIn).length > LEDGER_BOUNDS.maxAlloc) {
    fail(`alloc has more than ${LEDGER_BOUNDS.maxAlloc} entries`);
  }
  const alloc: Record<string, string> = {};
  for (const [address, amount] of Object.entries(allocIn)) {
    const check = checkAddress(network, address);
    if (!check.ok) fail(`alloc address ${JSON.stringify(address)}: ${check.why}`);
    let units = 0n;
    try {
      units = parseAmount(amount as string);
    } catch (e) {
      fail(`alloc[${address}]: ${(e as Error).message}`);
    }
    if (units === 0n) fail(`alloc[${address}] must be more than 0`);
    alloc[address] = formatAmount(units);
  }
  const stake = parseStakeFields(g, int, fail);
  // Genesis collateral is locked out of the owner's allocation by block 1, so the allocation
  // must cover every member the owner backs (docs/state.md#collateral).
  const backing = new Map<string, bigint>();
  for (const m of masternodes) {
    if (m.owner === undefined) continue;
    const units = parseAmount(stake.tierCollateral[m.tier]);
    backing.set(m.owner, (backing.get(m.owner) ?? 0n) + units);
  }
  for (const [owner, units] of backing) {
    const funded = alloc[owner] === undefined ? 0n : parseAmount(alloc[owner]);
    if (funded < units) {
      fail(
        `alloc[${owner}] is ${formatAmount(funded)} TIME but its genesis masternodes lock ` +
          `${formatAmount(units)} TIME of collateral`,
      );
    }
  }
  if (!masternodes.some((m) => m.tier !== "free")) {
    fail(
      "at least one masternode needs a paid tier (bronze, silver or gold): free-tier " +
        "masternodes carry no voting power, so nobody could certify a block",
    );
  }
  if (tp.free !== 0) {
    fail(
      "tierPower.free must be 0: free-tier masternodes carry no voting power until " +
        "collateral exists (docs/security.md)",
    );
  }
  return {
    network,
    magic: int(g.magic, "magic", 1, 0xffffffff),
    genesisTime: int(g.genesisTime, "genesisTime", 0, Number.MAX_SAFE_INTEGER),
    blockIntervalMs: int(g.blockIntervalMs, "blockIntervalMs", 100, 86_400_000),
    tierPower: {
      free: 0,
      bronze: int(tp.bronze, "tierPower.bronze", 1, 1_000_000),
      silver: int(tp.silver, "tierPower.silver", 1, 1_000_000),
      gold: int(tp.gold, "tierPower.gold", 1, 1_000_000),
    },
    rewards: {
      blockReward: int(rw.blockReward, "rewards.blockReward", 0, 1e15),
      proposerSharePercent: int(rw.proposerSharePercent, "rewards.proposerSharePercent", 0, 100),
    },
    masternodes,
    minFeePerByte: g.minFeePerByte === undefined
      ? LEDGER_DEFAULTS.minFeePerByte
      : int(g.minFeePerByte, "minFeePerByte", 0, LEDGER_BOUNDS.maxMinFeePerByte),
    maxBlockBytes: g.maxBlockBytes === undefined ? LEDGER_DEFAULTS.maxBlockBytes : int(
      g.maxBlockBytes,
      "maxBlockBytes",
      LEDGER_BOUNDS.minBlockBytes,
      LEDGER_BOUNDS.maxBlockBytes,
    ),
    alloc,
    ...stake,
  };
}

type StakeFields = Required<
  Pick<
    Genesis,
    | "tierCollateral"
    | "tierRewardWeight"
    | "unbondingBlocks"
    | "signedBlocksWindow"
    | "missedBlocksMax"
    | "jailBlocks"
    | "evidenceMaxAge"
    | "slashPercent"
  >
>;

function parseStakeFields(
  g: Record<string, unknown>,
  int: (v: unknown, name: string, min: number, max: number) => number,
  fail: (m: string) => never,
): StakeFields {
  const or = <T>(v: unknown, d: T): unknown => (v === undefined ? d : v);
  const tc = or(g.tierCollateral, STAKE_DEFAULTS.tierCollateral) as Record<string, unknown>;
  if (typeof tc !== "object" || tc === null) fail("tierCollateral must be an object");
  if (tc.free !== undefined && tc.free !== "0") fail('tierCollateral.free must be "0"');
  const collateral = (t: Tier): string => {
    let units = 0n;
    try {
      units = parseAmount(tc[t] as string);
    } catch (e) {
      fail(`tierCollateral.${t}: ${(e as Error).message}`);
    }
    if (units === 0n) fail(`tierCollateral.${t} must be more than 0`);
    return formatAmount(units);
  };
  const tw = or(g.tierRewardWeight, STAKE_DEFAULTS.tierRewardWeight) as Record<string, unknown>;
  if (typeof tw !== "object" || tw === null) fail("tierRewardWeight must be an object");
  const weight = (t: Tier) => int(tw[t], `tierRewardWeight.${t}`, 0, STAKE_BOUNDS.maxRewardWeight);
  const period = (name: keyof typeof STAKE_DEFAULTS) =>
    int(or(g[name], STAKE_DEFAULTS[name]), name, 1, STAKE_BOUNDS.maxPeriodBlocks);
  const signedBlocksWindow = int(
    or(g.signedBlocksWindow, STAKE_DEFAULTS.signedBlocksWindow),
    "signedBlocksWindow",
    1,
    STAKE_BOUNDS.maxSignedBlocksWindow,
  );
  const unbondingBlocks = period("unbondingBlocks");
  const evidenceMaxAge = period("evidenceMaxAge");
  if (evidenceMaxAge > unbondingBlocks) {
    fail("evidenceMaxAge must not exceed unbondingBlocks: a leaver must stay slashable");
  }
  return {
    tierCollateral: {
      free: "0",
      bronze: collateral("bronze"),
      silver: collateral("silver"),
      gold: collateral("gold"),
    },
    tierRewardWeight: {
      free: weight("free"),
      bronze: weight("bronze"),
      silver: weight("silver"),
      gold: weight("gold"),
    },
    unbondingBlocks,
    signedBlocksWindow,
    missedBlocksMax: int(
      or(g.missedBlocksMax, STAKE_DEFAULTS.missedBlocksMax),
      "missedBlocksMax",
      0,
      signedBlocksWindow - 1,
    ),
    jailBlocks: period("jailBlocks"),
    evidenceMaxAge,
    slashPercent: int(or(g.slashPercent, STAKE_DEFAULTS.slashPercent), "slashPercent", 0, 100),
  };
}

export function encodeGenesis(g: Genesis): Uint8Array {
  const w = new ByteWriter(512).raw(GENESIS_DOMAIN).string(g.network).u32(g.magic).u64(
    g.genesisTime,
  )
    .u32(g.blockIntervalMs);
  for (const t of TIERS) w.u64(g.tierPower[t]);
  w.u64(g.rewards.blockReward).u8(g.rewards.proposerSharePercent);
  w.u32(g.masternodes.length);
  for (const m of g.masternodes) {
    w.fixed(fromHex(m.nodeId), 32).u8(TIERS.indexOf(m.tier)).string(m.rewardAddress).string(
      m.address,
    );
  }
  const ledger = ledgerOf(g);
  w.u64(Number(ledger.minFeePerByte)).u32(ledger.maxBlockBytes).u32(ledger.alloc.length);
  for (const a of ledger.alloc) {
    w.string(a.address).u64big(a.units & U64_MASK).u64big(a.units >> 64n);
  }
  // The stake fields, defaults applied, so the hash covers what the state machine uses.
  const stake = stakeOf(g);
  for (const m of g.masternodes) w.string(m.owner ?? "");
  for (const t of TIERS) {
    const units = stake.tierCollateral[t];
    w.u64big(units & U64_MASK).u64big(units >> 64n).u64(stake.tierRewardWeight[t]);
  }
  w.u64(stake.unbondingBlocks).u32(stake.signedBlocksWindow).u32(stake.missedBlocksMax)
    .u64(stake.jailBlocks).u64(stake.evidenceMaxAge).u8(stake.slashPercent);
  return w.finish();
}

export function genesisHash(g: Genesis): Uint8Array {
  return sha256(encodeGenesis(g));
}

/**
 * Voting power per tier. Free is 0 and `parseGenesis` refuses anything else: a free
 * registration needs only a fresh key, so power for it would let an outsider halt the network
 * with a few never-voting registrations, or outvote it with enough of them (docs/security.md).
 */
export const DEFAULT_TIER_POWER: Record<Tier, number> = {
  free: 0,
  bronze: 1,
  silver: 10,
  gold: 100,
};
export const DEFAULT_REWARDS = { blockReward: 100_000_000, proposerSharePercent: 10 };

/**
 * Deterministic, publicly known keys for the built-in devnet and testnet genesis. Anyone can
 * sign with them: they exist so those networks run on embedded defaults, never for value.
 */
export function wellKnownKey(network: string, index: number) {
  return keyPairFromSeed(
    sha256(new TextEncoder().encode(`timenode/well-known-key/${network}/${index}`)),
  );
}

function builtin(
  network: string,
  magic: number,
  blockIntervalMs: number,
  basePort: number,
): Genesis {
  // Each well-known member owns its own collateral: owner = the address of its node key.
  const members = [0, 1, 2].map((i) => {
    const own = addressOf(network, wellKnownKey(network, i).publicKey);
    return {
      nodeId: toHex(wellKnownKey(network, i).publicKey),
      tier: DEFAULT_GENESIS_TIER,
      rewardAddress: own,
      address: `127.0.0.1:${basePort + i * 10}`,
      owner: own,
    };
  });
  return {
    network,
    magic,
    genesisTime: Date.UTC(2026, 10, 1),
    blockIntervalMs,
    tierPower: DEFAULT_TIER_POWER,
    rewards: DEFAULT_REWARDS,
    masternodes: members,
    minFeePerByte: LEDGER_DEFAULTS.minFeePerByte,
    maxBlockBytes: LEDGER_DEFAULTS.maxBlockBytes,
    // Exactly the members' collateral: locked by block 1, nothing spendable.
    alloc: Object.fromEntries(
      members.map((m) => [m.owner!, STAKE_DEFAULTS.tierCollateral[DEFAULT_GENESIS_TIER]]),
    ),
    ...stakeFieldsOf(STAKE_DEFAULTS),
  };
}

/** Genesis JSON fields (mutable copies) of a set of stake values. */
export function stakeFieldsOf(v: {
  tierCollateral: Readonly<Record<Tier, string>>;
  tierRewardWeight: Readonly<Record<Tier, number>>;
  unbondingBlocks: number;
  signedBlocksWindow: number;
  missedBlocksMax: number;
  jailBlocks: number;
  evidenceMaxAge: number;
  slashPercent: number;
}): StakeFields {
  return {
    tierCollateral: { ...v.tierCollateral },
    tierRewardWeight: { ...v.tierRewardWeight },
    unbondingBlocks: v.unbondingBlocks,
    signedBlocksWindow: v.signedBlocksWindow,
    missedBlocksMax: v.missedBlocksMax,
    jailBlocks: v.jailBlocks,
    evidenceMaxAge: v.evidenceMaxAge,
    slashPercent: v.slashPercent,
  };
}

export const NETWORKS = ["mainnet", "testnet", "devnet"] as const;
export type NetworkName = typeof NETWORKS[number];

/** Default p2p port per network; RPC is the p2p port + 1. */
export const DEFAULT_P2P_PORT: Record<NetworkName, number> = {
  mainnet: 24100,
  testnet: 24200,
  devnet: 24300,
};

export function builtinGenesis(network: NetworkName): Genesis {
  switch (network) {
    case "mainnet":
      return builtin("mainnet", 0x54494d45, 600_000, DEFAULT_P2P_PORT.mainnet);
    case "testnet":
      return builtin("testnet", 0x54494d54, 60_000, DEFAULT_P2P_PORT.testnet);
    case "devnet":
      return builtin("devnet", 0x54494d44, 1_000, DEFAULT_P2P_PORT.devnet);
  }
}

export async function loadGenesisFile(path: string): Promise<Genesis> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new GenesisError(`cannot read genesis file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GenesisError(`genesis file ${path} is not valid JSON`);
  }
  return parseGenesis(json);
}
