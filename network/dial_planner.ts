/**
 * The dial planner: which addresses to dial, and when. Pure.
 *
 * Owns: the persistent peers (`--peer`, and the other validators' addresses) and their redial
 * schedule (one `Backoff` each), filling free outbound slots from address-book candidates, the
 * rule of one dial in flight per address, each persistent peer's state for operators
 * (connected, last error, failures, next retry) and when a failing configured peer is worth a
 * warning or a recovery line.
 * Must never: read a clock, set a timer, dial, resolve names or close anything. Time comes in
 * as `now` (monotonic ms), randomness through the injected `Random`, and what it wants done
 * goes out as `DialAction`s that `NetworkService` runs. A healthy connection has no timer
 * here: a peer that is connected is never redialed, and nothing here can close a connection
 * (docs/lessons.md#1).
 *
 * The shell reports every event that changes the plan: a dial failed or connected, a session
 * became ready, a session we dialed closed. Between events it calls `tick` when the last
 * `wake` action asked it to.
 */
import type { CloseReason } from "./api.ts";
import { Backoff, BACKOFF_DEFAULTS, type BackoffOptions } from "./backoff.ts";
import { MAINTENANCE_INTERVAL_MS } from "./constants.ts";
import { keyForDialTarget } from "./peer_key.ts";
import type { Random } from "./random.ts";

/**
 * A failing configured peer is warned about at its first failure, then at most this often:
 * the backoff cap, so a dead peer costs one warning per redial at most, and one a minute.
 */
export const UNREACHABLE_WARNING_INTERVAL_MS = BACKOFF_DEFAULTS.maxMs;

/** Why a dial of ours did not give a working session. */
export type DialFailureKind =
  /** The host name did not resolve. */
  | "dns"
  /** Nothing listens there: the host answered with a reset. */
  | "refused"
  /** No answer within the connect timeout. */
  | "timeout"
  /** The TCP connection opened but the handshake failed or the peer closed it first. */
  | "handshake"
  /** Any other socket error (no route, network down, ...). */
  | "unreachable";

/** What each kind means, in the words a log line or `getnetworkinfo` uses. */
export const DIAL_FAILURE_TEXT: Readonly<Record<DialFailureKind, string>> = {
  dns: "DNS lookup failed",
  refused: "connection refused",
  timeout: "connect timed out",
  handshake: "handshake refused",
  unreachable: "unreachable",
};

export interface DialFailure {
  kind: DialFailureKind;
  /** What exactly happened, for the log and `getnetworkinfo`. */
  detail: string;
}

export type DialAction =
  | { kind: "dial"; address: string }
  /**
   * Call `tick` at `at` (same clock as `now`) at the latest; a wake-up already due sooner
   * stands.
   */
  | { kind: "wake"; at: number }
  /** A configured peer failed: its first failure, or the first after the warning interval. */
  | {
    kind: "warn-unreachable";
    address: string;
    failure: DialFailure;
    failures: number;
    retryInMs: number;
  }
  /** A configured peer we had warned about is connected again. */
  | { kind: "reconnected"; address: string; failures: number };

/** What the planner asks about the live connections; answered by the shell from the registry. */
export interface DialWorld {
  /** An open connection reaches `address`: one we dialed (even handshaking) or its peer key. */
  isConnected(address: string): boolean;
  isBanned(key: string): boolean;
  /** Open outbound connections, those still handshaking included. */
  outboundConnections(): number;
  /**
   * Addresses the book must not offer: our own, and every open connection's dialed address
   * and peer key.
   */
  busyAddresses(): Iterable<string>;
  /** Up to `count` address-book candidates outside `exclude` whose keys are not banned. */
  candidates(
    count: number,
    exclude: ReadonlySet<string>,
    isBanned: (key: string) => boolean,
  ): string[];
}

/** One persistent peer as `getnetworkinfo` shows it. */
export interface PersistentPeerStatus {
  address: string;
  connected: boolean;
  /** The last failure, as `describeDialFailure` words it; null since the last working session. */
  lastError: string | null;
  /** Failed attempts in a row since the last working session. */
  failures: number;
  /** Seconds until the next dial; null while connected, dialing, or when it is ourselves. */
  nextRetryInSeconds: number | null;
}

export interface DialPlannerOptions {
  /** Outbound connections to keep from the address book (`--max-outbound`). */
  maxOutbound: number;
  random: Random;
  /** Redial schedule; `BACKOFF_DEFAULTS` (1 s doubling to 60 s) for what is not given. */
  backoff?: Partial<BackoffOptions>;
  /** How soon a free outbound slot is refilled at the latest. */
  refillIntervalMs?: number;
}

interface PersistentPeer {
  address: string;
  /** Given by the operator (`--peer`): its failures are warned about. */
  configured: boolean;
  backoff: Backoff;
  nextDialAt: number;
  /** A handshake proved this address is ourselves: never dialed again. */
  isSelf: boolean;
  failures: number;
  lastError: DialFailure | null;
  /** When the last unreachable warning was given; null when none since the last session. */
  warnedAt: number | null;
}

export class DialPlanner {
  readonly #maxOutbound: number;
  readonly #random: Random;
  readonly #backoff: Partial<BackoffOptions>;
  readonly #refillIntervalMs: number;
  readonly #persistent = new Map<string, PersistentPeer>();
  /** Addresses with a dial in flight (TCP connect not yet done): at most one per address. */
  readonly #inFlight = new Set<string>();

  constructor(o: DialPlannerOptions) {
    this.#maxOutbound = o.maxOutbound;
    this.#random = o.random;
    this.#backoff = o.backoff ?? {};
    this.#refillIntervalMs = o.refillIntervalMs ?? MAINTENANCE_INTERVAL_MS;
  }

  /**
   * Keeps `address` (canonical "host:port") connected from now on. `configured` marks an
   * operator's `--peer`; adding an address again only ever upgrades it to configured.
   */
  addPersistent(address: string, configured: boolean): void {
    const existing = this.#persistent.get(address);
    if (existing) {
      existing.configured ||= configured;
      return;
    }
    this.#persistent.set(address, {
      address,
      configured,
      backoff: new Backoff(this.#backoff, this.#random),
      nextDialAt: 0,
      isSelf: false,
      failures: 0,
      lastError: null,
      warnedAt: null,
    });
  }

  isPersistent(address: string): boolean {
    return this.#persistent.has(address);
  }

  persistentAddresses(): string[] {
    return [...this.#persistent.keys()];
  }

  /** Dials in flight (they hold an outbound slot). */
  get dialsInFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Redials that are due, then free outbound slots; always ends with one `wake` (the refill
   * interval, or a persistent peer's redial if sooner).
   */
  tick(now: number, world: DialWorld): DialAction[] {
    const out: DialAction[] = [];
    const isBanned = (key: string) => world.isBanned(key);
    for (const p of this.#persistent.values()) {
      if (!this.#redialable(p, world)) continue;
      if (now < p.nextDialAt) continue;
      const key = keyForDialTarget(p.address);
      if (key !== null && isBanned(key)) continue;
      this.#dial(p.address, out);
    }
    // Persistent connections count against the slots too; they are only dialed regardless.
    const gap = this.#maxOutbound - world.outboundConnections() - this.#inFlight.size;
    if (gap > 0) {
      const exclude = new Set<string>([
        ...this.#persistent.keys(),
        ...this.#inFlight,
        ...world.busyAddresses(),
      ]);
      for (const address of world.candidates(gap, exclude, isBanned)) {
        if (exclude.has(address)) continue;
        const key = keyForDialTarget(address);
        if (key !== null && (exclude.has(key) || isBanned(key))) continue;
        exclude.add(address);
        this.#dial(address, out);
      }
    }
    let wakeAt = now + this.#refillIntervalMs;
    for (const p of this.#persistent.values()) {
      if (p.nextDialAt > now && this.#redialable(p, world)) wakeAt = Math.min(wakeAt, p.nextDialAt);
    }
    out.push({ kind: "wake", at: wakeAt });
    return out;
  }

  /** The TCP connection to `address` opened; its handshake is the session's business now. */
  dialConnected(address: string): void {
    this.#inFlight.delete(address);
  }

  /** The dial of `address` failed before any TCP connection existed. */
  dialFailed(address: string, failure: DialFailure, now: number): DialAction[] {
    this.#inFlight.delete(address);
    const p = this.#persistent.get(address);
    return p ? this.#failed(p, failure, now) : [];
  }

  /**
   * A session completed its handshake under peer `key`; `dialedAddress` is the address we
   * dialed for it, null for an inbound one. Every persistent peer it reaches is working again.
   */
  sessionReady(dialedAddress: string | null, key: string, now: number): DialAction[] {
    const out: DialAction[] = [];
    for (const p of this.#persistent.values()) {
      const dialed = p.address === dialedAddress;
      if (!dialed && keyForDialTarget(p.address) !== key) continue;
      // Only a connection of ours can prove our schedule healthy (the reset rule).
      if (dialed) p.backoff.onConnected(now);
      if (p.warnedAt !== null) {
        out.push({ kind: "reconnected", address: p.address, failures: p.failures });
      }
      p.failures = 0;
      p.lastError = null;
      p.warnedAt = null;
    }
    return out;
  }

  /**
   * A connection we dialed to `address` closed. One that closed before its handshake
   * completed is a failed attempt (`handshake`), except when it lost the one-connection rule.
   */
  sessionClosed(
    address: string,
    close: { reason: CloseReason; detail: string; wasReady: boolean },
    now: number,
  ): DialAction[] {
    const p = this.#persistent.get(address);
    if (!p) return [];
    if (close.reason === "self-connection") {
      p.isSelf = true;
      return [];
    }
    p.backoff.onDisconnected(now);
    if (!close.wasReady && close.reason !== "duplicate") {
      const detail = close.detail ? `${close.reason}: ${close.detail}` : close.reason;
      return this.#failed(p, { kind: "handshake", detail }, now);
    }
    this.#scheduleRedial(p, now);
    return [{ kind: "wake", at: p.nextDialAt }];
  }

  /** Each persistent peer's state, for `getnetworkinfo`. */
  status(now: number, isConnected: (address: string) => boolean): PersistentPeerStatus[] {
    return [...this.#persistent.values()].map((p) => {
      const connected = isConnected(p.address);
      const waiting = !connected && !p.isSelf && !this.#inFlight.has(p.address);
      return {
        address: p.address,
        connected,
        lastError: p.lastError ? describeDialFailure(p.lastError) : null,
        failures: p.failures,
        nextRetryInSeconds: waiting ? Math.round(Math.max(0, p.nextDialAt - now) / 100) / 10 : null,
      };
    });
  }

  // ---- internals ----------------------------------------------------------------------------

  #redialable(p: PersistentPeer, world: DialWorld): boolean {
    return !p.isSelf && !this.#inFlight.has(p.address) && !world.isConnected(p.address);
  }

  #dial(address: string, out: DialAction[]): void {
    if (this.#inFlight.has(address)) return;
    this.#inFlight.add(address);
    out.push({ kind: "dial", address });
  }

  #scheduleRedial(p: PersistentPeer, now: number): number {
    const delay = p.backoff.nextDelay();
    p.nextDialAt = now + delay;
    return delay;
  }

  #failed(p: PersistentPeer, failure: DialFailure, now: number): DialAction[] {
    p.failures++;
    p.lastError = failure;
    const retryInMs = this.#scheduleRedial(p, now);
    const out: DialAction[] = [{ kind: "wake", at: p.nextDialAt }];
    const quiet = p.warnedAt !== null && now - p.warnedAt < UNREACHABLE_WARNING_INTERVAL_MS;
    if (p.configured && !quiet) {
      p.warnedAt = now;
      out.push({
        kind: "warn-unreachable",
        address: p.address,
        failure,
        failures: p.failures,
        retryInMs,
      });
    }
    return out;
  }
}

/** One line for an operator: what failed, then the specifics. */
export function describeDialFailure(f: DialFailure): string {
  return `${DIAL_FAILURE_TEXT[f.kind]}: ${f.detail}`;
}

/** Sorts an error from `Deno.connect` into a `DialFailure` an operator can act on. */
export function classifyConnectError(e: unknown): DialFailure {
  const detail = e instanceof Error ? e.message : String(e);
  if (e instanceof Deno.errors.ConnectionRefused) return { kind: "refused", detail };
  if (e instanceof Deno.errors.TimedOut) return { kind: "timeout", detail };
  // Deno reports a failed name lookup as a plain Error; its message is the only sign.
  if (/lookup address|name or service not known|no address associated/i.test(detail)) {
    return { kind: "dns", detail };
  }
  return { kind: "unreachable", detail };
}
