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
    return {
      nodeId,
      tier,
      rewardAddress,
      address: str(o.address, `masternodes[${i}].address`, 64),
    };
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
  bronze: 10,
  silver: 100,
  gold: 1000,
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
  return {
    network,
    magic,
    genesisTime: Date.UTC(2026, 10, 1),
    blockIntervalMs,
    tierPower: DEFAULT_TIER_POWER,
    rewards: DEFAULT_REWARDS,
    masternodes: [0, 1, 2].map((i) => ({
      nodeId: toHex(wellKnownKey(network, i).publicKey),
      tier: DEFAULT_GENESIS_TIER,
      rewardAddress: addressOf(network, wellKnownKey(network, i).publicKey),
      address: `127.0.0.1:${basePort + i * 10}`,
    })),
    minFeePerByte: LEDGER_DEFAULTS.minFeePerByte,
    maxBlockBytes: LEDGER_DEFAULTS.maxBlockBytes,
    alloc: {},
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
