/**
 * The address book: peer addresses learned from `addresses` messages and from our own dials.
 *
 * Owns: which addresses we know, what happened when we tried them (lastSeen, lastTried,
 * lastSuccess, consecutive failures), which ones to dial next, which ones to tell others, the
 * bounds on all of it, and its persisted JSON form (plus a small atomic save/load helper).
 * Must never: dial, resolve names, or read a clock. It must never let one peer fill the book
 * (per-source rate limit, bounded size with randomized eviction that protects addresses that
 * have worked), learn a loopback or private address from a peer outside that network, hand
 * such an address to an outside peer, or hand out our own address.
 *
 * Locality is judged from peer keys (see peer_key.ts): a peer keyed on loopback may tell us
 * and be told loopback and private addresses (a devnet on one machine), a peer on a private
 * network may exchange private addresses, and a public peer only public ones.
 */
import { readJsonFile, replaceFileDurably } from "../storage/durable_file.ts";
import { type AddressEntry, MESSAGE_LIMITS } from "./messages.ts";
import {
  type AddressScope,
  canonicalAddress,
  hostScope,
  keyForDialTarget,
  keyScope,
  parseHostPort,
} from "./peer_key.ts";
import { PerKeyLimiter } from "./rate_limit.ts";
import { cryptoRandom, type Random, randomInt, shuffleInPlace } from "./random.ts";

export interface AddrBookOptions {
  maxEntries: number;
  learnRatePerSec: number;
  learnBurst: number;
  maxSources: number;
  retryBaseMs: number;
  retryCapMs: number;
  minRetryIntervalMs: number;
  maxFailures: number;
  maxAgeMs: number;
  maxFutureMs: number;
  evictionSample: number;
  shareMaxFailures: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const ADDR_BOOK_DEFAULTS: AddrBookOptions = {
  /** A masternode network has hundreds of nodes; 2,000 holds all of them with room for churn. */
  maxEntries: 2_000,
  /** Bitcoin Core's addr relay rate (0.1/s per peer): gossip, not a firehose. */
  learnRatePerSec: 0.1,
  /** One full `addresses` message at once, the answer to our own `getAddresses`. */
  learnBurst: MESSAGE_LIMITS.maxAddresses,
  /** Rate-limit buckets for sources; matches the inbound connection limit with headroom. */
  maxSources: 1_024,
  /** First retry of an address that failed waits a minute... */
  retryBaseMs: 60_000,
  /** ...doubling to an hour: a node that is gone costs us one dial an hour until dropped. */
  retryCapMs: 60 * 60 * 1000,
  /** Never redial an address within 30 s of the last try, whatever the outcome was. */
  minRetryIntervalMs: 30_000,
  /** Ten failures in a row (about four hours of backoff) with no recent success: forget it. */
  maxFailures: 10,
  /** Addresses nobody has seen working for 30 days are stale (Bitcoin uses 30 days too). */
  maxAgeMs: 30 * DAY_MS,
  /** Clocks drift; a lastSeen further ahead than 10 minutes is a lie and is clamped to now. */
  maxFutureMs: 10 * 60 * 1000,
  /** Eviction picks the worst of this many random entries: cheap, and hard to aim. */
  evictionSample: 8,
  /** Do not spread addresses that failed this many times in a row. */
  shareMaxFailures: 3,
};

/** A success within this long protects an address from being forgotten for its failures. */
const RECENT_SUCCESS_MS = 7 * DAY_MS;
/** Largest JSON file `loadAddrBook` will parse; 2,000 entries take about 300 KB. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

export interface AddrEntry {
  /** Canonical "host:port". */
  address: string;
  /** Last time anyone (us or a peer) saw it working, ms since the epoch. */
  lastSeen: number;
  /** Our last dial, 0 if never. */
  lastTried: number;
  /** Our last successful connection, 0 if never. */
  lastSuccess: number;
  /** Consecutive failed dials since the last success. */
  failures: number;
}

export interface LearnResult {
  /** New addresses stored. */
  added: number;
  /** Known addresses whose lastSeen moved forward. */
  updated: number;
  /** Garbage, stale, our own, or out of scope for this source. */
  rejected: number;
  /** Valid but over the source's rate limit. */
  limited: number;
}

interface Slot {
  entry: AddrEntry;
  /** Position in `#order`, for O(1) random picks and removal. */
  index: number;
}

/** Loopback sees everything local; a private network sees private and public; others public. */
function visible(addressScope: AddressScope, peerScope: AddressScope | null): boolean {
  switch (addressScope) {
    case "public":
      return true;
    case "private":
      return peerScope === "loopback" || peerScope === "private";
    case "loopback":
      return peerScope === "loopback";
    default:
      return false;
  }
}

/** Scopes an address may have to be stored at all. */
function isDialable(scope: AddressScope): boolean {
  return scope === "public" || scope === "private" || scope === "loopback";
}

function scopeOfAddress(address: string): AddressScope {
  const hp = parseHostPort(address);
  return hp === null ? "reserved" : hostScope(hp.host);
}

export class AddrBook {
  readonly #opts: AddrBookOptions;
  readonly #random: Random;
  readonly #slots = new Map<string, Slot>();
  readonly #order: string[] = [];
  readonly #limiter: PerKeyLimiter;
  #own = new Set<string>();

  constructor(
    opts: Partial<AddrBookOptions> = {},
    random: Random = cryptoRandom,
    ownAddresses: readonly string[] = [],
  ) {
    const o = { ...ADDR_BOOK_DEFAULTS, ...opts };
    if (!Number.isInteger(o.maxEntries) || o.maxEntries < 1 || !(o.evictionSample >= 1)) {
      throw new RangeError(`invalid address book options: ${JSON.stringify(o)}`);
    }
    this.#opts = o;
    this.#random = random;
    this.#limiter = new PerKeyLimiter({
      ratePerSec: o.learnRatePerSec,
      burst: o.learnBurst,
      maxKeys: o.maxSources,
      // A devnet on one machine gossips everything over loopback; never throttle it.
      exemptLoopback: true,
    });
    this.setOwnAddresses(ownAddresses);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Addresses that are ours (every listen address we announce): never stored or shared. */
  setOwnAddresses(addresses: readonly string[]): void {
    this.#own = new Set();
    for (const a of addresses) {
      const c = canonicalAddress(a);
      if (c !== null) {
        this.#own.add(c);
        this.#remove(c);
      }
    }
  }

  has(address: string): boolean {
    const c = canonicalAddress(address);
    return c !== null && this.#slots.has(c);
  }

  get(address: string): AddrEntry | undefined {
    const c = canonicalAddress(address);
    const slot = c === null ? undefined : this.#slots.get(c);
    return slot ? { ...slot.entry } : undefined;
  }

  /** Every entry, copied (for RPC and tests). */
  entries(): AddrEntry[] {
    return this.#order.map((a) => ({ ...this.#slots.get(a)!.entry }));
  }

  /**
   * Learns the entries of an `addresses` message from the peer keyed `sourceKey`. Never
   * throws: garbage is counted in `rejected`, which the caller may turn into a small penalty.
   */
  learn(entries: readonly AddressEntry[], sourceKey: string, now: number): LearnResult {
    const result: LearnResult = { added: 0, updated: 0, rejected: 0, limited: 0 };
    const sourceScope = keyScope(sourceKey);
    // Bounded by the codec already; bounded again in case a caller builds the list itself.
    const n = Math.min(entries.length, MESSAGE_LIMITS.maxAddresses);
    result.rejected += entries.length - n;
    for (let i = 0; i < n; i++) {
      const e = entries[i];
      const address = typeof e?.address === "string" ? canonicalAddress(e.address) : null;
      const lastSeen = this.#clampLastSeen(e?.lastSeen, now);
      if (
        address === null || lastSeen === null || this.#own.has(address) ||
        !visible(scopeOfAddress(address), sourceScope)
      ) {
        result.rejected++;
        continue;
      }
      if (!this.#limiter.allow(sourceKey, now)) {
        result.limited += n - i;
        break;
      }
      const slot = this.#slots.get(address);
      if (slot) {
        if (lastSeen > slot.entry.lastSeen) {
          slot.entry.lastSeen = lastSeen;
          result.updated++;
        }
      } else {
        this.#insert({ address, lastSeen, lastTried: 0, lastSuccess: 0, failures: 0 }, now);
        result.added++;
      }
    }
    return result;
  }

  /** A usable lastSeen, or null if the value is garbage or stale. */
  #clampLastSeen(lastSeen: unknown, now: number): number | null {
    if (typeof lastSeen !== "number" || !Number.isSafeInteger(lastSeen) || lastSeen < 0) {
      return null;
    }
    const t = lastSeen > now + this.#opts.maxFutureMs ? now : Math.min(lastSeen, now);
    return now - t > this.#opts.maxAgeMs ? null : t;
  }

  #insert(entry: AddrEntry, now: number): void {
    if (this.#slots.size >= this.#opts.maxEntries) this.#evictOne(now);
    this.#slots.set(entry.address, { entry, index: this.#order.length });
    this.#order.push(entry.address);
  }

  #remove(address: string): boolean {
    const slot = this.#slots.get(address);
    if (!slot) return false;
    const last = this.#order.pop()!;
    if (last !== address) {
      this.#order[slot.index] = last;
      this.#slots.get(last)!.index = slot.index;
    }
    this.#slots.delete(address);
    return true;
  }

  /**
   * Lower is worse: never-worked addresses go before ones that worked recently, then more
   * failures before fewer, then older sightings before newer.
   */
  #worth(e: AddrEntry, now: number): [number, number, number] {
    const workedRecently = e.lastSuccess > 0 && now - e.lastSuccess <= RECENT_SUCCESS_MS ? 1 : 0;
    return [workedRecently, -e.failures, e.lastSeen];
  }

  #evictOne(now: number): void {
    let worst: AddrEntry | null = null;
    for (let i = 0; i < this.#opts.evictionSample; i++) {
      const e = this.#slots.get(this.#order[randomInt(this.#random, this.#order.length)])!.entry;
      if (worst === null || compareWorth(this.#worth(e, now), this.#worth(worst, now)) < 0) {
        worst = e;
      }
    }
    if (worst !== null) this.#remove(worst.address);
  }

  #retryAt(e: AddrEntry): number {
    if (e.lastTried === 0) return 0;
    let wait = this.#opts.minRetryIntervalMs;
    if (e.failures > 0) {
      const backoff = this.#opts.retryBaseMs * 2 ** Math.min(e.failures - 1, 30);
      wait = Math.max(wait, Math.min(this.#opts.retryCapMs, backoff));
    }
    return e.lastTried + wait;
  }

  /**
   * Up to `count` addresses to dial now, best first with random order among equals. Skips
   * addresses in `exclude` (by address or by the peer key dialing it would give), banned keys,
   * and addresses still in their retry backoff.
   */
  candidates(
    now: number,
    count: number,
    exclude: ReadonlySet<string>,
    isBanned: (key: string) => boolean,
  ): string[] {
    if (!(count > 0)) return [];
    const eligible: AddrEntry[] = [];
    for (const address of this.#order) {
      const e = this.#slots.get(address)!.entry;
      if (exclude.has(address) || now < this.#retryAt(e)) continue;
      const key = keyForDialTarget(address);
      if (key !== null && (exclude.has(key) || isBanned(key))) continue;
      eligible.push(e);
    }
    shuffleInPlace(this.#random, eligible);
    // Stable sort keeps the shuffle's order among entries of equal worth.
    eligible.sort((a, b) => compareWorth(this.#worth(b, now), this.#worth(a, now)));
    return eligible.slice(0, count).map((e) => e.address);
  }

  /** We are dialing `address` now. */
  markAttempt(address: string, now: number): void {
    const slot = this.#lookup(address);
    if (slot) slot.entry.lastTried = now;
  }

  /** We connected to `address` and completed the handshake; learns it if new. */
  markSuccess(address: string, now: number): void {
    const c = canonicalAddress(address);
    if (c === null || this.#own.has(c)) return;
    const slot = this.#slots.get(c);
    if (slot) {
      Object.assign(slot.entry, { lastSeen: now, lastTried: now, lastSuccess: now, failures: 0 });
    } else if (isDialable(scopeOfAddress(c))) {
      this.#insert(
        { address: c, lastSeen: now, lastTried: now, lastSuccess: now, failures: 0 },
        now,
      );
    }
  }

  /** A dial to `address` failed (refused, timed out, or handshake rejected). */
  markFailure(address: string, now: number): void {
    const slot = this.#lookup(address);
    if (!slot) return;
    const e = slot.entry;
    e.failures++;
    e.lastTried = now;
    const workedRecently = e.lastSuccess > 0 && now - e.lastSuccess <= RECENT_SUCCESS_MS;
    if (e.failures >= this.#opts.maxFailures && !workedRecently) this.#remove(e.address);
  }

  /** Forgets an address (e.g. its node turned out to be on another network). */
  remove(address: string): boolean {
    const c = canonicalAddress(address);
    return c !== null && this.#remove(c);
  }

  #lookup(address: string): Slot | undefined {
    const c = canonicalAddress(address);
    return c === null ? undefined : this.#slots.get(c);
  }

  /**
   * A random selection of up to `count` addresses to answer `getAddresses` from the peer keyed
   * `requesterKey`. Leaves out our own, stale and repeatedly failing addresses, and any the
   * requester's network cannot see (loopback and private ones for a public peer).
   */
  sample(count: number, requesterKey: string, now: number): AddressEntry[] {
    const limit = Math.min(Math.max(0, Math.floor(count)), MESSAGE_LIMITS.maxAddresses);
    if (limit === 0) return [];
    const requesterScope = keyScope(requesterKey);
    const pool: AddrEntry[] = [];
    for (const address of this.#order) {
      const e = this.#slots.get(address)!.entry;
      if (this.#own.has(address) || e.failures >= this.#opts.shareMaxFailures) continue;
      if (now - e.lastSeen > this.#opts.maxAgeMs) continue;
      if (!visible(scopeOfAddress(address), requesterScope)) continue;
      pool.push(e);
    }
    // Partial Fisher–Yates: only the first `limit` positions need to be random.
    const n = Math.min(limit, pool.length);
    for (let i = 0; i < n; i++) {
      const j = i + randomInt(this.#random, pool.length - i);
      const tmp = pool[i];
      pool[i] = pool[j];
      pool[j] = tmp;
    }
    return pool.slice(0, n).map((e) => ({ address: e.address, lastSeen: e.lastSeen }));
  }

  /** Drops stale entries (not seen working for `maxAgeMs`). */
  prune(now: number): number {
    let dropped = 0;
    for (const address of [...this.#order]) {
      const e = this.#slots.get(address)!.entry;
      if (now - Math.max(e.lastSeen, e.lastSuccess) > this.#opts.maxAgeMs) {
        this.#remove(address);
        dropped++;
      }
    }
    return dropped;
  }

  toJSON(): AddrBookFileV1 {
    return { version: 1, entries: this.entries() };
  }

  /**
   * Rebuilds a book from `toJSON()` output read back from disk. Skips malformed entries
   * instead of failing, and keeps the most recently seen ones if the file holds too many.
   */
  static fromJSON(
    json: unknown,
    opts: Partial<AddrBookOptions> = {},
    random: Random = cryptoRandom,
    ownAddresses: readonly string[] = [],
  ): AddrBook {
    const book = new AddrBook(opts, random, ownAddresses);
    if (typeof json !== "object" || json === null) return book;
    const file = json as Partial<AddrBookFileV1>;
    if (file.version !== 1 || !Array.isArray(file.entries)) return book;
    const valid: AddrEntry[] = [];
    for (const raw of file.entries as unknown[]) {
      const e = parseStoredEntry(raw);
      if (e !== null) valid.push(e);
    }
    book.#absorb(valid);
    return book;
  }

  /**
   * Takes in the entries of another book (e.g. one just loaded from disk), keeping the newer
   * facts for addresses both know. Never exceeds `maxEntries`: the most recently seen win.
   */
  merge(other: AddrBook): void {
    this.#absorb(other.entries());
  }

  #absorb(entries: AddrEntry[]): void {
    entries.sort((a, b) => b.lastSeen - a.lastSeen);
    for (const e of entries) {
      if (this.#own.has(e.address)) continue;
      const slot = this.#slots.get(e.address);
      if (slot) {
        const mine = slot.entry;
        if (e.lastTried > mine.lastTried) {
          mine.lastTried = e.lastTried;
          mine.failures = e.failures;
        }
        mine.lastSeen = Math.max(mine.lastSeen, e.lastSeen);
        mine.lastSuccess = Math.max(mine.lastSuccess, e.lastSuccess);
        continue;
      }
      if (this.size >= this.#opts.maxEntries) continue;
      this.#slots.set(e.address, { entry: { ...e }, index: this.#order.length });
      this.#order.push(e.address);
    }
  }
}

function compareWorth(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

export interface AddrBookFileV1 {
  version: 1;
  entries: AddrEntry[];
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function parseStoredEntry(raw: unknown): AddrEntry | null {
  if (typeof raw !== "object" || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const address = typeof r.address === "string" ? canonicalAddress(r.address) : null;
  if (address === null) return null;
  if (!isDialable(scopeOfAddress(address))) return null;
  if (!isTime(r.lastSeen) || !isTime(r.lastTried) || !isTime(r.lastSuccess)) return null;
  if (!isTime(r.failures)) return null;
  return {
    address,
    lastSeen: r.lastSeen,
    lastTried: r.lastTried,
    lastSuccess: r.lastSuccess,
    failures: r.failures,
  };
}

// ---------------------------------------------------------------------------------------------
// Persistence helpers for the shell. Async so a save never blocks the event loop (docs/lessons.md#17).

/**
 * Writes the book to `path` atomically: a temporary file in the same directory, flushed to
 * disk, then renamed over `path`. A crash leaves either the old file or the new one, never a
 * torn one.
 */
export async function saveAddrBook(path: string, book: AddrBook): Promise<void> {
  await replaceFileDurably(path, new TextEncoder().encode(JSON.stringify(book.toJSON()) + "\n"));
}

export class AddrBookFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddrBookFileError";
  }
}

/**
 * Loads the book saved at `path`. A missing file gives an empty book. An unreadable, oversized
 * or corrupt one throws `AddrBookFileError`: the caller logs it and starts with an empty book,
 * because a lost address book must never stop a node from starting. Malformed entries inside
 * a valid file are skipped silently (see `AddrBook.fromJSON`).
 */
export async function loadAddrBook(
  path: string,
  opts: Partial<AddrBookOptions> = {},
  random: Random = cryptoRandom,
  ownAddresses: readonly string[] = [],
): Promise<AddrBook> {
  const json = await readJsonFile(
    path,
    MAX_FILE_BYTES,
    "address book",
    (message) => new AddrBookFileError(message),
  );
  if (json === null) return new AddrBook(opts, random, ownAddresses);
  return AddrBook.fromJSON(json, opts, random, ownAddresses);
}
