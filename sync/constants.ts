/**
 * Sync tunables: request sizes, windows, timeouts, penalties and serving limits, each with the
 * reason for its value. The scheduler, the serve limiter and the service read their defaults
 * from here; tests override them through the constructors, never by editing this file.
 *
 * Must never: hold state or logic. Only numbers and the reasons for them.
 */
import { MESSAGE_LIMITS } from "../network/messages.ts";
import { MAX_FRAME_PAYLOAD_BYTES } from "../network/frame.ts";

// ---- Fetching -----------------------------------------------------------------------------

/** Blocks per `getBlocks`: the protocol maximum, so round trips are amortised over 500 blocks. */
export const REQUEST_BATCH_BLOCKS = MESSAGE_LIMITS.maxBlocksPerBatch;

/**
 * How far past the local tip we fetch. 10,000 blocks is about one second of pipeline at the
 * 10k blocks/s target: enough for several peers to work ahead of a slow frontier batch, small
 * enough that a buffer of ~1.6 KB blocks stays around 16 MB.
 */
export const WINDOW_BLOCKS = 10_000;

/**
 * Received-but-unapplied bytes (plus the projected size of requests in flight) above which no
 * new range is requested. Bounds memory when blocks are large (4 MiB bodies fill it in 16).
 */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** First guess of an encoded block's size, refined from every received batch. */
export const INITIAL_BLOCK_BYTES_ESTIMATE = 2 * 1024;

/**
 * Requests in flight to one peer. Four keeps a peer's pipe full (one being read from its store,
 * one on the wire, two queued) while a slow peer can hold back at most four batches.
 */
export const MAX_IN_FLIGHT_PER_PEER = 4;

/** Requests in flight overall: four peers at full depth, beyond which verification is the limit. */
export const MAX_IN_FLIGHT_TOTAL = 16;

/**
 * Per-request timeout for each position in a peer's queue: a peer answers its requests in
 * order, so the fourth one may legitimately take four times as long. 10 s covers a 6 MiB
 * answer over a slow (10 Mbit/s) link with margin.
 */
export const REQUEST_TIMEOUT_MS = 10_000;

/** A peer that timed out gets twice the time next try, up to this: a slow peer is never hopeless. */
export const MAX_REQUEST_TIMEOUT_MS = 120_000;

/**
 * When the batch at the apply frontier has been in flight this long while nothing more can be
 * fetched (window, bytes or request budget full), it is asked of another peer (Bitcoin Core's
 * block stalling rule). The wait adapts: `STALL_RESPONSE_FACTOR` typical answer times, at
 * least `MIN_STALL_TIMEOUT_MS` (Core's 2 s halved: our peers answer in milliseconds on a LAN),
 * at most this 5 s (a 500-block batch over a slow link).
 */
export const STALL_TIMEOUT_MS = 5_000;
export const MIN_STALL_TIMEOUT_MS = 1_000;
export const STALL_RESPONSE_FACTOR = 4;

/** Timed-out or superseded requests remembered per peer, so a late answer is used, not punished. */
export const STALE_REQUESTS_PER_PEER = 64;

/** How long a late answer to a superseded request is still welcome. */
export const STALE_REQUEST_TTL_MS = 2 * MAX_REQUEST_TIMEOUT_MS;

/**
 * A peer that failed a request (timeout, stall, bad answer) gets no new work while a clean peer
 * has the height, for this long (doubling per further strike, up to 16x); then it is tried
 * again, so one hiccup never idles it for good.
 */
export const STRIKE_FORGIVE_MS = 60_000;

/** A peer counts as "in use" (info, progress logs) if it served a batch this recently. */
export const PEER_IN_USE_WINDOW_MS = 10_000;

// ---- Penalties (the network bans at a total score of 100, as btcd does) --------------------

/** Served a block that fails validation: honest nodes validated it before storing it. */
export const PENALTY_INVALID_BLOCK = 100;
/** Answered with more blocks than asked: a protocol violation, never a race. */
export const PENALTY_MALFORMED_RESPONSE = 50;
/**
 * Answered with no blocks while claiming to have them. Small: a restarted peer with a lost
 * store can do this once before its new height reaches us.
 */
export const PENALTY_EMPTY_RESPONSE = 20;
/** A `blocks` answer to nothing we asked (or forgot): cheap to send, so cheap to punish. */
export const PENALTY_UNSOLICITED_BLOCKS = 2;
/**
 * A peer we asked to back its claimed height sent no block for it within the request timeout
 * (and our own tip did not reach the claim meanwhile). Honest but overloaded peers do this
 * rarely and the score decays (half-life 5 min), so they never reach a ban; a peer that makes a
 * fake claim and reconnects every few seconds repeats it about every 10 s and is banned within
 * about two minutes, because the score belongs to its key, not to its connection.
 */
export const PENALTY_UNBACKED_CLAIM = 10;
/** Unbacked claims remembered at once; the oldest goes first. Bounds memory under churn. */
export const MAX_TRACKED_CLAIMS = 1024;

/**
 * How long a block fetched by sync and fully validated (its certificate against the validator
 * set of its height), or a quorum certificate for a higher height seen by consensus, keeps the
 * node "behind" for consensus. A claim alone never pauses consensus; this evidence does, while
 * it keeps coming.
 */
export const BEHIND_EVIDENCE_TTL_MS = 10_000;

/** Kept asking for blocks while its deferred queue was full. */
export const PENALTY_SERVE_FLOOD = 1;

// ---- Pipeline (service) ----------------------------------------------------------------------

/** How often the service checks timeouts, serves deferred requests and re-plans. */
export const TICK_INTERVAL_MS = 250;

/** Progress log cadence while syncing. */
export const PROGRESS_LOG_INTERVAL_MS = 5_000;

/**
 * What counts as a real catch-up, logged at info: more blocks behind than this, or a sync that
 * lasts longer than CATCH_UP_LOG_MS. Less is the everyday case of a block that arrived by
 * gossip a moment before this node's own commit (debug only): on a healthy 3-member devnet it
 * happens at about half of all heights.
 */
export const CATCH_UP_LOG_BLOCKS = 3;
export const CATCH_UP_LOG_MS = 1_000;

/** Span of the blocks-per-second average: long enough to smooth batch arrivals. */
export const PROGRESS_RATE_WINDOW_MS = 10_000;

/**
 * Blocks applied per turn of the event loop, at most. Applying is synchronous SQLite work
 * (~70 µs a block on a quiet core), so 250 blocks is ~20 ms; bigger chunks gain little.
 */
export const APPLY_CHUNK_BLOCKS = 250;

/** At least this many per turn, however slow applying gets, so sync always moves. */
export const MIN_APPLY_CHUNK_BLOCKS = 16;

/**
 * Target duration of one applying turn. The chunk shrinks when applying is slow (a busy 1-CPU
 * VPS), so timers, pings and RPC wait at most about this long (docs/lessons.md#17).
 */
export const APPLY_TURN_BUDGET_MS = 20;

/** Blocks per worker job: small enough to spread one batch over every worker. */
export const VERIFY_CHUNK_BLOCKS = 128;

/** Workers default to the cores the runtime reports, within this range. */
export const MIN_VERIFY_WORKERS = 1;
export const MAX_VERIFY_WORKERS = 4;

// ---- Serving -------------------------------------------------------------------------------

/**
 * Byte budget of one `blocks` answer: 2 MiB under the 8 MiB frame payload limit, which leaves
 * room for the length prefixes of 500 blocks, and for one maximal block (4.1 MiB) on its own.
 */
export const SERVE_MAX_BYTES = MAX_FRAME_PAYLOAD_BYTES - 2 * 1024 * 1024;

/**
 * Blocks per second one peer may ask of us: five times our own 10k blocks/s target, so a
 * syncing friend is never throttled (docs/lessons.md#18), while a peer looping on getBlocks
 * cannot monopolise the store.
 */
export const SERVE_RATE_BLOCKS_PER_SEC = 50_000;

/** Burst allowance: a full window of requests at once, twice over. */
export const SERVE_BURST_BLOCKS = 100_000;

/**
 * Requests over the rate wait here and are answered later. 32 is eight times our own depth per
 * peer, so only a flooding peer overflows it (and then gets the lightest penalty).
 */
export const SERVE_MAX_DEFERRED_PER_PEER = 32;
