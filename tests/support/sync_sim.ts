/**
 * A discrete-event simulation around the pure `SyncScheduler`: a virtual clock, scripted peers
 * (honest, slow, silent, corrupt, empty, over-counting, lying, flaky), a verify/apply pipeline
 * with a finite speed, bans at score 100, and a tip that may keep moving.
 *
 * Owns: nothing production uses. Checks the scheduler's invariants after every event and
 * reports whether the local chain reached the target and who got penalised.
 */
import type { MisbehaviorCode } from "../../network/api.ts";
import { type SchedulerConfig, type SyncAction, SyncScheduler } from "../../sync/scheduler.ts";
import type { ServeLimiter } from "../../sync/serve_limiter.ts";
import { EventQueue } from "./event_queue.ts";
import { seededRandomFn, TestRandom } from "./random.ts";

export type Behaviour =
  | "honest"
  | "slow"
  | "silent"
  | "corrupt"
  | "empty"
  | "overcount"
  | "liar"
  | "flaky";

export interface SimPeerSpec {
  key: string;
  behaviour: Behaviour;
  /** Virtual time at which the peer connects (default 0). */
  joinAt?: number;
  /** The peer disconnects for good at this time. */
  leaveAt?: number;
}

export interface SimOptions {
  seed: number;
  /** Final height of the real chain. */
  chainHeight: number;
  /** Height honest peers have at time 0; the tip then grows by one block per `growEveryMs`. */
  startHeight?: number;
  growEveryMs?: number;
  /** Our height at time 0. */
  localHeight?: number;
  peers: SimPeerSpec[];
  config?: Partial<SchedulerConfig>;
  /** Speed of verify + apply (default: instant). */
  pipelineBlocksPerSec?: number;
  blockBytes?: number;
  /** Honest peers answer through these limiters (one per peer, keyed by peer). */
  limiters?: Map<string, ServeLimiter>;
  maxTimeMs?: number;
  tickMs?: number;
  pingEveryMs?: number;
}

export interface SimResult {
  reached: boolean;
  localHeight: number;
  timeMs: number;
  finalState: string;
  penalties: { peer: string; score: number; code: MisbehaviorCode; detail: string }[];
  requestsByPeer: Map<string, number>;
  outcomes: Map<string, number>;
  maxBufferedBytes: number;
  maxAheadOfTip: number;
  maxInFlight: number;
}

interface PeerRuntime {
  spec: SimPeerSpec;
  connected: boolean;
  banned: boolean;
  score: number;
  /** Bumped on every (re)connect, so answers from an old session are dropped. */
  session: number;
}

interface Buffered {
  valid: boolean;
  verified: boolean;
}

export function simulate(opts: SimOptions): SimResult {
  const random = new TestRandom(opts.seed);
  const rand = (lo: number, hi: number) => random.int(lo, hi);
  const blockBytes = opts.blockBytes ?? 1_600;
  const tickMs = opts.tickMs ?? 250;
  const pingEveryMs = opts.pingEveryMs ?? 30_000;
  const maxTimeMs = opts.maxTimeMs ?? 3_600_000;
  const growEveryMs = opts.growEveryMs ?? 0;
  let realHeight = opts.startHeight ?? opts.chainHeight;
  let local = opts.localHeight ?? 0;
  let now = 0;
  const queue = new EventQueue();
  const scheduler = new SyncScheduler({
    localHeight: local,
    random: seededRandomFn(`scheduler/${opts.seed}`),
    config: opts.config,
  });
  const cfg = {
    windowBlocks: 10_000,
    maxBufferedBytes: 64 << 20,
    batchBlocks: 500,
    ...opts.config,
  };
  const peers = new Map<string, PeerRuntime>();
  const buffer = new Map<number, Buffered>();
  const result: SimResult = {
    reached: false,
    localHeight: local,
    timeMs: 0,
    finalState: "",
    penalties: [],
    requestsByPeer: new Map(),
    outcomes: new Map(),
    maxBufferedBytes: 0,
    maxAheadOfTip: 0,
    maxInFlight: 0,
  };
  let pipelineFreeAt = 0;

  const claimedHeight = (p: PeerRuntime) =>
    p.spec.behaviour === "liar" ? realHeight + 1_000 : realHeight;

  const run = (actions: SyncAction[]) => {
    for (const a of actions) {
      switch (a.kind) {
        case "request":
          result.requestsByPeer.set(a.peer, (result.requestsByPeer.get(a.peer) ?? 0) + 1);
          onRequest(a.peer, a.from, a.count);
          break;
        case "penalize": {
          result.penalties.push({ peer: a.peer, score: a.score, code: a.code, detail: a.detail });
          const p = peers.get(a.peer);
          if (p && p.connected) {
            p.score += a.score;
            if (p.score >= 100) {
              p.banned = true;
              queue.push(now, () => disconnect(p));
            }
          }
          break;
        }
        case "discard":
          for (let h = a.from; h <= a.to; h++) buffer.delete(h);
          break;
        case "outcome":
          result.outcomes.set(a.outcome, (result.outcomes.get(a.outcome) ?? 0) + 1);
          break;
      }
    }
    checkInvariants();
  };

  const connect = (p: PeerRuntime) => {
    if (p.banned || p.connected) return;
    p.connected = true;
    p.session++;
    run(scheduler.peerTip(p.spec.key, claimedHeight(p), now));
  };

  const disconnect = (p: PeerRuntime) => {
    if (!p.connected) return;
    p.connected = false;
    run(scheduler.peerGone(p.spec.key, now));
  };

  const answer = (p: PeerRuntime, delay: number, from: number, n: number, bad: number) => {
    const session = p.session;
    queue.push(now + delay, () => {
      if (!p.connected || p.session !== session) return;
      const verdict = scheduler.batchReceived(p.spec.key, from, n, n * blockBytes, now);
      run(verdict.actions);
      for (let i = 0; i < verdict.accepted; i++) {
        const h = from + i;
        if (h > local) buffer.set(h, { valid: i !== bad, verified: false });
      }
      if (verdict.accepted > 0) verify(from, verdict.accepted);
    });
  };

  const onRequest = (key: string, from: number, count: number) => {
    const p = peers.get(key)!;
    const b = p.spec.behaviour;
    if (b === "silent") return;
    if (b === "flaky" && random.next() < 0.2) {
      queue.push(now + rand(0, 50), () => disconnect(p));
      queue.push(now + rand(1_000, 10_000), () => connect(p));
      return;
    }
    const limiter = opts.limiters?.get(key);
    if (limiter) {
      const admission = limiter.admit("us", { fromHeight: from, count }, now);
      if (admission !== "serve") return; // the stats say it; the scheduler copes with the silence
    }
    const latency = b === "slow" ? rand(3_000, 30_000) : rand(1, 40);
    const has = Math.max(0, Math.min(count, realHeight - from + 1));
    switch (b) {
      case "empty":
        return answer(p, latency, from, 0, -1);
      case "overcount":
        return answer(p, latency, from, count + 1, -1);
      case "corrupt": {
        const n = Math.max(1, has);
        return answer(p, latency, from, n, random.next() < 0.7 ? rand(0, n - 1) : -1);
      }
      default: {
        // Honest answers may be cut short by the byte budget.
        const n = has > 1 && random.next() < 0.15 ? rand(1, has) : has;
        return answer(p, latency, from, n, -1);
      }
    }
  };

  const verify = (from: number, n: number) => {
    const speed = opts.pipelineBlocksPerSec;
    const cost = speed ? n * 1000 / speed : 0;
    pipelineFreeAt = Math.max(pipelineFreeAt, now) + cost;
    queue.push(pipelineFreeAt, () => {
      for (let h = from; h < from + n; h++) {
        const b = buffer.get(h);
        if (b) b.verified = true;
      }
      drain();
    });
  };

  const drain = () => {
    const before = local;
    for (;;) {
      const b = buffer.get(local + 1);
      if (!b || !b.verified) break;
      if (!b.valid) {
        run(scheduler.blockRejected(local + 1, "bad-certificate", now));
        break;
      }
      buffer.delete(local + 1);
      local++;
    }
    if (local !== before) run(scheduler.localTip(local, now));
  };

  const checkInvariants = () => {
    const ranges = scheduler.ranges();
    let expect = scheduler.localHeight() + 1;
    for (const r of ranges) {
      if (r.start !== expect || r.end < r.start) {
        throw new Error(`ranges not a partition at ${expect}: ${JSON.stringify(ranges)}`);
      }
      expect = r.end + 1;
    }
    if (expect !== scheduler.nextHeight()) {
      throw new Error(`ranges end at ${expect - 1}, next height ${scheduler.nextHeight()}`);
    }
    const ahead = scheduler.nextHeight() - 1 - scheduler.localHeight();
    if (ahead > cfg.windowBlocks) throw new Error(`requested ${ahead} blocks ahead of the tip`);
    result.maxAheadOfTip = Math.max(result.maxAheadOfTip, ahead);
    const buffered = scheduler.bufferedBytes();
    result.maxBufferedBytes = Math.max(result.maxBufferedBytes, buffered);
    const inFlight = scheduler.inFlightRequests();
    if (inFlight < 0) throw new Error("negative in-flight count");
    result.maxInFlight = Math.max(result.maxInFlight, inFlight);
  };

  for (const spec of opts.peers) {
    const p: PeerRuntime = { spec, connected: false, banned: false, score: 0, session: 0 };
    peers.set(spec.key, p);
    queue.push(spec.joinAt ?? 0, () => connect(p));
    if (spec.leaveAt !== undefined) {
      queue.push(spec.leaveAt, () => {
        disconnect(p);
        p.banned = true; // gone for good
      });
    }
  }
  const tick = () => {
    run(scheduler.tick(now));
    queue.push(now + tickMs, tick);
  };
  queue.push(tickMs, tick);
  const ping = () => {
    for (const p of peers.values()) {
      if (p.connected) run(scheduler.peerTip(p.spec.key, claimedHeight(p), now));
    }
    queue.push(now + pingEveryMs, ping);
  };
  queue.push(pingEveryMs, ping);
  if (growEveryMs > 0 && realHeight < opts.chainHeight) {
    const grow = () => {
      realHeight++;
      for (const p of peers.values()) {
        if (!p.connected) continue;
        const key = p.spec.key;
        const height = claimedHeight(p);
        queue.push(now + rand(0, 20), () => {
          if (p.connected) run(scheduler.peerAnnounced(key, height, now));
        });
      }
      if (realHeight < opts.chainHeight) queue.push(now + growEveryMs, grow);
    };
    queue.push(growEveryMs, grow);
  }

  while (queue.size > 0) {
    const e = queue.pop()!;
    now = e.at;
    if (now > maxTimeMs) break;
    e.run();
    if (local >= opts.chainHeight && realHeight >= opts.chainHeight) {
      result.reached = true;
      break;
    }
  }
  result.localHeight = local;
  result.timeMs = now;
  result.finalState = scheduler.state();
  return result;
}
