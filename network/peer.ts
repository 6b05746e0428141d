/**
 * The state machine of one peer connection, pure and direction-agnostic.
 *
 * Inbound and outbound connections run exactly this code: direction is a field used only for
 * reporting and for the duplicate rule of the registry. Every message type is handled here or
 * delivered to subscribers the same way whichever side dialed, so nothing like "outbound
 * ignores pongs" can exist (the failure this project was started to fix).
 *
 * Owns: the handshake sequence, ping/pong (answering pings, matching pongs, RTT), the peer's
 * advertised tip, and sorting each decoded message into "handled here", "deliver", "penalize"
 * or "close".
 * Must never: do I/O, read the clock or randomness except through its inputs, or deliver a
 * message before the handshake completes.
 */
import { bytesEqual, DecodeError, toHex } from "../encoding/binary.ts";
import { HANDSHAKE_TIMEOUT_MS, PENALTY } from "./constants.ts";
import {
  checkAck,
  checkHello,
  type HandshakeFailure,
  type LocalIdentity,
  makeAck,
} from "./handshake.ts";
import { decodePayload, type Hello, kindOf, type Message } from "./messages.ts";
import { PingState } from "./ping.ts";
import type { CloseReason, Direction, MisbehaviorCode } from "./api.ts";

export type PeerAction =
  | { kind: "send"; message: Message }
  | { kind: "ready"; hello: Hello }
  | { kind: "deliver"; message: Message }
  /** The peer's tip changed; the hello's tip is not an event (read it from `PeerState.tip`). */
  | { kind: "tip"; height: number; hash: Uint8Array }
  | { kind: "penalize"; points: number; code: MisbehaviorCode; detail: string }
  | { kind: "unknown-message"; typeId: number }
  | { kind: "ping-sent" }
  | { kind: "pong"; rttMs: number }
  | { kind: "close"; reason: CloseReason; detail: string };

export interface PeerStateOptions {
  direction: Direction;
  local: LocalIdentity;
  /** Our hello, built at connection start with our current tip and a fresh nonce. */
  hello: Hello;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** Our tip, echoed in pongs. */
  localTip: () => { height: number; hash: Uint8Array };
  /** Random 64-bit ping nonces. */
  nonce: () => bigint;
}

export type PeerPhase = "handshaking" | "ready" | "closed";

/** A peer's best block as it last told us. */
export interface PeerTip {
  height: number;
  hash: Uint8Array;
}

export class PeerState {
  readonly direction: Direction;
  readonly #opts: PeerStateOptions;
  #phase: PeerPhase = "handshaking";
  #startedAt = 0;
  #peerHello: Hello | null = null;
  #ackReceived = false;
  #tip: PeerTip = { height: 0, hash: new Uint8Array(32) };
  ping: PingState | null = null;

  constructor(opts: PeerStateOptions) {
    this.direction = opts.direction;
    this.#opts = opts;
  }

  get phase(): PeerPhase {
    return this.#phase;
  }

  get peerHello(): Hello | null {
    return this.#peerHello;
  }

  /** The peer's tip: from its hello, then from every ping, pong and block announcement. */
  get tip(): Readonly<PeerTip> {
    return this.#tip;
  }

  get nodeIdHex(): string {
    return this.#peerHello ? toHex(this.#peerHello.nodeId) : "";
  }

  /** Both sides open with hello, whoever dialed. */
  start(now: number, out: PeerAction[]): void {
    this.#startedAt = now;
    out.push({ kind: "send", message: this.#opts.hello });
  }

  nextDeadline(): number {
    if (this.#phase === "handshaking") return this.#startedAt + HANDSHAKE_TIMEOUT_MS;
    if (this.#phase === "ready" && this.ping) return this.ping.nextDeadline();
    return Infinity;
  }

  tick(now: number, out: PeerAction[]): void {
    if (this.#phase === "handshaking") {
      if (now - this.#startedAt >= HANDSHAKE_TIMEOUT_MS) {
        this.#fail("handshake-timeout", `no handshake within ${HANDSHAKE_TIMEOUT_MS} ms`, out);
      }
      return;
    }
    if (this.#phase !== "ready" || !this.ping) return;
    const t = this.ping.tick(now, this.#opts.nonce);
    if (t.action === "send") {
      const tip = this.#opts.localTip();
      out.push({
        kind: "send",
        message: { kind: "ping", nonce: t.nonce, bestHeight: tip.height, bestHash: tip.hash },
      });
      out.push({ kind: "ping-sent" });
    } else if (t.action === "timeout") {
      this.#phase = "closed";
      out.push({
        kind: "close",
        reason: "pong-timeout",
        detail: `pong overdue by ${t.overdueMs} ms`,
      });
    }
  }

  /** One whole frame from the reader. */
  onFrame(typeId: number, payload: Uint8Array, now: number, out: PeerAction[]): void {
    if (this.#phase === "closed") return;
    const kind = kindOf(typeId);
    if (kind === undefined) {
      // A newer peer may speak types we do not know: counted and ignored, never fatal. Before
      // the handshake nothing unknown is tolerated.
      if (this.#phase === "handshaking") {
        this.#fail("message-before-handshake", `unknown type ${typeId} during handshake`, out);
      } else {
        out.push({ kind: "unknown-message", typeId });
      }
      return;
    }
    let message: Message;
    try {
      message = decodePayload(kind, payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      if (this.#phase === "handshaking") {
        this.#fail("bad-hello", `malformed ${kind}: ${e.message}`, out);
      } else {
        out.push({
          kind: "penalize",
          points: PENALTY.malformedMessage,
          code: "malformed-message",
          detail: `malformed ${kind}: ${e.message}`,
        });
      }
      return;
    }
    if (this.#phase === "handshaking") this.#onHandshakeMessage(message, now, out);
    else this.#onMessage(message, now, out);
  }

  #onHandshakeMessage(m: Message, now: number, out: PeerAction[]): void {
    const local = this.#opts.local;
    if (m.kind === "hello" && this.#peerHello === null) {
      const failure = checkHello(local, m);
      if (failure) {
        this.#fail(failure, describeHelloFailure(failure, m), out);
        return;
      }
      this.#peerHello = m;
      out.push({ kind: "send", message: makeAck(local, m) });
      return;
    }
    if (m.kind === "helloAck" && this.#peerHello !== null && !this.#ackReceived) {
      if (!checkAck(local, this.#opts.hello.nonce, this.#peerHello, m)) {
        this.#fail("bad-signature", "helloAck signature does not match the announced node id", out);
        return;
      }
      this.#ackReceived = true;
      this.#phase = "ready";
      this.ping = new PingState(this.#opts.pingIntervalMs, this.#opts.pongTimeoutMs, now);
      // The hello's tip is part of the ready peer, not a change: subscribers see it in the
      // first snapshot.
      this.#tip = { height: this.#peerHello.bestHeight, hash: this.#peerHello.bestHash };
      out.push({ kind: "ready", hello: this.#peerHello });
      this.tick(now, out);
      return;
    }
    this.#fail("message-before-handshake", `${m.kind} before the handshake completed`, out);
  }

  #onMessage(m: Message, now: number, out: PeerAction[]): void {
    switch (m.kind) {
      case "ping": {
        const tip = this.#opts.localTip();
        out.push({
          kind: "send",
          message: { kind: "pong", nonce: m.nonce, bestHeight: tip.height, bestHash: tip.hash },
        });
        this.#updateTip(m.bestHeight, m.bestHash, out);
        return;
      }
      case "pong": {
        const r = this.ping!.onPong(m.nonce, now);
        if (r.matched) {
          out.push({ kind: "pong", rttMs: r.rttMs });
          this.#updateTip(m.bestHeight, m.bestHash, out);
        } else {
          out.push({
            kind: "penalize",
            points: PENALTY.unsolicitedPong,
            code: "unsolicited-pong",
            detail: "pong with unknown nonce",
          });
        }
        return;
      }
      case "hello":
      case "helloAck":
        out.push({
          kind: "penalize",
          points: PENALTY.protocolViolation,
          code: "repeated-handshake",
          detail: `${m.kind} after handshake`,
        });
        return;
      case "goodbye":
        this.#phase = "closed";
        out.push({ kind: "close", reason: "peer-goodbye", detail: m.reason });
        return;
      case "blockAnnounce":
        this.#updateTip(m.height, m.hash, out);
        out.push({ kind: "deliver", message: m });
        return;
      default:
        out.push({ kind: "deliver", message: m });
    }
  }

  #updateTip(height: number, hash: Uint8Array, out: PeerAction[]): void {
    if (height === this.#tip.height && bytesEqual(hash, this.#tip.hash)) return;
    this.#tip = { height, hash };
    out.push({ kind: "tip", height, hash });
  }

  #fail(reason: HandshakeFailure, detail: string, out: PeerAction[]): void {
    this.#phase = "closed";
    out.push({ kind: "close", reason, detail });
  }

  /** Marks the state closed from outside (the shell saw EOF, or the service chose to close). */
  markClosed(): void {
    this.#phase = "closed";
  }
}

function describeHelloFailure(f: HandshakeFailure, m: Hello): string {
  switch (f) {
    case "wrong-magic":
      return `network magic 0x${m.magic.toString(16)} is not ours`;
    case "wrong-genesis":
      return `genesis ${toHex(m.genesisHash).slice(0, 16)}… is not ours`;
    case "old-version":
      return `protocol version ${m.protocolVersion} is no longer supported`;
    case "self-connection":
      return "connected to ourselves";
    default:
      return f;
  }
}
