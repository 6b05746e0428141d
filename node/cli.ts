/**
 * The command line: turns argv into one validated `CliCommand` (a run `NodeConfig`, keygen,
 * genesis, devnet, help or version), and holds the help texts an operator reads.
 *
 * Owns: flag names, their defaults as shown to operators, value validation (HOST:PORT, numbers,
 * enums) and the one-line `UsageError` messages. Parsing is `parseArgs` from `node:util` in
 * strict mode: an unknown or misspelt flag is an error, never silently ignored.
 * Must never: touch files, the network or the process (no exit, no printing); main.ts prints
 * a `UsageError` message and exits 2. It reads the environment only for HOME, and only when
 * the caller does not pass `env`.
 */
import { canonicalAddress } from "../network/peer_key.ts";
import { TIMENODE_VERSION } from "../version.ts";
import { parseArgs } from "node:util";
import { isIPv4, isIPv6 } from "node:net";
import { builtinGenesis, DEFAULT_P2P_PORT, type NetworkName, NETWORKS } from "../chain/genesis.ts";
import { CHAIN_LIMITS } from "../chain/block.ts";
import { NODE_KEY_FILE } from "../crypto/node_key.ts";
import { MESSAGE_LIMITS } from "../network/messages.ts";
import { checkAddress } from "../state/address.ts";
import { formatAmount, parseAmount } from "../state/amount.ts";
import {
  DEFAULTS,
  type HostPort,
  type LogFormat,
  type LogLevel,
  type NodeConfig,
} from "./config.ts";

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

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];
const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];
const COMMANDS = ["run", "keygen", "genesis", "devnet", "help"] as const;
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
  | { kind: "keygen"; keyFile: string }
  | {
    kind: "genesis";
    keys: GenesisKeyArg[];
    out: string;
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
  | { kind: "version"; text: string };

export interface CliEnv {
  HOME?: string;
}

export function parseCli(argv: string[], env: CliEnv = { HOME: readHome() }): CliCommand {
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
      return parseRun(args, env, "run");
    case "keygen":
      return parseKeygen(args, env);
    case "genesis":
      return parseGenesisCommand(args);
    case "devnet":
      return parseDevnet(args);
    case "help":
      return parseHelp(args);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

const RUN_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
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
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "exit-on-stdin-close": { type: "boolean" },
} as const;

function parseRun(args: string[], env: CliEnv, helpTopic: "run" | null): CliCommand {
  const v = strictParse("run", args, RUN_OPTIONS).values;
  if (v.help) return help(helpTopic);
  if (v.version) return { kind: "version", text: `timenode ${TIMENODE_VERSION}` };

  const network = parseNetwork(v.network);
  const p2pPort = DEFAULT_P2P_PORT[network];
  const peers = v.peer ?? [];
  if (peers.length > MAX_PEER_FLAGS) {
    throw new UsageError(`--peer: at most ${MAX_PEER_FLAGS} peers, got ${peers.length}`);
  }

  const pingIntervalMs = v["ping-interval"] === undefined
    ? DEFAULTS.pingIntervalMs
    : secondsToMs("--ping-interval", v["ping-interval"], MIN_PING_SECONDS, MAX_PING_SECONDS);
  const pongTimeoutMs = v["pong-timeout"] === undefined
    ? defaultPongTimeoutMs(pingIntervalMs, v["ping-interval"] !== undefined)
    : secondsToMs("--pong-timeout", v["pong-timeout"], MIN_PING_SECONDS, MAX_PING_SECONDS);
  if (pongTimeoutMs <= pingIntervalMs) {
    throw new UsageError(
      `--pong-timeout: must be greater than --ping-interval (${pingIntervalMs / 1000} s), ` +
        `got ${pongTimeoutMs / 1000} s`,
    );
  }

  const config: NodeConfig = {
    network,
    genesisFile: v.genesis === undefined ? null : nonEmpty("--genesis", v.genesis),
    dataDir: dataDirFor("--data-dir", v["data-dir"], network, env),
    listen: parseListenFlag("--listen", v.listen, { host: "0.0.0.0", port: p2pPort }),
    peers: peers.map((p) => {
      const formatted = formatHostPort(parseHostPortFlag("--peer", p, false));
      // The network layer's own parser decides what it can dial: agree with it here, so a
      // peer it would refuse is a usage error now, not a failure at start-up.
      if (canonicalAddress(formatted) === null) {
        throw new UsageError(`--peer: cannot dial ${JSON.stringify(p)}`);
      }
      return formatted;
    }),
    rpc: parseListenFlag("--rpc", v.rpc, { host: "127.0.0.1", port: p2pPort + 1 }),
    maxInbound: wholeNumber(
      "--max-inbound",
      v["max-inbound"],
      DEFAULTS.maxInbound,
      0,
      MAX_INBOUND_LIMIT,
    ),
    maxOutbound: wholeNumber(
      "--max-outbound",
      v["max-outbound"],
      DEFAULTS.maxOutbound,
      0,
      MAX_OUTBOUND_LIMIT,
    ),
    pingIntervalMs,
    pongTimeoutMs,
    logLevel: oneOf("--log-level", v["log-level"], LOG_LEVELS, "info"),
    logFormat: oneOf("--log-format", v["log-format"], LOG_FORMATS, "text"),
    exitOnStdinClose: v["exit-on-stdin-close"] === true,
  };
  return { kind: "run", config };
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
  if (v.out !== undefined) return { kind: "keygen", keyFile: nonEmpty("--out", v.out) };
  const network = parseNetwork(v.network);
  const dataDir = dataDirFor("--data-dir", v["data-dir"], network, env);
  return { kind: "keygen", keyFile: joinPath(dataDir, NODE_KEY_FILE) };
}

const GENESIS_OPTIONS = {
  help: { type: "boolean", short: "h" },
  key: { type: "string", multiple: true },
  out: { type: "string" },
  network: { type: "string" },
  "block-interval": { type: "string" },
  address: { type: "string", multiple: true },
  alloc: { type: "string", multiple: true },
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

  const network = v.network === undefined ? "devnet" : v.network;
  if (!/^[a-z0-9-]{1,32}$/.test(network)) {
    throw new UsageError(
      `--network: expected 1 to 32 characters of a-z, 0-9 and "-", got ${quote(network)}`,
    );
  }
  const addresses = (v.address ?? []).map((a) => {
    const formatted = formatHostPort(parseHostPortFlag("--address", a, false));
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
  return oneOf("--network", raw, NETWORKS, "mainnet");
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
  return parseHostPortFlag(flag, raw, true);
}

function parseHostPortFlag(flag: string, raw: string, allowPortZero: boolean): HostPort {
  const r = parseHostPort(raw, { allowPortZero });
  if (typeof r === "string") throw new UsageError(`${flag}: ${r}, got ${quote(raw)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// HOST:PORT

const HOSTNAME_RE =
  /^(?=.{1,253}\.?$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

/**
 * Parses "host:port": an IPv4 address, a bracketed IPv6 address ("[::1]:24100") or a DNS
 * hostname, and a port 1..65535 (0 too with `allowPortZero`, for ephemeral test listeners).
 * Returns the host without brackets, or a short reason when `text` is not valid.
 */
export function parseHostPort(
  text: string,
  opts: { allowPortZero?: boolean } = {},
): HostPort | string {
  const expected = "expected HOST:PORT";
  if (text.length > 300) return `${expected} (too long)`;
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return `${expected} as [IPv6]:PORT`;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) return "not a valid IPv6 address";
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return `${expected} (missing :PORT)`;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return "IPv6 addresses need brackets, e.g. [::1]:24100";
    if (host === "") return `${expected} (missing HOST)`;
    if (/^[\d.]+$/.test(host)) {
      if (!isIPv4(host)) return "not a valid IPv4 address";
    } else if (!HOSTNAME_RE.test(host)) {
      return "not a valid hostname";
    }
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  const minPort = opts.allowPortZero ? 0 : 1;
  if (!(port >= minPort && port <= 65_535)) return `port must be ${minPort}..65535`;
  return { host, port };
}

/** "host:port", bracketing IPv6 hosts: the inverse of `parseHostPort`. */
export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

function quote(value: string): string {
  const clipped = value.length > MAX_ECHOED_VALUE_CHARS
    ? value.slice(0, MAX_ECHOED_VALUE_CHARS) + "…"
    : value;
  return JSON.stringify(clipped); // escapes newlines, so the message stays on one line
}

function readHome(): string | undefined {
  try {
    return Deno.env.get("HOME");
  } catch {
    return undefined; // no --allow-env: the operator must then pass --data-dir
  }
}

// ---------------------------------------------------------------------------------------------
// Help

const RUN_FLAGS = `Flags of run:
  --network NAME        mainnet, testnet or devnet. Default: mainnet
  --genesis FILE        use this genesis file, not the network's built-in one
  --data-dir DIR        chain database and node key.
                        Default: ~/.timenode/<network>
  --listen HOST:PORT    accept peers here, or "off" to only dial out.
                        Default: 0.0.0.0:24100 (testnet: 24200, devnet: 24300)
  --peer HOST:PORT      a peer to stay connected to; repeat for several
  --rpc HOST:PORT       JSON-RPC, /metrics and /health, or "off".
                        Default: 127.0.0.1:24101 (testnet: 24201, devnet: 24301)
  --max-inbound N       most peers that may connect to us. Default: ${DEFAULTS.maxInbound}
  --max-outbound N      most peers we dial ourselves. Default: ${DEFAULTS.maxOutbound}
  --ping-interval SEC   how often each peer is pinged; fractions allowed.
                        Default: ${DEFAULTS.pingIntervalMs / 1000}
  --pong-timeout SEC    drop a peer whose pong is this late; must be more
                        than --ping-interval.
                        Default: 3 x --ping-interval (${DEFAULTS.pongTimeoutMs / 1000})
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
  timenode keygen [flags]     create a node key file
  timenode genesis [flags]    write a genesis file for a new network
  timenode devnet [flags]     run a local test network of several nodes
  timenode wallet COMMAND     a wallet: new, address, balance, send, history
                              (timenode wallet --help)
  timenode help [command]     show help for a command
  timenode --version          print the version

${RUN_FLAGS}`;

const RUN_HELP = `Run a node: join the network, sync the chain, take part in consensus.

Usage:
  timenode [run] [flags]

${RUN_FLAGS}`;

const KEYGEN_HELP = `Create a node key (an Ed25519 key; its public key is the node id).
The node creates one on first start too; keygen lets you learn the node id
beforehand, for example to put it in a genesis file. An existing key file is
never overwritten.

Usage:
  timenode keygen [--network NAME] [--data-dir DIR]
  timenode keygen --out FILE

Flags:
  --network NAME    picks the default data dir. Default: mainnet
  --data-dir DIR    write DIR/${NODE_KEY_FILE}. Default: ~/.timenode/<network>
  --out FILE        write the key to FILE instead
  -h, --help        show this help

Examples:
  timenode keygen
  timenode keygen --network testnet
  timenode keygen --out ./mn1.key.json
`;

const GENESIS_HELP = `Write a genesis file that defines a new network and its first masternodes.

Usage:
  timenode genesis --key KEY [--key KEY...] --out FILE [flags]

Flags:
  --key KEY              a masternode: its node id (64 hex characters) or
                         its key file. Repeat once per masternode. Required
  --out FILE             the genesis file to write. Required
  --network NAME         network name (a-z, 0-9, "-"). Default: devnet
  --block-interval SEC   target time between blocks; fractions allowed.
                         Default: that of the built-in network of this
                         name, else 60
  --address HOST:PORT    announced p2p address of each masternode, in --key
                         order. Give one per --key, or none
  --alloc ADDRESS=AMOUNT fund ADDRESS with AMOUNT TIME (e.g. 1000.5) in
                         block 1. Repeatable
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
    case "keygen":
      return KEYGEN_HELP;
    case "genesis":
      return GENESIS_HELP;
    case "devnet":
      return DEVNET_HELP;
    case "help":
      return HELP_HELP;
  }
}
