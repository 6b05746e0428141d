/**
 * An in-memory `NetworkApi` for unit tests of its subscribers (sync, consensus, RPC).
 *
 * Owns: a fake peer table, the handler lists, a log of what was sent and penalised, scripted
 * remote peers, and links between two fakes so two services can talk without sockets.
 * Every message crosses the real codec (`encodePayload` → `decodePayload`), so a subscriber
 * that builds an oversized or malformed message fails here as it would on the wire.
 * Must never: open sockets, or deliver synchronously from inside `send` (real delivery is
 * always a later turn; reentrancy bugs must show up in tests too).
 */
import type {
  CloseReason,
  MessageHandler,
  MisbehaviorCode,
  NetworkApi,
  PeerSnapshot,
} from "../../network/api.ts";
import {
  decodePayload,
  encodePayload,
  type Message,
  type MessageKind,
} from "../../network/messages.ts";
import { MAX_FRAME_PAYLOAD_BYTES } from "../../network/frame.ts";

/** What a scripted remote peer does with a message we sent it. */
export type RemoteHandler = (message: Message, from: FakeNetwork) => void;

export interface FakeNetworkOptions {
  /** Total misbehavior score at which a peer is disconnected as banned (default 100). */
  banThreshold?: number;
  /** Delivery delay for sends; 0 (default) delivers on a microtask. */
  latencyMs?: number;
  /** Keep every sent message in `sent` (default true; turn off for long syncs). */
  recordSends?: boolean;
}

export interface ConnectOptions {
  bestHeight?: number;
  bestHash?: Uint8Array;
  direction?: "inbound" | "outbound";
  /** Receives what we send to this peer; without one, sends are only recorded. */
  remote?: RemoteHandler;
}

export interface Penalty {
  peer: string;
  score: number;
  code: MisbehaviorCode;
  detail: string;
}

interface FakePeer {
  snapshot: PeerSnapshot;
  remote: RemoteHandler | null;
  /** Set when the peer is another FakeNetwork (see `linkNetworks`). */
  link: { network: FakeNetwork; ourKeyThere: string } | null;
}

let nextSessionId = 1;

/** A message as the receiver would decode it from the wire. */
export function roundTrip<M extends Message>(m: M): M {
  const payload = encodePayload(m);
  if (payload.length > MAX_FRAME_PAYLOAD_BYTES) {
    throw new RangeError(`${m.kind} payload of ${payload.length} bytes exceeds the frame limit`);
  }
  return decodePayload(m.kind, payload) as M;
}

export class FakeNetwork implements NetworkApi {
  readonly sent: { peer: string; message: Message }[] = [];
  readonly penalties: Penalty[] = [];
  readonly persistentPeers: string[] = [];
  localTip: { height: number; hash: Uint8Array } = { height: 0, hash: new Uint8Array(32) };
  /** Messages sent per kind, counted even when `recordSends` is off. */
  readonly sentCount = new Map<MessageKind, number>();

  readonly #options: Required<FakeNetworkOptions>;
  readonly #peers = new Map<string, FakePeer>();
  readonly #scores = new Map<string, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #ready: ((p: PeerSnapshot) => void)[] = [];
  readonly #gone: ((key: string, reason: CloseReason) => void)[] = [];
  readonly #tip: ((key: string, height: number, hash: Uint8Array) => void)[] = [];
  readonly #handlers = new Map<MessageKind, MessageHandler<MessageKind>[]>();
  #closed = false;

  constructor(options: FakeNetworkOptions = {}) {
    this.#options = {
      banThreshold: options.banThreshold ?? 100,
      latencyMs: options.latencyMs ?? 0,
      recordSends: options.recordSends ?? true,
    };
  }

  // ---- NetworkApi ---------------------------------------------------------------------------

  send(peerKey: string, message: Message): boolean {
    const peer = this.#peers.get(peerKey);
    if (!peer || this.#closed) return false;
    const wire = roundTrip(message);
    if (this.#options.recordSends) this.sent.push({ peer: peerKey, message: wire });
    this.sentCount.set(message.kind, (this.sentCount.get(message.kind) ?? 0) + 1);
    this.#later(() => {
      if (this.#peers.get(peerKey) !== peer) return;
      if (peer.link) peer.link.network.deliver(peer.link.ourKeyThere, wire);
      else peer.remote?.(wire, this);
    });
    return true;
  }

  broadcast(message: Message, exceptKey?: string): number {
    let n = 0;
    for (const key of [...this.#peers.keys()]) {
      if (key !== exceptKey && this.send(key, message)) n++;
    }
    return n;
  }

  penalize(peerKey: string, score: number, code: MisbehaviorCode, detail = ""): void {
    this.penalties.push({ peer: peerKey, score, code, detail });
    if (!this.#peers.has(peerKey)) return;
    const total = (this.#scores.get(peerKey) ?? 0) + score;
    this.#scores.set(peerKey, total);
    if (total >= this.#options.banThreshold) this.#later(() => this.disconnect(peerKey, "banned"));
  }

  peers(): PeerSnapshot[] {
    return [...this.#peers.values()].map((p) => ({ ...p.snapshot }));
  }

  peerIds(): { key: string; nodeId: string }[] {
    return [...this.#peers.values()].map((p) => ({
      key: p.snapshot.key,
      nodeId: p.snapshot.nodeId,
    }));
  }

  peer(peerKey: string): PeerSnapshot | undefined {
    const p = this.#peers.get(peerKey);
    return p ? { ...p.snapshot } : undefined;
  }

  setLocalTip(height: number, hash: Uint8Array): void {
    this.localTip = { height, hash: hash.slice() };
    // Linked peers learn it as they would from our next ping.
    for (const p of this.#peers.values()) {
      if (!p.link) continue;
      const { network, ourKeyThere } = p.link;
      this.#later(() => network.setPeerTip(ourKeyThere, height, hash));
    }
  }

  addPersistentPeer(address: string): void {
    this.persistentPeers.push(address);
  }

  onPeerReady(handler: (peer: PeerSnapshot) => void): void {
    this.#ready.push(handler);
  }

  onPeerGone(handler: (peerKey: string, reason: CloseReason) => void): void {
    this.#gone.push(handler);
  }

  onPeerTip(handler: (peerKey: string, height: number, hash: Uint8Array) => void): void {
    this.#tip.push(handler);
  }

  onMessage<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void {
    const list = this.#handlers.get(kind) ?? [];
    list.push(handler as unknown as MessageHandler<MessageKind>);
    this.#handlers.set(kind, list);
  }

  // ---- test controls ------------------------------------------------------------------------

  /** A handshaken peer appears (fires onPeerReady). */
  connect(key: string, opts: ConnectOptions = {}): PeerSnapshot {
    if (this.#peers.has(key)) throw new Error(`peer ${key} already connected`);
    const snapshot = makeSnapshot(key, opts);
    this.#peers.set(key, { snapshot, remote: opts.remote ?? null, link: null });
    for (const h of this.#ready) h({ ...snapshot });
    return snapshot;
  }

  /** The connection closes (fires onPeerGone); a linked peer sees it close too. */
  disconnect(key: string, reason: CloseReason = "eof"): void {
    const p = this.#peers.get(key);
    if (!p) return;
    this.#peers.delete(key);
    this.#scores.delete(key);
    for (const h of this.#gone) h(key, reason);
    if (p.link) {
      const { network, ourKeyThere } = p.link;
      this.#later(() => network.disconnect(ourKeyThere, reason));
    }
  }

  /** The peer's best tip changed (as learned from a ping or pong). */
  setPeerTip(key: string, height: number, hash: Uint8Array = new Uint8Array(32)): void {
    const p = this.#peers.get(key);
    if (!p) return;
    p.snapshot.bestHeight = height;
    p.snapshot.bestHash = toHexString(hash);
    for (const h of this.#tip) h(key, height, hash);
  }

  /**
   * A message arrives from `key` (synchronously: call it from a test or a remote script).
   * Like the real network, a `blockAnnounce` also updates the peer's tip.
   */
  deliver(key: string, message: Message): void {
    const p = this.#peers.get(key);
    if (!p || this.#closed) return;
    const wire = roundTrip(message);
    if (wire.kind === "blockAnnounce" && wire.height > p.snapshot.bestHeight) {
      this.setPeerTip(key, wire.height, wire.hash);
    }
    for (const h of this.#handlers.get(wire.kind) ?? []) h(key, wire);
  }

  /** Accumulated misbehavior score of a connected peer. */
  scoreOf(key: string): number {
    return this.#scores.get(key) ?? 0;
  }

  penaltiesOf(key: string): Penalty[] {
    return this.penalties.filter((p) => p.peer === key);
  }

  sentTo(key: string, kind?: MessageKind): Message[] {
    return this.sent.filter((s) => s.peer === key && (!kind || s.message.kind === kind))
      .map((s) => s.message);
  }

  /** Stops deliveries and clears timers, so test sanitizers pass. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #later(fn: () => void): void {
    if (this.#closed) return;
    if (this.#options.latencyMs <= 0) {
      queueMicrotask(() => {
        if (!this.#closed) fn();
      });
      return;
    }
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) fn();
    }, this.#options.latencyMs);
    this.#timers.add(t);
  }

  /** Used by `linkNetworks`; not part of the NetworkApi. */
  attachLink(key: string, network: FakeNetwork, ourKeyThere: string, opts: ConnectOptions): void {
    this.connect(key, opts);
    this.#peers.get(key)!.link = { network, ourKeyThere };
  }
}

/**
 * Connects two fakes as peers of each other: `a` sees `b` as `bKey` and `b` sees `a` as
 * `aKey`. Messages flow both ways through the codec; each side's `setLocalTip` reaches the
 * other as a peer tip.
 */
export function linkNetworks(a: FakeNetwork, aKey: string, b: FakeNetwork, bKey: string): void {
  a.attachLink(bKey, b, aKey, { bestHeight: b.localTip.height, bestHash: b.localTip.hash });
  b.attachLink(aKey, a, bKey, { bestHeight: a.localTip.height, bestHash: a.localTip.hash });
}

function toHexString(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function makeSnapshot(key: string, opts: ConnectOptions): PeerSnapshot {
  const now = Date.now();
  return {
    key,
    address: key.includes(":") ? key : `${key}:0`,
    nodeId: toHexString(new TextEncoder().encode(key.padEnd(32, "\0").slice(0, 32))),
    direction: opts.direction ?? "outbound",
    sessionId: nextSessionId++,
    listenAddress: key,
    userAgent: "fake",
    version: 1,
    connectedAt: now,
    lastSend: now,
    lastRecv: now,
    pingsSent: 0,
    pongsReceived: 0,
    rttMs: null,
    minRttMs: null,
    smoothedRttMs: null,
    bestHeight: opts.bestHeight ?? 0,
    bestHash: toHexString(opts.bestHash ?? new Uint8Array(32)),
    bytesSent: 0,
    bytesRecv: 0,
    sendQueueBytes: 0,
  };
}
