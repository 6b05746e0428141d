/**
 * The sync service: the shell around the scheduler. It turns network events into scheduler
 * events, carries out the scheduler's actions, runs fetched batches through the verification
 * pool, applies them strictly in order, serves `getBlocks` to peers, announces our new tips,
 * and reports progress (logs, metrics, `info()` for RPC).
 *
 * Owns: timers, the buffer of verified blocks awaiting their turn, the worker pool, the serving
 * limiter, announcements and progress logs.
 * Must never: decide which peer to ask or blame (the scheduler does), store a block itself (the
 * chain validates and stores), block the event loop for long (signatures are checked in
 * workers, applying is chunked), or apply a block out of order.
 */
import { getLogger } from "@logtape/logtape";
import type { ApplyItem, ChainApi } from "../chain/api.ts";
import { decodeCommittedBlock } from "../chain/block.ts";
import type { NetworkApi } from "../network/api.ts";
import { type Blocks, type GetBlocks, MESSAGE_LIMITS } from "../network/messages.ts";
import type { SyncMetrics } from "../metrics/definitions.ts";
import {
  APPLY_CHUNK_BLOCKS,
  APPLY_TURN_BUDGET_MS,
  BEHIND_EVIDENCE_TTL_MS,
  CATCH_UP_LOG_BLOCKS,
  CATCH_UP_LOG_MS,
  MIN_APPLY_CHUNK_BLOCKS,
  PENALTY_SERVE_FLOOD,
  PROGRESS_LOG_INTERVAL_MS,
  SERVE_MAX_BYTES,
  TICK_INTERVAL_MS,
} from "./constants.ts";
import { SyncProgress } from "./progress.ts";
import {
  type SchedulerConfig,
  type SyncAction,
  SyncScheduler,
  type SyncState,
} from "./scheduler.ts";
import {
  type BlockRequest,
  ServeLimiter,
  type ServeLimiterConfig,
  type ServeStats,
} from "./serve_limiter.ts";
import { VerifyPool } from "./verify_pool.ts";
import { type BatchCheck, type CheckedBlock, checkEncodedBlocks } from "./verify_worker.ts";

const log = getLogger(["timenode", "sync"]);

/** Overrides for tests and benchmarks; production uses the defaults in constants.ts. */
export interface SyncTuning {
  scheduler?: Partial<SchedulerConfig>;
  serve?: Partial<ServeLimiterConfig>;
  tickIntervalMs?: number;
  progressLogIntervalMs?: number;
  applyChunkBlocks?: number;
  verifyChunkBlocks?: number;
  serveMaxBytes?: number;
}

export interface SyncServiceOptions {
  network: NetworkApi;
  chain: ChainApi;
  metrics: SyncMetrics;
  genesisHash: Uint8Array;
  /** Milliseconds; defaults to Date.now. */
  now?: () => number;
  /** Uniform in [0, 1); defaults to Math.random. */
  random?: () => number;
  /** Verification workers; defaults to the core count within [1, 4]. */
  workers?: number;
  tuning?: SyncTuning;
}

/** What `getblockchaininfo` reports about sync. */
export interface SyncInfo {
  state: SyncState;
  height: number;
  targetHeight: number;
  /** 0..1. */
  progress: number;
  /** Peers serving us right now (requests in flight or a batch in the last seconds). */
  peersInUse: string[];
  blocksPerSecond: number;
  /** Seconds to the target at the current rate; null when not moving. */
  etaSeconds: number | null;
}

const STATE_CODE: Record<SyncState, number> = { idle: 0, syncing: 1, synced: 2 };

export class SyncService {
  readonly #network: NetworkApi;
  readonly #chain: ChainApi;
  readonly #metrics: SyncMetrics;
  readonly #genesisHash: Uint8Array;
  readonly #now: () => number;
  readonly #workers: number | undefined;
  readonly #tuning: SyncTuning;
  readonly #scheduler: SyncScheduler;
  readonly #limiter: ServeLimiter;
  readonly #progress = new SyncProgress();
  /**
   * Verified blocks by height, waiting for their turn to be applied. Their bytes belong to sync
   * (a worker's returned batch, or a message's own copy), so decoding may point into them.
   */
  readonly #ready = new Map<number, CheckedBlock>();
  #pool: VerifyPool | null = null;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  #closed = false;
  #draining = false;
  #tipUpdateQueued = false;
  /** Highest tip the scheduler and the buffer have been told about. */
  #knownTip: number;
  #lastAnnounced: number;
  #lastState: SyncState = "idle";
  #lastProgressLog = 0;
  #syncStartedAt = 0;
  #syncStartHeight = 0;
  /** This sync is a real catch-up (CATCH_UP_LOG_*), so its start and end are logged at info. */
  #catchUpLogged = false;
  /** When sync last applied a fetched block (fully validated): evidence that we are behind. */
  #lastFetchedApplyAt = -Infinity;
  /** The highest quorum certificate above our tip that consensus reported, and when. */
  #quorumAhead = { height: 0, at: -Infinity };
  /** Smoothed wall time to apply one block; sizes the chunk of each applying turn. */
  #applyMsPerBlock = 0;

  constructor(opts: SyncServiceOptions) {
    this.#network = opts.network;
    this.#chain = opts.chain;
    this.#metrics = opts.metrics;
    this.#genesisHash = opts.genesisHash.slice();
    this.#now = opts.now ?? Date.now;
    this.#workers = opts.workers;
    this.#tuning = opts.tuning ?? {};
    const tip = this.#chain.tip().height;
    this.#knownTip = tip;
    this.#lastAnnounced = tip;
    this.#scheduler = new SyncScheduler({
      localHeight: tip,
      random: opts.random ?? Math.random,
      config: this.#tuning.scheduler,
    });
    this.#limiter = new ServeLimiter(this.#tuning.serve);
  }

  /** Subscribes to the network and the chain and starts fetching. Call once. */
  start(): void {
    if (this.#started) throw new Error("SyncService already started");
    this.#started = true;
    const net = this.#network;
    net.onPeerReady((peer) =>
      this.#event(() => this.#scheduler.peerTip(peer.key, peer.bestHeight, this.#now()))
    );
    net.onPeerTip((key, height) =>
      this.#event(() => this.#scheduler.peerTip(key, height, this.#now()))
    );
    net.onPeerGone((key) => {
      if (this.#closed) return;
      this.#limiter.forget(key);
      this.#event(() => this.#scheduler.peerGone(key, this.#now()));
    });
    net.onMessage(
      "blockAnnounce",
      (key, m) => this.#event(() => this.#scheduler.peerAnnounced(key, m.height, this.#now())),
    );
    net.onMessage("blocks", (key, m) => this.#onBlocks(key, m));
    net.onMessage("getBlocks", (key, m) => this.#onGetBlocks(key, m));
    this.#chain.onBlockApplied(() => {
      // Every stored block counts, whether sync or this node's consensus applied it.
      this.#metrics.blocksApplied.inc();
      this.#queueTipUpdate();
    });

    const m = this.#metrics;
    m.syncState.collectFrom(() => STATE_CODE[this.state()]);
    m.syncTargetHeight.collectFrom(() =>
      Math.max(this.#scheduler.targetHeight(), this.#chain.tip().height)
    );
    m.chainHeight.collectFrom(() => this.#chain.tip().height);

    const tip = this.#chain.tip();
    net.setLocalTip(tip.height, tip.hash);
    this.#progress.record(this.#now(), tip.height);
    this.#event(() => this.#scheduler.localTip(tip.height, this.#now()));
    for (const peer of net.peers()) {
      this.#event(() => this.#scheduler.peerTip(peer.key, peer.bestHeight, this.#now()));
    }
    this.#tickTimer = setInterval(
      () => this.#tick(),
      this.#tuning.tickIntervalMs ?? TICK_INTERVAL_MS,
    );
  }

  /** Stops timers and workers. Network and chain handlers become no-ops. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tickTimer);
    clearTimeout(this.#drainTimer);
    this.#pool?.close();
    this.#ready.clear();
  }

  state(): SyncState {
    return this.#scheduler.state();
  }

  /**
   * Whether this node is behind on verified evidence, so consensus should wait for sync: a peer
   * claims a higher tip AND, within `BEHIND_EVIDENCE_TTL_MS`, sync applied a fetched block (the
   * chain checked its certificate against the validator set of its height) or consensus saw a
   * quorum certificate for a height above the tip (`noteQuorumAhead`). A claim alone
   * never pauses consensus: a peer that claims 10,000,000 and sends nothing holds no one up.
   */
  isBehind(): boolean {
    if (this.state() !== "syncing") return false;
    const now = this.#now();
    if (now - this.#lastFetchedApplyAt < BEHIND_EVIDENCE_TTL_MS) return true;
    return this.#quorumAhead.height > this.#chain.tip().height &&
      now - this.#quorumAhead.at < BEHIND_EVIDENCE_TTL_MS;
  }

  /**
   * Consensus saw a quorum certificate for `height` (precommits of its set, signatures
   * verified): the second kind of evidence `isBehind` accepts, until the tip reaches it.
   */
  noteQuorumAhead(height: number): void {
    const now = this.#now();
    const fresh = now - this.#quorumAhead.at < BEHIND_EVIDENCE_TTL_MS;
    if (fresh && height < this.#quorumAhead.height) return;
    this.#quorumAhead = { height, at: now };
  }

  info(): SyncInfo {
    const now = this.#now();
    const height = this.#chain.tip().height;
    const targetHeight = Math.max(height, this.#scheduler.targetHeight());
    const report = this.#progress.report(now, height, targetHeight);
    return {
      state: this.state(),
      height,
      targetHeight,
      progress: report.progress,
      peersInUse: this.#scheduler.peersInUse(now),
      blocksPerSecond: report.blocksPerSecond,
      etaSeconds: report.etaSeconds,
    };
  }

  /** How `getBlocks` from peers were handled: served, deferred by the rate limit, refused. */
  serveStats(): ServeStats {
    return this.#limiter.stats();
  }

  // ---- event plumbing -----------------------------------------------------------------------

  #event(step: () => SyncAction[]): void {
    if (this.#closed) return;
    this.#run(step());
    this.#afterChange();
  }

  #run(actions: SyncAction[]): void {
    const unreachable: string[] = [];
    for (const a of actions) {
      switch (a.kind) {
        case "request": {
          const sent = this.#network.send(a.peer, {
            kind: "getBlocks",
            fromHeight: a.from,
            count: a.count,
          });
          if (!sent) unreachable.push(a.peer);
          break;
        }
        case "penalize":
          if (a.code === "unbacked-height-claim") this.#metrics.unbackedHeightClaims.inc();
          log.warn("Penalizing peer {peer}: {reason} {detail}", {
            peer: a.peer,
            reason: a.code,
            detail: a.detail,
          });
          this.#network.penalize(a.peer, a.score, a.code, a.detail);
          break;
        case "discard":
          for (let h = a.from; h <= a.to; h++) this.#ready.delete(h);
          break;
        case "outcome":
          this.#metrics.syncRequests.inc({ outcome: a.outcome });
          if (a.outcome !== "ok") {
            log.debug("Block request to {peer} ended: {outcome}", a);
          }
          break;
      }
    }
    // A peer we cannot send to is gone, whatever the gone event's timing: re-plan without it.
    for (const peer of unreachable) this.#run(this.#scheduler.peerGone(peer, this.#now()));
  }

  #tick(): void {
    if (this.#closed) return;
    const now = this.#now();
    this.#run(this.#scheduler.tick(now));
    for (const { peer, req } of this.#limiter.due(now)) this.#serve(peer, req);
    this.#drain();
    this.#afterChange();
    const interval = this.#tuning.progressLogIntervalMs ?? PROGRESS_LOG_INTERVAL_MS;
    if (this.state() === "syncing" && now - this.#lastProgressLog >= interval) {
      this.#lastProgressLog = now;
      const i = this.info();
      log.info(
        "Syncing {height}/{targetHeight} ({percent}%), {blocksPerSecond} blocks/s, ETA {etaSeconds} s, peers {peers}",
        {
          height: i.height,
          targetHeight: i.targetHeight,
          percent: Math.floor(i.progress * 1000) / 10,
          blocksPerSecond: Math.round(i.blocksPerSecond),
          etaSeconds: i.etaSeconds === null ? null : Math.round(i.etaSeconds),
          peers: i.peersInUse,
        },
      );
    }
  }

  /** State transitions: logs, and our tip announcement once synced. */
  #afterChange(): void {
    if (this.#closed) return;
    const state = this.state();
    const now = this.#now();
    if (state === "syncing" && this.#lastState === "syncing" && !this.#catchUpLogged) {
      // Began as a blip, lasting longer than one: from now on it is a real catch-up.
      if (now - this.#syncStartedAt > CATCH_UP_LOG_MS) this.#logSyncStart("still syncing");
    }
    if (state !== this.#lastState) {
      const height = this.#chain.tip().height;
      if (state === "syncing") {
        this.#syncStartedAt = now;
        this.#syncStartHeight = height;
        this.#lastProgressLog = now;
        this.#catchUpLogged = false;
        if (this.#scheduler.targetHeight() - height > CATCH_UP_LOG_BLOCKS) {
          this.#logSyncStart("started");
        } else {
          log.debug("Sync started at {height}, target {targetHeight}", {
            height,
            targetHeight: this.#scheduler.targetHeight(),
          });
        }
      } else if (state === "synced" && this.#lastState === "syncing") {
        const seconds = (now - this.#syncStartedAt) / 1000;
        const blocks = height - this.#syncStartHeight;
        const real = this.#catchUpLogged || blocks > CATCH_UP_LOG_BLOCKS ||
          now - this.#syncStartedAt > CATCH_UP_LOG_MS;
        const message = "Synced at {height}: {blocks} blocks in {seconds} s";
        if (real) log.info(message, { height, blocks, seconds });
        else log.debug(message, { height, blocks, seconds });
      } else {
        log.info("Sync state {state} at {height}", { state, height });
      }
      this.#lastState = state;
    }
    if (state === "synced") this.#announceTip();
  }

  #logSyncStart(how: "started" | "still syncing"): void {
    this.#catchUpLogged = true;
    log.info("Sync {how} at {height}, target {targetHeight}", {
      how,
      height: this.#chain.tip().height,
      targetHeight: this.#scheduler.targetHeight(),
    });
  }

  /** Once per new tip, never per message or per peer: no announce storms. */
  #announceTip(): void {
    const tip = this.#chain.tip();
    if (tip.height <= this.#lastAnnounced) return;
    this.#lastAnnounced = tip.height;
    this.#network.broadcast({ kind: "blockAnnounce", height: tip.height, hash: tip.hash });
  }

  // ---- fetching -----------------------------------------------------------------------------

  #onBlocks(peer: string, m: Blocks): void {
    if (this.#closed) return;
    let bytes = 0;
    for (const b of m.blocks) bytes += b.length;
    const verdict = this.#scheduler.batchReceived(
      peer,
      m.fromHeight,
      m.blocks.length,
      bytes,
      this.#now(),
    );
    this.#run(verdict.actions);
    if (verdict.accepted > 0) {
      const blocks = verdict.accepted === m.blocks.length
        ? m.blocks
        : m.blocks.slice(0, verdict.accepted);
      this.#verify(m.fromHeight, blocks).catch((e) => {
        // A bug here must not become an unhandled rejection, which would end the process.
        log.error("Handling blocks from {peer} failed: {error}", {
          peer,
          error: (e as Error).stack ?? String(e),
        });
      });
    }
    this.#afterChange();
  }

  async #verify(from: number, blocks: Uint8Array[]): Promise<void> {
    if (this.#closed) return;
    let check: BatchCheck;
    try {
      check = await this.#verifyPool().verify(from, blocks);
    } catch (e) {
      if (this.#closed) return;
      log.warn("Verify pool failed ({error}); checking {count} blocks on the main thread", {
        error: (e as Error).message,
        count: blocks.length,
      });
      check = checkEncodedBlocks(
        this.#genesisHash,
        from,
        blocks,
        this.#verifyPool().signersFor(from, blocks.length),
      );
    }
    if (this.#closed) return;
    const tip = this.#chain.tip().height;
    for (let i = 0; i < check.okCount; i++) {
      if (from + i > tip) this.#ready.set(from + i, check.blocks[i]);
    }
    if (check.failure) {
      const height = from + check.failure.index;
      if (height > tip) this.#reject(height, check.failure.reason);
    }
    this.#scheduleDrain();
  }

  /** Started on first use: a node that is never behind never spawns workers. */
  #verifyPool(): VerifyPool {
    this.#pool ??= new VerifyPool({
      genesisHash: this.#genesisHash,
      // Certificates are checked against their set before any signature (docs/security.md).
      validatorSetFor: (height) => this.#chain.validatorSetFor(height),
      metrics: this.#metrics,
      workers: this.#workers,
      chunkBlocks: this.#tuning.verifyChunkBlocks,
    });
    return this.#pool;
  }

  #reject(height: number, reason: string): void {
    this.#metrics.blocksRejected.inc({ reason });
    // A block from the future may mean our clock is behind: never ban an honest peer for it.
    const blame = reason !== "future-timestamp";
    if (blame) log.warn("Rejected block {height}: {reason}", { height, reason });
    else log.warn("Block {height} is ahead of this machine's clock; is NTP running?", { height });
    this.#run(this.#scheduler.blockRejected(height, reason, this.#now(), blame));
    this.#afterChange();
  }

  /** Applies the verified blocks that follow the tip, one chunk per turn of the event loop. */
  #drain(): void {
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    try {
      const tip = this.#chain.tip().height;
      const chunk = this.#applyChunk();
      // Hashed and checked by the workers: the main thread decodes (as views into the bytes,
      // which are its own), validates against the tip, runs the state machine and stores.
      const items: ApplyItem[] = [];
      for (let h = tip + 1; items.length < chunk; h++) {
        const checked = this.#ready.get(h);
        if (!checked) break;
        try {
          const cb = decodeCommittedBlock(checked.encoded, "view");
          items.push({ cb, encoded: checked.encoded, workerHash: checked.hash });
        } catch {
          // The worker decoded it already; this only guards against a worker/main mismatch.
          this.#ready.delete(h);
          this.#reject(h, "decode");
          break;
        }
      }
      if (items.length === 0) return;
      let result;
      const started = performance.now();
      try {
        result = this.#chain.applyBlocks(items, { signaturesVerified: true });
      } catch (e) {
        // Our failure (disk, bug), not the peer's: keep the blocks and retry on the next tick.
        log.error("Applying blocks from {height} failed: {error}", {
          height: tip + 1,
          error: (e as Error).message,
        });
        return;
      }
      const perBlock = (performance.now() - started) / items.length;
      this.#applyMsPerBlock = this.#applyMsPerBlock === 0
        ? perBlock
        : this.#applyMsPerBlock * 0.7 + perBlock * 0.3;
      for (let i = 0; i < result.applied; i++) this.#ready.delete(tip + 1 + i);
      if (result.applied > 0) this.#lastFetchedApplyAt = this.#now();
      if (result.error) this.#reject(tip + 1 + result.applied, result.error.reason);
      if (this.#ready.has(this.#chain.tip().height + 1)) this.#scheduleDrain();
    } finally {
      this.#draining = false;
    }
  }

  /** As many blocks as fit the turn budget at the measured speed, within fixed bounds. */
  #applyChunk(): number {
    const max = this.#tuning.applyChunkBlocks ?? APPLY_CHUNK_BLOCKS;
    if (this.#applyMsPerBlock <= 0) return Math.min(max, MIN_APPLY_CHUNK_BLOCKS * 4);
    const fit = Math.floor(APPLY_TURN_BUDGET_MS / this.#applyMsPerBlock);
    return Math.max(Math.min(MIN_APPLY_CHUNK_BLOCKS, max), Math.min(max, fit));
  }

  /**
   * Applying always runs from a timer, one chunk per turn: worker replies are message events,
   * and a steady stream of those handled with heavy work starves every timer in Deno (RPC,
   * pings, our own ticks). From a timer, other timers and I/O get their turn between chunks
   * (docs/lessons.md#17).
   */
  #scheduleDrain(): void {
    if (this.#closed || this.#drainTimer !== undefined) return;
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      this.#drain();
    }, 0);
  }

  #queueTipUpdate(): void {
    if (this.#closed || this.#tipUpdateQueued) return;
    this.#tipUpdateQueued = true;
    queueMicrotask(() => {
      this.#tipUpdateQueued = false;
      this.#tipChanged();
    });
  }

  /** Blocks were applied (by us or by consensus): tell the scheduler and the network. */
  #tipChanged(): void {
    if (this.#closed) return;
    const tip = this.#chain.tip();
    const now = this.#now();
    for (let h = this.#knownTip + 1; h <= tip.height; h++) this.#ready.delete(h);
    this.#knownTip = Math.max(this.#knownTip, tip.height);
    this.#progress.record(now, tip.height);
    this.#network.setLocalTip(tip.height, tip.hash);
    this.#event(() => this.#scheduler.localTip(tip.height, now));
    this.#scheduleDrain();
  }

  // ---- serving ------------------------------------------------------------------------------

  #onGetBlocks(peer: string, m: GetBlocks): void {
    if (this.#closed) return;
    const req = { fromHeight: m.fromHeight, count: m.count };
    switch (this.#limiter.admit(peer, req, this.#now())) {
      case "serve":
        this.#serve(peer, req);
        break;
      case "deferred":
        break;
      case "refused":
        this.#network.penalize(
          peer,
          PENALTY_SERVE_FLOOD,
          "getblocks-flood",
          "getBlocks while its deferred queue is full",
        );
        break;
    }
  }

  #serve(peer: string, req: BlockRequest): void {
    const tip = this.#chain.tip().height;
    const count = Math.min(req.count, MESSAGE_LIMITS.maxBlocksPerBatch);
    let blocks: Uint8Array[] = [];
    if (count > 0 && req.fromHeight >= 1 && req.fromHeight <= tip) {
      try {
        blocks = this.#chain.getEncodedBlocks(
          req.fromHeight,
          count,
          this.#tuning.serveMaxBytes ?? SERVE_MAX_BYTES,
        ).slice(0, count);
      } catch (e) {
        // Silence beats an empty answer here: the peer times out and asks someone else,
        // instead of penalising us for claiming blocks we did not send.
        log.error("Reading blocks {from}+{count} for {peer} failed: {error}", {
          from: req.fromHeight,
          count,
          peer,
          error: (e as Error).message,
        });
        return;
      }
    }
    this.#network.send(peer, { kind: "blocks", fromHeight: req.fromHeight, blocks });
  }
}
