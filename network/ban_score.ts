/**
 * Misbehavior scores and bans, per peer key.
 *
 * Owns: the score of each peer key, the threshold that turns a score into a ban, the ban list,
 * its bounds, and its persisted form (`bans.json`, with a small async load/save helper for the
 * shell, as `addr_book.ts` has for `peers.json`).
 * Must never: read a clock or disconnect anyone. `BanScores` never touches the disk: the caller
 * passes `now`, acts on `{ banned: true }`, and saves with `saveBans`. Never bans a bare
 * loopback IP (docs/lessons.md#18: that would cut this machine off from every local node at
 * once).
 *
 * Score model (after btcd's dynamic ban score): a score has two parts.
 *  - persistent: offences no honest peer commits (a bad handshake signature, a block with a
 *    forged certificate). It never decays; it is forgotten only with the whole entry.
 *  - transient (the default): offences an honest but buggy or overloaded peer might commit
 *    now and then (a malformed message, an unsolicited response). It halves every
 *    `halfLifeMs`, so occasional faults never add up to a ban but a burst does.
 * Reaching `threshold` bans the key for `banDurationMs` and clears its score, so it starts
 * fresh when the ban ends. Only bans are persisted: a restart forgives partial scores.
 *
 * Keys are scored and banned by what their owner controls: an IPv6 address by its /64 (one host
 * is routinely given a whole /64, so per-address scores and bans would be reset by changing the
 * low bits), an IPv4 address and a loopback "host:port" key as themselves (`banPrefix`).
 * Operator bans (`setban`) are marked and never evicted to make room for an automatic one.
 */
import { readJsonFile, replaceFileDurably } from "../storage/durable_file.ts";
import { isBareLoopbackIp } from "./peer_key.ts";
import { banPrefix } from "./netgroup.ts";

export interface BanScoreOptions {
  threshold: number;
  banDurationMs: number;
  halfLifeMs: number;
  maxTrackedKeys: number;
  maxBans: number;
}

export const BAN_SCORE_DEFAULTS: BanScoreOptions = {
  /** As in Bitcoin Core and btcd: 100 points, so a score reads as a percentage of a ban. */
  threshold: 100,
  /** A day: long enough to stop a hostile peer, short enough that a fixed friend comes back. */
  banDurationMs: 24 * 60 * 60 * 1000,
  /**
   * Five minutes. A peer sending a 10-point fault every minute settles near 77 points and is
   * never banned; eleven such faults within a few seconds ban it.
   */
  halfLifeMs: 5 * 60 * 1000,
  /** Scores kept in memory; above this the lowest score is forgotten first. */
  maxTrackedKeys: 10_000,
  /** Bans kept; above this the ban that ends soonest is dropped first. */
  maxBans: 10_000,
};

/** Reasons can quote peer text; keep what we store and log short. */
export const MAX_REASON_LENGTH = 128;
/** Keys are IPs or "host:port"; anything longer in a ban file is not one of ours. */
const MAX_KEY_LENGTH = 512;
/** Largest `bans.json` that `loadBans` will parse: 10,000 bans take about 2 MB. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** Below this a transient score is indistinguishable from zero and the entry can go. */
const NEGLIGIBLE_SCORE = 0.5;

export interface BanEntry {
  key: string;
  /** Milliseconds since the epoch when the ban ends. */
  until: number;
  reason: string;
  /** Set by the operator (`setban`): never evicted by an automatic ban. */
  operator?: boolean;
}

export interface AddResult {
  /** The score this addition reached; 0 for a key that was already banned (not tracked). */
  score: number;
  banned: boolean;
  /** Banned by this addition (false while an earlier ban still runs): count and log it once. */
  newlyBanned: boolean;
}

export interface AddOptions {
  /** Count the points in the never-decaying part (offences no honest peer commits). */
  persistent?: boolean;
}

interface ScoreEntry {
  persistent: number;
  transient: number;
  /** When `transient` was last brought up to date. */
  updatedAt: number;
}

interface BanFileV1 {
  version: 1;
  bans: BanEntry[];
}

/** The key a score or ban of `key` is kept under: an IPv6 address's /64, else the key. */
export function banKey(key: string): string {
  return banPrefix(key) ?? key;
}

/** Keys a ban may apply to: anything but a bare loopback IP. */
export function isBannable(key: string): boolean {
  return typeof key === "string" && key.length > 0 && !isBareLoopbackIp(key);
}

function clampReason(reason: string): string {
  return reason.length > MAX_REASON_LENGTH ? reason.slice(0, MAX_REASON_LENGTH) : reason;
}

export class BanScores {
  readonly #opts: BanScoreOptions;
  readonly #scores = new Map<string, ScoreEntry>();
  readonly #bans = new Map<string, BanEntry>();

  constructor(opts: Partial<BanScoreOptions> = {}) {
    const o = { ...BAN_SCORE_DEFAULTS, ...opts };
    if (
      !(o.threshold > 0) || !(o.banDurationMs > 0) || !(o.halfLifeMs > 0) ||
      !(o.maxTrackedKeys >= 1) || !(o.maxBans >= 1)
    ) {
      throw new RangeError(`invalid ban score options: ${JSON.stringify(o)}`);
    }
    this.#opts = o;
  }

  get options(): Readonly<BanScoreOptions> {
    return this.#opts;
  }

  /** Keys with a live score (for metrics and bound checks). */
  get trackedKeys(): number {
    return this.#scores.size;
  }

  #decayed(e: ScoreEntry, now: number): number {
    // A clock that steps backwards must not inflate a score: treat it as no time passing.
    const elapsed = Math.max(0, now - e.updatedAt);
    return e.transient * 2 ** (-elapsed / this.#opts.halfLifeMs);
  }

  /**
   * Adds `points` to `key`'s score. Returns the new score and whether the key is banned now
   * (newly or still). Non-positive or non-finite points change nothing.
   */
  add(
    rawKey: string,
    points: number,
    reason: string,
    now: number,
    opts: AddOptions = {},
  ): AddResult {
    const key = banKey(rawKey);
    if (this.isBanned(key, now)) return { score: 0, banned: true, newlyBanned: false };
    const e = this.#scores.get(key) ?? this.#track(key, now);
    e.transient = this.#decayed(e, now);
    e.updatedAt = Math.max(e.updatedAt, now);
    if (Number.isFinite(points) && points > 0) {
      if (opts.persistent) e.persistent += points;
      else e.transient += points;
    }
    const score = e.persistent + e.transient;
    if (score >= this.#opts.threshold && isBannable(key)) {
      this.ban(key, now + this.#opts.banDurationMs, reason);
      return { score, banned: true, newlyBanned: true };
    }
    return { score, banned: false, newlyBanned: false };
  }

  #track(key: string, now: number): ScoreEntry {
    if (this.#scores.size >= this.#opts.maxTrackedKeys) this.#evictLowestScore(now);
    const e: ScoreEntry = { persistent: 0, transient: 0, updatedAt: now };
    this.#scores.set(key, e);
    return e;
  }

  #evictLowestScore(now: number): void {
    let lowestKey: string | null = null;
    let lowest = Infinity;
    for (const [k, e] of this.#scores) {
      const s = e.persistent + this.#decayed(e, now);
      if (s < lowest) {
        lowest = s;
        lowestKey = k;
      }
    }
    if (lowestKey !== null) this.#scores.delete(lowestKey);
  }

  /** Current score (0 for unknown keys and while banned). */
  score(key: string, now: number): number {
    const e = this.#scores.get(banKey(key));
    return e ? e.persistent + this.#decayed(e, now) : 0;
  }

  isBanned(rawKey: string, now: number): boolean {
    const key = banKey(rawKey);
    const b = this.#bans.get(key);
    if (!b) return false;
    if (b.until > now) return true;
    this.#bans.delete(key);
    return false;
  }

  /** The active ban on `key`, if any. */
  banOf(key: string, now: number): BanEntry | undefined {
    return this.isBanned(key, now) ? { ...this.#bans.get(banKey(key))! } : undefined;
  }

  /**
   * Bans `key` until `until` (ms since the epoch), replacing a shorter ban (an operator ban
   * stays an operator ban). Returns false and does nothing for a key that may not be banned (a
   * bare loopback IP), or when the list is full of operator bans.
   */
  ban(rawKey: string, until: number, reason: string, opts: { operator?: boolean } = {}): boolean {
    const key = banKey(rawKey);
    if (!isBannable(key) || !Number.isFinite(until)) return false;
    const existing = this.#bans.get(key);
    const operator = opts.operator === true || existing?.operator === true;
    if (existing && existing.until >= until) {
      if (operator && !existing.operator) existing.operator = true;
      return true;
    }
    if (!existing && this.#bans.size >= this.#opts.maxBans && !this.#evictSoonestAutomaticBan()) {
      return false;
    }
    const entry: BanEntry = { key, until, reason: clampReason(reason) };
    if (operator) entry.operator = true;
    this.#bans.set(key, entry);
    this.#scores.delete(key);
    return true;
  }

  /** Drops the automatic ban that ends soonest; false when every ban is an operator's. */
  #evictSoonestAutomaticBan(): boolean {
    let soonestKey: string | null = null;
    let soonest = Infinity;
    for (const [k, b] of this.#bans) {
      if (!b.operator && b.until < soonest) {
        soonest = b.until;
        soonestKey = k;
      }
    }
    if (soonestKey === null) return false;
    this.#bans.delete(soonestKey);
    return true;
  }

  /** Lifts a ban and forgets the score. Returns whether there was a ban. */
  unban(rawKey: string): boolean {
    const key = banKey(rawKey);
    this.#scores.delete(key);
    return this.#bans.delete(key);
  }

  /** How many keys are banned at `now` (for RPC and metrics). */
  bannedCount(now: number): number {
    let n = 0;
    for (const b of this.#bans.values()) if (b.until > now) n++;
    return n;
  }

  /** Active bans, soonest to end first (for RPC). */
  bans(now: number): BanEntry[] {
    this.prune(now);
    return [...this.#bans.values()].map((b) => ({ ...b })).sort((a, b) => a.until - b.until);
  }

  /** Drops ended bans and scores that have decayed to nothing. Call it now and then. */
  prune(now: number): void {
    for (const [k, b] of this.#bans) if (b.until <= now) this.#bans.delete(k);
    for (const [k, e] of this.#scores) {
      if (e.persistent === 0 && this.#decayed(e, now) < NEGLIGIBLE_SCORE) this.#scores.delete(k);
    }
  }

  toJSON(): BanFileV1 {
    return { version: 1, bans: [...this.#bans.values()].map((b) => ({ ...b })) };
  }

  /**
   * Adds the bans in `toJSON()` output read back from disk to this instance; returns how many
   * were taken. Malformed entries and unbannable keys are skipped rather than failing the whole
   * file; ended bans are dropped on the next `isBanned` or `prune`.
   */
  restore(json: unknown): number {
    if (typeof json !== "object" || json === null) return 0;
    const file = json as Partial<BanFileV1>;
    if (file.version !== 1 || !Array.isArray(file.bans)) return 0;
    let restored = 0;
    for (const raw of file.bans as unknown[]) {
      if (typeof raw !== "object" || raw === null) continue;
      const b = raw as Partial<BanEntry>;
      if (typeof b.key !== "string" || b.key.length > MAX_KEY_LENGTH) continue;
      if (typeof b.until !== "number" || !Number.isFinite(b.until)) continue;
      const reason = typeof b.reason === "string" ? b.reason : "";
      if (this.ban(b.key, b.until, reason, { operator: b.operator === true })) restored++;
    }
    return restored;
  }

  /** A new instance holding the unexpired bans of a saved file (see `restore`). */
  static fromJSON(json: unknown, now: number, opts: Partial<BanScoreOptions> = {}): BanScores {
    const scores = new BanScores(opts);
    scores.restore(json);
    scores.prune(now);
    return scores;
  }
}

// ---------------------------------------------------------------------------------------------
// Persistence helpers for the shell. Async so a save never blocks the event loop.

/** Writes the bans in force to `path` durably (see storage/durable_file.ts). */
export async function saveBans(path: string, scores: BanScores): Promise<void> {
  await replaceFileDurably(path, new TextEncoder().encode(JSON.stringify(scores.toJSON()) + "\n"));
}

export class BanFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BanFileError";
  }
}

/**
 * Adds the bans saved at `path` to `into` and returns how many were taken. A missing file adds
 * none. An unreadable, oversized or corrupt one throws `BanFileError`: the caller logs it and
 * goes on, because a lost ban list must never stop a node from starting. Malformed entries
 * inside a valid file are skipped (see `BanScores.restore`).
 */
export async function loadBans(path: string, into: BanScores): Promise<number> {
  const json = await readJsonFile(
    path,
    MAX_FILE_BYTES,
    "ban list",
    (message) => new BanFileError(message),
  );
  return json === null ? 0 : into.restore(json);
}
