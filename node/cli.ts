/**
 * The command line: turns argv into one validated `CliCommand` (a run `NodeConfig`, config,
 * keygen, genesis, devnet, help or version), and holds the help texts an operator reads.
 *
 * Owns: flag names, their defaults as shown to operators, value validation (HOST:PORT, numbers,
 * enums), the one-line `UsageError` messages, and how the config file's keys (node/
 * config_file.ts) follow from the run flags and give way to them. Parsing is `parseArgs` from
 * `node:util` in strict mode: an unknown or misspelt flag is an error, never silently ignored.
 * Must never: touch files, the network or the process (no exit, no printing); main.ts prints
 * a `UsageError` message and exits 2, and passes the config file reader in `env`. It reads the
 * environment only for HOME, and only when the caller does not pass `env`.
 */
import {
  formatHostPort,
  type HostPort,
  type HostPortOptions,
  parseHostPortExplained,
} from "../network/peer_key.ts";
import { TIMENODE_VERSION } from "../version.ts";
import { toHex } from "../encoding/binary.ts";
import { parseArgs } from "node:util";
import { builtinGenesis, DEFAULT_P2P_PORT, type NetworkName, NETWORKS } from "../chain/genesis.ts";
import { CHAIN_LIMITS } from "../chain/block.ts";
import { NODE_KEY_FILE } from "../crypto/node_key.ts";
import { MESSAGE_LIMITS } from "../network/messages.ts";
import { checkAddress } from "../state/address.ts";
import { formatAmount, parseAmount } from "../state/amount.ts";
import { cookiePath, parseRpcAuth } from "../rpc/auth.ts";
import { argsToParams, DEFAULT_RPC_TIMEOUT_MS, type RpcTarget } from "./rpc_client.ts";
import { isLoopbackBind, parseCidr, parseHostHeader } from "../rpc/http_guard.ts";
import {
  CONFIG_FILE_NAME,
  type ConfigFile,
  ConfigFileError,
  type ConfigSpec,
  parseConfigText,
} from "./config_file.ts";
import { DEFAULTS, type LogFormat, type LogLevel, type NodeConfig } from "./config.ts";

/** Past 10,000 block intervals (69 days at mainnet's 10 minutes) a stall alarm is a typo. */
const MAX_STALL_BLOCKS = 10_000;
/** More `--peer` flags than this is a typo or a script gone wrong, not a configuration. */
const MAX_PEER_FLAGS = 64;
/** Bounds on connection slots: above these a single process runs out of file descriptors. */
const MAX_INBOUND_LIMIT = 4_096;
const MAX_OUTBOUND_LIMIT = 256;
/** Ping/pong bounds: under 10 ms is a busy loop, over an hour never notices a dead peer. */
const MIN_PING_SECONDS = 0.01;
const MAX_PING_SECONDS = 3_600;
/** Devnet size: every node is a process on this machine; past 16 the CPU, not the protocol, is tested. */
const DEVNET_MAX_NODES = 16;
const DEVNET_DEFAULT_NODES = 3;
/** Devnet node i listens on base + 2·i and serves RPC on the next port (node/devnet.ts). */
const DEVNET_PORT_STEP = 2;
/** Same range as `blockIntervalMs` in chain/genesis.ts parseGenesis: 100 ms to a day. */
const MIN_BLOCK_INTERVAL_SECONDS = 0.1;
const MAX_BLOCK_INTERVAL_SECONDS = 86_400;
/** Interval for a custom network name that has no built-in genesis to copy from. */
const CUSTOM_NETWORK_BLOCK_INTERVAL_MS = 60_000;
/** Genesis and hello carry announced addresses of at most 64 bytes (MESSAGE_LIMITS). */
const MAX_ANNOUNCED_ADDRESS_CHARS = MESSAGE_LIMITS.maxAddressBytes;
/** Longest echo of a bad value inside an error message: keeps the message one short line. */
const MAX_ECHOED_VALUE_CHARS = 80;

/** The network of run, keygen and genesis when no --network is given. */
const DEFAULT_NETWORK: NetworkName = "mainnet";
const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];
const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];
const COMMANDS = [
  "run",
  "config",
  "keygen",
  "genesis",
  "devnet",
  "rpc",
  "status",
  "rpcauth",
  "help",
] as const;
export type CommandName = typeof COMMANDS[number];

/** A wrong or missing command-line value. The message is one line and names the flag. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A `--key` of the genesis command: a hex node id, or a node key file to read it from. */
export type GenesisKeyArg = { kind: "hex"; nodeId: string } | { kind: "file"; path: string };

export type CliCommand =
  | { kind: "run"; config: NodeConfig }
  /** `show`: print the node id of the existing key instead of creating one. */
  | { kind: "keygen"; keyFile: string; show: boolean }
  | {
    kind: "genesis";
    keys: GenesisKeyArg[];
    out: string;
    /** Replace an existing `out` file; without it an existing file is an error. */
    force: boolean;
    network: string;
    blockIntervalMs: number;
    /** One announced "host:port" per key, in order; empty when none were given. */
    addresses: string[];
    /** `--alloc ADDRESS=AMOUNT`: address → TIME amount funded by block 1. */
    alloc: Record<string, string>;
  }
  | {
    kind: "devnet";
    nodes: number;
    /** null: a new temporary directory. */
    dir: string | null;
    basePort: number;
    blockIntervalMs: number;
    logLevel: LogLevel;
    logFormat: LogFormat;
  }
  | { kind: "help"; topic: CommandName | null; text: string }
  /** main.ts prints the version: the commit is read at run time (node/build_info.ts). */
  | { kind: "version" }
  /** `timenode config`: the run configuration these flags and the config file give. */
  | { kind: "config"; config: NodeConfig; text: string }
  | RpcClientCommand;

export interface CliEnv {
  HOME?: string;
  /**
   * Reads the config file (node/config_file.ts `readConfigFile`): its text, or null when it does
   * not exist. Without it no config file is read, which keeps unit tests off the disk.
   */
  readConfigFile?: (path: string) => string | null;
}

export function parseCli(argv: string[], env: CliEnv = { HOME: homeDir() }): CliCommand {
  const first = argv[0];
  if (first !== undefined && !first.startsWith("-")) {
    if (!(COMMANDS as readonly string[]).includes(first)) {
      throw new UsageError(`unknown command ${quote(first)} (see timenode --help)`);
    }
    return parseCommand(first as CommandName, argv.slice(1), env);
  }
  // Without a command word, `--help` shows the overview (which includes the run flags).
  return parseRun(argv, env, null);
}

function parseCommand(command: CommandName, args: string[], env: CliEnv): CliCommand {
  switch (command) {
    case "run":
    case "config":
      return parseRun(args, env, command);
    case "keygen":
      return parseKeygen(args, env);
    case "genesis":
      return parseGenesisCommand(args);
    case "devnet":
      return parseDevnet(args);
    case "rpc":
    case "status":
    case "rpcauth":
      return parseRpcClientCommand(command, args, env);
    case "help":
      return parseHelp(args);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

// ---- RPC security flags of run (issue 9): authentication, client IPs, Host names -----------

const RPC_SECURITY_OPTIONS = {
  "rpc-auth": { type: "string", multiple: true },
  "rpc-allow-ip": { type: "string", multiple: true },
  "rpc-allow-host": { type: "string", multiple: true },
  "rpc-auth-metrics": { type: "boolean" },
} as const;
/** Each of these is a short list an operator writes by hand; more is a script gone wrong. */
const MAX_RPC_SECURITY_FLAGS = 64;

function parseRpcSecurityFlags(
  v: {
    "rpc-auth"?: string[];
    "rpc-allow-ip"?: string[];
    "rpc-allow-host"?: string[];
    "rpc-auth-metrics"?: boolean;
  },
  rpc: HostPort | null,
  flag: (name: string) => string,
): Pick<NodeConfig, "rpcAuth" | "rpcAllowIps" | "rpcAllowHosts" | "rpcAuthMetrics"> {
  for (const name of ["rpc-auth", "rpc-allow-ip", "rpc-allow-host"] as const) {
    if ((v[name]?.length ?? 0) > MAX_RPC_SECURITY_FLAGS) {
      throw new UsageError(`${flag(name)}: at most ${MAX_RPC_SECURITY_FLAGS} values`);
    }
  }
  const rpcAuth = (v["rpc-auth"] ?? []).map((raw) => {
    const entry = parseRpcAuth(raw);
    if (typeof entry === "string") {
      throw new UsageError(`${flag("rpc-auth")}: ${entry}, got ${quote(raw)}`);
    }
    return entry;
  });
  const rpcAllowIps = (v["rpc-allow-ip"] ?? []).map((raw) => {
    const cidr = parseCidr(raw);
    if (typeof cidr === "string") {
      throw new UsageError(`${flag("rpc-allow-ip")}: ${cidr}, got ${quote(raw)}`);
    }
    return cidr;
  });
  const rpcAllowHosts = (v["rpc-allow-host"] ?? []).map((raw) => {
    if (parseHostHeader(raw) === null) {
      throw new UsageError(
        `${flag("rpc-allow-host")}: expected HOST or HOST:PORT, got ${quote(raw)}`,
      );
    }
    return raw;
  });
  if (rpc !== null && !isLoopbackBind(rpc.host) && rpcAllowIps.length === 0) {
    throw new UsageError(
      `${flag("rpc")}: ${listenText(rpc)} is reachable from other machines; ` +
        "say who may connect with --rpc-allow-ip CIDR (e.g. 10.0.0.0/8), or bind 127.0.0.1",
    );
  }
  return { rpcAuth, rpcAllowIps, rpcAllowHosts, rpcAuthMetrics: v["rpc-auth-metrics"] === true };
}

const RUN_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  config: { type: "string" },
  network: { type: "string" },
  genesis: { type: "string" },
  "data-dir": { type: "string" },
  listen: { type: "string" },
  peer: { type: "string", multiple: true },
  rpc: { type: "string" },
  "max-inbound": { type: "string" },
  "max-outbound": { type: "string" },
  "ping-interval": { type: "string" },
  "pong-timeout": { type: "string" },
  "stall-blocks": { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "exit-on-stdin-close": { type: "boolean" },
  ...RPC_SECURITY_OPTIONS,
} as const;

/**
 * `run` and `config` take the same flags: `config` prints what `run` would use.
 * `helpTopic` is null for a bare `timenode [flags]`, whose --help shows the overview.
 */
function parseRun(
  args: string[],
  env: CliEnv,
  helpTopic: "run" | "config" | null,
): CliCommand {
  const given = strictParse(helpTopic ?? "run", args, RUN_OPTIONS).values;
  if (given.help) return help(helpTopic);
  if (given.version) return { kind: "version" };
  const sources = resolveRunSources(given, env);
  const v = sources.values;
  const flag = sources.label;

  const network = oneOf(flag("network"), v.network, NETWORKS, DEFAULT_NETWORK);
  const p2pPort = DEFAULT_P2P_PORT[network];
  const peers = v.peer ?? [];
  if (peers.length > MAX_PEER_FLAGS) {
    throw new UsageError(`${flag("peer")}: at most ${MAX_PEER_FLAGS} peers, got ${peers.length}`);
  }

  const pingIntervalMs = v["ping-interval"] === undefined
    ? DEFAULTS.pingIntervalMs
    : secondsToMs(flag("ping-interval"), v["ping-interval"], MIN_PING_SECONDS, MAX_PING_SECONDS);
  const pongTimeoutMs = v["pong-timeout"] === undefined
    ? defaultPongTimeoutMs(pingIntervalMs, v["ping-interval"] !== undefined)
    : secondsToMs(flag("pong-timeout"), v["pong-timeout"], MIN_PING_SECONDS, MAX_PING_SECONDS);
  if (pongTimeoutMs <= pingIntervalMs) {
    throw new UsageError(
      `${flag("pong-timeout")}: must be greater than ${sources.name("ping-interval")} ` +
        `(${pingIntervalMs / 1000} s), ` +
        `got ${pongTimeoutMs / 1000} s`,
    );
  }

  const rpc = parseListenFlag(flag("rpc"), v.rpc, { host: "127.0.0.1", port: p2pPort + 1 });
  const config: NodeConfig = {
    network,
    genesisFile: v.genesis === undefined ? null : nonEmpty(flag("genesis"), v.genesis),
    dataDir: dataDirFor(flag("data-dir"), v["data-dir"], network, env),
    listen: parseListenFlag(flag("listen"), v.listen, { host: "0.0.0.0", port: p2pPort }),
    // The network layer's own parser: a peer it would refuse is a usage error now, not a
    // failure at start-up.
    peers: peers.map((p) => formatHostPortFlag(flag("peer"), p)),
    rpc,
    ...parseRpcSecurityFlags(v, rpc, flag),
    maxInbound: wholeNumber(
      flag("max-inbound"),
      v["max-inbound"],
      DEFAULTS.maxInbound,
      0,
      MAX_INBOUND_LIMIT,
    ),
    maxOutbound: wholeNumber(
      flag("max-outbound"),
      v["max-outbound"],
      DEFAULTS.maxOutbound,
      0,
      MAX_OUTBOUND_LIMIT,
    ),
    pingIntervalMs,
    pongTimeoutMs,
    stallBlocks: wholeNumber(
      flag("stall-blocks"),
      v["stall-blocks"],
      DEFAULTS.stallBlocks,
      0,
      MAX_STALL_BLOCKS,
    ),
    logLevel: oneOf(flag("log-level"), v["log-level"], LOG_LEVELS, "info"),
    logFormat: oneOf(flag("log-format"), v["log-format"], LOG_FORMATS, "text"),
    exitOnStdinClose: v["exit-on-stdin-close"] === true,
  };
  if (helpTopic === "config") {
    return { kind: "config", config, text: effectiveConfigText(config, sources) };
  }
  return { kind: "run", config };
}

// ---------------------------------------------------------------------------------------------
// The config file: every run flag is a key (issue 9 §3). The keys come from RUN_OPTIONS, so a
// flag added there has its key without further work; only a flag that takes a number should
// also appear in NUMERIC_RUN_FLAGS, so the file takes `max-inbound = 40` rather than "40".

/** Flags of RUN_OPTIONS that have no config key: they act on the command, not the node. */
const FLAGS_WITHOUT_KEY: ReadonlySet<string> = new Set(["help", "version", "config"]);
/** String flags whose key takes a TOML number. */
const NUMERIC_RUN_FLAGS: Readonly<Record<string, "integer" | "seconds">> = {
  "max-inbound": "integer",
  "max-outbound": "integer",
  "ping-interval": "seconds",
  "pong-timeout": "seconds",
  "stall-blocks": "integer",
};

/** The config file's keys, derived from the flag table. */
export const RUN_CONFIG_SPEC: ConfigSpec = Object.fromEntries(
  Object.entries(RUN_OPTIONS as OptionSpec)
    .filter(([name]) => !FLAGS_WITHOUT_KEY.has(name))
    .map(([name, o]) => [name, {
      kind: o.type === "boolean" ? "boolean" : NUMERIC_RUN_FLAGS[name] ?? "string",
      multiple: o.multiple === true,
    }]),
);

/** Where a run setting came from, as `timenode config` shows it. */
export type SettingSource =
  | { kind: "default" }
  | { kind: "file"; path: string; line: number }
  | { kind: "flag" };

type RunValues = ReturnType<typeof strictParse<typeof RUN_OPTIONS>>["values"];

interface RunSources {
  /** Command-line values over config-file values: the flag wins, lists included. */
  values: RunValues;
  source(key: string): SettingSource;
  /** How an error names a setting: "--max-inbound", or "FILE:LINE: max-inbound". */
  label(key: string): string;
  /** How a message mentions another setting: "--max-inbound", or "max-inbound" from the file. */
  name(key: string): string;
  /** The config file read, or null; `lookedFor` is where the default one would be. */
  file: string | null;
  lookedFor: string | null;
}

function resolveRunSources(given: RunValues, env: CliEnv): RunSources {
  const { path, explicit } = configFilePath(given, env);
  const file = path === null ? null : loadConfigFile(path, explicit, env);
  const merged: Record<string, unknown> = {};
  const sources = new Map<string, SettingSource>();
  for (const [key, entry] of file?.entries ?? []) {
    sources.set(key, { kind: "file", path: file!.path, line: entry.line });
    // A switch set to false in the file is the switch left off.
    if (entry.value !== false) merged[key] = entry.value;
  }
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || FLAGS_WITHOUT_KEY.has(key)) continue;
    merged[key] = value;
    sources.set(key, { kind: "flag" });
  }
  const source = (key: string): SettingSource => sources.get(key) ?? { kind: "default" };
  return {
    values: merged as RunValues,
    source,
    label(key) {
      const s = source(key);
      return s.kind === "file" ? `${s.path}:${s.line}: ${key}` : `--${key}`;
    },
    name: (key) => source(key).kind === "file" ? key : `--${key}`,
    file: file?.path ?? null,
    lookedFor: file === null ? path : null,
  };
}

/** `--config FILE`, else `timenode.toml` in the data dir the command line names (or the default). */
function configFilePath(given: RunValues, env: CliEnv): { path: string | null; explicit: boolean } {
  if (given.config !== undefined) {
    return {
      path: expandHome("--config", nonEmpty("--config", given.config), env),
      explicit: true,
    };
  }
  if (given["data-dir"] === undefined && !env.HOME) return { path: null, explicit: false };
  const network = parseNetwork(given.network);
  const dataDir = dataDirFor("--data-dir", given["data-dir"], network, env);
  return { path: joinPath(dataDir, CONFIG_FILE_NAME), explicit: false };
}

function loadConfigFile(path: string, explicit: boolean, env: CliEnv): ConfigFile | null {
  try {
    const text = env.readConfigFile ? env.readConfigFile(path) : null;
    if (text === null) {
      if (explicit) throw new UsageError(`--config: ${quote(path)}: no such file`);
      return null;
    }
    return parseConfigText(text, path, RUN_CONFIG_SPEC);
  } catch (e) {
    if (e instanceof ConfigFileError) throw new UsageError(e.message);
    throw e;
  }
}

/** A setting as TOML: the value, or null when it is not set at all. */
type TomlValue = string | number | boolean | string[] | null;

/** The effective value of each run setting, in the form its key takes. */
function effectiveValue(key: string, c: NodeConfig, raw: RunValues): TomlValue {
  switch (key) {
    case "network":
      return c.network;
    case "genesis":
      return c.genesisFile;
    case "data-dir":
      return c.dataDir;
    case "listen":
      return c.listen === null ? "off" : listenText(c.listen);
    case "peer":
      return c.peers;
    case "rpc":
      return c.rpc === null ? "off" : listenText(c.rpc);
    case "max-inbound":
      return c.maxInbound;
    case "max-outbound":
      return c.maxOutbound;
    case "ping-interval":
      return c.pingIntervalMs / 1000;
    case "pong-timeout":
      return c.pongTimeoutMs / 1000;
    case "stall-blocks":
      return c.stallBlocks;
    case "log-level":
      return c.logLevel;
    case "log-format":
      return c.logFormat;
    case "exit-on-stdin-close":
      return c.exitOnStdinClose;
    case "rpc-auth":
      // As given: a salted hash, not a password, and the output must stay a valid config file.
      return c.rpcAuth.map((e) => `${e.user}:${e.salt}$${toHex(e.hash)}`);
    case "rpc-allow-ip":
      return c.rpcAllowIps.map((cidr) => `${cidr.address}/${cidr.prefix}`);
    case "rpc-allow-host":
      return c.rpcAllowHosts;
    case "rpc-auth-metrics":
      return c.rpcAuthMetrics;
  }
  // A flag this function does not know yet: its value as given, if it was.
  const value = (raw as Record<string, unknown>)[key];
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map(String);
  return null;
}

/** "host:port" of a listener, port 0 (ephemeral) included. */
function listenText(hp: HostPort): string {
  return formatHostPort(hp.host, hp.port, { allowPortZero: true });
}

/** The report `timenode config` prints: valid TOML, each line commented with its source. */
function effectiveConfigText(c: NodeConfig, sources: RunSources): string {
  const rows = Object.keys(RUN_CONFIG_SPEC).map((key) => {
    const value = effectiveValue(key, c, sources.values);
    const setting = value === null ? `# ${key} is not set` : `${key} = ${tomlText(value)}`;
    const s = sources.source(key);
    const from = s.kind === "file"
      ? `file ${s.path}:${s.line}`
      : s.kind === "flag"
      ? `flag --${key}`
      : "default";
    return [setting, from];
  });
  const width = Math.min(60, Math.max(...rows.map(([setting]) => setting.length)));
  const file = sources.file !== null
    ? `config file: ${sources.file}`
    : `config file: none${sources.lookedFor ? ` (${sources.lookedFor} does not exist)` : ""}`;
  return [
    `# The configuration timenode run uses with these flags (timenode ${TIMENODE_VERSION}).`,
    `# ${file}`,
    ...rows.map(([setting, from]) => `${setting.padEnd(width)}  # ${from}`),
  ].join("\n");
}

function tomlText(value: Exclude<TomlValue, null>): string {
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * Three missed pings, as DEFAULTS.pongTimeoutMs explains. When only --ping-interval is given,
 * the timeout follows it, so `--ping-interval 60` alone is valid rather than an error.
 */
function defaultPongTimeoutMs(pingIntervalMs: number, pingGiven: boolean): number {
  return pingGiven ? pingIntervalMs * 3 : DEFAULTS.pongTimeoutMs;
}

const KEYGEN_OPTIONS = {
  help: { type: "boolean", short: "h" },
  network: { type: "string" },
  "data-dir": { type: "string" },
  out: { type: "string" },
  show: { type: "boolean" },
} as const;

function parseKeygen(args: string[], env: CliEnv): CliCommand {
  const v = strictParse("keygen", args, KEYGEN_OPTIONS).values;
  if (v.help) return help("keygen");
  if (v.out !== undefined && v["data-dir"] !== undefined) {
    throw new UsageError("--out: give either --out or --data-dir, not both");
  }
  if (v.out !== undefined && v.network !== undefined) {
    throw new UsageError("--network: only chooses the default data dir; not allowed with --out");
  }
  const show = v.show === true;
  if (v.out !== undefined) return { kind: "keygen", keyFile: nonEmpty("--out", v.out), show };
  const network = parseNetwork(v.network);
  const dataDir = dataDirFor("--data-dir", v["data-dir"], network, env);
  return { kind: "keygen", keyFile: joinPath(dataDir, NODE_KEY_FILE), show };
}

const GENESIS_OPTIONS = {
  help: { type: "boolean", short: "h" },
  key: { type: "string", multiple: true },
  out: { type: "string" },
  network: { type: "string" },
  "block-interval": { type: "string" },
  address: { type: "string", multiple: true },
  alloc: { type: "string", multiple: true },
  force: { type: "boolean" },
} as const;

function parseGenesisCommand(args: string[]): CliCommand {
  const v = strictParse("genesis", args, GENESIS_OPTIONS).values;
  if (v.help) return help("genesis");
  const rawKeys = v.key ?? [];
  if (rawKeys.length === 0) throw new UsageError("--key: at least one masternode key is required");
  if (rawKeys.length > CHAIN_LIMITS.maxValidators) {
    throw new UsageError(
      `--key: at most ${CHAIN_LIMITS.maxValidators} masternodes, got ${rawKeys.length}`,
    );
  }
  const keys = rawKeys.map((k) => parseGenesisKey(k));
  const hexIds = keys.flatMap((k) => k.kind === "hex" ? [k.nodeId] : []);
  const dup = hexIds.find((id, i) => hexIds.indexOf(id) !== i);
  if (dup !== undefined) throw new UsageError(`--key: node id ${dup} given twice`);
  if (v.out === undefined) throw new UsageError("--out: required (the genesis file to write)");

  // The same default as run, so a genesis made without --network runs without it too.
  const network = v.network === undefined ? DEFAULT_NETWORK : v.network;
  if (!/^[a-z0-9-]{1,32}$/.test(network)) {
    throw new UsageError(
      `--network: expected 1 to 32 characters of a-z, 0-9 and "-", got ${quote(network)}`,
    );
  }
  const addresses = (v.address ?? []).map((a) => {
    const formatted = formatHostPortFlag("--address", a);
    if (formatted.length > MAX_ANNOUNCED_ADDRESS_CHARS) {
      throw new UsageError(
        `--address: at most ${MAX_ANNOUNCED_ADDRESS_CHARS} characters, got ${quote(formatted)}`,
      );
    }
    return formatted;
  });
  if (addresses.length !== 0 && addresses.length !== keys.length) {
    throw new UsageError(
      `--address: ${addresses.length} given for ${keys.length} --key flags; ` +
        "give one --address per --key, in the same order, or none",
    );
  }
  const blockIntervalMs = v["block-interval"] === undefined
    ? defaultBlockIntervalMs(network)
    : secondsToMs(
      "--block-interval",
      v["block-interval"],
      MIN_BLOCK_INTERVAL_SECONDS,
      MAX_BLOCK_INTERVAL_SECONDS,
    );
  return {
    kind: "genesis",
    keys,
    out: nonEmpty("--out", v.out),
    force: v.force === true,
    network,
    blockIntervalMs,
    addresses,
    alloc: parseAllocFlags(network, v.alloc ?? []),
  };
}

/** `--alloc ADDRESS=AMOUNT` flags: valid addresses of `network`, TIME amounts above 0. */
function parseAllocFlags(network: string, raw: readonly string[]): Record<string, string> {
  const alloc: Record<string, string> = {};
  for (const a of raw) {
    const eq = a.indexOf("=");
    if (eq < 0) throw new UsageError(`--alloc: expected ADDRESS=AMOUNT, got ${quote(a)}`);
    const address = a.slice(0, eq);
    const check = checkAddress(network, address);
    if (!check.ok) throw new UsageError(`--alloc: ${check.why}, got ${quote(address)}`);
    if (address in alloc) throw new UsageError(`--alloc: ${address} given twice`);
    let units: bigint;
    try {
      units = parseAmount(a.slice(eq + 1));
    } catch (e) {
      throw new UsageError(`--alloc: ${(e as Error).message}`);
    }
    if (units === 0n) throw new UsageError(`--alloc: the amount for ${address} must be above 0`);
    alloc[address] = formatAmount(units);
  }
  return alloc;
}

function parseGenesisKey(raw: string): GenesisKeyArg {
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return { kind: "hex", nodeId: raw.toLowerCase() };
  if (/^[0-9a-fA-F]+$/.test(raw) && raw.length >= 32) {
    // Almost certainly a mistyped node id rather than a file named in hex.
    throw new UsageError(
      `--key: a node id is 64 hex characters, got ${raw.length} in ${quote(raw)}`,
    );
  }
  return { kind: "file", path: nonEmpty("--key", raw) };
}

function defaultBlockIntervalMs(network: string): number {
  return (NETWORKS as readonly string[]).includes(network)
    ? builtinGenesis(network as NetworkName).blockIntervalMs
    : CUSTOM_NETWORK_BLOCK_INTERVAL_MS;
}

const DEVNET_OPTIONS = {
  help: { type: "boolean", short: "h" },
  nodes: { type: "string" },
  dir: { type: "string" },
  "base-port": { type: "string" },
  "block-interval": { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
} as const;

function parseDevnet(args: string[]): CliCommand {
  const v = strictParse("devnet", args, DEVNET_OPTIONS).values;
  if (v.help) return help("devnet");
  const nodes = wholeNumber("--nodes", v.nodes, DEVNET_DEFAULT_NODES, 1, DEVNET_MAX_NODES);
  const lastPort = 65_535 - (nodes - 1) * DEVNET_PORT_STEP - 1;
  const basePort = wholeNumber("--base-port", v["base-port"], DEFAULT_P2P_PORT.devnet, 1, lastPort);
  return {
    kind: "devnet",
    nodes,
    dir: v.dir === undefined ? null : nonEmpty("--dir", v.dir),
    basePort,
    blockIntervalMs: v["block-interval"] === undefined
      ? builtinGenesis("devnet").blockIntervalMs
      : secondsToMs(
        "--block-interval",
        v["block-interval"],
        MIN_BLOCK_INTERVAL_SECONDS,
        MAX_BLOCK_INTERVAL_SECONDS,
      ),
    logLevel: oneOf("--log-level", v["log-level"], LOG_LEVELS, "info"),
    logFormat: oneOf("--log-format", v["log-format"], LOG_FORMATS, "text"),
  };
}

// ---- rpc, status, rpcauth (issue 9): the client commands -----------------------------------

export type RpcClientCommand =
  | {
    kind: "rpc";
    target: RpcTarget;
    method: string;
    params: unknown[] | Record<string, unknown>;
    timeoutMs: number;
  }
  | { kind: "status"; target: RpcTarget; watch: boolean }
  | { kind: "rpcauth"; user: string; password: string | null };

const RPC_TARGET_OPTIONS = {
  help: { type: "boolean", short: "h" },
  network: { type: "string" },
  "data-dir": { type: "string" },
  rpc: { type: "string" },
  "rpc-user": { type: "string" },
  "rpc-password": { type: "string" },
} as const;
const RPC_OPTIONS = { ...RPC_TARGET_OPTIONS, timeout: { type: "string" } } as const;
const STATUS_OPTIONS = { ...RPC_TARGET_OPTIONS, watch: { type: "boolean" } } as const;
/** A call longer than an hour is a hung node, not a slow one. */
const MAX_RPC_TIMEOUT_SECONDS = 3_600;

function parseRpcClientCommand(
  command: "rpc" | "status" | "rpcauth",
  args: string[],
  env: CliEnv,
): CliCommand {
  if (command === "rpcauth") return parseRpcAuthCommand(args);
  if (command === "status") {
    const v = strictParse("status", args, STATUS_OPTIONS).values;
    if (v.help) return help("status");
    return { kind: "status", target: parseRpcTarget(v, env), watch: v.watch === true };
  }
  // Flags come before METHOD; everything after it is the method's params, even "-1".
  const { flags, rest } = splitAtFirstPositional(args, RPC_OPTIONS);
  const v = strictParse("rpc", flags, RPC_OPTIONS).values;
  if (v.help) return help("rpc");
  const [method, ...words] = rest;
  if (method === undefined) {
    throw new UsageError("rpc: METHOD required (timenode rpc help lists them)");
  }
  if (!/^[a-z][a-z0-9_]{0,63}$/i.test(method)) {
    throw new UsageError(`rpc: ${quote(method)} is not a method name`);
  }
  const params = argsToParams(words);
  if (typeof params === "string") throw new UsageError(`rpc: ${params}`);
  return {
    kind: "rpc",
    target: parseRpcTarget(v, env),
    method,
    params,
    timeoutMs: v.timeout === undefined
      ? DEFAULT_RPC_TIMEOUT_MS
      : secondsToMs("--timeout", v.timeout, 0.1, MAX_RPC_TIMEOUT_SECONDS),
  };
}

/** Splits `args` at the first word that is neither a flag nor a flag's value. */
function splitAtFirstPositional(
  args: string[],
  options: OptionSpec,
): { flags: string[]; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") return { flags: args.slice(0, i), rest: args.slice(i + 1) };
    if (!a.startsWith("-") || a === "-") return { flags: args.slice(0, i), rest: args.slice(i) };
    const name = a.replace(/^--?/, "").split("=")[0];
    const spec = options[name] ?? Object.values(options).find((o) => o.short === name);
    if (spec?.type === "string" && !a.includes("=")) i++;
  }
  return { flags: args, rest: [] };
}

function parseRpcTarget(
  v: {
    network?: string;
    "data-dir"?: string;
    rpc?: string;
    "rpc-user"?: string;
    "rpc-password"?: string;
  },
  env: CliEnv,
): RpcTarget {
  const network = parseNetwork(v.network);
  const user = v["rpc-user"] ?? null;
  if (v["rpc-password"] !== undefined && user === null) {
    throw new UsageError("--rpc-password: give --rpc-user too");
  }
  // With a user, no cookie is needed, so a missing HOME is no obstacle.
  const dataDir = user !== null && v["data-dir"] === undefined && !env.HOME
    ? null
    : dataDirFor("--data-dir", v["data-dir"], network, env);
  const hp = v.rpc === undefined
    ? { host: "127.0.0.1", port: DEFAULT_P2P_PORT[network] + 1 }
    : parseHostPortFlag("--rpc", v.rpc, { allowPortZero: false });
  // A node bound to every interface is reached on loopback.
  const host = hp.host === "0.0.0.0" ? "127.0.0.1" : hp.host === "::" ? "::1" : hp.host;
  return {
    url: `http://${formatHostPort(host, hp.port)}`,
    cookieFile: dataDir === null ? "" : cookiePath(dataDir),
    user,
    password: v["rpc-password"] ?? null,
  };
}

function parseRpcAuthCommand(args: string[]): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw translateParseError("rpcauth", e);
  }
  if (parsed.values.help) return help("rpcauth");
  const [user, password, ...extra] = parsed.positionals;
  if (user === undefined) throw new UsageError("rpcauth: USER required");
  if (extra.length > 0) throw new UsageError("rpcauth: expected USER [PASSWORD], got more");
  if (!/^[A-Za-z0-9_.@+-]{1,64}$/.test(user)) {
    throw new UsageError(
      `rpcauth: user must be 1 to 64 of A-Z a-z 0-9 _ . @ + -, got ${quote(user)}`,
    );
  }
  return { kind: "rpcauth", user, password: password ?? null };
}

function parseHelp(args: string[]): CliCommand {
  if (args.length === 0) return help(null);
  if (args.length > 1) {
    throw new UsageError(`help: expected at most one command, got ${args.length} arguments`);
  }
  const topic = args[0];
  if (topic === "--help" || topic === "-h") return help("help");
  if (!(COMMANDS as readonly string[]).includes(topic)) {
    throw new UsageError(
      `help: unknown command ${quote(topic)} (commands: ${COMMANDS.join(", ")})`,
    );
  }
  return help(topic as CommandName);
}

function help(topic: CommandName | null): CliCommand {
  return { kind: "help", topic, text: helpText(topic) };
}

// ---------------------------------------------------------------------------------------------
// Flag parsing and values

type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

/**
 * `parseArgs` in strict mode, with its multi-line errors turned into one-line `UsageError`s,
 * and a single-value flag given twice refused (parseArgs would silently keep the last one).
 */
function strictParse<T extends OptionSpec>(command: CommandName, args: string[], options: T) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true });
  } catch (e) {
    throw translateParseError(command, e);
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option" || options[token.name]?.multiple) continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name}: given more than once`);
    seen.add(token.name);
  }
  return parsed;
}

function translateParseError(command: CommandName, e: unknown): Error {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  const see = command === "run" ? "see timenode --help" : `see timenode help ${command}`;
  // parseArgs names the flag in quotes, e.g. "Option '-h, --help' ..." or "Unknown option '-x'".
  const flag = /'(?:-\w, )?(--?[^' ]+)/.exec(message)?.[1] ?? "argument";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError(`${flag}: unknown flag for ${command} (${see})`);
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const arg = /'([^']*)'/.exec(message)?.[1] ?? "";
      return new UsageError(`unexpected argument ${quote(arg)} for ${command} (${see})`);
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (message.includes("does not take an argument")) {
        return new UsageError(`${flag}: takes no value`);
      }
      return new UsageError(
        `${flag}: missing value (to pass a value starting with "-", write ${flag}=VALUE)`,
      );
    default:
      return new UsageError(`${flag}: ${message.split("\n")[0]}`);
  }
}

function parseNetwork(raw: string | undefined): NetworkName {
  return oneOf("--network", raw, NETWORKS, DEFAULT_NETWORK);
}

function oneOf<T extends string>(
  flag: string,
  raw: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (raw === undefined) return fallback;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new UsageError(`${flag}: expected one of ${allowed.join(", ")}, got ${quote(raw)}`);
}

function nonEmpty(flag: string, raw: string): string {
  if (raw.trim() === "") throw new UsageError(`${flag}: expected a non-empty value`);
  return raw;
}

function wholeNumber(
  flag: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${flag}: expected a whole number from ${min} to ${max}, got ${quote(raw)}`,
    );
  }
  return n;
}

/** Seconds as written by an operator ("30", "0.5", ".25") to whole milliseconds. */
function secondsToMs(flag: string, raw: string, minSeconds: number, maxSeconds: number): number {
  const s = /^(\d{1,9}(\.\d{0,6})?|\.\d{1,6})$/.test(raw) ? Number(raw) : NaN;
  if (!(s >= minSeconds && s <= maxSeconds)) {
    throw new UsageError(
      `${flag}: expected seconds from ${minSeconds} to ${maxSeconds} (fractions allowed), ` +
        `got ${quote(raw)}`,
    );
  }
  return Math.round(s * 1000);
}

function dataDirFor(
  flag: string,
  raw: string | undefined,
  network: NetworkName,
  env: CliEnv,
): string {
  if (raw !== undefined) return expandHome(flag, nonEmpty(flag, raw), env);
  if (!env.HOME) throw new UsageError(`${flag}: HOME is not set, so give the data dir explicitly`);
  return joinPath(joinPath(env.HOME, ".timenode"), network);
}

/** `--data-dir=~/x` reaches us unexpanded (the shell only expands a leading bare `~`). */
function expandHome(flag: string, path: string, env: CliEnv): string {
  if (path !== "~" && !path.startsWith("~/")) return path;
  if (!env.HOME) throw new UsageError(`${flag}: cannot expand "~": HOME is not set`);
  return path === "~" ? env.HOME : joinPath(env.HOME, path.slice(2));
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function parseListenFlag(
  flag: string,
  raw: string | undefined,
  fallback: HostPort,
): HostPort | null {
  if (raw === undefined) return fallback;
  if (raw === "off") return null;
  return parseHostPortFlag(flag, raw, { allowPortZero: true });
}

function parseHostPortFlag(flag: string, raw: string, opts: HostPortOptions): HostPort {
  const r = parseHostPortExplained(raw, opts);
  if (!r.ok) throw new UsageError(`${flag}: ${r.reason}, got ${quote(raw)}`);
  return r.value;
}

/** A dialable "host:port" flag value in its canonical spelling. */
function formatHostPortFlag(flag: string, raw: string): string {
  const hp = parseHostPortFlag(flag, raw, { allowPortZero: false });
  return formatHostPort(hp.host, hp.port);
}

function quote(value: string): string {
  const clipped = value.length > MAX_ECHOED_VALUE_CHARS
    ? value.slice(0, MAX_ECHOED_VALUE_CHARS) + "…"
    : value;
  return JSON.stringify(clipped); // escapes newlines, so the message stays on one line
}

/** $HOME, or undefined when it is unset or unreadable. */
export function homeDir(): string | undefined {
  try {
    return Deno.env.get("HOME");
  } catch {
    return undefined; // no --allow-env: the operator must then pass --data-dir
  }
}

// ---------------------------------------------------------------------------------------------
// Help

const RUN_FLAGS = `Flags of run:
  --config FILE         read settings from this TOML file (keys are these
                        flags without "--"; flags given here win).
                        Default: DATA_DIR/${CONFIG_FILE_NAME} when it exists
  --network NAME        mainnet, testnet or devnet. Default: mainnet
  --genesis FILE        use this genesis file, not the network's built-in one
  --data-dir DIR        chain database and node key.
                        Default: ~/.timenode/<network>
  --listen HOST:PORT    accept peers here, or "off" to only dial out.
                        Default: 0.0.0.0:24100 (testnet: 24200, devnet: 24300)
  --peer HOST:PORT      a peer to stay connected to; repeat for several
  --rpc HOST:PORT       JSON-RPC, /metrics and /health, or "off".
                        Default: 127.0.0.1:24101 (testnet: 24201, devnet: 24301)
                        Clients log in with the cookie written to
                        DATA_DIR/.cookie (timenode rpc does this)
  --rpc-auth USER:SALT$HASH
                        also let this user log in (made by timenode
                        rpcauth); repeat for several
  --rpc-allow-ip CIDR   clients from this network may connect; required
                        for a --rpc that is not loopback; repeatable
  --rpc-allow-host NAME also accept this Host header (a name the RPC is
                        reached by); repeatable
  --rpc-auth-metrics    /metrics and /health need a login too
  --max-inbound N       most peers that may connect to us. Default: ${DEFAULTS.maxInbound}
  --max-outbound N      most peers we dial ourselves. Default: ${DEFAULTS.maxOutbound}
  --ping-interval SEC   how often each peer is pinged; fractions allowed.
                        Default: ${DEFAULTS.pingIntervalMs / 1000}
  --pong-timeout SEC    drop a peer whose pong is this late; must be more
                        than --ping-interval.
                        Default: 3 x --ping-interval (${DEFAULTS.pongTimeoutMs / 1000})
  --stall-blocks N      /health answers 503 when no block came for N block
                        intervals while peers are connected; 0: never.
                        Default: ${DEFAULTS.stallBlocks}
  --log-level LEVEL     trace, debug, info, warning, error or fatal.
                        Default: info
  --log-format FORMAT   text (for people) or json (one object per line).
                        Default: text
  --exit-on-stdin-close stop cleanly when standard input closes (how
                        timenode devnet ties its nodes to itself)
  -h, --help            show help
  --version             print the version

Addresses: IPv4 (10.0.0.5:24100), IPv6 in brackets ([2001:db8::5]:24100) or
a hostname (node1.example.org:24100). Logs go to stderr. A wrong flag exits
with status 2.

Examples:
  timenode
  timenode --network testnet --data-dir /var/lib/timenode
  timenode --peer 203.0.113.7:24100 --peer [2001:db8::7]:24100 --max-inbound 40
  timenode --rpc off --log-format json --log-level debug
  timenode --network devnet --genesis ./genesis.json --listen 127.0.0.1:24300
`;

const MAIN_HELP = `timenode ${TIMENODE_VERSION}: a masternode for a TIME-Coin-style blockchain

Usage:
  timenode [run] [flags]      run a node (the default command)
  timenode config [flags]     print the settings run would use, and their source
  timenode keygen [flags]     create a node key file
  timenode genesis [flags]    write a genesis file for a new network
  timenode devnet [flags]     run a local test network of several nodes
  timenode rpc METHOD [ARGS]  call a running node's RPC (like bitcoin-cli)
  timenode status [--watch]   a running node's state on one screen
  timenode rpcauth USER [PW]  make an --rpc-auth value for a user
  timenode wallet COMMAND     a wallet: new, address, balance, send, history
                              (timenode wallet --help)
  timenode help [command]     show help for a command
  timenode --version          print the version

${RUN_FLAGS}`;

const RUN_HELP = `Run a node: join the network, sync the chain, take part in consensus.

Usage:
  timenode [run] [flags]

${RUN_FLAGS}`;

const CONFIG_HELP = `Print the configuration \`timenode run\` would use with the same flags: every
setting, its value and where it came from (default, file:line or flag). The
output is itself a valid config file. A wrong value exits with status 2, as
run would.

Usage:
  timenode config [run flags]

The config file (--config FILE, default DATA_DIR/${CONFIG_FILE_NAME} when it exists)
is TOML. Its keys are the flags of run without "--"; a repeatable flag takes
an array; a flag on the command line replaces the file's value (a list too).
An unknown key or a wrong type is an error naming the key and its line.
Relative paths are taken from the working directory, as on the command line.

  network = "testnet"
  data-dir = "/var/lib/timenode/testnet"
  peer = ["203.0.113.7:24200", "[2001:db8::7]:24200"]
  max-inbound = 40
  ping-interval = 15.5
  log-format = "json"

Examples:
  timenode config --config /etc/timenode/timenode.toml
  timenode config --network testnet --max-inbound 12
`;

const KEYGEN_HELP = `Create a node key (an Ed25519 key; its public key is the node id).
The node creates one on first start too; keygen lets you learn the node id
beforehand, for example to put it in a genesis file. An existing key file is
never overwritten.

Usage:
  timenode keygen [--network NAME] [--data-dir DIR] [--show]
  timenode keygen --out FILE [--show]

Flags:
  --network NAME    picks the default data dir. Default: mainnet
  --data-dir DIR    write DIR/${NODE_KEY_FILE}. Default: ~/.timenode/<network>
  --out FILE        write the key to FILE instead
  --show            create nothing: print the node id of the existing key
  -h, --help        show this help

Examples:
  timenode keygen
  timenode keygen --network testnet
  timenode keygen --out ./mn1.key.json
  timenode keygen --show --data-dir /var/lib/timenode/mainnet
`;

const GENESIS_HELP = `Write a genesis file that defines a new network and its first masternodes.

Usage:
  timenode genesis --key KEY [--key KEY...] --out FILE [flags]

Flags:
  --key KEY              a masternode: its node id (64 hex characters) or
                         its key file. Repeat once per masternode. Required
  --out FILE             the genesis file to write. Required
  --network NAME         network name (a-z, 0-9, "-"). Default: mainnet,
                         as for run
  --block-interval SEC   target time between blocks; fractions allowed.
                         Default: that of the built-in network of this
                         name, else 60
  --address HOST:PORT    announced p2p address of each masternode, in --key
                         order. Give one per --key, or none
  --alloc ADDRESS=AMOUNT fund ADDRESS with AMOUNT TIME (e.g. 1000.5) in
                         block 1. Repeatable
  --force                replace FILE if it exists (else: refused)
  -h, --help             show this help

Examples:
  timenode genesis --out genesis.json \\
    --key mn1.key.json --key mn2.key.json --key mn3.key.json
  timenode genesis --network mynet --block-interval 5 --out genesis.json \\
    --key mn1.key.json --address 198.51.100.1:24100 \\
    --key 9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3e5b7d9f0a2c4e6b8d0f \\
    --address 198.51.100.2:24100
`;

const DEVNET_HELP = `Run a local test network: several nodes on this machine, each a masternode of a
fresh genesis, talking over 127.0.0.1.

Usage:
  timenode devnet [flags]

Flags:
  --nodes N              number of nodes, 1 to ${DEVNET_MAX_NODES}. Default: ${DEVNET_DEFAULT_NODES}
  --dir DIR              keys, genesis and one data dir per node (DIR/node-0,
                         ..., each with its node.log). A DIR that already
                         holds a devnet restarts that devnet. Default: a new
                         temporary directory
  --base-port PORT       node i listens on PORT + ${DEVNET_PORT_STEP}*i, its RPC on that + 1.
                         Default: ${DEFAULT_P2P_PORT.devnet}
  --block-interval SEC   time between blocks; fractions allowed. Default: 1
  --log-level LEVEL      trace, debug, info, warning, error or fatal.
                         Default: info
  --log-format FORMAT    text or json. Default: text
  -h, --help             show this help

Examples:
  timenode devnet
  timenode devnet --nodes 5 --block-interval 0.5 --dir /tmp/devnet
  curl -s -H 'content-type: application/json' http://127.0.0.1:24301/ \\
    -d '{"jsonrpc":"2.0","id":1,"method":"getblockcount"}'
`;

const RPC_CLIENT_FLAGS =
  `  --network NAME        finds the node's RPC port and data dir. Default: mainnet
  --data-dir DIR        where the node's .cookie is.
                        Default: ~/.timenode/<network>
  --rpc HOST:PORT       the node's RPC address.
                        Default: 127.0.0.1:24101 (testnet: 24201, devnet: 24301)
  --rpc-user USER       log in with an --rpc-auth user instead of the cookie
  --rpc-password PW     that user's password (visible in ps and shell history)`;

const RPC_HELP = `Call a running node's JSON-RPC, like bitcoin-cli.

Usage:
  timenode rpc [flags] METHOD [ARG...]
  timenode rpc [flags] METHOD [NAME=VALUE...]

Each ARG is JSON where it parses (12, true, '{"a":1}', '"quoted"'), a string
otherwise. NAME=VALUE words pass named params. Logs in with the cookie the
node writes to its data dir (DATA_DIR/.cookie), or with --rpc-user.
Exit status: 0 ok, 1 the node answered with an error, 2 wrong usage, 3 no
node answered.

Flags (before METHOD):
${RPC_CLIENT_FLAGS}
  --timeout SEC         wait this long for the answer. Default: ${DEFAULT_RPC_TIMEOUT_MS / 1000}
  -h, --help            show this help

Examples:
  timenode rpc help
  timenode rpc help getblock
  timenode rpc --network devnet getblockcount
  timenode rpc getblock 12
  timenode rpc registermasternode mn1-rewards 198.51.100.1:24100
  timenode rpc setban key=203.0.113.9 seconds=3600
  timenode rpc --data-dir /var/lib/timenode/mainnet stop
`;

const STATUS_HELP = `Show a running node's state on one screen: network, height and the age of
the last block, sync progress, peers and their heights, the consensus round
and step, this node's masternode status, and warnings (no peers, chain
stalled, clock skew).

Usage:
  timenode status [flags]

Flags:
${RPC_CLIENT_FLAGS}
  --watch               refresh every 2 s until Ctrl-C
  -h, --help            show this help

Exit status: 0 ok, 1 the node refused (e.g. login failed), 2 wrong usage,
3 no node answered.

Examples:
  timenode status
  timenode status --network testnet --watch
`;

const RPCAUTH_HELP = `Make an --rpc-auth value: a user who may log in to the RPC with a password.
Only a salted hash goes on the node's command line or config; the password
is printed once, here. Without PASSWORD a strong one is generated. The
format is bitcoind's rpcauth (HMAC-SHA256), so lines work in both.

Usage:
  timenode rpcauth USER [PASSWORD]

Examples:
  timenode rpcauth prometheus
  timenode run --rpc-auth 'prometheus:4f1c...$9a0b...'
  timenode rpc --rpc-user prometheus --rpc-password PW getblockcount
`;

const HELP_HELP = `Show help.

Usage:
  timenode help [command]

Commands: ${COMMANDS.join(", ")}
`;

/** The help text for `topic`, or the overview for null; no trailing newline (for console.log). */
export function helpText(topic: CommandName | null): string {
  return helpSource(topic).trimEnd();
}

function helpSource(topic: CommandName | null): string {
  switch (topic) {
    case null:
      return MAIN_HELP;
    case "run":
      return RUN_HELP;
    case "config":
      return CONFIG_HELP;
    case "keygen":
      return KEYGEN_HELP;
    case "genesis":
      return GENESIS_HELP;
    case "devnet":
      return DEVNET_HELP;
    case "rpc":
      return RPC_HELP;
    case "status":
      return STATUS_HELP;
    case "rpcauth":
      return RPCAUTH_HELP;
    case "help":
      return HELP_HELP;
  }
}
