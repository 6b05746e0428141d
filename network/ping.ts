/**
 * Ping state of one connection, pure, on an injected clock.
 *
 * One ping is outstanding at a time (as Bitcoin Core): a new ping is sent at each interval
 * only once the previous pong has arrived, so `pingsSent - pongsReceived` is 0 or 1 on a
 * healthy link and the counters prove that every ping got its pong. The schedule advances by
 * whole intervals from the start and skips missed slots, so a stalled event loop never causes
 * a burst of pings. The peer is dropped only when the outstanding ping is overdue by the pong
 * timeout: a slow pong is measured, never punished.
 *
 * Must never: send a ping before the handshake (the peer state machine starts it after) or
 * treat a pong with an unknown nonce as proof of life.
 */
import { RTT_SMOOTHING } from "./constants.ts";

export type PingTick =
  | { action: "none" }
  | { action: "send"; nonce: bigint }
  | { action: "timeout"; overdueMs: number };

export type PongResult = { matched: true; rttMs: number } | { matched: false };

export class PingState {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #nextPingAt: number;
  #outstanding: { nonce: bigint; sentAt: number } | null = null;
  pingsSent = 0;
  pongsReceived = 0;
  lastRttMs: number | null = null;
  minRttMs: number | null = null;
  smoothedRttMs: number | null = null;

  constructor(intervalMs: number, timeoutMs: number, startedAt: number) {
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    // The first ping goes out right after the handshake, so RTT is known at once.
    this.#nextPingAt = startedAt;
  }

  /** When `tick` next has something to do. */
  nextDeadline(): number {
    if (this.#outstanding) {
      return Math.min(this.#nextPingAt, this.#outstanding.sentAt + this.#timeoutMs);
    }
    return this.#nextPingAt;
  }

  tick(now: number, nonce: () => bigint): PingTick {
    if (this.#outstanding && now - this.#outstanding.sentAt >= this.#timeoutMs) {
      return { action: "timeout", overdueMs: now - this.#outstanding.sentAt };
    }
    if (now < this.#nextPingAt) return { action: "none" };
    // Advance to the next slot strictly after `now`: missed slots are skipped, not replayed.
    const missed = Math.floor((now - this.#nextPingAt) / this.#intervalMs) + 1;
    this.#nextPingAt += missed * this.#intervalMs;
    if (this.#outstanding) return { action: "none" };
    const n = nonce();
    this.#outstanding = { nonce: n, sentAt: now };
    this.pingsSent++;
    return { action: "send", nonce: n };
  }

  onPong(nonce: bigint, now: number): PongResult {
    if (!this.#outstanding || this.#outstanding.nonce !== nonce) return { matched: false };
    const rtt = Math.max(0, now - this.#outstanding.sentAt);
    this.#outstanding = null;
    this.pongsReceived++;
    this.lastRttMs = rtt;
    this.minRttMs = this.minRttMs === null ? rtt : Math.min(this.minRttMs, rtt);
    this.smoothedRttMs = this.smoothedRttMs === null
      ? rtt
      : this.smoothedRttMs + RTT_SMOOTHING * (rtt - this.smoothedRttMs);
    return { matched: true, rttMs: rtt };
  }
}
