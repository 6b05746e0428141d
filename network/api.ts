/**
 * What the network layer offers to its subscribers (sync, consensus, RPC).
 *
 * Owns: the contract between the peer machinery and everything above it. Subscribers get
 * typed events and send through `NetworkApi`; they never touch sockets, connection objects or
 * the registry (data flows one way: socket → frame → message → event → subscriber → action →
 * writer queue → socket).
 */
import type { FrameFault } from "./frame.ts";
import type { HandshakeFailure } from "./handshake.ts";
import type { Message, MessageKind, MessageOf } from "./messages.ts";

export type Direction = "inbound" | "outbound";

/**
 * Why a connection closed: a fixed code, the `reason` label of
 * `timenode_peer_disconnects_total` and of the close log lines. What varies (a byte count, the
 * peer's goodbye text, an OS error) goes in a separate human-readable detail, never in the code.
 */
export type CloseReason =
  /** The handshake failed (wrong network, bad signature, timeout, ...). */
  | HandshakeFailure
  /** A frame no correct peer of this network sends; nothing after it can be trusted. */
  | FrameFault
  /** The outstanding ping went unanswered for the pong timeout. */
  | "pong-timeout"
  /** The peer said goodbye (its reason is the detail). */
  | "peer-goodbye"
  /** The peer closed the TCP connection. */
  | "eof"
  | "read-error"
  | "write-error"
  /** The peer did not read what we sent; its bounded queue filled. */
  | "send-queue-full"
  /** Another connection to the same peer won the one-connection rule. */
  | "duplicate"
  /** A misbehavior score reached the threshold, or an operator ban. */
  | "banned"
  /** Inbound was full and this peer lost the eviction rule to a newcomer. */
  | "evicted"
  /** Inbound was full and every established peer was protected from eviction. */
  | "inbound-full"
  /** This node is stopping. */
  | "shutdown";

/**
 * Why a peer was penalized: a fixed code, the `reason` label of `timenode_misbehavior_total`.
 * The specifics (which message, which heights) go in the detail passed alongside.
 */
export type MisbehaviorCode =
  // network/: after the handshake
  | "malformed-message"
  | "repeated-handshake"
  | "unsolicited-pong"
  | "unsolicited-addresses"
  // network/: before the handshake, from a non-loopback IP (the connection's close reason)
  | PreHandshakeFault
  // sync/
  | "invalid-block"
  | "oversized-blocks-answer"
  | "empty-blocks-answer"
  | "unsolicited-blocks-answer"
  | "getblocks-flood"
  | "unbacked-height-claim"
  // consensus/
  | "consensus-malformed"
  | "consensus-bad-signature"
  | "consensus-not-validator"
  | "consensus-bad-records"
  | "invalid-record"
  // mempool/: a transfer invalid at every state of the chain (the detail names the rule)
  | "invalid-transaction";

/** Pre-handshake close reasons no correct peer causes; each also scores the remote IP. */
export type PreHandshakeFault =
  | FrameFault
  | "bad-hello"
  | "bad-signature"
  | "message-before-handshake"
  | "handshake-timeout";

/** A read-only snapshot of one live, handshaken connection. */
export interface PeerSnapshot {
  /** Registry key: the remote IP, or on loopback the announced listen "host:port". */
  key: string;
  /** Remote socket address "ip:port" of this TCP connection. */
  address: string;
  /** Hex node id (Ed25519 public key), proven at the handshake. */
  nodeId: string;
  direction: Direction;
  sessionId: number;
  listenAddress: string;
  userAgent: string;
  version: number;
  connectedAt: number;
  lastSend: number;
  lastRecv: number;
  pingsSent: number;
  pongsReceived: number;
  /** Last, minimum and smoothed round-trip times in ms; null before the first pong. */
  rttMs: number | null;
  minRttMs: number | null;
  smoothedRttMs: number | null;
  bestHeight: number;
  bestHash: string;
  bytesSent: number;
  bytesRecv: number;
  sendQueueBytes: number;
}

export type MessageHandler<K extends MessageKind> = (
  peerKey: string,
  message: MessageOf<K>,
) => void;

export interface NetworkApi {
  /** Queues `message` to one peer. False when the peer is not connected. */
  send(peerKey: string, message: Message): boolean;
  /** Queues `message` to every ready peer except `exceptKey`. Returns how many got it. */
  broadcast(message: Message, exceptKey?: string): number;
  /**
   * Adds to the peer's misbehavior score; a high enough score disconnects and bans. `detail`
   * says what exactly happened, for the log.
   */
  penalize(peerKey: string, score: number, code: MisbehaviorCode, detail?: string): void;
  /** Live connections only: never a separate bookkeeping count (docs/lessons.md#4). */
  peers(): PeerSnapshot[];
  /**
   * The registry key and hex node id of each live, ready connection: what a per-message fan-out
   * needs, without building whole snapshots (consensus relays call it several times a height).
   */
  peerIds(): { key: string; nodeId: string }[];
  peer(peerKey: string): PeerSnapshot | undefined;
  /** Our tip, as announced in hello, ping and pong. */
  setLocalTip(height: number, hash: Uint8Array): void;
  /** Keep a connection to this address forever (like --peer), e.g. the other masternodes. */
  addPersistentPeer(address: string): void;

  onPeerReady(handler: (peer: PeerSnapshot) => void): void;
  onPeerGone(handler: (peerKey: string, reason: CloseReason) => void): void;
  /** A peer's best (height, hash) changed: learned from hello, ping, pong or blockAnnounce. */
  onPeerTip(handler: (peerKey: string, height: number, hash: Uint8Array) => void): void;
  /** Subscribes to one message kind arriving from any ready peer, inbound or outbound alike. */
  onMessage<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void;
}
