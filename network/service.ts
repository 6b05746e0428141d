/**
 * The network service: listener, dialer and registry wiring around the pure pieces, and the
 * `NetworkApi` that sync, consensus and RPC use.
 *
 * Owns: accepting and dialing TCP connections, admitting handshaken connections to the
 * registry (one per key), running what the `DialPlanner` decides (dials, its wake-up timer, its
 * warnings), misbehavior and bans, saving the address book and bans, and fan-out of peer events
 * to subscribers. The dialing policy (redial backoff, outbound slots) is the planner's, not
 * this file's.
 * Must never: close a healthy connection on a timer, count anything except live connections,
 * or let one subscriber's exception take the node down.
 */
import { getLogger } from "@logtape/logtape";
import { toHex } from "../encoding/binary.ts";
import type { KeyPair } from "../crypto/ed25519.ts";
import type { NetworkMetrics } from "../metrics/definitions.ts";
import { USER_AGENT } from "../version.ts";
import type {
  CloseReason,
  Direction,
  MessageHandler,
  MisbehaviorCode,
  NetworkApi,
  PeerSnapshot,
  PreHandshakeFault,
} from "./api.ts";
import {
  ADDRESS_FLOOD_WARN_MIN,
  ADDRESS_REQUEST_INTERVAL_MS,
  ADDRESSES_PER_ANSWER,
  BAN_DURATION_MS,
  BAN_SAVE_INTERVAL_MS,
  BAN_THRESHOLD,
  DEFAULT_SEND_QUEUE_BYTES,
  DIAL_TIMEOUT_MS,
  INBOUND_LIMITS,
  INBOUND_RATE,
  PENALTY,
  PERSIST_INTERVAL_MS,
  PRE_HANDSHAKE_PENALTIES,
} from "./constants.ts";
import { Connection, monotonicNow } from "./connection.ts";
import type { LocalIdentity } from "./handshake.ts";
import { ConnectionRegistry } from "./registry.ts";
import { type Hello, type Message, type MessageKind, PROTOCOL_VERSION } from "./messages.ts";
import { type PeerAction, PeerState } from "./peer.ts";
import {
  announcedDialAddress,
  canonicalAddress,
  canonicalIp,
  formatHostPort,
  isLoopback,
  keyForDialTarget,
  parseHostPort,
  peerKey,
} from "./peer_key.ts";
import { BanScores, loadBans, saveBans } from "./ban_score.ts";
import { SaveThrottle } from "./save_throttle.ts";
import { AddrBook, loadAddrBook, saveAddrBook } from "./addr_book.ts";
import { PerKeyLimiter } from "./rate_limit.ts";
import { admitInbound, type OpenInbound } from "./inbound_admission.ts";
import { type EvictionCandidate, selectInboundToEvict } from "./inbound_eviction.ts";
import { netgroup } from "./netgroup.ts";
import { sha256 } from "../crypto/hash.ts";
import { cryptoRandom, type Random } from "./random.ts";
import {
  classifyConnectError,
  DIAL_FAILURE_TEXT,
  type DialAction,
  type DialFailure,
  DialPlanner,
  type DialWorld,
  type PersistentPeerStatus,
} from "./dial_planner.ts";

const log = getLogger(["timenode", "net"]);

/** An attack pattern seen this often from one source within the window gets a warning. */
const REPEAT_WARNING_THRESHOLD = 5;
const REPEAT_WARNING_WINDOW_MS = 60_000;

/**
 * Per-kind message counts, folded into a labelled counter once per task instead of once per
 * message: a labelled `inc` costs about as much as queueing a small message, and the counters
 * are per kind anyway. The fold runs as a microtask, so the counter is exact before any other
 * task (a `/metrics` scrape, an RPC call) can read it.
 */
class KindTally {
  readonly #counter: NetworkMetrics["messagesSent"];
  readonly #pending = new Map<MessageKind, number>();
  #scheduled = false;

  constructor(counter: NetworkMetrics["messagesSent"]) {
    this.#counter = counter;
  }

  add(kind: MessageKind, n = 1): void {
    this.#pending.set(kind, (this.#pending.get(kind) ?? 0) + n);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(this.#fold);
  }

  #fold = (): void => {
    this.#scheduled = false;
    for (const [kind, n] of this.#pending) this.#counter.inc({ kind }, n);
    this.#pending.clear();
  };
}

export interface NetworkServiceOptions {
  key: KeyPair;
  magic: number;
  genesisHash: Uint8Array;
  /** Where bans.json and peers.json live; null keeps them in memory (tests). */
  dataDir: string | null;
  listen: { host: string; port: number } | null;
  peers: string[];
  maxInbound: number;
  maxOutbound: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  metrics: NetworkMetrics;
  localTip: () => { height: number; hash: Uint8Array };
  maxSendQueueBytes?: number;
  random?: Random;
  /**
   * Whether a hex node id is a validator of the current set: such inbound peers are never
   * evicted to make room (network/inbound_eviction.ts). Defaults to nobody.
   */
  isValidator?: (nodeId: string) => boolean;
}

export class NetworkService implements NetworkApi {
  readonly #o: NetworkServiceOptions;
  readonly #identity: LocalIdentity;
  readonly #localNodeId: string;
  readonly #random: Random;
  readonly #registry: ConnectionRegistry<Connection>;
  /** Every open connection, handshaking or ready; the registry holds the admitted ones. */
  readonly #connections = new Set<Connection>();
  readonly #planner: DialPlanner;
  readonly #bans: BanScores;
  /** bans.json is written at most once a second, however many bans a flood causes. */
  readonly #banSaver: SaveThrottle;
  readonly #addrBook: AddrBook;
  readonly #inboundLimiter: PerKeyLimiter;
  readonly #lastAddressAnswer = new Map<string, number>();
  /** Secret salt of the netgroup rank used by eviction, so nobody can aim at a protected rank. */
  readonly #evictionSalt: Uint8Array;
  readonly #addressesRequested = new Set<number>();
  #listener: Deno.TcpListener | null = null;
  #maintenanceTimer: ReturnType<typeof setTimeout> | undefined;
  /** When `#maintenanceTimer` fires (monotonic ms); Infinity when none is set. */
  #maintenanceAt = Infinity;
  #nextSessionId = 1;
  #lastPersist = monotonicNow();
  #started = false;
  #stopped = false;
  #listenAddress = "";
  #tip: { height: number; hash: Uint8Array };
  readonly #readyHandlers: ((p: PeerSnapshot) => void)[] = [];
  readonly #goneHandlers: ((key: string, reason: CloseReason) => void)[] = [];
  readonly #tipHandlers: ((key: string, height: number, hash: Uint8Array) => void)[] = [];
  readonly #messageHandlers = new Map<MessageKind, ((key: string, m: Message) => void)[]>();
  readonly #sent: KindTally;
  readonly #received: KindTally;

  constructor(o: NetworkServiceOptions) {
    this.#o = o;
    this.#identity = { key: o.key, magic: o.magic, genesisHash: o.genesisHash };
    this.#localNodeId = toHex(o.key.publicKey);
    this.#random = o.random ?? cryptoRandom;
    this.#registry = new ConnectionRegistry(this.#localNodeId);
    this.#bans = new BanScores();
    this.#banSaver = new SaveThrottle(
      () => {
        if (!o.dataDir) return Promise.resolve();
        o.metrics.banListWrites.inc();
        return saveBans(`${o.dataDir}/bans.json`, this.#bans);
      },
      BAN_SAVE_INTERVAL_MS,
      (e) => log.warn("saving bans failed: {error}", { error: String(e) }),
    );
    this.#addrBook = new AddrBook({}, this.#random);
    this.#evictionSalt = this.#random.bytes(16);
    this.#inboundLimiter = new PerKeyLimiter({
      ...INBOUND_RATE,
      maxKeys: 4096,
      exemptLoopback: true,
    });
    this.#tip = o.localTip();
    this.#sent = new KindTally(o.metrics.messagesSent);
    this.#received = new KindTally(o.metrics.messagesReceived);
    this.#planner = new DialPlanner({ maxOutbound: o.maxOutbound, random: this.#random });
    for (const p of o.peers) this.#addPersistent(p, true);
  }

  /** The address we accept connections on, with the real port when listening on port 0. */
  get listenAddress(): string {
    return this.#listenAddress;
  }

  get nodeId(): string {
    return this.#localNodeId;
  }

  async start(): Promise<void> {
    if (this.#o.dataDir) {
      await loadBans(`${this.#o.dataDir}/bans.json`, this.#bans).catch((e) => {
        log.warn("ignoring unreadable bans.json: {error}", { error: String(e) });
      });
      const book = await loadAddrBook(`${this.#o.dataDir}/peers.json`, {}, this.#random).catch(
        (e) => {
          log.warn("ignoring unreadable peers.json: {error}", { error: String(e) });
          return null;
        },
      );
      if (book) this.#addrBook.merge(book);
    }
    if (this.#o.listen) {
      this.#listener = Deno.listen({
        hostname: this.#o.listen.host,
        port: this.#o.listen.port,
        transport: "tcp",
      });
      const addr = this.#listener.addr as Deno.NetAddr;
      this.#listenAddress = formatHostPort(addr.hostname, addr.port);
      this.#addrBook.setOwnAddresses([this.#listenAddress]);
      log.info("listening on {address}", { address: this.#listenAddress });
      this.#acceptLoop(this.#listener);
    }
    this.#wireMetrics();
    this.#started = true;
    this.#maintain();
  }

  /** Stops accepting, says goodbye to every peer, waits for sockets to close, saves state. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#maintenanceTimer);
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    const all = [...this.#connections];
    for (const c of all) c.close("shutdown", "node shutting down", true);
    await Promise.all(all.map((c) => c.done));
    await this.#banSaver.flush();
    await this.#persist();
  }

  // ---- NetworkApi -------------------------------------------------------------------------

  send(peerKey: string, message: Message): boolean {
    const c = this.#registry.get(peerKey);
    if (!c || !c.isReady) return false;
    this.#sent.add(message.kind);
    return c.send(message);
  }

  broadcast(message: Message, exceptKey?: string): number {
    let n = 0;
    for (const c of this.#registry.values()) {
      if (c.key === exceptKey || !c.isReady) continue;
      if (c.send(message)) n++;
    }
    if (n > 0) this.#sent.add(message.kind, n);
    return n;
  }

  penalize(peerKey: string, score: number, code: MisbehaviorCode, detail = ""): void {
    const c = this.#registry.get(peerKey);
    this.#penalize(peerKey, c ?? null, score, code, detail);
  }

  peers(): PeerSnapshot[] {
    return [...this.#registry.values()].filter((c) => c.isReady).map((c) => this.#snapshot(c));
  }

  peerIds(): { key: string; nodeId: string }[] {
    const out: { key: string; nodeId: string }[] = [];
    for (const c of this.#registry.values()) {
      if (c.isReady) out.push({ key: c.key, nodeId: c.nodeId });
    }
    return out;
  }

  peer(peerKey: string): PeerSnapshot | undefined {
    const c = this.#registry.get(peerKey);
    return c && c.isReady ? this.#snapshot(c) : undefined;
  }

  setLocalTip(height: number, hash: Uint8Array): void {
    this.#tip = { height, hash };
  }

  addPersistentPeer(address: string): void {
    this.#addPersistent(address, false);
  }

  /** `configured`: given by the operator (`--peer`), so its failures are logged as warnings. */
  #addPersistent(address: string, configured: boolean): void {
    const normalized = canonicalAddress(address);
    if (!normalized) throw new Error(`invalid peer address ${address}`);
    const known = this.#planner.isPersistent(normalized);
    this.#planner.addPersistent(normalized, configured);
    if (!known && this.#started && !this.#stopped) queueMicrotask(() => this.#maintain());
  }

  onPeerReady(handler: (peer: PeerSnapshot) => void): void {
    this.#readyHandlers.push(handler);
  }

  onPeerGone(handler: (peerKey: string, reason: CloseReason) => void): void {
    this.#goneHandlers.push(handler);
  }

  onPeerTip(handler: (peerKey: string, height: number, hash: Uint8Array) => void): void {
    this.#tipHandlers.push(handler);
  }

  onMessage<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void {
    const list = this.#messageHandlers.get(kind) ?? [];
    list.push(handler as (key: string, m: Message) => void);
    this.#messageHandlers.set(kind, list);
  }

  // ---- operator controls and extra views for RPC -------------------------------------------

  /**
   * Operator ban (RPC `setban`): closes the key's connection now and refuses it until
   * `untilMs`. False when the key cannot be banned (a bare loopback IP).
   */
  banPeer(key: string, untilMs: number, reason: string): boolean {
    if (!this.#bans.ban(key, untilMs, reason, { operator: true })) return false;
    // An IPv6 ban covers the /64: close every connection it now covers.
    for (const c of [...this.#registry.values()]) {
      if (this.#bans.isBanned(c.key, Date.now())) c.close("banned", reason, true);
    }
    this.#banSaver.request();
    return true;
  }

  unbanPeer(key: string): boolean {
    const removed = this.#bans.unban(key);
    if (removed) this.#banSaver.request();
    return removed;
  }

  listBans() {
    return this.#bans.bans(Date.now());
  }

  info() {
    return {
      nodeId: this.#localNodeId,
      listen: this.#listenAddress || null,
      connections: this.#registry.size,
      inbound: this.#registry.count("inbound"),
      outbound: this.#registry.count("outbound"),
      handshaking: [...this.#connections].filter((c) => c.peer.phase === "handshaking").length,
      dialing: this.#planner.dialsInFlight,
      persistentPeers: this.persistentPeers(),
      knownAddresses: this.#addrBook.size,
      banned: this.#bans.bannedCount(Date.now()),
      protocolVersion: PROTOCOL_VERSION,
      userAgent: USER_AGENT,
    };
  }

  /** Each persistent peer: connected or not, its last error, failures, next retry. */
  persistentPeers(): PersistentPeerStatus[] {
    return this.#planner.status(monotonicNow(), (address) => this.#isReadyTo(address));
  }

  // ---- accepting and dialing ----------------------------------------------------------------

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    while (!this.#stopped) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#stopped || e instanceof Deno.errors.BadResource) return;
        log.warn("accept failed: {error}", { error: String(e) });
        continue;
      }
      this.#onInbound(conn);
    }
  }

  #onInbound(conn: Deno.TcpConn): void {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const ip = canonicalIp(remote.hostname);
    const reject = (reason: string) => {
      this.#o.metrics.inboundRejected.inc({ reason });
      log.debug("refused inbound from {ip}: {reason}", { ip, reason });
      try {
        conn.close();
      } catch {
        // The peer already went away.
      }
    };
    if (this.#stopped) return reject("shutting-down");
    // Loopback peers share one IP: they are banned and limited per announced address after
    // the handshake, never as a whole here (a devnet must not throttle itself).
    if (!isLoopback(ip)) {
      if (this.#bans.isBanned(ip, Date.now())) return reject("banned");
      if (!this.#inboundLimiter.allow(ip, Date.now())) return reject("rate-limited");
    }
    if (this.#o.maxInbound === 0) return reject("too-many-inbound");
    // Sockets in the handshake have a small budget of their own; handshaken ones are counted
    // against --max-inbound when they become ready (#onReady), where a full inbound evicts.
    const open: OpenInbound[] = [];
    for (const c of this.#connections) {
      if (c.direction !== "inbound") continue;
      open.push({ ip: canonicalIp(c.remoteIp), handshaking: c.peer.phase === "handshaking" });
    }
    const verdict = admitInbound(ip, open, INBOUND_LIMITS);
    if (!verdict.admit) {
      if (verdict.reason !== "netgroup-full") {
        this.#o.metrics.handshakeBudgetRejected.inc({
          scope: verdict.reason === "handshake-budget" ? "total" : "per-ip",
        });
        this.#noteRepeat(`handshake budget (${verdict.reason})`, ip);
      }
      return reject(verdict.reason);
    }
    this.#startConnection(conn, "inbound", null);
  }

  /** Runs one dial the planner asked for, and tells it how the dial ended. */
  async #dial(address: string): Promise<void> {
    const parsed = parseHostPort(address);
    if (!parsed) {
      this.#dialFailed(address, { kind: "unreachable", detail: "not a host:port address" });
      return;
    }
    this.#addrBook.markAttempt(address, Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    try {
      const connecting = Deno.connect({
        hostname: parsed.host,
        port: parsed.port,
        transport: "tcp",
      });
      // A connect that loses the race against the timeout must still be closed when it lands.
      connecting.then((c) => {
        if (this.#stopped || timedOut) c.close();
      }, () => {});
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => {
          timedOut = true;
          rej(new Error(`connect timed out after ${DIAL_TIMEOUT_MS} ms`));
        }, DIAL_TIMEOUT_MS);
      });
      const conn = await Promise.race([connecting, timeout]);
      this.#planner.dialConnected(address);
      if (this.#stopped) return;
      this.#startConnection(conn, "outbound", address);
    } catch (e) {
      this.#dialFailed(
        address,
        timedOut
          ? { kind: "timeout", detail: `no answer within ${DIAL_TIMEOUT_MS} ms` }
          : classifyConnectError(e),
      );
    } finally {
      clearTimeout(timer);
    }
  }

  #dialFailed(address: string, failure: DialFailure): void {
    log.debug("dial {address} failed: {reason} {error}", {
      address,
      reason: failure.kind,
      error: failure.detail,
    });
    this.#addrBook.markFailure(address, Date.now());
    this.#runDialActions(this.#planner.dialFailed(address, failure, monotonicNow()));
  }

  #startConnection(conn: Deno.TcpConn, direction: Direction, dialedAddress: string | null): void {
    try {
      conn.setNoDelay(true);
      conn.setKeepAlive(true);
    } catch {
      // Socket options are an optimisation; a socket that refuses them still works.
    }
    const tip = this.#tip;
    const hello: Hello = {
      kind: "hello",
      protocolVersion: PROTOCOL_VERSION,
      magic: this.#o.magic,
      genesisHash: this.#o.genesisHash,
      nodeId: this.#o.key.publicKey,
      listenAddress: this.#listenAddress,
      bestHeight: tip.height,
      bestHash: tip.hash,
      userAgent: USER_AGENT,
      nonce: this.#random.bytes(32),
    };
    const peer = new PeerState({
      direction,
      local: this.#identity,
      hello,
      pingIntervalMs: this.#o.pingIntervalMs,
      pongTimeoutMs: this.#o.pongTimeoutMs,
      localTip: () => this.#tip,
      nonce: () => this.#random.u64(),
    });
    const c = new Connection({
      conn,
      sessionId: this.#nextSessionId++,
      direction,
      magic: this.#o.magic,
      peer,
      maxQueueBytes: this.#o.maxSendQueueBytes ?? DEFAULT_SEND_QUEUE_BYTES,
      handlers: { onActions: this.#onActions, onClosed: this.#onClosed },
    });
    c.dialedAddress = dialedAddress;
    this.#connections.add(c);
    c.start();
  }

  // ---- connection events ---------------------------------------------------------------------

  #onActions = (c: Connection, actions: readonly PeerAction[]): void => {
    for (const a of actions) {
      switch (a.kind) {
        case "ready":
          this.#onReady(c, a.hello);
          break;
        case "deliver":
          this.#deliver(c, a.message);
          break;
        case "tip":
          if (!c.key || c.isClosed) break;
          for (const h of this.#tipHandlers) this.#safely(() => h(c.key, a.height, a.hash));
          break;
        case "penalize":
          this.#penalize(c.key || c.remoteIp, c, a.points, a.code, a.detail);
          break;
        case "unknown-message":
          this.#o.metrics.unknownMessages.inc();
          log.debug("ignored unknown message type {type} from {peer}", {
            type: a.typeId,
            peer: c.key,
          });
          break;
        case "ping-sent":
          this.#o.metrics.pingsSent.inc();
          break;
        case "pong":
          this.#o.metrics.pongsReceived.inc();
          this.#o.metrics.pingRtt.observe(a.rttMs / 1000);
          break;
      }
    }
  };

  #onReady(c: Connection, hello: Hello): void {
    const ip = canonicalIp(c.remoteIp);
    const key = peerKey(ip, hello.listenAddress, c.remotePort);
    c.key = key;
    const now = Date.now();
    if (this.#bans.isBanned(key, now)) {
      c.close("banned", `peer ${key} is banned`);
      return;
    }
    if (c.direction === "inbound" && !this.#makeInboundRoom(c)) return;
    const admission = this.#registry.admit(c);
    if (!admission.admit) {
      log.debug("closing duplicate connection {session} to {key}; keeping session {keep}", {
        session: c.sessionId,
        key,
        keep: admission.keep.sessionId,
      });
      c.key = "";
      c.close("duplicate", `session ${admission.keep.sessionId} to ${key} survives`, true);
      return;
    }
    if (admission.replaced) {
      const old = admission.replaced;
      log.debug("connection {session} to {key} supersedes session {old}", {
        session: c.sessionId,
        key,
        old: old.sessionId,
      });
      // The old session leaves the registry here, so subscribers see it go before the new
      // one arrives (in-flight requests on it are lost and must be reassigned).
      this.#reportGone(old, "duplicate", `superseded by session ${c.sessionId}`);
      old.close("duplicate", `superseded by session ${c.sessionId}`, true);
    }
    this.#o.metrics.peerConnects.inc({ direction: c.direction });
    log.info(
      "peer connected {key} {direction} node={nodeId} height={height} session={session}",
      {
        key,
        direction: c.direction,
        nodeId: c.nodeId.slice(0, 16),
        height: hello.bestHeight,
        session: c.sessionId,
      },
    );
    if (c.dialedAddress) this.#addrBook.markSuccess(c.dialedAddress, now);
    this.#runDialActions(this.#planner.sessionReady(c.dialedAddress, key, monotonicNow()));
    const announced = announcedDialAddress(ip, hello.listenAddress);
    if (announced) this.#addrBook.learn([{ address: announced, lastSeen: now }], key, now);
    if (c.direction === "outbound") {
      this.#addressesRequested.add(c.sessionId);
      this.send(c.key, { kind: "getAddresses" });
    }
    const snapshot = this.#snapshot(c);
    for (const h of this.#readyHandlers) this.#safely(() => h(snapshot));
  }

  #onClosed = (c: Connection, reason: CloseReason, detail: string): void => {
    this.#connections.delete(c);
    this.#addressesRequested.delete(c.sessionId);
    const wasRegistered = c.key !== "" && this.#registry.remove(c.key, c.sessionId);
    if (wasRegistered) {
      this.#reportGone(c, reason, detail);
    } else if (reason !== "duplicate" && reason !== "shutdown" && reason !== "evicted") {
      if (reason === "handshake-timeout") this.#noteRepeat("handshake timeout", c.remoteIp);
      log.info("connection from {address} closed before handshake: {reason} {detail}", {
        address: formatHostPort(c.remoteIp, c.remotePort),
        reason,
        detail,
      });
      // Loopback sockets are only closed: every local node shares that address.
      const ip = canonicalIp(c.remoteIp);
      // A handshake timeout scores only inbound sockets (the idle-socket attack): a peer we
      // dialed that is slow to answer is not attacking us, and banning it would stop our redials.
      const scored = reason !== "handshake-timeout" || c.direction === "inbound";
      if (!c.key && isPreHandshakeFault(reason) && !isLoopback(ip) && scored) {
        const points = PRE_HANDSHAKE_PENALTIES[reason];
        this.#penalize(ip, null, points, reason, `before the handshake: ${detail}`);
      }
    }
    if (reason === "self-connection" && c.dialedAddress) this.#addrBook.remove(c.dialedAddress);
    if (c.dialedAddress) {
      if (!wasRegistered && reason !== "duplicate") {
        this.#addrBook.markFailure(c.dialedAddress, Date.now());
      }
      const actions = this.#planner.sessionClosed(
        c.dialedAddress,
        { reason, detail, wasReady: wasRegistered },
        monotonicNow(),
      );
      this.#runDialActions(actions);
    }
  };

  /** Metrics, log and subscribers for a session that leaves the registry. */
  #reportGone(c: Connection, reason: CloseReason, detail: string): void {
    this.#o.metrics.peerDisconnects.inc({ reason });
    if (reason === "pong-timeout") this.#o.metrics.pongTimeouts.inc();
    log.info("peer disconnected {key} {direction} reason={reason} {detail} session={session}", {
      key: c.key,
      direction: c.direction,
      reason,
      detail,
      session: c.sessionId,
    });
    for (const h of this.#goneHandlers) this.#safely(() => h(c.key, reason));
  }

  #deliver(c: Connection, m: Message): void {
    if (!c.key || c.isClosed) return;
    this.#received.add(m.kind);
    if (m.kind === "getAddresses") return this.#answerAddresses(c);
    if (m.kind === "addresses") return this.#learnAddresses(c, m.entries);
    const handlers = this.#messageHandlers.get(m.kind);
    if (!handlers) return;
    for (const h of handlers) this.#safely(() => h(c.key, m));
  }

  #answerAddresses(c: Connection): void {
    const now = monotonicNow();
    const last = this.#lastAddressAnswer.get(c.key);
    if (last !== undefined && now - last < ADDRESS_REQUEST_INTERVAL_MS) return;
    this.#lastAddressAnswer.set(c.key, now);
    if (this.#lastAddressAnswer.size > 4 * this.#o.maxInbound) this.#lastAddressAnswer.clear();
    const entries = this.#addrBook.sample(ADDRESSES_PER_ANSWER, c.key, Date.now());
    this.send(c.key, { kind: "addresses", entries });
  }

  #learnAddresses(c: Connection, entries: { address: string; lastSeen: number }[]): void {
    if (!this.#addressesRequested.delete(c.sessionId)) {
      this.#penalize(c.key, c, PENALTY.addressSpam, "unsolicited-addresses", "not asked for");
      return;
    }
    // The book filters by scope (a public peer's loopback addresses are never ours to dial)
    // and rate-limits each source.
    const r = this.#addrBook.learn(entries, c.key, Date.now());
    const m = this.#o.metrics.addressesRefused;
    if (r.rejected > 0) m.inc({ reason: "invalid" }, r.rejected);
    if (r.limited > 0) m.inc({ reason: "limited" }, r.limited);
    // An answer mostly made of addresses we will not keep is a flood (or a book full of
    // junk); we ask each peer rarely, so this warns at most about once per peer and minute.
    if (2 * (r.rejected + r.limited) > entries.length && entries.length >= ADDRESS_FLOOD_WARN_MIN) {
      log.warn("peer {key} sent {count} addresses, {refused} not kept (invalid or over its caps)", {
        key: c.key,
        count: entries.length,
        refused: r.rejected + r.limited,
      });
    }
  }

  // ---- inbound slots ---------------------------------------------------------------------------

  /**
   * A handshaken inbound connection needs a slot. With inbound full, an established inbound
   * peer is evicted by the rule of network/inbound_eviction.ts; if all are protected, the
   * newcomer is closed instead. False when `c` was closed.
   */
  #makeInboundRoom(c: Connection): boolean {
    // A connection that replaces its own key's session takes no new slot.
    if (this.#registry.get(c.key)) return true;
    if (this.#registry.count("inbound") < this.#o.maxInbound) return true;
    const isValidator = this.#o.isValidator ?? (() => false);
    const candidates: EvictionCandidate[] = [];
    for (const p of this.#registry.values()) {
      if (p.direction !== "inbound" || !p.isReady) continue;
      candidates.push({
        id: p.key,
        netgroup: netgroup(canonicalIp(p.remoteIp)),
        connectedAt: p.connectedAt,
        minRttMs: p.peer.ping?.minRttMs ?? null,
        isValidator: isValidator(p.nodeId),
      });
    }
    const victim = selectInboundToEvict(candidates, { netgroupRank: this.#netgroupRank });
    if (victim === null) {
      this.#o.metrics.inboundRejected.inc({ reason: "inbound-full" });
      c.close("inbound-full", "every established inbound peer is protected", true);
      return false;
    }
    const old = this.#registry.get(victim)!;
    this.#o.metrics.inboundEvictions.inc();
    log.info("inbound full: evicting {victim} for {key}", { victim, key: c.key });
    this.#noteRepeat("inbound eviction", netgroup(canonicalIp(c.remoteIp)));
    // Leaves the registry now, so the newcomer finds its slot free.
    this.#registry.remove(old.key, old.sessionId);
    this.#reportGone(old, "evicted", `inbound full; room for ${c.key}`);
    old.key = "";
    old.close("evicted", "inbound full", true);
    return true;
  }

  readonly #rankCache = new Map<string, number>();
  #netgroupRank = (group: string): number => {
    let r = this.#rankCache.get(group);
    if (r === undefined) {
      const h = sha256(this.#evictionSalt, new TextEncoder().encode(group));
      r = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
      if (this.#rankCache.size > 4096) this.#rankCache.clear();
      this.#rankCache.set(group, r);
    }
    return r;
  };

  // ---- attack patterns -------------------------------------------------------------------------

  readonly #repeats = new Map<string, { count: number; windowStart: number }>();

  /**
   * One warning per pattern and source per minute once it repeats, instead of a debug line
   * per socket: an operator sees that an attack is going on, and the log does not become one.
   */
  #noteRepeat(pattern: string, source: string): void {
    const id = `${pattern} ${source}`;
    const now = monotonicNow();
    const e = this.#repeats.get(id);
    if (!e || now - e.windowStart >= REPEAT_WARNING_WINDOW_MS) {
      if (this.#repeats.size > 1024) this.#repeats.clear();
      if (e && e.count >= REPEAT_WARNING_THRESHOLD) {
        log.warn("repeated {pattern} from {source}: {count} times in the last minute", {
          pattern,
          source,
          count: e.count,
        });
      }
      this.#repeats.set(id, { count: 1, windowStart: now });
      return;
    }
    e.count++;
    if (e.count === REPEAT_WARNING_THRESHOLD) {
      log.warn("repeated {pattern} from {source}: {count} times within a minute", {
        pattern,
        source,
        count: e.count,
      });
    }
  }

  // ---- misbehavior -------------------------------------------------------------------------

  #penalize(
    key: string,
    c: Connection | null,
    points: number,
    code: MisbehaviorCode,
    detail: string,
  ): void {
    // The code is the label (a fixed set, so the series stay few); the detail goes to the log.
    this.#o.metrics.misbehavior.inc({ reason: code });
    log.warn("peer {key} misbehaved (+{points}): {reason} {detail}", {
      key,
      points,
      reason: code,
      detail,
    });
    const reason = detail ? `${code}: ${detail}` : code;
    const r = this.#bans.add(key, points, reason, Date.now());
    // Penalties that race the close of a banned peer neither count nor log a second ban.
    if (r.banned && !r.newlyBanned) c?.close("banned", reason, true);
    if (r.newlyBanned) {
      this.#o.metrics.bans.inc();
      log.warn("banning {key} for {hours} h: score {score} >= {threshold}", {
        key,
        hours: BAN_DURATION_MS / 3_600_000,
        score: r.score,
        threshold: BAN_THRESHOLD,
      });
      c?.close("banned", reason, true);
      this.#banSaver.request();
    }
  }

  // ---- maintenance: the dial planner's ticks, and saving state ---------------------------------

  /** What the planner asks about the live connections. */
  readonly #dialWorld: DialWorld = {
    isConnected: (address) => this.#isConnectedTo(address),
    isBanned: (key) => this.#bans.isBanned(key, Date.now()),
    outboundConnections: () => {
      let n = 0;
      for (const c of this.#connections) if (c.direction === "outbound") n++;
      return n;
    },
    busyAddresses: () => {
      const busy = [this.#listenAddress];
      for (const c of this.#connections) if (c.dialedAddress) busy.push(c.dialedAddress);
      for (const c of this.#registry.values()) busy.push(c.key);
      return busy;
    },
    candidates: (count, exclude, isBanned) =>
      this.#addrBook.candidates(Date.now(), count, exclude, isBanned, this.#outboundGroups()),
  };

  /**
   * Netgroups that already hold an outbound connection from the address book: at most one per
   * netgroup, so one operator's subnet cannot take several of our outbound slots. Operator and
   * validator peers (persistent) are exempt and do not count.
   */
  #outboundGroups(): Set<string> {
    const groups = new Set<string>();
    for (const c of this.#connections) {
      if (c.direction !== "outbound" || !c.dialedAddress) continue;
      if (this.#planner.isPersistent(c.dialedAddress)) continue;
      groups.add(netgroup(canonicalIp(c.remoteIp)));
    }
    return groups;
  }

  /** An open connection reaches `address`: one we dialed (even handshaking) or its peer key. */
  #isConnectedTo(address: string): boolean {
    if (this.#isReadyTo(address)) return true;
    for (const c of this.#connections) if (c.dialedAddress === address) return true;
    return false;
  }

  /** A handshaken connection holds the key that dialing `address` would give. */
  #isReadyTo(address: string): boolean {
    const key = keyForDialTarget(address);
    if (key !== null && this.#registry.has(key)) return true;
    for (const c of this.#registry.values()) if (c.dialedAddress === address) return true;
    return false;
  }

  #maintain = (): void => {
    clearTimeout(this.#maintenanceTimer);
    this.#maintenanceAt = Infinity;
    if (this.#stopped) return;
    const now = monotonicNow();
    if (now - this.#lastPersist >= PERSIST_INTERVAL_MS) {
      this.#lastPersist = now;
      this.#persist().catch((e) => log.warn("saving peers failed: {error}", { error: String(e) }));
      // Expired bans leave the file too.
      this.#banSaver.request();
    }
    this.#runDialActions(this.#planner.tick(now, this.#dialWorld));
  };

  #runDialActions(actions: readonly DialAction[]): void {
    // A stopping node dials nothing and sets no timer; what its connections' closes tell the
    // planner no longer matters.
    if (this.#stopped) return;
    for (const a of actions) {
      switch (a.kind) {
        case "dial":
          this.#dial(a.address);
          break;
        case "wake":
          if (a.at >= this.#maintenanceAt) break;
          clearTimeout(this.#maintenanceTimer);
          this.#maintenanceAt = a.at;
          this.#maintenanceTimer = setTimeout(this.#maintain, Math.max(0, a.at - monotonicNow()));
          break;
        case "warn-unreachable":
          log.warn(
            "cannot reach peer {address}: {what} ({detail}); {failures} failed in a row, next try in {retrySeconds} s",
            {
              address: a.address,
              what: DIAL_FAILURE_TEXT[a.failure.kind],
              reason: a.failure.kind,
              detail: a.failure.detail,
              failures: a.failures,
              retrySeconds: Math.round(a.retryInMs / 100) / 10,
            },
          );
          break;
        case "reconnected":
          log.info("peer {address} is reachable again after {failures} failed attempts", {
            address: a.address,
            failures: a.failures,
          });
          break;
      }
    }
  }

  /** Saves the address book; bans go through `#banSaver` (flushed at stop). */
  async #persist(): Promise<void> {
    if (!this.#o.dataDir) return;
    await saveAddrBook(`${this.#o.dataDir}/peers.json`, this.#addrBook);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  #snapshot(c: Connection): PeerSnapshot {
    const ping = c.peer.ping;
    const hello = c.peer.peerHello!;
    return {
      key: c.key,
      address: formatHostPort(c.remoteIp, c.remotePort),
      nodeId: c.nodeId,
      direction: c.direction,
      sessionId: c.sessionId,
      listenAddress: hello.listenAddress,
      userAgent: hello.userAgent,
      version: hello.protocolVersion,
      connectedAt: c.connectedAt,
      lastSend: c.lastSend,
      lastRecv: c.lastRecv,
      pingsSent: ping?.pingsSent ?? 0,
      pongsReceived: ping?.pongsReceived ?? 0,
      rttMs: ping?.lastRttMs ?? null,
      minRttMs: ping?.minRttMs ?? null,
      smoothedRttMs: ping?.smoothedRttMs ?? null,
      bestHeight: c.peer.tip.height,
      bestHash: toHex(c.peer.tip.hash),
      bytesSent: c.bytesSent,
      bytesRecv: c.bytesRecv,
      sendQueueBytes: c.queue.bytes,
    };
  }

  #wireMetrics(): void {
    const m = this.#o.metrics;
    m.knownAddresses.collectFrom(() => this.#addrBook.size);
    m.peers.collectFrom(() => [
      { labels: { direction: "inbound" }, value: this.#registry.count("inbound") },
      { labels: { direction: "outbound" }, value: this.#registry.count("outbound") },
    ]);
    m.sendQueueBytes.collectFrom(() => {
      let total = 0;
      for (const c of this.#connections) total += c.queue.bytes;
      return total;
    });
  }

  #safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      log.error("subscriber failed: {error}", {
        error: e instanceof Error ? e.stack ?? e.message : String(e),
      });
    }
  }
}

function isPreHandshakeFault(reason: CloseReason): reason is PreHandshakeFault {
  return Object.hasOwn(PRE_HANDSHAKE_PENALTIES, reason);
}
