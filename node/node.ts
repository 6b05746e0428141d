/**
 * One running timenode: composes the chain, the network, sync, consensus and RPC.
 *
 * Owns: start-up order (data dir, genesis check, node key, store, network, subscribers, RPC),
 * shutdown order (stop accepting, goodbye to peers, flush state), the RPC method table, and
 * wiring of live-state gauges.
 * Must never: hold protocol logic. Everything here is plumbing between components that own
 * their behaviour.
 */
import { getLogger } from "@logtape/logtape";
import { fromHex, toHex } from "../encoding/binary.ts";
import { loadOrCreateNodeKey, NODE_KEY_FILE } from "../crypto/node_key.ts";
import type { KeyPair } from "../crypto/ed25519.ts";
import { builtinGenesis, type Genesis, genesisHash, loadGenesisFile } from "../chain/genesis.ts";
import { ChainStore } from "../chain/store.ts";
import { Chain } from "../chain/chain.ts";
import type { Certificate, CommittedBlock } from "../chain/block.ts";
import { encodeCertificate } from "../chain/block.ts";
import { blockHash } from "../chain/block.ts";
import { NetworkService } from "../network/service.ts";
import {
  formatHostPort,
  type HostPort,
  keyForDialTarget,
  tryCanonicalIp,
} from "../network/peer_key.ts";
import { SyncService } from "../sync/service.ts";
import { ConsensusService } from "../consensus/service.ts";
import { balanceOf, createStateMachine, recordNonceOf } from "../state/state.ts";
import { checkAddress } from "../state/address.ts";
import { bodySize } from "../chain/verify.ts";
import { VerifyPool } from "../sync/verify_pool.ts";
import { TxService } from "../mempool/service.ts";
import { ledgerRpcMethods, transactionJson } from "./ledger_rpc.ts";
import { stakeRpcMethods } from "./stake_rpc.ts";
import { ownStakeStatus } from "./stake_status.ts";
import { isTombstoned } from "../state/bonds.ts";
import { submitEvidence, wireStakeMetrics } from "./stake_wiring.ts";
import { signDeregistration, signRegistration } from "../state/records.ts";
import { recordId } from "../state/record_pool.ts";
import type { BlockRecord } from "../chain/block.ts";
import { RpcError, startRpcServer } from "../rpc/server.ts";
import { bindMethods, type MethodTable } from "../rpc/methods.ts";
import { Authenticator, writeCookie } from "../rpc/auth.ts";
import { IpAllowList, isLoopbackBind } from "../rpc/http_guard.ts";
import { createNodeMetrics, type NodeMetrics } from "../metrics/definitions.ts";
import type { NodeConfig } from "./config.ts";
import { TIMENODE_VERSION } from "../version.ts";
import { type DataDirLock, lockDataDir } from "./data_dir_lock.ts";
import { buildInfo } from "./build_info.ts";
import { bindError, dataDirError } from "./start_errors.ts";
import { type StallStatus, StallWatch } from "./stall_watch.ts";

const log = getLogger(["timenode", "node"]);

/** How often the event-loop lag probe runs; lag is how late this timer fires (docs/lessons.md#17). */
const LAG_PROBE_INTERVAL_MS = 1_000;
/** Lag worth a warning: a 1-CPU VPS starving timers shows up here first. */
const LAG_WARN_MS = 250;

export interface RunningNode {
  readonly nodeId: string;
  readonly p2pAddress: string;
  readonly rpcUrl: string | null;
  /** Resolves when an RPC client asked the node to stop (the `stop` method). */
  readonly stopRequested: Promise<void>;
  /**
   * Resolves when the node hit an error it must not run on (a sign-guard write failed); the
   * caller then stops it and exits non-zero. Never rejects.
   */
  readonly failed: Promise<Error>;
  stop(): Promise<void>;
}

export async function startNode(config: NodeConfig): Promise<RunningNode> {
  let dirLock: DataDirLock;
  try {
    await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    dirLock = await lockDataDir(config.dataDir);
  } catch (e) {
    throw dataDirError(config.dataDir, e);
  }
  try {
    return await startLocked(config, dirLock);
  } catch (e) {
    dirLock.release();
    throw e;
  }
}

async function startLocked(config: NodeConfig, dirLock: DataDirLock): Promise<RunningNode> {
  const startedAt = Date.now();
  const stopRequest = Promise.withResolvers<void>();
  const genesis: Genesis = config.genesisFile
    ? await loadGenesisFile(config.genesisFile)
    : builtinGenesis(config.network);
  const gHash = genesisHash(genesis);
  if (!config.genesisFile && config.network !== "devnet") {
    log.warn(
      "the built-in {network} genesis is a placeholder whose masternode keys are public: " +
        "anyone can sign its blocks. Pass the network's published genesis with --genesis FILE.",
      { network: config.network },
    );
  }
  const { key, created } = await loadOrCreateNodeKey(`${config.dataDir}/${NODE_KEY_FILE}`);
  const nodeId = toHex(key.publicKey);
  const build = buildInfo();
  log.info("timenode {version} network={network} genesis={genesis} node={nodeId}", {
    version: TIMENODE_VERSION,
    commit: build.commit,
    deno: build.deno,
    network: genesis.network,
    genesis: toHex(gHash),
    nodeId,
    newKey: created,
  });

  const store = ChainStore.open(config.dataDir, gHash);
  // Pooled transfers had their signature verified at admission: applying them skips it.
  let txService: TxService | null = null;
  const stateMachine = createStateMachine(genesis, {
    verified: {
      has: (id) => txService?.has(id) ?? false,
      add: (id) => txService?.add(id),
    },
  });
  const chain = new Chain({ store, genesis, stateMachine });
  const metrics = createNodeMetrics();
  const tip = chain.tip();
  log.info("chain tip height={height} hash={hash}", { height: tip.height, hash: toHex(tip.hash) });

  const network = new NetworkService({
    key,
    magic: genesis.magic,
    genesisHash: gHash,
    dataDir: config.dataDir,
    listen: config.listen,
    peers: config.peers,
    maxInbound: config.maxInbound,
    maxOutbound: config.maxOutbound,
    pingIntervalMs: config.pingIntervalMs,
    pongTimeoutMs: config.pongTimeoutMs,
    metrics,
    localTip: () => {
      const t = chain.tip();
      return { height: t.height, hash: t.hash };
    },
    isValidator: (id) => (chain.validatorSetFor(chain.tip().height + 1)?.powerOf(id) ?? 0) > 0,
  });
  chain.onBlockApplied((_cb, hash) => network.setLocalTip(chain.tip().height, hash));

  const sync = new SyncService({ network, chain, metrics, genesisHash: gHash });
  const txVerifier = new VerifyPool({ genesisHash: gHash });
  const txs = txService = new TxService({
    network,
    chain,
    stateMachine,
    verifier: txVerifier,
    metrics,
    dataDir: config.dataDir,
  });
  let reportFailure: (error: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => reportFailure = resolve);
  const consensus = new ConsensusService({
    network,
    chain,
    metrics,
    key,
    genesis,
    genesisHash: gHash,
    dataDir: config.dataDir,
    stateMachine,
    // Only verified evidence pauses consensus, never a peer's claim (docs/security.md).
    isSyncing: () => sync.isBehind(),
    onFatal: (error) => reportFailure(error),
    // A quorum certificate above our tip, seen by consensus, is evidence for sync's isBehind.
    onQuorumAhead: (height) => sync.noteQuorumAhead(height),
    selectTransactions: (height, records) =>
      txs.selectForBlock(height, stateMachine.ledger.maxBlockBytes - bodySize(records, [])),
    prepareBlock: (block) => txs.prepareBlock(block),
    // A double sign seen here goes to the record pool as evidence, and on to every proposer.
    evidenceSink: { submit: (e) => submitEvidence(e, (r) => consensus.submitRecord(r, null)) },
    // A proposal's last commit (up to 1,000 signatures) is verified in the workers; its signers
    // were already checked against the set by the consensus service.
    verifyCommit: (header, certificate) => txVerifier.verifyCommit(header, certificate),
  });
  const stakeMetrics = wireStakeMetrics(metrics, {
    nodeId,
    list: () => stateMachine.masternodeList(chain.stateView(), chain.tip().height),
    downtime: stateMachine.stake,
    tierPower: genesis.tierPower,
  });
  chain.onBlockApplied((cb) => stakeMetrics.countBlock(cb));

  try {
    await network.start();
  } catch (e) {
    txVerifier.close();
    chain.close();
    throw isBindFailure(e) && config.listen
      ? bindError("--listen", listenText(config.listen), e)
      : e;
  }
  await txs.start();
  sync.start();
  await consensus.start();

  metrics.chainHeight.collectFrom(() => chain.tip().height);
  metrics.isValidator.collectFrom(() => consensus.isValidator ? 1 : 0);
  metrics.buildInfo.set(1, { version: build.version, deno: build.deno });
  const stall = new StallWatch({
    stallBlocks: config.stallBlocks,
    blockIntervalMs: genesis.blockIntervalMs,
    now: Date.now(),
  });
  const stallStatus = () => stall.observe(Date.now(), chain.tip().height, network.peers().length);
  const health = new HealthCheck({
    peers: () => network.peers().length,
    expectsPeers: config.peers.length > 0,
    height: () => chain.tip().height,
    syncState: () => sync.state(),
    lagSeconds: () => metrics.eventLoopLag.samples()[0]?.value ?? 0,
    stall: stallStatus,
    missingVotes: () => consensus.missingVotes(),
  });
  const stopLagProbe = startLagProbe(metrics);
  const stopStallProbe = startStallProbe(stall, stallStatus, {
    height: () => chain.tip().height,
    peers: () => network.peers().length,
    missingVotes: () => consensus.missingVotes(),
  });

  /** Everything but RPC and the data dir lock, in shutdown order. */
  const stopServices = async () => {
    stopStallProbe();
    stopLagProbe();
    await consensus.stop();
    await txs.stop();
    txVerifier.close();
    sync.close();
    await network.stop();
    chain.close();
  };
  let rpc: ReturnType<typeof startRpcServer> | null = null;
  let cookie: Awaited<ReturnType<typeof writeCookie>> | null = null;
  try {
    if (config.rpc) {
      cookie = await writeCookie(config.dataDir);
      rpc = startRpcServer({
        hostname: config.rpc.host,
        port: config.rpc.port,
        methods: bindMethods({
          ...rpcMethods({
            network,
            chain,
            sync,
            consensus,
            genesis,
            key,
            stateMachine,
            startedAt,
            stall: stallStatus,
            requestStop: () => stopRequest.resolve(),
          }),
          ...ledgerRpcMethods({ chain, stateMachine, txs }),
          ...stakeRpcMethods({
            chain,
            consensus,
            genesis,
            key,
            listenAddress: () => network.listenAddress || null,
          }),
        }),
        metrics: () => metrics.registry.render(),
        health: () => health.report(),
        auth: new Authenticator({ cookieSecret: cookie.secret, entries: config.rpcAuth }),
        authMetrics: config.rpcAuthMetrics,
        allowIps: new IpAllowList(config.rpcAllowIps),
        allowHosts: config.rpcAllowHosts,
      });
    }
  } catch (e) {
    // Leave nothing half-started: peers get their goodbye, the store is closed.
    await cookie?.remove();
    await stopServices();
    throw config.rpc ? bindError("--rpc", listenText(config.rpc), e) : e;
  }
  const rpcUrl = rpc ? `http://${formatHost(rpc.addr.hostname)}:${rpc.addr.port}` : null;
  if (rpcUrl) {
    log.info("rpc listening on {url} (cookie {cookie})", { url: rpcUrl, cookie: cookie?.path });
  }
  if (config.rpc && !isLoopbackBind(config.rpc.host)) {
    log.warn(
      "RPC is reachable from other machines on {address}; clients from {allowed} may try to " +
        "log in. Prefer 127.0.0.1 and an SSH tunnel (docs/rpc.md#security).",
      {
        address: `${config.rpc.host}:${rpc?.addr.port}`,
        allowed: config.rpcAllowIps.map((c) => `${c.address}/${c.prefix}`).join(", "),
      },
    );
  }

  let stopping: Promise<void> | null = null;
  return {
    nodeId,
    p2pAddress: network.listenAddress,
    rpcUrl,
    stopRequested: stopRequest.promise,
    failed,
    stop() {
      stopping ??= (async () => {
        log.info("shutting down");
        await rpc?.shutdown();
        await cookie?.remove();
        await stopServices();
        dirLock.release();
        log.info("stopped cleanly");
      })();
      return stopping;
    },
  };
}

/** Without any peer this long, a node that was told about peers is unhealthy. */
const HEALTH_NO_PEERS_GRACE_MS = 5 * 60_000;
/** An event loop this late cannot keep pings and votes on time. */
const HEALTH_MAX_LAG_SECONDS = 5;

/**
 * `/health`: 503 when the node cannot do its job: no peer for five minutes although peers
 * were configured, no block for `--stall-blocks` block intervals while peers are connected, or
 * an event loop so stalled that timers are seconds late. A brief gap (a restart of the only
 * peer, a failed round) is not a failure, so restarts by a watchdog do not cascade.
 */
class HealthCheck {
  #lastPeerSeen = Date.now();
  constructor(
    private readonly o: {
      peers: () => number;
      expectsPeers: boolean;
      height: () => number;
      syncState: () => string;
      lagSeconds: () => number;
      stall: () => StallStatus;
      missingVotes: () => string[];
    },
  ) {}

  report() {
    const now = Date.now();
    const peers = this.o.peers();
    if (peers > 0) this.#lastPeerSeen = now;
    const problems: string[] = [];
    if (this.o.expectsPeers && peers === 0 && now - this.#lastPeerSeen > HEALTH_NO_PEERS_GRACE_MS) {
      problems.push(`no peers for ${Math.round((now - this.#lastPeerSeen) / 1000)} s`);
    }
    const lag = this.o.lagSeconds();
    if (lag > HEALTH_MAX_LAG_SECONDS) problems.push(`event loop lag ${lag.toFixed(1)} s`);
    const stall = this.o.stall();
    if (stall.stalled) problems.push(stallText(stall, peers, this.o.missingVotes()));
    return {
      ok: problems.length === 0,
      problems,
      height: this.o.height(),
      peers,
      syncState: this.o.syncState(),
    };
  }
}

/** The stall verdict as `getblockchaininfo` shows it (seconds; threshold 0 = watch off). */
function stallJson(s: StallStatus) {
  return {
    stalled: s.stalled,
    quietSeconds: Math.round(s.quietMs / 1000),
    thresholdSeconds: s.thresholdMs / 1000,
  };
}

/** One line on a stall, for /health and the log: how long, how many peers, whose votes lack. */
function stallText(stall: StallStatus, peers: number, missing: string[]): string {
  const votes = missing.length === 0
    ? "no vote is overdue in the current round yet"
    : `missing votes from ${missing.map((id) => id.slice(0, 16)).join(", ")}`;
  return `chain stalled: no block for ${Math.round(stall.quietMs / 1000)} s ` +
    `(threshold ${stall.thresholdMs / 1000} s, --stall-blocks) with ${peers} peers; ${votes}`;
}

/** How often the stall watch is consulted for its log lines. */
const STALL_PROBE_INTERVAL_MS = 1_000;

/** Logs a stall when it starts and once per threshold while it lasts, and its end. */
function startStallProbe(
  stall: StallWatch,
  status: () => StallStatus,
  o: { height: () => number; peers: () => number; missingVotes: () => string[] },
): () => void {
  const timer = setInterval(() => {
    const s = status();
    switch (stall.notice(Date.now(), s)) {
      case "warn": {
        const missing = o.missingVotes();
        log.warn("{problem}", {
          problem: stallText(s, o.peers(), missing),
          height: o.height(),
          missingVotes: missing,
        });
        return;
      }
      case "recovered":
        log.info("chain moving again at height {height}", { height: o.height() });
        return;
    }
  }, STALL_PROBE_INTERVAL_MS);
  return () => clearInterval(timer);
}

/** The listener errors that mean "this address cannot be bound", as opposed to a file error. */
function isBindFailure(e: unknown): boolean {
  return e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.AddrNotAvailable;
}

/** A listener's "host:port" as configured (port 0 included). */
function listenText(hp: HostPort): string {
  return formatHostPort(hp.host, hp.port, { allowPortZero: true });
}

function formatHost(h: string): string {
  return h.includes(":") ? `[${h}]` : h;
}

function startLagProbe(metrics: NodeMetrics): () => void {
  let expected = performance.now() + LAG_PROBE_INTERVAL_MS;
  let lastWarn = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const lag = Math.max(0, now - expected);
    expected = now + LAG_PROBE_INTERVAL_MS;
    metrics.eventLoopLag.set(lag / 1000);
    metrics.residentMemory.set(Deno.memoryUsage().rss);
    if (lag > LAG_WARN_MS && now - lastWarn > 60_000) {
      lastWarn = now;
      log.warn("event loop lagged {lag} ms", { lag: Math.round(lag) });
    }
  }, LAG_PROBE_INTERVAL_MS);
  return () => clearInterval(timer);
}

interface RpcDeps {
  network: NetworkService;
  chain: Chain;
  sync: SyncService;
  consensus: ConsensusService;
  genesis: Genesis;
  key: KeyPair;
  stateMachine: ReturnType<typeof createStateMachine>;
  /** When this process started (ms), for `uptime`. */
  startedAt: number;
  /** The node's own stall verdict (`--stall-blocks`), the one /health uses. */
  stall: () => StallStatus;
  /** Asks the process to stop cleanly (the `stop` method). */
  requestStop: () => void;
}

function blockJson(cb: CommittedBlock, height: number, network: string) {
  const h = cb.block.header;
  return {
    height,
    hash: toHex(blockHash(h)),
    version: h.version,
    prevHash: toHex(h.prevHash),
    timestamp: h.timestamp,
    time: new Date(h.timestamp).toISOString(),
    proposer: toHex(h.proposer),
    round: h.round,
    payloadRoot: toHex(h.payloadRoot),
    validatorSetHash: toHex(h.validatorSetHash),
    records: cb.block.records.map((r) => ({ type: r.type, data: toHex(r.data) })),
    transactions: (cb.block.transactions ?? []).map((t) => transactionJson(network, t)),
    lastCommit: cb.block.lastCommit ? certificateJson(cb.block.lastCommit) : null,
    certificate: certificateJson(cb.certificate),
  };
}

function certificateJson(c: Certificate) {
  return {
    height: c.height,
    round: c.round,
    blockHash: toHex(c.blockHash),
    signatures: c.signatures.map((s) => ({
      validator: toHex(s.validator),
      signature: toHex(s.signature),
    })),
    encoded: toHex(encodeCertificate(c)),
  };
}

/** Blocks a record of our own stays valid for: ample time to reach a proposer. */
const OWN_RECORD_TTL_BLOCKS = 100;

function submitOwnRecord(d: RpcDeps, make: (nonce: number, expiresAt: number) => BlockRecord) {
  const tip = d.chain.tip().height;
  const record = make(
    recordNonceOf(d.chain.stateView(), d.key.publicKey),
    tip + OWN_RECORD_TTL_BLOCKS,
  );
  const r = d.consensus.submitRecord(record, null);
  if (typeof r === "object") throw new RpcError(-26, `record refused: ${r.invalid}`);
  if (r === "full") throw new RpcError(-26, "record pool is full; try again later");
  return { id: recordId(record), status: r, expiresAt: tip + OWN_RECORD_TTL_BLOCKS };
}

/** Heights are whole numbers from 0 (the genesis) up. */
function heightParam(h: unknown): number {
  if (typeof h !== "number" || !Number.isSafeInteger(h) || h < 0) {
    throw new RpcError(-32602, "height must be a whole number >= 0");
  }
  return h;
}

/**
 * The RPC method table: every method with its declared params (rpc/methods.ts maps positional
 * params to these names, checks their types and writes `help` from them). Documented in
 * docs/rpc.md; keep the two in step.
 */
function rpcMethods(d: RpcDeps): MethodTable {
  const none = [] as const;
  return {
    getpeerinfo: {
      category: "Network",
      summary: "Live, handshaken peer connections, one object each.",
      params: none,
      result: "array of peer objects",
      handler: () => d.network.peers(),
    },
    getconnectioncount: {
      category: "Network",
      summary: "Number of live peer connections.",
      params: none,
      result: "number",
      handler: () => d.network.peers().length,
    },
    getnetworkinfo: {
      category: "Network",
      summary: "This node on the network: id, listen address, connection counts, bans.",
      params: none,
      result: "object",
      handler: () => ({
        version: TIMENODE_VERSION,
        network: d.genesis.network,
        ...d.network.info(),
      }),
    },
    setban: {
      category: "Network",
      summary: "Ban or unban a peer key (an IP, or a loopback host:port).",
      params: [
        {
          name: "key",
          type: "string",
          required: true,
          description: "an IP, or a host:port as shown by getpeerinfo",
        },
        {
          name: "action",
          type: "string",
          required: false,
          description: '"add" (default) or "remove"',
        },
        {
          name: "seconds",
          type: "number",
          required: false,
          description: "ban length; default 86400",
        },
      ],
      result: "{key, until} or {key, removed}",
      handler: ({ key: raw, action = "add", seconds = 86_400 }) => {
        // The key a connection from there would get: an IP ("::ffff:1.2.3.4" folds to
        // "1.2.3.4", "203.0.113.5:24100" to "203.0.113.5"), or a loopback "host:port".
        const key = typeof raw === "string" && raw.length <= 80
          ? tryCanonicalIp(raw) ?? keyForDialTarget(raw)
          : null;
        if (key === null) {
          throw new RpcError(-32602, "key must be an IP, or a host:port as shown by getpeerinfo");
        }
        if (action === "remove") return { key, removed: d.network.unbanPeer(key) };
        if (action !== "add") throw new RpcError(-32602, 'action must be "add" or "remove"');
        if (typeof seconds !== "number" || !(seconds > 0) || seconds > 10 * 365 * 86_400) {
          throw new RpcError(-32602, "seconds must be a positive number");
        }
        if (!d.network.banPeer(key, Date.now() + seconds * 1000, "operator ban")) {
          throw new RpcError(
            -32602,
            `${key} cannot be banned (a bare loopback address covers every local peer)`,
          );
        }
        const until = d.network.listBans().find((b) => b.key === key)?.until ?? Date.now();
        return { key, until: new Date(until).toISOString() };
      },
    },
    listbanned: {
      category: "Network",
      summary: "Bans in force.",
      params: none,
      result: "array of {key, until, untilIso, reason}",
      handler: () =>
        d.network.listBans().map((b) => ({ ...b, untilIso: new Date(b.until).toISOString() })),
    },
    getblockchaininfo: {
      category: "Blockchain",
      summary: "Tip, genesis, block interval and sync state.",
      params: none,
      result: "object",
      handler: () => {
        const tip = d.chain.tip();
        const s = d.sync.info();
        return {
          network: d.genesis.network,
          genesisHash: toHex(d.chain.genesisHash),
          height: tip.height,
          bestHash: toHex(tip.hash),
          bestTime: tip.timestamp,
          blockIntervalMs: d.genesis.blockIntervalMs,
          syncState: s.state,
          targetHeight: s.targetHeight,
          progress: s.progress,
          stall: stallJson(d.stall()),
        };
      },
    },
    getblockcount: {
      category: "Blockchain",
      summary: "Height of the tip.",
      params: none,
      result: "number",
      handler: () => d.chain.tip().height,
    },
    getblockhash: {
      category: "Blockchain",
      summary: "Hash of the block at a height (0: the genesis hash).",
      params: [{ name: "height", type: "integer", required: true, description: "0 to the tip" }],
      result: "hex string",
      handler: ({ height }) => {
        const h = heightParam(height);
        if (h === 0) return toHex(d.chain.genesisHash);
        const cb = d.chain.getBlock(h);
        if (!cb) throw new RpcError(-5, `no block at height ${h}`);
        return toHex(blockHash(cb.block.header));
      },
    },
    getblock: {
      category: "Blockchain",
      summary: "A block with its records and certificate, by height or by hash.",
      params: [{
        name: "block",
        aliases: ["height", "hash"],
        type: ["integer", "string"],
        required: true,
        description: "a height, or a 64-character hex block hash",
      }],
      result: "block object",
      handler: ({ block }) => {
        let h: number | undefined;
        if (typeof block === "number") h = heightParam(block);
        else if (typeof block === "string" && /^[0-9a-f]{64}$/.test(block)) {
          h = d.chain.getHeightOfHash(fromHex(block));
        } else throw new RpcError(-32602, "expected a height or a 64-char hex block hash");
        const cb = h === undefined ? undefined : d.chain.getBlock(h);
        if (!cb || h === undefined) throw new RpcError(-5, "block not found");
        return blockJson(cb, h, d.genesis.network);
      },
    },
    getbalance: {
      category: "Blockchain",
      summary: "Balance of a reward address, in base units.",
      params: [{
        name: "address",
        type: "string",
        required: true,
        description: "1 to 128 characters",
      }],
      result: "{address, balance} (balance a decimal string)",
      handler: ({ address }) => {
        if (typeof address !== "string" || address.length === 0 || address.length > 128) {
          throw new RpcError(-32602, "address must be a non-empty string");
        }
        return { address, balance: balanceOf(d.chain.stateView(), address).toString() };
      },
    },
    getconsensusinfo: {
      category: "Consensus",
      summary: "The consensus engine's height, round and step, the validator set, and this " +
        "node's own stake standing (self).",
      params: none,
      result: "object",
      handler: () => ({
        ...d.consensus.info(),
        self: ((view) =>
          ownStakeStatus(
            d.stateMachine.masternodeList(view, d.chain.tip().height),
            toHex(d.key.publicKey),
            d.stateMachine.stake,
            isTombstoned((k) => view.get(k), toHex(d.key.publicKey)),
          ))(d.chain.stateView()),
      }),
    },
    getrecordpool: {
      category: "Consensus",
      summary: "Records waiting for a block.",
      params: none,
      result: "{size, bytes}",
      handler: () => d.consensus.poolInfo(),
    },
    masternodelist: {
      category: "Masternode",
      summary: "Masternodes of the chain state at the tip, pending ones included.",
      params: none,
      result: "array of masternode objects",
      handler: () => d.stateMachine.masternodeList(d.chain.stateView(), d.chain.tip().height),
    },
    registermasternode: {
      category: "Masternode",
      summary: "Sign and submit this node's registration as a masternode.",
      params: [
        {
          name: "rewardAddress",
          type: "string",
          required: true,
          description: "where rewards go: an address of this network",
        },
        {
          name: "address",
          type: "string",
          required: false,
          description: "the host:port other masternodes dial; default --listen",
        },
      ],
      result: "{id, status, expiresAt}",
      handler: ({ rewardAddress, address = d.network.listenAddress }) => {
        if (
          typeof rewardAddress !== "string" || rewardAddress.length === 0 ||
          rewardAddress.length > 128
        ) {
          throw new RpcError(-32602, "rewardAddress must be a string of 1 to 128 characters");
        }
        const check = checkAddress(d.genesis.network, rewardAddress);
        if (!check.ok) throw new RpcError(-32602, `rewardAddress: ${check.why}`);
        if (
          typeof address !== "string" || address.startsWith("[::]:") ||
          !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address) ||
          address.startsWith("0.0.0.0:")
        ) {
          throw new RpcError(-32602, "address must be the host:port other masternodes can dial");
        }
        return submitOwnRecord(
          d,
          (nonce, expiresAt) =>
            signRegistration(d.key, {
              genesisHash: d.chain.genesisHash,
              nonce,
              expiresAt,
              rewardAddress,
              address,
            }),
        );
      },
    },
    deregistermasternode: {
      category: "Masternode",
      summary: "Sign and submit this node's deregistration.",
      params: none,
      result: "{id, status, expiresAt}",
      handler: () =>
        submitOwnRecord(
          d,
          (nonce, expiresAt) =>
            signDeregistration(d.key, { genesisHash: d.chain.genesisHash, nonce, expiresAt }),
        ),
    },
    uptime: {
      category: "Control",
      summary: "Seconds since this node started.",
      params: none,
      result: "number",
      handler: () => Math.floor((Date.now() - d.startedAt) / 1000),
    },
    stop: {
      category: "Control",
      summary: "Stop the node cleanly, as SIGTERM does.",
      params: none,
      result: "text",
      handler: () => {
        d.requestStop();
        return "timenode stopping";
      },
    },
  };
}
