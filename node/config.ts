/**
 * The validated run configuration of one node, produced by the CLI (node/cli.ts).
 *
 * Owns: the shape of the configuration and its defaults. Must never: read flags or files itself.
 */
import type { NetworkName } from "../chain/genesis.ts";
import type { HostPort } from "../network/peer_key.ts";
import type { RpcAuthEntry } from "../rpc/auth.ts";
import type { Cidr } from "../rpc/http_guard.ts";

export type { HostPort };

export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";
export type LogFormat = "text" | "json";

export interface NodeConfig {
  network: NetworkName;
  /** Overrides the built-in genesis of `network`. */
  genesisFile: string | null;
  dataDir: string;
  /** Where to accept peers; null with `--listen off`. */
  listen: HostPort | null;
  /** Peers to keep connected forever ("host:port"). */
  peers: string[];
  /** JSON-RPC/metrics listener; null with `--rpc off`. */
  rpc: HostPort | null;
  /** `--rpc-auth` users, besides the cookie written to the data dir at start. */
  rpcAuth: RpcAuthEntry[];
  /** `--rpc-allow-ip`: client networks besides loopback; required for a non-loopback `--rpc`. */
  rpcAllowIps: Cidr[];
  /** `--rpc-allow-host`: Host header names besides localhost, 127.0.0.1, [::1] and `--rpc`'s. */
  rpcAllowHosts: string[];
  /** `--rpc-auth-metrics`: /metrics and /health need credentials too. */
  rpcAuthMetrics: boolean;
  maxInbound: number;
  maxOutbound: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /**
   * `/health` reports a stall when no block came for this many block intervals while the node
   * has peers; 0 turns the check off.
   */
  stallBlocks: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /**
   * Shut down cleanly when standard input closes: set by `timenode devnet` for its children, so
   * a devnet whose runner dies (even by kill -9) never leaves nodes behind.
   */
  exitOnStdinClose: boolean;
}

export const DEFAULTS = {
  listenPort: 24100,
  rpcPort: 24101,
  maxInbound: 117,
  maxOutbound: 8,
  /** Bitcoin Core pings every 2 minutes; 30 s finds a dead peer faster at negligible cost. */
  pingIntervalMs: 30_000,
  /** Three missed intervals: a single slow pong (GC pause, busy VPS) never drops a peer. */
  pongTimeoutMs: 90_000,
  /**
   * Ten intervals: a failed round or two (an absent proposer, a restart) costs seconds, never
   * ten blocks, while a chain that lost its quorum is reported within 100 minutes on mainnet
   * (the same window as the TimenodeHeightStuck alert of docs/metrics.md).
   */
  stallBlocks: 10,
} as const;
