/**
 * Transaction relay bookkeeping, pure: which announced ids to request from whom, which
 * answers were asked for, which ids were seen recently, which ids wait to be announced, and
 * per-peer rate limits (docs/protocol.md#transactions).
 *
 * Owns: the relay bounds and the "each transaction relayed once" memory.
 * Must never: read a clock (every call takes `now`), grow without bound, or request an id
 * twice while a request for it is outstanding.
 */
import { PerKeyLimiter } from "../network/rate_limit.ts";

export const RELAY_LIMITS = {
  /** Transactions per second a peer may announce or send us, and its burst. */
  ratePerSec: 5_000,
  burst: 20_000,
  /** Ids requested from one peer and not yet answered. */
  maxOutstandingPerPeer: 5_000,
  /** An unanswered request is forgotten after this, so another peer's copy can be asked for. */
  requestTimeoutMs: 10_000,
  /**
   * Ids remembered as seen (pooled, included, refused): about two minutes of the 3,000/s aim.
   * An id forgotten and announced again costs one request, never a second admission.
   */
  maxSeen: 400_000,
  /** Announcements wait this long to be batched into one message per peer. */
  announceDelayMs: 100,
  /** Ids per `txAnnounce` / `getTxs` (MESSAGE_LIMITS.maxTxsPerMessage). */
  maxIdsPerMessage: 1_000,
} as const;

interface Request {
  peer: string;
  at: number;
}

export class TxRelay {
  readonly #seen = new Map<string, true>();
  readonly #requested = new Map<string, Request>();
  readonly #outstanding = new Map<string, number>();
  /** Ids to announce, by the peer they came from ("" = local: announce to everyone). */
  readonly #toAnnounce = new Map<string, string[]>();
  readonly #limiter = new PerKeyLimiter({
    ratePerSec: RELAY_LIMITS.ratePerSec,
    burst: RELAY_LIMITS.burst,
    // Per peer even on loopback: devnet peers are distinct keys ("host:port"), and a local
    // flooder must be bounded like a remote one.
    exemptLoopback: false,
  });

  /** True when the id was seen or is being fetched: it must not be requested again. */
  isKnown(id: string): boolean {
    return this.#seen.has(id) || this.#requested.has(id);
  }

  /** Remembers `id` as handled (pooled, included or refused). */
  markSeen(id: string): void {
    if (this.#seen.has(id)) return;
    this.#seen.set(id, true);
    if (this.#seen.size > RELAY_LIMITS.maxSeen) {
      this.#seen.delete(this.#seen.keys().next().value as string);
    }
  }

  /** Charges `n` transactions to `peer`'s rate; false when over it (drop them, no penalty). */
  allow(peer: string, n: number, now: number): boolean {
    return this.#limiter.allow(peer, now, n);
  }

  /** The announced ids to request from `peer`: unknown ones, within its outstanding bound. */
  onAnnounce(peer: string, ids: readonly string[], now: number): string[] {
    if (!this.allow(peer, ids.length, now)) return [];
    const want: string[] = [];
    let outstanding = this.#outstanding.get(peer) ?? 0;
    for (const id of ids) {
      if (outstanding >= RELAY_LIMITS.maxOutstandingPerPeer) break;
      if (this.isKnown(id)) continue;
      this.#requested.set(id, { peer, at: now });
      outstanding++;
      want.push(id);
    }
    this.#outstanding.set(peer, outstanding);
    return want;
  }

  /** True when `id` was requested from `peer` (and clears the request); others are ignored. */
  takeRequested(peer: string, id: string): boolean {
    const r = this.#requested.get(id);
    if (!r || r.peer !== peer) return false;
    this.#requested.delete(id);
    this.#outstanding.set(peer, Math.max(0, (this.#outstanding.get(peer) ?? 1) - 1));
    return true;
  }

  /** Forgets requests older than the timeout, so the id may be requested from someone else. */
  expire(now: number): void {
    for (const [id, r] of this.#requested) {
      if (now - r.at < RELAY_LIMITS.requestTimeoutMs) break; // insertion order = time order
      this.#requested.delete(id);
      this.#outstanding.set(r.peer, Math.max(0, (this.#outstanding.get(r.peer) ?? 1) - 1));
    }
  }

  peerGone(peer: string): void {
    for (const [id, r] of this.#requested) if (r.peer === peer) this.#requested.delete(id);
    this.#outstanding.delete(peer);
    this.#limiter.delete(peer);
  }

  /** Queues `id` to be announced once, to every peer but `from` (null: our own). */
  queueAnnounce(id: string, from: string | null): void {
    const key = from ?? "";
    let list = this.#toAnnounce.get(key);
    if (!list) this.#toAnnounce.set(key, list = []);
    list.push(id);
  }

  get pendingAnnouncements(): number {
    let n = 0;
    for (const l of this.#toAnnounce.values()) n += l.length;
    return n;
  }

  /** The queued announcements, by origin peer (null = ours), in messages of at most 1,000 ids. */
  takeAnnouncements(): { except: string | null; ids: string[] }[] {
    const out: { except: string | null; ids: string[] }[] = [];
    for (const [key, ids] of this.#toAnnounce) {
      for (let i = 0; i < ids.length; i += RELAY_LIMITS.maxIdsPerMessage) {
        out.push({ except: key || null, ids: ids.slice(i, i + RELAY_LIMITS.maxIdsPerMessage) });
      }
    }
    this.#toAnnounce.clear();
    return out;
  }
}
