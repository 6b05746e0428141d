/**
 * Network tunables, each with the reason for its value. Flags override some of them
 * (node/config.ts); the rest are protocol constants.
 */
import type { PreHandshakeFault } from "./api.ts";

/** A handshake is two small messages each way; 10 s covers a slow VPS and a slow peer. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Per-connection send queue bound. 16 MiB holds two maximal block batches; a peer that lets
 * more pile up is not reading, and is dropped with `send-queue-full` instead of growing memory
 * (docs/lessons.md#5).
 */
export const DEFAULT_SEND_QUEUE_BYTES = 16 * 1024 * 1024;

/** Socket read buffer: one loopback read rarely exceeds 64 KiB. */
export const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Upper bound on one writer batch. Coalescing many small frames into one write is what makes
 * 100k+ small messages/s possible; bounding it keeps one batch from delaying control frames.
 */
export const WRITE_BATCH_BYTES = 256 * 1024;

/** Smoothing factor of the RTT average, as TCP's SRTT (RFC 6298): 1/8. */
export const RTT_SMOOTHING = 1 / 8;

/** Misbehavior points. A score of `BAN_THRESHOLD` bans for `BAN_DURATION_MS`. */
export const PENALTY = {
  /** A frame we can decode the header of but not the payload: a bug or an attack. */
  malformedMessage: 20,
  /** A pong whose nonce matches no ping we sent. */
  unsolicitedPong: 5,
  /** Breaking the protocol after the handshake (second hello, ...). */
  protocolViolation: 20,
  /** Addresses sent faster than we asked for them. */
  addressSpam: 5,
} as const;
/**
 * A non-loopback socket that breaks the protocol before its handshake (garbage, wrong magic,
 * an oversized frame, a bad signature) is closed and its IP scored: five in a row is a ban.
 * Genesis or version mismatches are misconfiguration, not attacks, and score nothing.
 */
export const PRE_HANDSHAKE_PENALTIES: Readonly<Record<PreHandshakeFault, number>> = {
  // Garbage and a node of another network look alike; a misconfigured node retrying with
  // backoff takes minutes to reach a ban, a scanner spraying junk seconds.
  "bad-magic": 5,
  "oversized-frame": 20,
  "bad-checksum": 20,
  "bad-hello": 20,
  "bad-signature": 20,
  "message-before-handshake": 20,
  // A socket that never finishes its handshake holds a handshake slot for the whole timeout;
  // five in a short while ban the IP. An honest peer on a bad link times out rarely, and the
  // score decays (network/ban_score.ts), so it never gets there.
  "handshake-timeout": 20,
};
export const BAN_THRESHOLD = 100;
/** A day, as Bitcoin Core: long enough to stop an attack, short enough to forgive a bug. */
export const BAN_DURATION_MS = 24 * 60 * 60 * 1000;

/**
 * How often the dial planner looks for outbound slots to fill. Redials of persistent peers
 * wake it at their own backoff time; this only bounds how soon a freed slot is refilled. It
 * never closes anything.
 */
export const MAINTENANCE_INTERVAL_MS = 1_000;

/**
 * How often the address book and bans are written to the data dir besides at shutdown, so a
 * crash loses at most this much of what was learned.
 */
export const PERSIST_INTERVAL_MS = 5 * 60_000;

/**
 * Shortest gap between two writes of bans.json. A flood of misbehaving sockets can cause many
 * bans a second; each write is a durable replace (fsync), so they are coalesced to one a second.
 * A crash loses at most a second of bans, which the offenders re-earn at once.
 */
export const BAN_SAVE_INTERVAL_MS = 1_000;

/** Dialing a dead address must not hang a slot: TCP connect gets this long. */
export const DIAL_TIMEOUT_MS = 5_000;

/**
 * Inbound admission (network/inbound_admission.ts). Honest peers finish a handshake in a few
 * round trips, so few sockets are ever in it at once: 32 in total covers a whole network
 * reconnecting after a restart; 2 per IP covers a peer redialing while its old socket closes.
 * None of them counts against `--max-inbound`, so idle sockets can never fill the real slots.
 */
export const INBOUND_LIMITS = {
  maxHandshaking: 32,
  maxHandshakingPerIp: 2,
  /**
   * Inbound sockets from one IPv4 /16 or IPv6 /32. One operator owns many addresses of one
   * subnet and few subnets; 16 still lets a hosting provider's customers peer with us.
   */
  maxInboundPerNetgroup: 16,
} as const;

/** Inbound connection attempts per second allowed from one non-loopback IP. */
export const INBOUND_RATE = { ratePerSec: 2, burst: 10 } as const;

/**
 * An `addresses` answer of at least this many entries, most of which the book refuses, logs a
 * warning: a flood of one subnet or of hostnames. Smaller answers are the normal trickle of
 * stale entries and stay quiet.
 */
export const ADDRESS_FLOOD_WARN_MIN = 32;

/** getAddresses answered at most this often per peer. */
export const ADDRESS_REQUEST_INTERVAL_MS = 60_000;
/** How many addresses to return per getAddresses. */
export const ADDRESSES_PER_ANSWER = 250;

/** Goodbye lets the other side log a reason instead of an EOF; it gets this long to flush. */
export const GOODBYE_FLUSH_MS = 250;
