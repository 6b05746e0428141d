/**
 * Every metric timenode exports, defined in one place (documented in docs/metrics.md).
 *
 * Owns: names, help texts, label sets and buckets. Components receive a `NodeMetrics` and
 * increment counters; gauges of live state are wired with `collectFrom` by node/node.ts.
 * Must never: use unbounded label values (peer addresses, node ids, heights).
 */
import { Registry } from "./registry.ts";

/** RTT buckets from 50 µs (loopback) to 10 s (a VPS under stress). */
const RTT_BUCKETS_SECONDS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];
/** Commit latency buckets around the devnet interval (1 s) up to mainnet scale. */
const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createNodeMetrics(registry = new Registry()) {
  return {
    registry,
    // network
    peers: registry.gauge("timenode_peers", "Live handshaken peer connections, by direction."),
    peerConnects: registry.counter(
      "timenode_peer_connects_total",
      "Connections that completed the handshake, by direction.",
    ),
    peerDisconnects: registry.counter(
      "timenode_peer_disconnects_total",
      "Connections closed, by reason (see docs/metrics.md).",
    ),
    pingsSent: registry.counter("timenode_pings_sent_total", "Pings sent to peers."),
    pongsReceived: registry.counter(
      "timenode_pongs_received_total",
      "Pongs received that matched a ping.",
    ),
    pongTimeouts: registry.counter(
      "timenode_pong_timeouts_total",
      "Peers dropped because a pong was overdue by the pong timeout.",
    ),
    pingRtt: registry.histogram(
      "timenode_ping_rtt_seconds",
      "Round-trip time of ping/pong through the peer message loop.",
      RTT_BUCKETS_SECONDS,
    ),
    messagesReceived: registry.counter(
      "timenode_messages_received_total",
      "Messages received, by kind.",
    ),
    messagesSent: registry.counter(
      "timenode_messages_sent_total",
      "Messages queued to peers, by kind.",
    ),
    unknownMessages: registry.counter(
      "timenode_unknown_messages_total",
      "Frames with a message type this version does not know (ignored).",
    ),
    misbehavior: registry.counter(
      "timenode_misbehavior_total",
      "Misbehavior penalties, by reason.",
    ),
    bans: registry.counter("timenode_bans_total", "Peers banned for misbehavior."),
    inboundRejected: registry.counter(
      "timenode_inbound_rejected_total",
      "Inbound connections refused before the handshake, by reason.",
    ),
    handshakeBudgetRejected: registry.counter(
      "timenode_handshake_budget_rejected_total",
      "Inbound sockets refused because the handshake budget was spent: total or per-ip.",
    ),
    inboundEvictions: registry.counter(
      "timenode_inbound_evictions_total",
      "Established inbound peers dropped to make room for a newcomer (inbound full).",
    ),
    addressesRefused: registry.counter(
      "timenode_addresses_refused_total",
      "Gossiped addresses not kept, by reason: invalid (a hostname, out of scope, stale, ours) " +
        "or limited (over the source's rate, bucket or source-netgroup cap).",
    ),
    banListWrites: registry.counter(
      "timenode_ban_list_writes_total",
      "Writes of bans.json: at most about one a second, however many bans a flood causes.",
    ),
    sendQueueBytes: registry.gauge(
      "timenode_send_queue_bytes",
      "Bytes waiting in all peers' send queues.",
    ),
    knownAddresses: registry.gauge("timenode_known_addresses", "Addresses in the address book."),
    // chain and sync
    chainHeight: registry.gauge("timenode_chain_height", "Height of the local chain tip."),
    syncState: registry.gauge("timenode_sync_state", "Sync state: 0 idle, 1 syncing, 2 synced."),
    syncTargetHeight: registry.gauge(
      "timenode_sync_target_height",
      "Best height announced by any peer.",
    ),
    blocksApplied: registry.counter(
      "timenode_blocks_applied_total",
      "Blocks validated and stored.",
    ),
    blocksRejected: registry.counter(
      "timenode_blocks_rejected_total",
      "Blocks refused, by reason.",
    ),
    certificatesRejected: registry.counter(
      "timenode_certificates_rejected_unverified_total",
      "Certificates of fetched blocks refused before any of their signatures was verified, " +
        "by reason.",
    ),
    unbackedHeightClaims: registry.counter(
      "timenode_unbacked_height_claims_total",
      "Peers that claimed a higher tip and sent no block for it within the request timeout.",
    ),
    syncRequests: registry.counter(
      "timenode_sync_requests_total",
      "get-blocks requests by outcome: ok, timeout, stalled, disconnected, invalid, empty.",
    ),
    // consensus
    consensusHeight: registry.gauge(
      "timenode_consensus_height",
      "Height the consensus engine is deciding.",
    ),
    consensusRound: registry.gauge("timenode_consensus_round", "Current consensus round."),
    blocksCommitted: registry.counter(
      "timenode_blocks_committed_total",
      "Blocks committed by this node's consensus engine.",
    ),
    roundsTimedOut: registry.counter(
      "timenode_rounds_timed_out_total",
      "Consensus timeouts, by step.",
    ),
    votesSent: registry.counter("timenode_votes_sent_total", "Signed messages sent, by type."),
    nextHeightDropped: registry.counter(
      "timenode_next_height_dropped_total",
      "Consensus messages for the next height not buffered, by reason (non-member signer, " +
        "per-signer cap, bad signature, ...).",
    ),
    recordsNotApplicable: registry.counter(
      "timenode_records_not_applicable_total",
      "Relayed records with a valid signature that do not apply at our tip: dropped, sender not blamed.",
    ),
    equivocations: registry.counter(
      "timenode_equivocations_total",
      "Conflicting votes seen from one validator (kept as evidence).",
    ),
    isValidator: registry.gauge(
      "timenode_is_validator",
      "1 while this node is in the validator set of the height it is deciding, else 0.",
    ),
    // stake (docs/state.md#stake): read from the state at scrape time, counted per applied block
    stakeMissedBlocks: registry.gauge(
      "timenode_stake_missed_blocks",
      "Heights this node missed within the signed-blocks window (jailed above missedBlocksMax).",
    ),
    stakeJailed: registry.gauge(
      "timenode_stake_jailed",
      "1 while this node is jailed (from the height its jail takes effect), else 0.",
    ),
    stakeSetPower: registry.gauge(
      "timenode_stake_set_power",
      "Voting power of the set of the next height: kind=total (every listed member's tier " +
        "power, jailed ones included) or kind=active (what counts toward a quorum).",
    ),
    evidenceIncluded: registry.counter(
      "timenode_evidence_included_total",
      "Double-sign evidence records in blocks this node applied.",
    ),
    slashes: registry.counter(
      "timenode_slashes_total",
      "Members slashed and tombstoned by evidence in applied blocks, by member (self or other).",
    ),
    commitLatency: registry.histogram(
      "timenode_commit_latency_seconds",
      "From receiving a height's proposal to committing it.",
      LATENCY_BUCKETS_SECONDS,
    ),
    // ledger
    mempoolTransactions: registry.gauge(
      "timenode_mempool_transactions",
      "Transfers waiting in the mempool.",
    ),
    mempoolBytes: registry.gauge(
      "timenode_mempool_bytes",
      "Encoded bytes of the transfers waiting in the mempool.",
    ),
    txAccepted: registry.counter(
      "timenode_transactions_accepted_total",
      "Transfers admitted to the mempool, by source (rpc, peer, restore).",
    ),
    txRejected: registry.counter(
      "timenode_transactions_rejected_total",
      "Transfers refused at admission, by reason (see docs/metrics.md).",
    ),
    blockTransactions: registry.histogram(
      "timenode_block_transactions",
      "Transfers per applied block.",
      [0, 1, 10, 100, 500, 1_000, 2_000, 5_000, 10_000, 25_000],
    ),
    feesCollected: registry.counter(
      "timenode_fees_collected_units_total",
      "Fees of the transfers in applied blocks, in base units (1 TIME = 1e8).",
    ),
    transactionsApplied: registry.counter(
      "timenode_transactions_applied_total",
      "Transfers in applied blocks.",
    ),
    // runtime
    eventLoopLag: registry.gauge(
      "timenode_event_loop_lag_seconds",
      "How late the 1 s probe timer fired, last sample.",
    ),
    residentMemory: registry.gauge(
      "timenode_resident_memory_bytes",
      "Resident set size of the process.",
    ),
    buildInfo: registry.gauge(
      "timenode_build_info",
      "Always 1; the labels name the timenode version and the Deno runtime of this process.",
    ),
  };
}

export type NodeMetrics = ReturnType<typeof createNodeMetrics>;

/**
 * What each service may touch. A service receives only its own counters, so a test can hand it a
 * fresh registry's metrics and a service cannot reach into another's.
 */
export type NetworkMetrics = Pick<
  NodeMetrics,
  | "addressesRefused"
  | "banListWrites"
  | "bans"
  | "handshakeBudgetRejected"
  | "inboundEvictions"
  | "inboundRejected"
  | "messagesReceived"
  | "messagesSent"
  | "misbehavior"
  | "peerConnects"
  | "peerDisconnects"
  | "pingRtt"
  | "pingsSent"
  | "pongTimeouts"
  | "pongsReceived"
  | "unknownMessages"
  | "peers"
  | "sendQueueBytes"
  | "knownAddresses"
>;
export type CertificateMetrics = Pick<NodeMetrics, "certificatesRejected">;
export type SyncMetrics = Pick<
  NodeMetrics,
  | "blocksApplied"
  | "blocksRejected"
  | "certificatesRejected"
  | "syncRequests"
  | "unbackedHeightClaims"
  | "chainHeight"
  | "syncState"
  | "syncTargetHeight"
>;
export type LedgerMetrics = Pick<
  NodeMetrics,
  | "mempoolTransactions"
  | "mempoolBytes"
  | "txAccepted"
  | "txRejected"
  | "blockTransactions"
  | "feesCollected"
  | "transactionsApplied"
>;
export type ConsensusMetrics = Pick<
  NodeMetrics,
  | "blocksCommitted"
  | "commitLatency"
  | "consensusHeight"
  | "consensusRound"
  | "equivocations"
  | "nextHeightDropped"
  | "recordsNotApplicable"
  | "roundsTimedOut"
  | "votesSent"
>;
