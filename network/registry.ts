/**
 * The connection registry: exactly one live connection per peer key. Pure.
 *
 * Duplicate rule (simultaneous dials, reconnect races): when a second connection to a key
 * completes its handshake, both ends keep the connection whose *dialer* has the smaller node
 * id. Each connection's dialer is known to both ends once the handshake has proven both node
 * ids, so both compute the same survivor without exchanging anything more; exactly one
 * survives and the choice never flips, so there is no oscillation (docs/lessons.md#1). Two
 * connections from the same dialer mean the dialer gave up on the older one: the newer wins.
 *
 * Sessions carry a unique id; only the session that owns the entry can remove it, so a
 * connection that lost a race can never unregister the one that won (docs/lessons.md#2).
 *
 * Must never: hold more than one entry per key, or keep state that is not derived from the
 * live sessions it was given.
 */
import type { Direction } from "./api.ts";

export interface SessionInfo {
  sessionId: number;
  key: string;
  direction: Direction;
  /** Hex node id proven at the handshake. */
  nodeId: string;
}

export type Admission<T extends SessionInfo> =
  | { admit: true; replaced: T | null }
  | { admit: false; reason: "duplicate"; keep: T };

/** The node id of whoever opened the TCP connection. */
export function dialerOf(s: SessionInfo, localNodeId: string): string {
  return s.direction === "outbound" ? localNodeId : s.nodeId;
}

/** Which of two connections to the same key survives; symmetric on both ends. */
export function survivor<T extends SessionInfo>(a: T, b: T, localNodeId: string): T {
  const da = dialerOf(a, localNodeId);
  const db = dialerOf(b, localNodeId);
  if (da !== db) return da < db ? a : b;
  return a.sessionId > b.sessionId ? a : b;
}

/**
 * Holds the live connection objects themselves (any `SessionInfo`), so every count and
 * snapshot is read from a live connection, never from a flag that could drift (docs/lessons.md#3).
 */
export class ConnectionRegistry<T extends SessionInfo> {
  readonly #byKey = new Map<string, T>();
  readonly #localNodeId: string;

  constructor(localNodeId: string) {
    this.#localNodeId = localNodeId;
  }

  /**
   * Decides whether a freshly handshaken session takes the key. When it displaces the
   * current holder, that holder is returned so the caller closes it with reason `duplicate`.
   */
  admit(s: T): Admission<T> {
    const current = this.#byKey.get(s.key);
    if (!current) {
      this.#byKey.set(s.key, s);
      return { admit: true, replaced: null };
    }
    // Another machine behind the same key (or a node that changed its key): the live one
    // stays until it fails by itself.
    if (current.nodeId !== s.nodeId) return { admit: false, reason: "duplicate", keep: current };
    const keep = survivor(current, s, this.#localNodeId);
    if (keep === current) return { admit: false, reason: "duplicate", keep: current };
    this.#byKey.set(s.key, s);
    return { admit: true, replaced: current };
  }

  /** Removes the entry only if `sessionId` still owns it. True when it did. */
  remove(key: string, sessionId: number): boolean {
    const current = this.#byKey.get(key);
    if (!current || current.sessionId !== sessionId) return false;
    this.#byKey.delete(key);
    return true;
  }

  get(key: string): T | undefined {
    return this.#byKey.get(key);
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  get size(): number {
    return this.#byKey.size;
  }

  values(): IterableIterator<T> {
    return this.#byKey.values();
  }

  count(direction: Direction): number {
    let n = 0;
    for (const s of this.#byKey.values()) if (s.direction === direction) n++;
    return n;
  }
}
