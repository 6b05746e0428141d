/**
 * The sync scheduler: which block ranges to ask of which peer, and what to do when a peer is
 * slow, silent, gone or lying.
 *
 * Owns: the partition of heights above the local tip into ranges (pending, in flight, received),
 * per-peer request depth and timeouts, the fetch window (in blocks and bytes), blame for invalid
 * blocks, and the sync state (idle / syncing / synced).
 * Must never: do I/O, read a clock or call Math.random (time and randomness are injected), wait
 * for more than one peer before fetching (docs/lessons.md#9), or leave a needed range without a
 * way forward: every request has a timeout and a fallback peer (docs/lessons.md#11).
 *
 * Heights in (localHeight, nextHeight) are always covered by exactly one range; heights from
 * nextHeight on have never been asked for.
 */
import type { MisbehaviorCode } from "../network/api.ts";
import {
  INITIAL_BLOCK_BYTES_ESTIMATE,
  MAX_BUFFERED_BYTES,
  MAX_IN_FLIGHT_PER_PEER,
  MAX_IN_FLIGHT_TOTAL,
  MAX_REQUEST_TIMEOUT_MS,
  MIN_STALL_TIMEOUT_MS,
  PEER_IN_USE_WINDOW_MS,
  PENALTY_EMPTY_RESPONSE,
  PENALTY_INVALID_BLOCK,
  PENALTY_MALFORMED_RESPONSE,
  PENALTY_UNSOLICITED_BLOCKS,
  REQUEST_BATCH_BLOCKS,
  REQUEST_TIMEOUT_MS,
  STALE_REQUEST_TTL_MS,
  STALE_REQUESTS_PER_PEER,
  STALL_RESPONSE_FACTOR,
  STALL_TIMEOUT_MS,
  STRIKE_FORGIVE_MS,
  WINDOW_BLOCKS,
} from "./constants.ts";

export type SyncState = "idle" | "syncing" | "synced";

/** Labels of `timenode_sync_requests_total`. */
export type RequestOutcome = "ok" | "timeout" | "stalled" | "disconnected" | "invalid" | "empty";

export type SyncAction =
  /** Send `getBlocks {fromHeight: from, count}` to `peer`. */
  | { kind: "request"; peer: string; from: number; count: number }
  | { kind: "penalize"; peer: string; score: number; code: MisbehaviorCode; detail: string }
  /** Buffered blocks in [from, to] are void (they followed an invalid block): drop them. */
  | { kind: "discard"; from: number; to: number }
  /** A request ended; for metrics and logs. */
  | { kind: "outcome"; peer: string; outcome: RequestOutcome };

export interface SchedulerConfig {
  batchBlocks: number;
  windowBlocks: number;
  maxBufferedBytes: number;
  maxInFlightPerPeer: number;
  maxInFlightTotal: number;
  requestTimeoutMs: number;
  maxRequestTimeoutMs: number;
  /** Longest a frontier batch may block the window before it is asked elsewhere. */
  stallTimeoutMs: number;
  /** Shortest such wait, however fast peers usually answer. */
  minStallTimeoutMs: number;
  /** The wait is this many typical answer times, between the two bounds above. */
  stallResponseFactor: number;
  staleRequestsPerPeer: number;
  staleRequestTtlMs: number;
  peerInUseWindowMs: number;
  strikeForgiveMs: number;
}

export const DEFAULT_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = {
  batchBlocks: REQUEST_BATCH_BLOCKS,
  windowBlocks: WINDOW_BLOCKS,
  maxBufferedBytes: MAX_BUFFERED_BYTES,
  maxInFlightPerPeer: MAX_IN_FLIGHT_PER_PEER,
  maxInFlightTotal: MAX_IN_FLIGHT_TOTAL,
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  maxRequestTimeoutMs: MAX_REQUEST_TIMEOUT_MS,
  stallTimeoutMs: STALL_TIMEOUT_MS,
  minStallTimeoutMs: MIN_STALL_TIMEOUT_MS,
  stallResponseFactor: STALL_RESPONSE_FACTOR,
  staleRequestsPerPeer: STALE_REQUESTS_PER_PEER,
  staleRequestTtlMs: STALE_REQUEST_TTL_MS,
  peerInUseWindowMs: PEER_IN_USE_WINDOW_MS,
  strikeForgiveMs: STRIKE_FORGIVE_MS,
};

export interface SchedulerOptions {
  localHeight: number;
  /** Uniform in [0, 1); seeded in tests. */
  random: () => number;
  config?: Partial<SchedulerConfig>;
}

/** What `batchReceived` decided about a `blocks` answer. */
export interface BatchVerdict {
  /** How many blocks from the start of the answer to verify and buffer; 0 drops it. */
  accepted: number;
  actions: SyncAction[];
}

/** A read-only view of one range, for tests and diagnostics. */
export interface RangeView {
  start: number;
  end: number;
  status: RangeStatus;
  peer: string | null;
}

type RangeStatus = "pending" | "inflight" | "received";

interface Range {
  start: number;
  /** Inclusive. */
  end: number;
  status: RangeStatus;
  /** In flight: the peer asked. Received: the peer that served it (and takes the blame). */
  peer: string | null;
  sentAt: number;
  deadline: number;
  /** Received only. */
  bytes: number;
  /** Peers that failed this range; asked again only when nobody else can serve it. */
  avoid: Set<string>;
}

interface StaleRequest {
  from: number;
  count: number;
  expiresAt: number;
}

interface SyncPeer {
  height: number;
  inFlight: number;
  /** Current depth allowance: halves on a timeout, grows back by one per good answer. */
  limit: number;
  /** Consecutive failures; a peer with strikes is used only when no clean peer has room. */
  strikes: number;
  timeoutMs: number;
  stale: StaleRequest[];
  lastServedAt: number;
  lastFailureAt: number;
}

const count = (r: { start: number; end: number }) => r.end - r.start + 1;
const NO_PEERS: ReadonlySet<string> = new Set();

export class SyncScheduler {
  readonly #config: SchedulerConfig;
  readonly #random: () => number;
  readonly #peers = new Map<string, SyncPeer>();
  /** Sorted by start; covers (localHeight, nextHeight) exactly. */
  #ranges: Range[] = [];
  #localHeight: number;
  #nextHeight: number;
  #avgBlockBytes = INITIAL_BLOCK_BYTES_ESTIMATE;
  /** Smoothed time from request to good answer; starts where the stall wait is longest. */
  #avgResponseMs: number;

  constructor(opts: SchedulerOptions) {
    this.#config = { ...DEFAULT_SCHEDULER_CONFIG, ...opts.config };
    this.#random = opts.random;
    this.#localHeight = opts.localHeight;
    this.#nextHeight = opts.localHeight + 1;
    this.#avgResponseMs = this.#config.stallTimeoutMs / this.#config.stallResponseFactor;
  }

  // ---- queries ------------------------------------------------------------------------------

  state(): SyncState {
    if (this.#peers.size === 0) return "idle";
    return this.targetHeight() > this.#localHeight ? "syncing" : "synced";
  }

  localHeight(): number {
    return this.#localHeight;
  }

  /**
   * The best height claimed by a peer in good standing, or ours when none is ahead. A peer whose
   * last request failed (silent, stalling, lying) does not count until it delivers again: one
   * hostile peer claiming a huge height must not hold us in "syncing" forever. Its claim is
   * still fetched from when nobody better has the blocks.
   */
  targetHeight(): number {
    let best = this.#localHeight;
    for (const p of this.#peers.values()) if (p.strikes === 0 && p.height > best) best = p.height;
    return best;
  }

  /** The best height any connected peer claims, credible or not. */
  #bestClaim(): number {
    let best = this.#localHeight;
    for (const p of this.#peers.values()) if (p.height > best) best = p.height;
    return best;
  }

  /** Bytes received and not yet applied. */
  bufferedBytes(): number {
    let sum = 0;
    for (const r of this.#ranges) if (r.status === "received") sum += r.bytes;
    return sum;
  }

  inFlightRequests(): number {
    let n = 0;
    for (const p of this.#peers.values()) n += p.inFlight;
    return n;
  }

  /** Peers with requests in flight or that served a batch recently, sorted. */
  peersInUse(now: number): string[] {
    const out: string[] = [];
    for (const [key, p] of this.#peers) {
      if (p.inFlight > 0 || now - p.lastServedAt <= this.#config.peerInUseWindowMs) out.push(key);
    }
    return out.sort();
  }

  ranges(): RangeView[] {
    return this.#ranges.map((r) => ({
      start: r.start,
      end: r.end,
      status: r.status,
      peer: r.peer,
    }));
  }

  /** First height never requested. */
  nextHeight(): number {
    return this.#nextHeight;
  }

  // ---- events -------------------------------------------------------------------------------

  /** A peer's best height as reported by the network (hello, ping, pong, announce). */
  peerTip(peer: string, height: number, now: number): SyncAction[] {
    const actions: SyncAction[] = [];
    if (!Number.isSafeInteger(height) || height < 0) return actions;
    const p = this.#peers.get(peer);
    if (!p) {
      this.#peers.set(peer, this.#newPeer(height));
    } else {
      if (height < p.height) this.#withdrawAbove(peer, p, height, now);
      p.height = height;
    }
    this.#fill(now, actions);
    return actions;
  }

  /** A `blockAnnounce`: only ever raises the peer's height (an old announce may arrive late). */
  peerAnnounced(peer: string, height: number, now: number): SyncAction[] {
    const p = this.#peers.get(peer);
    if (p && height <= p.height) return [];
    return this.peerTip(peer, height, now);
  }

  peerGone(peer: string, now: number): SyncAction[] {
    const actions: SyncAction[] = [];
    if (!this.#peers.has(peer)) return actions;
    for (const r of this.#ranges) {
      if (r.status === "inflight" && r.peer === peer) {
        this.#toPending(r);
        actions.push({ kind: "outcome", peer, outcome: "disconnected" });
      }
    }
    this.#peers.delete(peer);
    this.#fill(now, actions);
    return actions;
  }

  /** The chain's tip moved (by sync or by consensus). */
  localTip(height: number, now: number): SyncAction[] {
    const actions: SyncAction[] = [];
    if (height > this.#localHeight) {
      this.#localHeight = height;
      this.#trimBelow(height, now);
      if (this.#nextHeight <= height) this.#nextHeight = height + 1;
    }
    this.#fill(now, actions);
    return actions;
  }

  /**
   * A `blocks` answer arrived from `peer`. Decides whether to keep it (and how much of it),
   * and punishes answers no honest peer sends.
   */
  batchReceived(
    peer: string,
    from: number,
    blockCount: number,
    bytes: number,
    now: number,
  ): BatchVerdict {
    const actions: SyncAction[] = [];
    const p = this.#peers.get(peer);
    if (!p) return { accepted: 0, actions };
    const r = this.#ranges.find((r) =>
      r.status === "inflight" && r.peer === peer && r.start === from
    );
    let accepted = 0;
    if (r) accepted = this.#answerActive(peer, p, r, blockCount, bytes, now, actions);
    else accepted = this.#answerStale(peer, p, from, blockCount, bytes, now, actions);
    this.#fill(now, actions);
    return { accepted, actions };
  }

  /**
   * The block at `height` failed verification or validation. The peer that served it is
   * penalised (unless `blame` is false: our own failure), and the rest of its batch is
   * discarded and asked of someone else.
   */
  blockRejected(height: number, reason: string, now: number, blame = true): SyncAction[] {
    const actions: SyncAction[] = [];
    const i = this.#ranges.findIndex((r) =>
      r.status === "received" && r.start <= height && height <= r.end
    );
    if (i < 0) return actions;
    const r = this.#ranges[i];
    const culprit = r.peer ?? "";
    actions.push({ kind: "discard", from: height, to: r.end });
    if (blame) {
      actions.push({ kind: "outcome", peer: culprit, outcome: "invalid" });
      actions.push({
        kind: "penalize",
        peer: culprit,
        score: PENALTY_INVALID_BLOCK,
        code: "invalid-block",
        detail: reason,
      });
    }
    const bad = this.#splitAt(i, height);
    this.#toPending(bad);
    if (blame) bad.avoid.add(culprit);
    const cp = this.#peers.get(culprit);
    if (cp && blame) {
      cp.strikes++;
      cp.lastFailureAt = now;
    }
    this.#fill(now, actions);
    return actions;
  }

  /** Timeouts, stalls and re-planning; call every few hundred ms. */
  tick(now: number): SyncAction[] {
    const actions: SyncAction[] = [];
    for (const p of this.#peers.values()) {
      if (p.stale.length > 0) p.stale = p.stale.filter((s) => s.expiresAt > now);
    }
    const overdue = new Set<string>();
    for (const r of this.#ranges) {
      if (r.status === "inflight" && r.deadline <= now) overdue.add(r.peer ?? "");
    }
    for (const peer of overdue) this.#failPeer(peer, "timeout", now, actions);
    this.#checkStall(now, actions);
    this.#fill(now, actions);
    return actions;
  }

  // ---- answers ------------------------------------------------------------------------------

  #answerActive(
    peer: string,
    p: SyncPeer,
    r: Range,
    blockCount: number,
    bytes: number,
    now: number,
    actions: SyncAction[],
  ): number {
    if (blockCount === 0) {
      actions.push({ kind: "outcome", peer, outcome: "empty" });
      actions.push({
        kind: "penalize",
        peer,
        score: PENALTY_EMPTY_RESPONSE,
        code: "empty-blocks-answer",
        detail: `no blocks from ${r.start} although it claims height ${p.height}`,
      });
      p.inFlight--;
      this.#toPending(r);
      r.avoid.add(peer);
      p.strikes++;
      p.lastFailureAt = now;
      // Take it at its word: it does not have these blocks, so stop asking until it says so.
      p.height = Math.min(p.height, r.start - 1);
      this.#withdrawAbove(peer, p, p.height, now);
      return 0;
    }
    if (blockCount > count(r)) {
      actions.push({ kind: "outcome", peer, outcome: "invalid" });
      actions.push({
        kind: "penalize",
        peer,
        score: PENALTY_MALFORMED_RESPONSE,
        code: "oversized-blocks-answer",
        detail: `${blockCount} blocks, asked ${count(r)}`,
      });
      p.inFlight--;
      this.#toPending(r);
      r.avoid.add(peer);
      p.strikes++;
      p.lastFailureAt = now;
      return 0;
    }
    actions.push({ kind: "outcome", peer, outcome: "ok" });
    this.#avgResponseMs = this.#avgResponseMs * 0.8 + (now - r.sentAt) * 0.2;
    p.inFlight--;
    p.strikes = 0;
    p.limit = Math.min(this.#config.maxInFlightPerPeer, p.limit + 1);
    p.timeoutMs = Math.max(this.#config.requestTimeoutMs, Math.floor(p.timeoutMs / 2));
    p.lastServedAt = now;
    this.#markReceived(r, peer, blockCount, bytes);
    return blockCount;
  }

  /** A late answer to a request that timed out or was superseded: use it if still useful. */
  #answerStale(
    peer: string,
    p: SyncPeer,
    from: number,
    blockCount: number,
    bytes: number,
    now: number,
    actions: SyncAction[],
  ): number {
    const si = p.stale.findIndex((s) => s.from === from);
    if (si < 0) {
      actions.push({
        kind: "penalize",
        peer,
        score: PENALTY_UNSOLICITED_BLOCKS,
        code: "unsolicited-blocks-answer",
        detail: `blocks from ${from}`,
      });
      return 0;
    }
    const stale = p.stale[si];
    p.stale.splice(si, 1);
    if (blockCount > stale.count) {
      actions.push({
        kind: "penalize",
        peer,
        score: PENALTY_MALFORMED_RESPONSE,
        code: "oversized-blocks-answer",
        detail: `${blockCount} blocks, asked ${stale.count}`,
      });
      return 0;
    }
    if (blockCount === 0) return 0;
    const r = this.#ranges.find((r) => r.start === from && r.status !== "received");
    if (!r) return 0;
    if (r.status === "inflight" && r.peer !== null) {
      const other = this.#peers.get(r.peer);
      if (other) this.#supersede(other, r, now);
    }
    p.lastServedAt = now;
    // Slow but alive: a late answer earns back some standing.
    p.strikes = Math.max(0, p.strikes - 1);
    const used = Math.min(blockCount, count(r));
    this.#markReceived(r, peer, used, Math.round(bytes * used / blockCount));
    return used;
  }

  #markReceived(r: Range, peer: string, blockCount: number, bytes: number): void {
    if (blockCount < count(r)) {
      const i = this.#ranges.indexOf(r);
      const rest = this.#splitAt(i, r.start + blockCount);
      this.#toPending(rest);
      rest.avoid = new Set();
    }
    r.status = "received";
    r.peer = peer;
    r.bytes = bytes;
    // Smooth toward the observed size so one odd batch does not swing the byte window.
    const perBlock = bytes / blockCount;
    this.#avgBlockBytes = Math.max(1, this.#avgBlockBytes * 0.75 + perBlock * 0.25);
  }

  // ---- failures -----------------------------------------------------------------------------

  /**
   * A peer let a request expire or stall. It answers in order, so everything queued behind that
   * request is written off too (late answers still count). It gets less work, and after a
   * timeout more time, next time.
   */
  #failPeer(
    peer: string,
    outcome: "timeout" | "stalled",
    now: number,
    actions: SyncAction[],
  ): void {
    const p = this.#peers.get(peer);
    if (p && outcome === "timeout") {
      p.timeoutMs = Math.min(this.#config.maxRequestTimeoutMs, p.timeoutMs * 2);
    }
    let first = true;
    for (const r of this.#ranges) {
      if (r.status !== "inflight" || r.peer !== peer) continue;
      this.#fail(r, outcome, now, actions, first);
      first = false;
    }
  }

  /** A request failed without an answer; `strike` once per incident, not per range. */
  #fail(
    r: Range,
    outcome: "timeout" | "stalled",
    now: number,
    actions: SyncAction[],
    strike = true,
  ): void {
    const peer = r.peer ?? "";
    const p = this.#peers.get(peer);
    actions.push({ kind: "outcome", peer, outcome });
    if (p) {
      if (strike) {
        p.strikes++;
        p.lastFailureAt = now;
        p.limit = Math.max(1, Math.floor(p.limit / 2));
      }
      this.#supersede(p, r, now);
    }
    this.#toPending(r);
    r.avoid.add(peer);
  }

  /**
   * The frontier batch blocks everything behind it: if it has been out for the stall timeout
   * while we cannot fetch further (window, bytes or request budget full) and another peer could
   * serve it, ask that peer instead (the slow peer's late answer still counts).
   */
  #checkStall(now: number, actions: SyncAction[]): void {
    const first = this.#ranges[0];
    if (!first || first.status !== "inflight" || first.start !== this.#localHeight + 1) return;
    if (now - first.sentAt < this.#stallTimeoutMs()) return;
    if (!this.#windowFull() && this.inFlightRequests() < this.#config.maxInFlightTotal) return;
    const slow = first.peer;
    const alternative = [...this.#peers].some(([key, p]) =>
      key !== slow && p.height >= first.start && p.inFlight < p.limit
    );
    if (!alternative) return;
    this.#failPeer(slow ?? "", "stalled", now, actions);
  }

  /** A few typical answer times: a peer far slower than the others is holding everyone up. */
  #stallTimeoutMs(): number {
    const c = this.#config;
    const min = Math.min(c.minStallTimeoutMs, c.stallTimeoutMs);
    return Math.max(min, Math.min(c.stallTimeoutMs, c.stallResponseFactor * this.#avgResponseMs));
  }

  /** The peer's request for `r` no longer counts as in flight; a late answer is still welcome. */
  #supersede(p: SyncPeer, r: Range, now: number): void {
    p.inFlight--;
    p.stale.push({
      from: r.start,
      count: count(r),
      expiresAt: now + this.#config.staleRequestTtlMs,
    });
    if (p.stale.length > this.#config.staleRequestsPerPeer) p.stale.shift();
  }

  /** The peer lowered its height: ranges it can no longer serve go back without blame. */
  #withdrawAbove(peer: string, p: SyncPeer, height: number, now: number): void {
    for (const r of this.#ranges) {
      if (r.status === "inflight" && r.peer === peer && r.end > height) {
        this.#supersede(p, r, now);
        this.#toPending(r);
      }
    }
  }

  /** Drops everything at or below the new local tip. */
  #trimBelow(height: number, now: number): void {
    const kept: Range[] = [];
    for (const r of this.#ranges) {
      if (r.start > height) {
        kept.push(r);
        continue;
      }
      if (r.status === "inflight") {
        // The peer's answer will start below the tip now; let it arrive as a stale answer.
        const p = this.#peers.get(r.peer ?? "");
        if (p) this.#supersede(p, r, now);
        this.#toPending(r);
      }
      if (r.end <= height) continue;
      if (r.status === "received") r.bytes = Math.round(r.bytes * (r.end - height) / count(r));
      r.start = height + 1;
      kept.push(r);
    }
    this.#ranges = kept;
  }

  // ---- planning -----------------------------------------------------------------------------

  /** Issues requests until every peer, the window or the byte budget is full. */
  #fill(now: number, actions: SyncAction[]): void {
    const cfg = this.#config;
    let total = this.inFlightRequests();
    while (total < cfg.maxInFlightTotal) {
      if (!this.#assignOne(now, actions)) break;
      total++;
    }
  }

  #assignOne(now: number, actions: SyncAction[]): boolean {
    // Holes below the frontier first: they block applying.
    for (let i = 0; i < this.#ranges.length; i++) {
      const r = this.#ranges[i];
      if (r.status !== "pending") continue;
      const peer = this.#pickPeer(r.start, r.avoid, now);
      if (!peer) continue;
      const p = this.#peers.get(peer)!;
      if (p.height < r.end) {
        const rest = this.#splitAt(i, p.height + 1);
        rest.avoid = new Set(r.avoid);
      }
      this.#send(r, peer, p, now, actions);
      return true;
    }
    const start = this.#nextHeight;
    const windowEnd = this.#localHeight + this.#config.windowBlocks;
    if (start > windowEnd) return false;
    let room = this.#config.batchBlocks;
    if (start > this.#localHeight + 1) {
      // The frontier batch is always allowed; beyond it, respect the byte budget.
      const free = this.#config.maxBufferedBytes - this.#projectedBytes();
      room = Math.min(room, Math.floor(free / this.#avgBlockBytes));
      if (room < 1) return false;
    }
    const peer = this.#pickPeer(start, NO_PEERS, now);
    if (!peer) return false;
    const p = this.#peers.get(peer)!;
    const end = Math.min(start + room - 1, windowEnd, p.height);
    const r: Range = {
      start,
      end,
      status: "pending",
      peer: null,
      sentAt: 0,
      deadline: 0,
      bytes: 0,
      avoid: new Set(),
    };
    this.#ranges.push(r);
    this.#nextHeight = end + 1;
    this.#send(r, peer, p, now, actions);
    return true;
  }

  #send(r: Range, peer: string, p: SyncPeer, now: number, actions: SyncAction[]): void {
    r.status = "inflight";
    r.peer = peer;
    r.sentAt = now;
    // A peer answers in order: each request queued before this one adds a timeout's worth.
    r.deadline = now + p.timeoutMs * (1 + p.inFlight);
    p.inFlight++;
    actions.push({ kind: "request", peer, from: r.start, count: count(r) });
  }

  /**
   * A peer with room that has block `height`. Peers come in tiers: clean, then recently failed
   * (strikes), then those that already failed this very range. Only the best tier that has the
   * height at all is used, even if it is busy for now: handing the range straight back to the
   * peer that just sat on it would stall the frontier again. Within the tier, the least loaded
   * peer wins, ties broken at random.
   */
  #pickPeer(height: number, avoid: ReadonlySet<string>, now: number): string | null {
    let bestTier = Infinity;
    for (const [key, p] of this.#peers) {
      if (p.height >= height) bestTier = Math.min(bestTier, this.#tier(key, p, avoid, now));
    }
    let best: string[] = [];
    let bestLoad = Infinity;
    for (const [key, p] of this.#peers) {
      if (p.height < height || p.inFlight >= p.limit) continue;
      if (this.#tier(key, p, avoid, now) !== bestTier) continue;
      const load = p.inFlight / p.limit;
      if (load < bestLoad) {
        bestLoad = load;
        best = [key];
      } else if (load === bestLoad) {
        best.push(key);
      }
    }
    if (best.length === 0) return null;
    if (best.length === 1) return best[0];
    return best[Math.min(best.length - 1, Math.floor(this.#random() * best.length))];
  }

  #tier(key: string, p: SyncPeer, avoid: ReadonlySet<string>, now: number): number {
    if (avoid.has(key)) return 2;
    // Strikes are forgiven after a while (longer for repeat offenders), so a peer that
    // hiccuped once is not idle forever, while a dead one is retried only now and then.
    if (p.strikes > 0) {
      const forgiveMs = this.#config.strikeForgiveMs * 2 ** Math.min(p.strikes - 1, 4);
      if (now - p.lastFailureAt < forgiveMs) return 1;
    }
    return 0;
  }

  #windowFull(): boolean {
    if (this.#ranges.some((r) => r.status === "pending")) return false;
    if (this.#nextHeight > this.#localHeight + this.#config.windowBlocks) return true;
    if (this.#nextHeight > this.#bestClaim()) return true;
    return this.#projectedBytes() + this.#avgBlockBytes > this.#config.maxBufferedBytes;
  }

  /** Buffered bytes plus the expected size of everything in flight. */
  #projectedBytes(): number {
    let sum = 0;
    for (const r of this.#ranges) {
      if (r.status === "received") sum += r.bytes;
      else if (r.status === "inflight") sum += count(r) * this.#avgBlockBytes;
    }
    return sum;
  }

  // ---- range helpers ------------------------------------------------------------------------

  /** Splits range i at `height` (first height of the new upper part) and returns the upper part. */
  #splitAt(i: number, height: number): Range {
    const r = this.#ranges[i];
    if (height === r.start) return r;
    const upper: Range = { ...r, start: height, avoid: new Set(r.avoid) };
    if (r.status === "received") {
      const share = (r.end - height + 1) / count(r);
      upper.bytes = Math.round(r.bytes * share);
      r.bytes -= upper.bytes;
    }
    r.end = height - 1;
    this.#ranges.splice(i + 1, 0, upper);
    return upper;
  }

  #toPending(r: Range): void {
    r.status = "pending";
    r.peer = null;
    r.bytes = 0;
  }

  #newPeer(height: number): SyncPeer {
    return {
      height,
      inFlight: 0,
      limit: this.#config.maxInFlightPerPeer,
      strikes: 0,
      timeoutMs: this.#config.requestTimeoutMs,
      stale: [],
      lastServedAt: -Infinity,
      lastFailureAt: -Infinity,
    };
  }
}
