/**
 * The consensus shell: runs one `ConsensusEngine` per height against the real network, chain,
 * clock and sign guard.
 *
 * Owns: the height lifecycle (start a height one block interval after the previous commit, or
 * at once after sync moved the tip), timers, building blocks to propose (`getValue`), checking
 * proposed blocks against the chain (`isValid`), persisting every signature in the sign guard
 * BEFORE it leaves the node, relaying, applying committed blocks, keeping connections to the
 * other masternodes, catch-up hints to lagging peers, evidence, and consensus metrics.
 * Must never: decide anything the engine decides, send a signed message whose guard record is
 * not on disk, sign while it is catching up, or go on after a failed guard write: that failure
 * is fatal (signing stops at once, the node shuts down and exits non-zero), because the engine
 * already counts the unsaved vote and would resend it, and after a restart the node could sign
 * a conflicting one (CometBFT's file signer stops the same way).
 */
import { getLogger } from "@logtape/logtape";
import { bytesEqual, toHex } from "../encoding/binary.ts";
import { type KeyPair, signBytes } from "../crypto/ed25519.ts";
import {
  type Block,
  BLOCK_VERSION,
  blockHash,
  type BlockHeader,
  type Certificate,
  lastCommitDigest,
  payloadRoot,
  type Proposal,
  proposalSignBytes,
  type Vote,
  VoteType,
} from "../chain/block.ts";
import type { ChainApi, StateMachine } from "../chain/api.ts";
import type { Genesis } from "../chain/genesis.ts";
import type { ValidatorSet } from "../chain/validators.ts";
import { checkProposedLastCommit, MAX_FUTURE_DRIFT_MS } from "../chain/verify.ts";
import { verifySignature } from "../crypto/ed25519.ts";
import type { NetworkApi } from "../network/api.ts";
import type { ConsensusMetrics } from "../metrics/definitions.ts";
import {
  ConsensusEngine,
  type ConsensusEngine as Engine,
  type EngineAction,
  type EngineEvent,
  type Evidence,
} from "./engine.ts";
import {
  DEFAULT_TIMEOUTS,
  MAX_LAST_COMMIT_VERDICTS,
  MAX_ROUND,
  type TimeoutConfig,
} from "./constants.ts";
import { LastCommitCollector, lastCommitWindowMs, windowRemainingMs } from "./last_commit.ts";
import { SIGN_GUARD_FILE, SignGuard } from "./sign_guard.ts";
import { loadLockEvidence, saveLockEvidence } from "./lock_evidence.ts";
import { type AddResult, RecordPool, type RecordsCheck } from "../state/record_pool.ts";
import { RecordType } from "../state/records.ts";
import { recordFaultAtEveryHeight } from "../state/record_check.ts";
import { VoteRelay } from "./vote_relay.ts";
import type { BlockRecord } from "../chain/block.ts";
import type { LockEvidence } from "./engine.ts";
import { proposerAt } from "./proposer.ts";
import { VotePresence } from "./vote_presence.ts";
import { hasQuorumAhead } from "./quorum_ahead.ts";

const log = getLogger(["timenode", "consensus"]);

/** Penalty for a consensus message that fails verification (bad signature, non-member...). */
const INVALID_MESSAGE_PENALTY = 20;
/** A lagging peer gets at most one catch-up hint per this interval. */
const CATCH_UP_HINT_INTERVAL_MS = 2_000;
/** While sync is catching up, re-check this often whether consensus may start. */
const SYNC_WAIT_RETRY_MS = 500;
/**
 * A relayed record that is invalid at every height (it does not decode, or its signature does
 * not verify for this chain): no honest node relays one. A record that merely does not apply at
 * our tip is dropped without blame (a lagging or leading sender judged it on its own tip).
 */
const INVALID_RECORD_PENALTY = 20;
/** Record types accepted from RPC and peers (docs/protocol.md#records). */
const RELAYED_RECORD_TYPES: ReadonlySet<number> = new Set([
  RecordType.Registration,
  RecordType.Deregistration,
  RecordType.CollateralRegistration,
  RecordType.Unjail,
  RecordType.Evidence,
]);
/** Equivocation evidence, one JSON object per line, in the data dir. */
export const EVIDENCE_FILE = "evidence.jsonl";
/** Equivocation evidence kept in memory for RPC; the full record is in the log. */
const MAX_EVIDENCE = 100;
/** Double signs remembered so each is handed to the evidence sink once. */
const MAX_EVIDENCE_SUBMITTED = 4_096;

/**
 * Where the node turns a detected double sign into an evidence record for a block (the record
 * pool). Called once per double sign (one signer, height, round and step), after it is logged
 * and written to `evidence.jsonl`; it must not throw (a throw is logged and ignored).
 */
export interface EvidenceSink {
  submit(evidence: Evidence): void;
}

export interface ConsensusServiceOptions {
  network: NetworkApi;
  chain: ChainApi;
  stateMachine: StateMachine;
  metrics: ConsensusMetrics;
  key: KeyPair;
  genesis: Genesis;
  genesisHash: Uint8Array;
  dataDir: string;
  /**
   * True while sync is fetching blocks: a node that is behind must not vote, so consensus waits
   * and checks again instead of starting the next height.
   */
  isSyncing: () => boolean;
  timeouts?: TimeoutConfig;
  now?: () => number;
  /** Transfers for the block we propose at `height`, in the room `records` leave (mempool). */
  selectTransactions?: (height: number, records: readonly BlockRecord[]) => Uint8Array[];
  /**
   * Checks a proposed block's transfer signatures off the event loop before the engine judges
   * it (mempool), so a block full of transfers we never saw does not stall the loop.
   */
  prepareBlock?: (block: Block) => Promise<void>;
  /**
   * Called once when the signing state (sign guard, lock evidence) cannot be written: the node
   * must shut down and exit non-zero. Signing has already stopped.
   */
  onFatal?: (error: Error) => void;
  /**
   * Verifies every signature of `certificate`, the commit of the block with `header`, off the
   * event loop (the node's verify pool). The signers were already checked against the set. A
   * rejection means the checker is unavailable: the signatures are then verified here.
   * Default: here, on the event loop.
   */
  verifyCommit?: (header: BlockHeader, certificate: Certificate) => Promise<boolean>;
  /** Receives each double sign once (see `EvidenceSink`). */
  evidenceSink?: EvidenceSink;
  /**
   * Called when the precommits buffered for `height` (above ours) form a quorum certificate of
   * its set: verified evidence that the node is behind (sync's `isBehind`).
   */
  onQuorumAhead?: (height: number) => void;
}

export interface ConsensusInfo {
  height: number;
  round: number;
  step: string;
  proposer: string | null;
  lockedRound: number;
  validRound: number;
  isValidator: boolean;
  nodeId: string;
  totalPower: number;
  validators: { nodeId: string; tier: string; power: number; address: string }[];
  lastCommit: { height: number; round: number; at: number } | null;
  evidence: number;
  /** Validators (node ids) the current round waits for: no vote heard this round or the last. */
  missingVotes: string[];
}

export class ConsensusService {
  readonly #o: ConsensusServiceOptions;
  readonly #now: () => number;
  readonly #selfId: string;
  #guard: SignGuard | null = null;
  #lockEvidence: LockEvidence | null = null;
  #engine: Engine | null = null;
  #set: ValidatorSet | null = null;
  #heightStartedAt = 0;
  #heightTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Serialises action processing: a signature's guard write must finish before the next. */
  #queue: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Set by a failed guard write: nothing is signed or sent any more. */
  #failed = false;
  #lastCommit: { height: number; round: number; at: number } | null = null;
  readonly #hints = new Map<string, number>();
  /** The highest height whose quorum certificate was reported ahead of us (once each). */
  #quorumAheadReported = 0;
  readonly #evidence: unknown[] = [];
  readonly #persistentPeers = new Set<string>();
  readonly #pool = new RecordPool();
  readonly #votePresence = new VotePresence();
  readonly #voteRelay: VoteRelay;
  /** Membership of the current height's set; null before the first height. */
  #isMember: boolean | null = null;
  /** Precommits for the last applied block, for the next block's `lastCommit`. */
  readonly #collector: LastCommitCollector;
  /** Proposed last commits judged so far (digest hex → every signature verified). */
  readonly #lastCommitVerdicts = new Map<string, boolean>();
  /** Header of the block being collected: what the verify pool checks a last commit against. */
  #collectedHeader: BlockHeader | null = null;
  /** Double signs already given to the evidence sink. */
  readonly #evidenceSubmitted = new Set<string>();

  constructor(o: ConsensusServiceOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#selfId = toHex(o.key.publicKey);
    this.#collector = new LastCommitCollector(o.genesisHash, verifySignature);
    this.#voteRelay = new VoteRelay(o.network, this.#now, this.#selfId);
  }

  async start(): Promise<void> {
    this.#guard = await SignGuard.open(`${this.#o.dataDir}/${SIGN_GUARD_FILE}`);
    try {
      this.#lockEvidence = await loadLockEvidence(this.#o.dataDir);
    } catch (e) {
      // Safety rests on the sign guard alone; without the evidence a restart only loses the
      // ability to re-propose its locked block.
      log.warn("ignoring unreadable lock evidence: {error}", { error: (e as Error).message });
    }
    const net = this.#o.network;
    net.onMessage("proposal", (from, m) => {
      const deliver = () =>
        this.#onMessage({ kind: "proposal", proposal: m.proposal, from }, m.proposal.height, from);
      // Only for the height being decided: a forged proposal costs its sender a penalty there.
      const current = m.proposal.height === this.#engine?.height;
      const prepared = current
        ? [this.#o.prepareBlock?.(m.proposal.block), this.#prepareLastCommit(m.proposal)]
          .filter((p) => p !== undefined)
        : [];
      if (prepared.length > 0) Promise.all(prepared).then(deliver, deliver);
      else deliver();
    });
    net.onMessage("vote", (from, m) => {
      this.#voteRelay.received(from, m.vote);
      this.#onMessage({ kind: "vote", vote: m.vote, from }, m.vote.height, from);
    });
    this.#voteRelay.start();
    net.onMessage("record", (from, m) => this.submitRecord(m.record, from));
    this.#o.chain.onBlockApplied((cb) => {
      this.#collectFrom(cb.block.header, cb.certificate, this.#now());
      this.#pool.revalidate(cb.block.records, this.#checkRecords);
      this.#onBlockApplied(cb.block.header.height);
    });
    const tip = this.#o.chain.tip();
    // After a restart the stored certificate is all there is: late signers seen before the
    // stop are lost for this one height (docs/consensus.md §15).
    if (tip.height > 0) {
      const stored = this.#o.chain.getBlock(tip.height);
      if (stored) this.#collectFrom(stored.block.header, stored.certificate, 0);
    }
    const m = this.#o.metrics;
    m.consensusHeight.collectFrom(() => this.#engine?.height ?? this.#o.chain.tip().height + 1);
    m.consensusRound.collectFrom(() => this.#engine?.round ?? 0);
    this.#scheduleHeight(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#heightTimer);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#voteRelay.stop();
    await this.#queue;
  }

  /**
   * Offers a record for a future block: validated against the tip with the chain's own state
   * machine, pooled, and relayed once to every peer but the one it came from.
   */
  submitRecord(record: BlockRecord, from: string | null): AddResult {
    // Only masternode records travel: signed ones, and evidence (signed twice by its offender).
    // Unsigned data records would let anyone fill every pool and block for free.
    if (!RELAYED_RECORD_TYPES.has(record.type)) {
      return { invalid: `record type ${record.type} is not accepted from the network` };
    }
    const fault = from
      ? recordFaultAtEveryHeight(this.#o.genesisHash, this.#o.genesis.network, record)
      : null;
    if (fault !== null) {
      this.#o.network.penalize(from!, INVALID_RECORD_PENALTY, "invalid-record", fault);
      return { invalid: fault };
    }
    const r = this.#pool.add(record, this.#checkRecords);
    if (r === "added") {
      this.#o.network.broadcast({ kind: "record", record }, from ?? undefined);
      log.info("record pooled ({type}), {size} waiting", {
        type: record.type,
        size: this.#pool.size,
      });
    } else if (typeof r === "object") {
      // Valid somewhere, just not on our tip: the sender may be ahead or behind. Never a ban
      // trap for a lagging node (docs/security.md).
      log.debug("record does not apply at our tip, dropped: {reason}", { reason: r.invalid });
      if (from) this.#o.metrics.recordsNotApplicable.inc();
    }
    return r;
  }

  poolInfo(): { size: number; bytes: number } {
    return { size: this.#pool.size, bytes: this.#pool.bytes };
  }

  /** Throws unless `records` apply, in order, on top of the current tip. */
  #checkRecords: RecordsCheck = (records) => {
    const chain = this.#o.chain;
    const tip = chain.tip();
    const height = tip.height + 1;
    const set = chain.validatorSetFor(height);
    // Any member with power may propose; one without (free tier) would make the block invalid.
    const first = set?.voting[0];
    if (!set || !first) throw new Error(`no validator set with power for height ${height}`);
    // The block the records would go into carries a last commit too (state rules read it).
    const lastCommit = this.#collector.certificateFor(tip.height) ?? undefined;
    this.#o.stateMachine.apply(chain.stateView(), {
      header: {
        version: BLOCK_VERSION,
        chainId: this.#o.genesisHash,
        height,
        prevHash: tip.hash,
        timestamp: tip.timestamp + 1,
        proposer: first.nodeId,
        round: 0,
        payloadRoot: payloadRoot(records, [], lastCommit),
        validatorSetHash: set.hash,
      },
      records: [...records],
      ...(lastCommit ? { lastCommit } : {}),
    });
  };

  info(): ConsensusInfo {
    const e = this.#engine;
    const set = this.#set;
    return {
      height: e?.height ?? this.#o.chain.tip().height + 1,
      round: e?.round ?? 0,
      step: e ? (e.decision ? "commit" : e.step) : "waiting",
      proposer: e && set ? toHex(proposerAt(set, e.height, e.round).nodeId) : null,
      lockedRound: e?.lockedRound ?? -1,
      validRound: e?.validRound ?? -1,
      isValidator: e?.isValidator ?? false,
      nodeId: this.#selfId,
      totalPower: set?.totalPower ?? 0,
      validators: (set?.validators ?? []).map((v) => ({
        nodeId: toHex(v.nodeId),
        tier: v.tier,
        power: v.power,
        address: v.address,
      })),
      lastCommit: this.#lastCommit,
      evidence: this.#evidence.length,
      missingVotes: this.missingVotes(),
    };
  }

  /** Whether this node is in the validator set of the height it is deciding. */
  get isValidator(): boolean {
    return this.#isMember === true;
  }

  /**
   * Node ids of the validators whose votes the current round lacks (read-only diagnostic). None
   * while nobody owes a vote yet (round 0 before its proposal) or once the height is decided.
   */
  missingVotes(): string[] {
    const e = this.#engine;
    const set = this.#set;
    if (!e || !set || e.decision || (e.round === 0 && e.step === "propose")) return [];
    const ids = set.validators.map((v) => toHex(v.nodeId));
    return this.#votePresence.missing(e.round, ids, this.#selfId);
  }

  // ---- height lifecycle --------------------------------------------------------------------

  #scheduleHeight(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#heightTimer);
    this.#heightTimer = setTimeout(() => this.#beginHeight(), Math.max(0, delayMs));
  }

  #beginHeight(): void {
    if (this.#stopped) return;
    if (this.#o.isSyncing()) {
      this.#scheduleHeight(SYNC_WAIT_RETRY_MS);
      return;
    }
    const tip = this.#o.chain.tip();
    const height = tip.height + 1;
    if (this.#engine && this.#engine.height === height && !this.#engine.decision) return;
    const wait = this.#lastCommitWait(tip.height);
    if (wait > 0) {
      this.#scheduleHeight(wait);
      return;
    }
    const set = this.#o.chain.validatorSetFor(height);
    if (!set) {
      log.warn("no validator set known for height {height}; retrying", { height });
      this.#scheduleHeight(SYNC_WAIT_RETRY_MS);
      return;
    }
    const previousEngine = this.#engine;
    const buffered = previousEngine && previousEngine.height + 1 === height
      ? previousEngine.takeNextHeightMessages()
      : [];
    if (previousEngine) this.#countNextHeightDrops(previousEngine);
    const isMember = set.powerOf(this.#selfId) > 0;
    const guard = this.#guard!;
    this.#set = set;
    this.#heightStartedAt = this.#now();
    const engine = new ConsensusEngine({
      height,
      validators: set,
      // Fixed since the previous block: only its members' next-height messages are buffered.
      nextValidators: this.#o.chain.validatorSetFor(height + 1) ?? null,
      previous: { hash: tip.hash, timestamp: tip.timestamp },
      genesisHash: this.#o.genesisHash,
      timeouts: this.#o.timeouts ?? DEFAULT_TIMEOUTS,
      signer: isMember
        ? {
          publicKey: this.#o.key.publicKey,
          canSign: (h, r, step, hash) => !this.#failed && guard.maySign(h, r, step, hash),
          sign: (message) => signBytes(this.#o.key, message),
        }
        : null,
      getValue: (h, r) => this.#buildBlock(h, r, set),
      isValid: (block) => this.#isValid(block),
      restore: {
        lastSigned: guard.lastSigned,
        lock: guard.lock,
        lockEvidence: this.#lockEvidence,
        lastMessages: guard.lastMessages,
      },
    });
    this.#engine = engine;
    this.#votePresence.startHeight(height);
    this.#voteRelay.startHeight(height, set.voting.map((v) => toHex(v.nodeId)), set.hash);
    this.#logMembership(height, isMember, set);
    if (isMember) this.#connectToValidators(set);
    log.debug("height {height} started: {n} validators, power {power}, member={member}", {
      height,
      n: set.validators.length,
      power: set.totalPower,
      member: isMember,
    });
    const resending =
      guard.lastMessages.filter((m) =>
        (m.kind === "vote" ? m.vote.height : m.proposal.height) === height
      ).length;
    if (resending > 0 && !previousEngine) {
      log.info("re-sending {count} messages signed at height {height} before the restart", {
        count: resending,
        height,
      });
    }
    this.#enqueue(() => engine.start());
    for (const b of buffered) {
      if (b.message.kind === "proposal") {
        const event: EngineEvent = { kind: "proposal", proposal: b.message.proposal, from: b.from };
        // Like a proposal arriving now: its last commit is verified in the workers first.
        const deliver = () => this.#enqueue(() => engine.handle(event));
        this.#prepareLastCommit(b.message.proposal).then(deliver, deliver);
        continue;
      }
      const event: EngineEvent = { kind: "vote", vote: b.message.vote, from: b.from };
      this.#enqueue(() => engine.handle(event));
    }
  }

  /**
   * Next-height messages the last engine did not buffer. Honest validators never cause any but
   * `no-set`, so the rest is someone flooding: one warning per height at most.
   */
  #countNextHeightDrops(engine: Engine): void {
    let suspicious = 0;
    for (const [reason, n] of engine.nextHeightDropped) {
      this.#o.metrics.nextHeightDropped.inc({ reason }, n);
      if (reason !== "no-set") suspicious += n;
    }
    if (suspicious > 0) {
      log.warn("dropped {count} messages for height {height}: {reasons}", {
        count: suspicious,
        height: engine.height + 1,
        reasons: Object.fromEntries(engine.nextHeightDropped),
      });
    }
  }

  #onBlockApplied(height: number): void {
    const engine = this.#engine;
    if (engine && height < engine.height) return;
    // A block at or past our height: committed by us, or fetched by sync. Either way the next
    // height starts one block interval from now, so every node starts it at about the same time.
    // Sync often delivers a peer's block a few ms before our own commit and is "syncing" for that
    // moment; `#beginHeight` re-checks, so that blip must not delay the schedule here.
    this.#scheduleHeight(this.#o.genesis.blockIntervalMs);
  }

  /** Becoming a validator and leaving the set are logged once each, at the height it happens. */
  #logMembership(height: number, isMember: boolean, set: ValidatorSet): void {
    if (isMember === this.#isMember) return;
    if (isMember) {
      log.info("this node is a validator from height {height}: power {power} of {total}", {
        height,
        power: set.powerOf(this.#selfId),
        total: set.totalPower,
      });
    } else if (this.#isMember !== null) {
      log.info("this node left the validator set at height {height}", { height });
    }
    this.#isMember = isMember;
  }

  /**
   * Masternodes keep a connection to every other voting masternode of the current set. Not to
   * members without power: anyone can register a free one with any address, which would
   * otherwise make every validator dial it forever.
   */
  #connectToValidators(set: ValidatorSet): void {
    for (const v of set.voting) {
      if (toHex(v.nodeId) === this.#selfId || !v.address || this.#persistentPeers.has(v.address)) {
        continue;
      }
      try {
        this.#o.network.addPersistentPeer(v.address);
        this.#persistentPeers.add(v.address);
      } catch (e) {
        log.warn("masternode {id} announces an unusable address {address}: {error}", {
          id: toHex(v.nodeId).slice(0, 12),
          address: v.address,
          error: (e as Error).message,
        });
      }
    }
  }

  // ---- events in -------------------------------------------------------------------------------

  #onMessage(event: EngineEvent, height: number, from: string): void {
    const engine = this.#engine;
    if (!engine || this.#stopped) return;
    if (event.kind === "vote" && this.#offerLatePrecommit(event.vote, engine, from)) return;
    if (height === engine.height || height === engine.height + 1) {
      if (event.kind === "vote" && height === engine.height) {
        const id = toHex(event.vote.validator);
        if (this.#set && this.#set.powerOf(id) > 0) {
          this.#votePresence.note(height, event.vote.round, id);
        }
      }
      const nextPrecommit = height === engine.height + 1 && event.kind === "vote" &&
        event.vote.type === VoteType.Precommit;
      this.#enqueue(() => {
        const actions = engine.handle(event);
        if (nextPrecommit) this.#checkQuorumAhead(engine);
        return actions;
      });
      return;
    }
    if (height < engine.height) this.#hintCatchUp(from);
    // Heights further ahead mean we are behind: sync learns it from the peer's tip.
  }

  /** Buffered precommits of height + 1 that form its quorum certificate: we are behind. */
  #checkQuorumAhead(engine: ConsensusEngine): void {
    const report = this.#o.onQuorumAhead;
    const next = engine.height + 1;
    if (!report || this.#quorumAheadReported >= next) return;
    const nextSet = this.#o.chain.validatorSetFor(next);
    if (!nextSet || !hasQuorumAhead(nextSet, engine.nextHeightMessages)) return;
    this.#quorumAheadReported = next;
    log.info("saw a quorum certificate for height {height} while at {current}", {
      height: next,
      current: engine.height,
    });
    report(next);
  }

  /** A peer voting on a height we have committed is behind: point it at our tip. */
  #hintCatchUp(peer: string): void {
    const now = this.#now();
    const last = this.#hints.get(peer) ?? 0;
    if (now - last < CATCH_UP_HINT_INTERVAL_MS) return;
    this.#hints.set(peer, now);
    if (this.#hints.size > 1024) this.#hints.clear();
    const tip = this.#o.chain.tip();
    this.#o.network.send(peer, { kind: "blockAnnounce", height: tip.height, hash: tip.hash });
  }

  // ---- actions out -------------------------------------------------------------------------------

  #enqueue(produce: () => EngineAction[]): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#stopped) return;
      let actions: EngineAction[];
      try {
        actions = produce();
      } catch (e) {
        log.error("consensus engine failed: {error}", { error: (e as Error).stack ?? String(e) });
        return;
      }
      for (const a of actions) {
        if (this.#stopped) return;
        await this.#perform(a);
      }
    }).catch((e) =>
      log.error("consensus action failed: {error}", { error: (e as Error).stack ?? String(e) })
    );
  }

  async #perform(a: EngineAction): Promise<void> {
    const net = this.#o.network;
    const m = this.#o.metrics;
    switch (a.kind) {
      case "broadcastProposal":
      case "broadcastVote": {
        const g = a.guard;
        const message = a.kind === "broadcastVote"
          ? { kind: "vote" as const, vote: a.vote }
          : { kind: "proposal" as const, proposal: a.proposal };
        try {
          // On disk, synced, before the message exists anywhere but in this process.
          await this.#guard!.recordSigned(g.height, g.round, g.step, g.blockHash, g.lock, message);
          if (a.kind === "broadcastVote" && a.lockEvidence) {
            await saveLockEvidence(this.#o.dataDir, a.lockEvidence);
            this.#lockEvidence = a.lockEvidence;
          }
        } catch (e) {
          return this.#fail(e as Error);
        }
        if (a.kind === "broadcastProposal") {
          net.broadcast({ kind: "proposal", proposal: a.proposal });
          this.#voteRelay.proposed(a.proposal);
          m.votesSent.inc({ type: "proposal" });
          log.debug("proposed height {height} round {round}", {
            height: a.proposal.height,
            round: a.proposal.round,
          });
        } else {
          net.broadcast({ kind: "vote", vote: a.vote });
          this.#voteRelay.broadcasted(a.vote);
          m.votesSent.inc({ type: a.vote.type === VoteType.Prevote ? "prevote" : "precommit" });
        }
        return;
      }
      case "relay":
        // A first-seen vote goes only to the peers that lack it, a first-seen proposal only to
        // the peers not connected to its proposer (consensus/vote_gossip.ts).
        if (a.message.kind === "vote" && a.except !== null) {
          // Precommits skip the hold: the next proposer's last commit collects them for only
          // one interval after the commit (VoteRelay.relayNow).
          const vote = a.message.vote;
          const relayed = vote.type === VoteType.Precommit
            ? this.#voteRelay.relayNow(vote, a.except)
            : this.#voteRelay.relay(vote, a.except);
          if (relayed) return;
        }
        if (a.message.kind === "proposal" && a.except !== null && this.#set) {
          const p = a.message.proposal;
          const proposer = toHex(proposerAt(this.#set, p.height, p.round).nodeId);
          if (this.#voteRelay.relayProposal(p, proposer, a.except)) return;
        }
        net.broadcast(a.message, a.except ?? undefined);
        return;
      case "scheduleTimeout": {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          const engine = this.#engine;
          if (!engine || engine.height !== a.height || this.#stopped) return;
          // Count a timeout only when it still matters: the engine is in that round and step.
          if (
            a.step !== "resend" && !engine.decision && engine.round === a.round &&
            engine.step === a.step
          ) {
            m.roundsTimedOut.inc({ step: a.step });
          }
          this.#enqueue(() =>
            engine.handle({ kind: "timeout", step: a.step, height: a.height, round: a.round })
          );
        }, a.delayMs);
        this.#timers.add(t);
        return;
      }
      case "commit":
        this.#commit(a.block, a.certificate);
        return;
      case "equivocation":
        m.equivocations.inc();
        this.#evidence.push(a.evidence);
        if (this.#evidence.length > MAX_EVIDENCE) this.#evidence.shift();
        log.warn("equivocation by {validator}: {kind}", {
          validator: toHex(evidenceSigner(a.evidence)).slice(0, 16),
          kind: a.evidence.kind,
          evidence: a.evidence,
        });
        // Kept on disk too: the signed pair proves the fault to anyone, long after the log.
        await Deno.writeTextFile(
          `${this.#o.dataDir}/${EVIDENCE_FILE}`,
          JSON.stringify({ at: new Date(this.#now()).toISOString(), ...a.evidence }, hexReplacer) +
            "\n",
          { append: true },
        ).catch((e) => log.warn("cannot save evidence: {error}", { error: (e as Error).message }));
        this.#submitEvidence(a.evidence);
        return;
      case "rejected":
        if (a.from) {
          net.penalize(a.from, INVALID_MESSAGE_PENALTY, `consensus-${a.reason}`, a.detail);
        } else {log.warn("own consensus message rejected: {reason} {detail}", {
            reason: a.reason,
            detail: a.detail,
          });}
        return;
    }
  }

  /** A signing-state write failed: stop everything at once and ask the node to exit. */
  #fail(error: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#stopped = true;
    clearTimeout(this.#heightTimer);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#voteRelay.stop();
    log.fatal(
      "cannot save the sign guard ({error}); signing stopped: a signature it did not save could " +
        "be double-signed after a restart. Free the disk and restart the node.",
      { error: error.message },
    );
    this.#o.onFatal?.(error);
  }

  #commit(block: Block, certificate: Parameters<ChainApi["applyBlock"]>[0]["certificate"]): void {
    const chain = this.#o.chain;
    const height = block.header.height;
    const now = this.#now();
    if (chain.tip().height >= height) return; // sync got there first
    try {
      // Every precommit of the certificate was verified once, when the engine counted it: the
      // chain checks the signers, their power and the quorum, and verifies no signature again.
      chain.applyBlock({ block, certificate }, undefined, { signaturesVerified: true });
    } catch (e) {
      // The engine only commits with a valid > 2/3 certificate, so this is a bug or a
      // disagreement between engine and chain validity: loud, and sync will recover.
      log.error("cannot apply committed block {height}: {error}", {
        height,
        error: (e as Error).message,
      });
      this.#scheduleHeight(SYNC_WAIT_RETRY_MS);
      return;
    }
    this.#lastCommit = { height, round: certificate.round, at: now };
    this.#o.metrics.blocksCommitted.inc();
    this.#o.metrics.commitLatency.observe((now - this.#heightStartedAt) / 1000);
    log.info(
      "committed height {height} round {round} hash {hash} proposer {proposer} signers {signers}",
      {
        height,
        round: certificate.round,
        hash: toHex(certificate.blockHash).slice(0, 16),
        proposer: toHex(block.header.proposer).slice(0, 12),
        signers: certificate.signatures.length,
      },
    );
  }

  // ---- the chain's side of the engine ------------------------------------------------------

  #buildBlock(height: number, round: number, set: ValidatorSet): Block | null {
    const tip = this.#o.chain.tip();
    if (tip.height + 1 !== height) return null;
    const lastCommit = height >= 2 ? this.#lastCommitToPropose(tip.height) : undefined;
    if (height >= 2 && !lastCommit) return null;
    const records = this.#pool.select(this.#checkRecords);
    const transactions = this.#o.selectTransactions?.(height, records) ?? [];
    return {
      header: {
        version: BLOCK_VERSION,
        chainId: this.#o.genesisHash,
        height,
        prevHash: tip.hash,
        timestamp: Math.max(this.#now(), tip.timestamp + 1),
        proposer: this.#o.key.publicKey,
        round,
        payloadRoot: payloadRoot(records, transactions, lastCommit),
        validatorSetHash: set.hash,
      },
      records,
      ...(transactions.length > 0 ? { transactions } : {}),
      ...(lastCommit ? { lastCommit } : {}),
    };
  }

  #isValid(block: Block): boolean {
    const tip = this.#o.chain.tip();
    const h = block.header;
    if (h.height !== tip.height + 1 || !bytesEqual(h.prevHash, tip.hash)) return false;
    if (h.timestamp <= tip.timestamp || h.timestamp > this.#now() + MAX_FUTURE_DRIFT_MS) {
      return false;
    }
    if (!this.#lastCommitValid(block)) return false;
    try {
      // The chain keeps the writes, so the commit of this block does not apply it again.
      this.#o.chain.checkProposal(block);
      return true;
    } catch (e) {
      log.debug("proposed block {height} invalid: {error}", {
        height: h.height,
        error: (e as Error).message,
      });
      return false;
    }
  }

  // ---- the last commit (docs/consensus.md §15) ----------------------------------------------

  /** Collects for the block with `header` from its certificate (merged if already collecting). */
  #collectFrom(header: BlockHeader, certificate: Certificate, committedAt: number): void {
    const set = this.#o.chain.validatorSetFor(certificate.height);
    if (!set) return;
    this.#collector.reset(certificate, set, committedAt);
    this.#collectedHeader = header;
  }

  /** How long the height after `tipHeight` must still wait for the collection window. */
  #lastCommitWait(tipHeight: number): number {
    if (tipHeight === 0 || this.#collector.height !== tipHeight) return 0;
    const window = lastCommitWindowMs(this.#o.genesis.blockIntervalMs);
    return windowRemainingMs(this.#collector.committedAt, this.#now(), window);
  }

  /**
   * Hands a precommit for the collected height, arriving after its commit, to the collector.
   * True when the vote was refused and its sender penalized; otherwise it goes on as before
   * (to a decided engine that ignores it, or to the catch-up hint for a lagging sender).
   */
  #offerLatePrecommit(vote: Vote, engine: Engine, from: string): boolean {
    const height = this.#collector.height;
    if (vote.height !== height || vote.type !== VoteType.Precommit) return false;
    // While the engine still decides that height, the vote is the engine's.
    if (engine.height === height && !engine.decision) return false;
    const result = this.#collector.offer(vote);
    if (result === "added") {
      log.debug("late precommit for height {height} from {validator}: {signers} signers", {
        height,
        validator: toHex(vote.validator).slice(0, 12),
        signers: this.#collector.size,
      });
      // First sight of a verified message: relayed once, like the engine relays votes, and
      // like them only to the peers that lack it (on a full mesh: none), but without the hold:
      // the next proposer's collection window may be shorter (VoteRelay.relayNow).
      if (!this.#voteRelay.relayNow(vote, from)) {
        this.#o.network.broadcast({ kind: "vote", vote }, from);
      }
    } else if (result === "not-member" || result === "bad-signature") {
      const reason = result === "not-member" ? "not-validator" : "bad-signature";
      this.#o.network.penalize(
        from,
        INVALID_MESSAGE_PENALTY,
        `consensus-${reason}`,
        `late precommit for height ${height}`,
      );
      return true;
    }
    return false;
  }

  /** The commit for the block after `tipHeight`: every signer collected for block `tipHeight`. */
  #lastCommitToPropose(tipHeight: number): Certificate | undefined {
    let certificate = this.#collector.certificateFor(tipHeight);
    if (!certificate) {
      const stored = this.#o.chain.getBlock(tipHeight);
      if (stored) this.#collectFrom(stored.block.header, stored.certificate, 0);
      certificate = this.#collector.certificateFor(tipHeight);
    }
    if (!certificate) return undefined;
    // Each collected signature was verified (the stored ones when their block was applied).
    this.#rememberLastCommitVerdict(toHex(lastCommitDigest(certificate)), true);
    return certificate;
  }

  /**
   * Verifies a proposed block's last commit before the engine judges it: the cheap checks here,
   * the signatures through `verifyCommit` off the event loop. Only the verdict is kept; the
   * engine's validity check (`#lastCommitValid`) uses it, or verifies on the loop without one.
   */
  async #prepareLastCommit(proposal: Proposal): Promise<void> {
    const block = proposal.block;
    const lastCommit = block.lastCommit;
    const verifyCommit = this.#o.verifyCommit;
    const header = this.#collectedHeader;
    const tip = this.#o.chain.tip();
    if (!lastCommit || !verifyCommit || !header || header.height !== tip.height) return;
    const key = digestHex(lastCommit);
    if (key === null || this.#lastCommitVerdicts.has(key)) return;
    const set = this.#o.chain.validatorSetFor(tip.height);
    if (!set || block.header.height !== tip.height + 1) return;
    // Cheap checks only (every signature "verifies"): what fails one is refused for free later.
    const cheap = checkProposedLastCommit(
      this.#o.genesisHash,
      lastCommit,
      tip.height + 1,
      tip.hash,
      set,
      () => true,
    );
    if (!cheap.ok) return;
    // Worker time only for a proposal its proposer really signed: a forger pays for one check,
    // not for up to 1,000 (the engine then refuses the proposal and penalizes the sender).
    if (!this.#signedByProposer(proposal)) return;
    try {
      this.#rememberLastCommitVerdict(key, await verifyCommit(header, lastCommit));
    } catch (e) {
      log.debug("last commit not verified off the loop: {error}", {
        error: (e as Error).message,
      });
    }
  }

  /** The proposal's signature is its round's proposer's (the engine checks it again). */
  #signedByProposer(p: Proposal): boolean {
    const set = this.#set;
    if (!set || shapeless(p)) return false;
    const message = proposalSignBytes(
      this.#o.genesisHash,
      p.height,
      p.round,
      p.validRound,
      blockHash(p.block.header),
    );
    return verifySignature(proposerAt(set, p.height, p.round).nodeId, message, p.signature);
  }

  /** A proposed block's last commit is right for our tip: placement, signers, signatures. */
  #lastCommitValid(block: Block): boolean {
    const tip = this.#o.chain.tip();
    const lastCommit = block.lastCommit;
    const key = lastCommit ? digestHex(lastCommit) : null;
    if (lastCommit && key === null) return false;
    const set = tip.height > 0 ? this.#o.chain.validatorSetFor(tip.height) : undefined;
    if (tip.height > 0 && !set) return false;
    const known = key !== null ? this.#lastCommitVerdicts.get(key) : undefined;
    const verdict = checkProposedLastCommit(
      this.#o.genesisHash,
      lastCommit,
      tip.height + 1,
      tip.hash,
      // Unused at height 1, where the only valid last commit is none.
      set ?? { totalPower: 0, voting: [], powerOf: () => 0 },
      known === undefined ? undefined : () => known,
    );
    if (key !== null && known === undefined && (verdict.ok || verdict.fault === "bad-signature")) {
      this.#rememberLastCommitVerdict(key, verdict.ok);
    }
    if (!verdict.ok) {
      log.debug("proposed block {height} has an invalid last commit: {why}", {
        height: block.header.height,
        why: verdict.why,
      });
    }
    return verdict.ok;
  }

  #rememberLastCommitVerdict(key: string, ok: boolean): void {
    this.#lastCommitVerdicts.delete(key);
    this.#lastCommitVerdicts.set(key, ok);
    if (this.#lastCommitVerdicts.size > MAX_LAST_COMMIT_VERDICTS) {
      this.#lastCommitVerdicts.delete(this.#lastCommitVerdicts.keys().next().value as string);
    }
  }

  // ---- evidence out --------------------------------------------------------------------------

  /** Hands a double sign to the evidence sink, once per signer, height, round and step. */
  #submitEvidence(evidence: Evidence): void {
    const sink = this.#o.evidenceSink;
    if (!sink) return;
    const key = evidenceKey(evidence);
    if (this.#evidenceSubmitted.has(key)) return;
    if (this.#evidenceSubmitted.size >= MAX_EVIDENCE_SUBMITTED) this.#evidenceSubmitted.clear();
    this.#evidenceSubmitted.add(key);
    try {
      sink.submit(evidence);
    } catch (e) {
      log.warn("evidence sink failed: {error}", { error: (e as Error).message });
    }
  }
}

function hexReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return toHex(value);
  if (typeof value === "bigint") return value.toString();
  return value;
}

function evidenceSigner(e: { kind: string; first: Vote | Proposal }): Uint8Array {
  return "validator" in e.first ? e.first.validator : e.first.block.header.proposer;
}

/** One double sign: signer, height, round and step (a proposal is the propose step). */
function evidenceKey(e: Evidence): string {
  if (e.kind === "duplicateVote") {
    const v = e.first;
    return `vote/${toHex(v.validator)}/${v.height}/${v.round}/${v.type}`;
  }
  const p = e.first;
  return `proposal/${toHex(evidenceSigner(e))}/${p.height}/${p.round}`;
}

/** Hex digest of a last commit, or null when its fields cannot even be encoded. */
function digestHex(lastCommit: Certificate): string | null {
  try {
    return toHex(lastCommitDigest(lastCommit));
  } catch {
    return null;
  }
}

/** A proposal whose fields cannot be hashed or signed over (the engine refuses it with a reason). */
function shapeless(p: Proposal): boolean {
  return !Number.isSafeInteger(p.round) || p.round < 0 || p.round > MAX_ROUND ||
    !Number.isInteger(p.validRound) || p.validRound < -1 || p.validRound > 0x7fffffff;
}
