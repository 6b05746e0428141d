/**
 * The Tendermint consensus engine for one height: Algorithm 1 of "The latest gossip on BFT
 * consensus" (Buchman, Kwon, Milosevic 2018) as a sans-IO state machine. The rules, with the
 * paper's line numbers, and the few deliberate deviations (resend, proof-of-lock relay,
 * validValue from a later round's POL, stall escape) are in docs/consensus.md §4.
 *
 * Owns: the per-height consensus state (round, step, lockedValue/lockedRound,
 * validValue/validRound, the vote tallies), signature verification of incoming proposals and
 * votes, equivocation detection, the commit certificate, and the bounded buffers for future
 * rounds and the next height.
 * Must never: do I/O, read a clock, use randomness, sign without asking `signer.canSign`
 * first, count a validator's power twice in one tally, or let hostile input throw.
 *
 * ## API
 *
 * Create one engine per height (the paper's line 53: a new height starts with fresh state):
 *
 *     const engine = new ConsensusEngine({
 *       height,            // the height being decided: tip + 1
 *       validators,        // ValidatorSet that certifies `height` (from the chain)
 *       nextValidators,    // the set of height + 1, already fixed (or null: buffer nothing)
 *       previous,          // { hash, timestamp } of block height − 1 (the genesis at height 1)
 *       genesisHash,
 *       signer,            // ConsensusSigner { publicKey, canSign, sign }, or null
 *       timeouts,          // optional TimeoutConfig, default DEFAULT_TIMEOUTS
 *       getValue,          // (height, round) => Block | null: build a block to propose
 *       isValid,           // (block) => boolean: records and clock drift against the chain
 *       verify,            // optional signature check, default crypto/ed25519 verifySignature
 *       restore,           // after a restart: { lastSigned, lock } from the SignGuard and the
 *                          // persisted lockEvidence
 *     });
 *     actions = engine.start();
 *     actions = engine.handle(event);
 *
 * Events (`EngineEvent`):
 *  - `{ kind: "proposal", proposal, from }`: a proposal from peer `from` (null: local).
 *  - `{ kind: "vote", vote, from }`: a prevote or precommit.
 *  - `{ kind: "timeout", step, height, round }`: a timer the engine asked for has fired.
 *
 * Actions (`EngineAction`), to be carried out in order:
 *  - `broadcastProposal { proposal, guard }` and `broadcastVote { vote, guard, lockEvidence? }`:
 *    messages this node just signed. The shell must `await signGuard.recordSigned(guard.height,
 *    guard.round, guard.step, guard.blockHash, guard.lock)` BEFORE sending them, and persist
 *    `lockEvidence` (the locked block and its proof of lock) when present, for `restore`
 *    (docs/consensus.md §11).
 *  - `relay { message, except }`: send an already signed message to all peers but `except`
 *    (first sight of a verified message, or a resend of our own).
 *  - `scheduleTimeout { step, height, round, delayMs }`: fire a `timeout` event later. Steps
 *    are "propose" | "prevote" | "precommit" | "resend". Stale timeouts are harmless.
 *  - `commit { block, certificate }`: the height is decided. Apply the block, then create the
 *    next engine and feed it `takeNextHeightMessages()`.
 *  - `equivocation { evidence }`: a validator signed two different votes (or proposals) for
 *    one (height, round, type). Reported once per (validator, round, type).
 *  - `rejected { from, reason, detail }`: an invalid message (bad signature, non-member,
 *    malformed, tampered records). Penalize peer `from`.
 *
 * Messages for height + 1 are buffered for the next engine when their signer is a voting member
 * of the set of height + 1 (fixed since height − 1), at most a few per signer, and only after
 * their signature verified: verifying before buffering keeps a forger from filling a member's
 * slots with fakes that would crowd out its real votes, and costs at most the per-signer cap of
 * verifications per member, since a slot is only taken by a message that verified. Other
 * heights are ignored (the shell turns them into catch-up or sync, docs/consensus.md §10).
 */
import { bytesEqual, toHex } from "../encoding/binary.ts";
import { HASH_LENGTH, ZERO_HASH } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, verifySignature } from "../crypto/ed25519.ts";
import {
  type Block,
  BLOCK_VERSION,
  blockHash,
  type Certificate,
  CHAIN_LIMITS,
  payloadRoot,
  type Proposal,
  proposalSignBytes,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../chain/block.ts";
import { hasQuorum, type ValidatorSet } from "../chain/validators.ts";
import { type LockState, type SignedPosition, SignStep } from "./sign_position.ts";
import {
  DEFAULT_TIMEOUTS,
  MAX_FAR_FUTURE_ROUNDS_PER_VALIDATOR,
  MAX_FUTURE_PROPOSAL_ROUNDS,
  MAX_KNOWN_BLOCKS,
  MAX_NEXT_HEIGHT_PROPOSALS,
  MAX_NEXT_HEIGHT_PROPOSALS_PER_PROPOSER,
  MAX_NEXT_HEIGHT_VOTES_PER_VALIDATOR,
  MAX_PROPOSALS_PER_ROUND,
  MAX_ROUND,
  MAX_RULE_PASSES,
  STALL_RESENDS,
  type TimeoutConfig,
  timeoutDelay,
} from "./constants.ts";
import { HeightVotes, NIL_HEX } from "./vote_set.ts";
import { proposerAt } from "./proposer.ts";

export type Step = "propose" | "prevote" | "precommit";
export type TimeoutStep = Step | "resend";

/** Same shape as network/messages.ts ProposalMessage | VoteMessage, so it can be sent as is. */
export type ConsensusMessage =
  | { kind: "proposal"; proposal: Proposal }
  | { kind: "vote"; vote: Vote };

/** What the shell must persist with SignGuard.recordSigned before the message leaves. */
export interface GuardRecord {
  height: number;
  round: number;
  step: SignStep;
  blockHash: Uint8Array;
  /** Set on a precommit for a block: the lock it implies, stored in the same write. */
  lock?: LockState;
}

/** The node's signing key behind its double-sign guard. */
export interface ConsensusSigner {
  readonly publicKey: Uint8Array;
  /** SignGuard.maySign: false for anything at or below the last signed position. */
  canSign(height: number, round: number, step: SignStep, blockHash: Uint8Array): boolean;
  /** Ed25519 signature of `message` with the node key. */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * What a restarted validator needs to re-propose the value it is locked on: the block and the
 * 2f+1 prevotes that justified the lock (docs/consensus.md §11). Without it, a lock restored as
 * a bare hash can block liveness forever once those prevotes are lost.
 */
export interface LockEvidence {
  block: Block;
  proofOfLock: Vote[];
}

export type Evidence =
  | { kind: "duplicateVote"; first: Vote; second: Vote }
  | { kind: "duplicateProposal"; first: Proposal; second: Proposal };

export type MessageFault = "malformed" | "bad-signature" | "not-validator" | "bad-records";

export type EngineEvent =
  | { kind: "proposal"; proposal: Proposal; from: string | null }
  | { kind: "vote"; vote: Vote; from: string | null }
  | { kind: "timeout"; step: TimeoutStep; height: number; round: number };

export type EngineAction =
  | { kind: "broadcastProposal"; proposal: Proposal; guard: GuardRecord }
  | { kind: "broadcastVote"; vote: Vote; guard: GuardRecord; lockEvidence?: LockEvidence }
  | { kind: "relay"; message: ConsensusMessage; except: string | null }
  | { kind: "scheduleTimeout"; step: TimeoutStep; height: number; round: number; delayMs: number }
  | { kind: "commit"; block: Block; certificate: Certificate }
  | { kind: "equivocation"; evidence: Evidence }
  | { kind: "rejected"; from: string | null; reason: MessageFault; detail: string };

export interface BufferedMessage {
  message: ConsensusMessage;
  from: string | null;
}

/** Why a message for height + 1 was not buffered (a metric label). */
export type NextHeightDrop =
  | "no-set"
  | "not-member"
  | "far-round"
  | "signer-cap"
  | "full"
  | "bad-signature";

export interface EngineOptions {
  height: number;
  validators: ValidatorSet;
  /**
   * The set that certifies height + 1: fixed once height − 1 is applied (state/state.ts, the
   * activation delay). Only its voting members' messages for height + 1 are buffered; null
   * buffers nothing.
   */
  nextValidators: ValidatorSet | null;
  /** Block height − 1 (the genesis hash and genesisTime at height 1). */
  previous: { hash: Uint8Array; timestamp: number };
  genesisHash: Uint8Array;
  signer: ConsensusSigner | null;
  timeouts?: TimeoutConfig;
  /**
   * Builds the block to propose: header.round = round, proposer = own id, timestamp =
   * max(now, previous.timestamp + 1). Null when no block can be built now.
   */
  getValue(height: number, round: number): Block | null;
  /** The chain's verdict on the block's records and timestamp drift (docs/consensus.md §5). */
  isValid(block: Block): boolean;
  verify?: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;
  /**
   * From the SignGuard after a restart; ignored unless it concerns `height`. `lockEvidence` is
   * the last `broadcastVote.lockEvidence` the shell persisted with the lock.
   */
  restore?: {
    lastSigned: SignedPosition | null;
    lock: LockState | null;
    lockEvidence?: LockEvidence | null;
    /**
     * The messages this node signed at its last (height, round), from the sign guard: re-sent at
     * start, so a network restarted as a whole resumes that round instead of stalling in it
     * (no node may sign those positions again). Verified like any message; others ignored.
     */
    lastMessages?: readonly ConsensusMessage[];
  };
}

interface KnownBlock {
  block: Block;
  hash: Uint8Array;
}

const U32_MAX = 0xffffffff;
/** Distinct proposal signatures remembered per height, so replays are not re-verified. */
const SEEN_PROPOSALS_LIMIT = 256;

function isU32(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 0 && (n as number) <= U32_MAX;
}

function isU64(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function isBytes(b: unknown, length: number): b is Uint8Array {
  return b instanceof Uint8Array && b.length === length;
}

/** Why a vote is malformed, or null. Checked before anything hashes or encodes it. */
function voteShapeError(v: Vote): string | null {
  if (typeof v !== "object" || v === null) return "not an object";
  if (v.type !== VoteType.Prevote && v.type !== VoteType.Precommit) return "unknown vote type";
  if (!isU64(v.height) || !isU32(v.round)) return "height or round out of range";
  if (v.round > MAX_ROUND) return `round ${v.round} above ${MAX_ROUND}`;
  if (!isBytes(v.blockHash, HASH_LENGTH)) return "block hash length";
  if (!isBytes(v.validator, PUBLIC_KEY_LENGTH)) return "validator length";
  if (!isBytes(v.signature, SIGNATURE_LENGTH)) return "signature length";
  return null;
}

function blockShapeError(b: Block): string | null {
  if (typeof b !== "object" || b === null || typeof b.header !== "object" || !b.header) {
    return "block is not an object";
  }
  const h = b.header;
  if (
    !isU32(h.version) || !isU64(h.height) || !isU64(h.timestamp) || !isU32(h.round) ||
    !isBytes(h.chainId, HASH_LENGTH) || !isBytes(h.prevHash, HASH_LENGTH) ||
    !isBytes(h.proposer, PUBLIC_KEY_LENGTH) || !isBytes(h.payloadRoot, HASH_LENGTH) ||
    !isBytes(h.validatorSetHash, HASH_LENGTH)
  ) {
    return "header field out of range";
  }
  if (!Array.isArray(b.records) || b.records.length > CHAIN_LIMITS.maxRecords) {
    return "records missing or too many";
  }
  for (const r of b.records) {
    if (
      typeof r !== "object" || r === null || !Number.isInteger(r.type) || r.type < 0 ||
      r.type > 0xff || !(r.data instanceof Uint8Array) ||
      r.data.length > CHAIN_LIMITS.maxRecordBytes
    ) {
      return "record out of range";
    }
  }
  return b.lastCommit === undefined ? null : lastCommitShapeError(b.lastCommit);
}

/** Why a block's last commit cannot even be hashed, or null. Its rules are the shell's. */
function lastCommitShapeError(c: Certificate): string | null {
  if (typeof c !== "object" || c === null) return "last commit is not an object";
  if (!isU64(c.height) || !isU32(c.round) || !isBytes(c.blockHash, HASH_LENGTH)) {
    return "last commit field out of range";
  }
  if (!Array.isArray(c.signatures) || c.signatures.length > CHAIN_LIMITS.maxValidators) {
    return "last commit signatures missing or too many";
  }
  for (const s of c.signatures) {
    if (
      typeof s !== "object" || s === null || !isBytes(s.validator, PUBLIC_KEY_LENGTH) ||
      !isBytes(s.signature, SIGNATURE_LENGTH)
    ) {
      return "last commit signature out of range";
    }
  }
  return null;
}

function proposalShapeError(p: Proposal): string | null {
  if (typeof p !== "object" || p === null) return "not an object";
  if (!isU64(p.height) || !isU32(p.round)) return "height or round out of range";
  if (p.round > MAX_ROUND) return `round ${p.round} above ${MAX_ROUND}`;
  if (!Number.isInteger(p.validRound) || p.validRound < -1 || p.validRound >= p.round) {
    return `validRound ${p.validRound} outside [-1, round - 1]`;
  }
  if (!isBytes(p.signature, SIGNATURE_LENGTH)) return "signature length";
  return blockShapeError(p.block);
}

function signStepOf(type: VoteType): SignStep {
  return type === VoteType.Prevote ? SignStep.Prevote : SignStep.Precommit;
}

export class ConsensusEngine {
  readonly height: number;
  readonly #set: ValidatorSet;
  readonly #nextSet: ValidatorSet | null;
  readonly #previous: { hash: Uint8Array; timestamp: number };
  readonly #genesisHash: Uint8Array;
  readonly #signer: ConsensusSigner | null;
  /** Own node id in hex when this node is a member of the set, else null (never signs). */
  readonly #self: string | null;
  readonly #timeouts: TimeoutConfig;
  readonly #getValue: (height: number, round: number) => Block | null;
  readonly #isValid: (block: Block) => boolean;
  readonly #verify: (publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array) => boolean;

  #started = false;
  #startRound = 0;
  #round = 0;
  #step: Step = "propose";
  #lockedRound = -1;
  #lockedHex: string | null = null;
  #validRound = -1;
  #validHex: string | null = null;
  #decision: Block | null = null;
  /** Resend ticks since the round or step last changed (the stall escape). */
  #idleResends = 0;
  #idleAt = "";

  readonly #votes: HeightVotes;
  /** Per round (current and future only): the first proposal, then a conflicting one. */
  readonly #proposals = new Map<number, { proposal: Proposal; hex: string }[]>();
  readonly #seenProposalSigs = new Set<string>();
  readonly #blocks = new Map<string, KnownBlock>();
  readonly #validity = new Map<string, boolean>();
  readonly #prevoteTimeoutArmed = new Set<number>();
  readonly #precommitTimeoutArmed = new Set<number>();
  /** Line 36 fires once per round. */
  readonly #lockRuleDone = new Set<number>();
  readonly #evidenceReported = new Set<string>();

  #restoredEvidence: LockEvidence | null = null;
  readonly #restoredMessages: readonly ConsensusMessage[];
  #nextHeight: BufferedMessage[] = [];
  readonly #nextHeightSeen = new Set<string>();
  /** Buffered next-height messages per signer (hex id), votes and proposals apart. */
  readonly #nextHeightVotesBy = new Map<string, number>();
  readonly #nextHeightProposalsBy = new Map<string, number>();
  #nextHeightProposals = 0;
  readonly #nextHeightDropped = new Map<NextHeightDrop, number>();

  constructor(options: EngineOptions) {
    if (!isU64(options.height) || options.height < 1) {
      throw new RangeError(`bad height ${options.height}`);
    }
    this.height = options.height;
    this.#set = options.validators;
    this.#nextSet = options.nextValidators;
    this.#previous = options.previous;
    this.#genesisHash = options.genesisHash;
    this.#signer = options.signer;
    const selfHex = options.signer ? toHex(options.signer.publicKey) : null;
    this.#self = selfHex !== null && this.#set.powerOf(selfHex) > 0 ? selfHex : null;
    this.#timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.#getValue = options.getValue;
    this.#isValid = options.isValid;
    this.#verify = options.verify ?? verifySignature;
    this.#votes = new HeightVotes(this.#set.totalPower);

    const lock = options.restore?.lock;
    if (lock && lock.height === this.height && isU32(lock.round) && lock.round <= MAX_ROUND) {
      // The lock is what keeps a restarted validator from prevoting against a value that may
      // already be decided (docs/consensus.md §11).
      this.#lockedRound = lock.round;
      this.#lockedHex = toHex(lock.blockHash);
      const evidence = options.restore?.lockEvidence;
      if (
        evidence && blockShapeError(evidence.block) === null &&
        bytesEqual(blockHash(evidence.block.header), lock.blockHash) &&
        Array.isArray(evidence.proofOfLock)
      ) {
        this.#restoredEvidence = evidence;
      }
    }
    const last = options.restore?.lastSigned;
    if (last && last.height === this.height && isU32(last.round)) {
      this.#startRound = Math.min(last.round, MAX_ROUND);
    }
    const messages = options.restore?.lastMessages;
    this.#restoredMessages = Array.isArray(messages) ? messages.slice(0, 3) : [];
  }

  // ---- read-only state (metrics, RPC, tests) ----------------------------------------------

  get round(): number {
    return this.#round;
  }

  get step(): Step {
    return this.#step;
  }

  /** The decided block, once `commit` was emitted. */
  get decision(): Block | null {
    return this.#decision;
  }

  get lockedRound(): number {
    return this.#lockedRound;
  }

  /** Hash of the locked value, or null. */
  get lockedBlockHash(): string | null {
    return this.#lockedHex;
  }

  get validRound(): number {
    return this.#validRound;
  }

  get isValidator(): boolean {
    return this.#self !== null;
  }

  /** Next-height messages not buffered so far, by reason (for metrics). */
  get nextHeightDropped(): ReadonlyMap<NextHeightDrop, number> {
    return this.#nextHeightDropped;
  }

  /** Next-height messages received so far (signatures verified). Empties the buffer. */
  takeNextHeightMessages(): BufferedMessage[] {
    const out = this.#nextHeight;
    this.#nextHeight = [];
    return out;
  }

  // ---- inputs ------------------------------------------------------------------------------

  /** The paper's line 10: StartRound(0), or the sign guard's round after a restart. */
  start(): EngineAction[] {
    const out: EngineAction[] = [];
    if (this.#started) return out;
    this.#started = true;
    this.#round = this.#startRound;
    const evidence = this.#restoredEvidence;
    if (evidence) {
      // The locked block is our validValue again, and its proof of lock is verified like any
      // votes (and relayed: peers may have lost it too).
      const hash = blockHash(evidence.block.header);
      const hex = toHex(hash);
      this.#rememberBlock(hex, evidence.block, hash);
      for (const vote of evidence.proofOfLock.slice(0, this.#set.validators.length)) {
        this.#onVote(vote, null, out);
      }
      if (this.#valid(hex)) {
        this.#validHex = hex;
        this.#validRound = this.#lockedRound;
      }
    }
    const resumeStep = this.#resendRestored(out);
    this.#enterRound(this.#startRound, out);
    // Back in the step it had reached: the votes it signed are in the tallies again, and the
    // guard would refuse the nil vote a timeout of an earlier step would try.
    if (resumeStep && !this.#decision && this.#round === this.#startRound) this.#step = resumeStep;
    this.#evaluate(out);
    return out;
  }

  /**
   * Feeds the messages signed before a restart (same height and start round, by this node) back
   * in as if they had just arrived from this node: verified, tallied and relayed. Returns the
   * step they show this node had reached, or null.
   */
  #resendRestored(out: EngineAction[]): Step | null {
    if (this.#self === null) return null;
    let step: Step | null = null;
    for (const m of this.#restoredMessages) {
      if (m?.kind === "vote" && m.vote?.height === this.height) {
        if (m.vote.round !== this.#startRound || toHex(m.vote.validator) !== this.#self) continue;
        this.#onVote(m.vote, null, out);
        if (m.vote.type === VoteType.Precommit) step = "precommit";
        else if (step === null) step = "prevote";
      } else if (m?.kind === "proposal" && m.proposal?.height === this.height) {
        if (m.proposal.round !== this.#startRound) continue;
        this.#onProposal(m.proposal, null, out);
      }
    }
    return step;
  }

  handle(event: EngineEvent): EngineAction[] {
    // An event before start() starts the engine: the round must exist before rules apply.
    const out = this.#started ? [] : this.start();
    switch (event.kind) {
      case "proposal":
        this.#onProposal(event.proposal, event.from, out);
        break;
      case "vote":
        this.#onVote(event.vote, event.from, out);
        break;
      case "timeout":
        this.#onTimeout(event.step, event.height, event.round, out);
        break;
    }
    this.#evaluate(out);
    return out;
  }

  #reject(out: EngineAction[], from: string | null, reason: MessageFault, detail: string): void {
    out.push({ kind: "rejected", from, reason, detail });
  }

  #onVote(vote: Vote, from: string | null, out: EngineAction[]): void {
    const shape = voteShapeError(vote);
    if (shape !== null) return this.#reject(out, from, "malformed", `vote: ${shape}`);
    if (vote.height === this.height + 1) {
      return this.#bufferNextHeight({ kind: "vote", vote }, from, out);
    }
    if (vote.height !== this.height || this.#decision) return;

    const id = toHex(vote.validator);
    const power = this.#set.powerOf(id);
    if (power === 0) {
      return this.#reject(out, from, "not-validator", `vote from non-member ${id.slice(0, 12)}`);
    }
    const seen = this.#votes.classify(vote, id);
    if (seen.kind === "duplicate") return;
    // An honest validator ahead of us fits in the quota; one byzantine key cannot make us
    // store a vote set for every round number.
    if (
      vote.round > this.#round + 1 && !this.#votes.hasSent(vote.round, id) &&
      this.#votes.roundsAbove(id, this.#round + 1) >= MAX_FAR_FUTURE_ROUNDS_PER_VALIDATOR
    ) return;

    const message = voteSignBytes(
      this.#genesisHash,
      vote.type,
      vote.height,
      vote.round,
      vote.blockHash,
    );
    if (!this.#verify(vote.validator, message, vote.signature)) {
      return this.#reject(out, from, "bad-signature", `vote from ${id.slice(0, 12)}`);
    }
    if (seen.kind === "conflict") {
      const key = `${id}/${vote.round}/${vote.type}`;
      if (!this.#evidenceReported.has(key)) {
        this.#evidenceReported.add(key);
        out.push({
          kind: "equivocation",
          evidence: { kind: "duplicateVote", first: seen.first, second: vote },
        });
      }
      // Counted toward its own value only (vote_set.ts), and only for nil or a block we hold:
      // that bounds what one byzantine key can make us store, while a proof of lock that
      // contains it still forms once its block is known (the proposer resends both).
      const blockHex = toHex(vote.blockHash);
      if (blockHex !== NIL_HEX && !this.#blocks.has(blockHex)) return;
    }
    this.#votes.add(vote, id, power);
    out.push({ kind: "relay", message: { kind: "vote", vote }, except: from });
  }

  #onProposal(proposal: Proposal, from: string | null, out: EngineAction[]): void {
    const shape = proposalShapeError(proposal);
    if (shape !== null) return this.#reject(out, from, "malformed", `proposal: ${shape}`);
    if (proposal.height === this.height + 1) {
      return this.#bufferNextHeight({ kind: "proposal", proposal }, from, out);
    }
    if (proposal.height !== this.height || this.#decision) return;
    if (proposal.round > this.#round + MAX_FUTURE_PROPOSAL_ROUNDS) return;

    const sigHex = toHex(proposal.signature);
    if (this.#seenProposalSigs.has(sigHex)) return;

    const proposer = proposerAt(this.#set, this.height, proposal.round);
    const hash = blockHash(proposal.block.header);
    const message = proposalSignBytes(
      this.#genesisHash,
      proposal.height,
      proposal.round,
      proposal.validRound,
      hash,
    );
    if (!this.#verify(proposer.nodeId, message, proposal.signature)) {
      return this.#reject(
        out,
        from,
        "bad-signature",
        `proposal for round ${proposal.round} not signed by its proposer`,
      );
    }
    // The signature covers the header only; records are bound by payloadRoot. A mismatch
    // means whoever relayed it swapped the records.
    const { header, records, transactions, lastCommit } = proposal.block;
    if (!bytesEqual(header.payloadRoot, payloadRoot(records, transactions, lastCommit))) {
      return this.#reject(out, from, "bad-records", "payload root does not match the records");
    }
    if (
      header.round > proposal.round ||
      (proposal.validRound === -1 && header.round !== proposal.round)
    ) {
      return this.#reject(
        out,
        from,
        "malformed",
        `block of round ${header.round} proposed in round ${proposal.round} with validRound ${proposal.validRound}`,
      );
    }
    if (this.#seenProposalSigs.size >= SEEN_PROPOSALS_LIMIT) this.#seenProposalSigs.clear();
    this.#seenProposalSigs.add(sigHex);

    const hex = toHex(hash);
    this.#rememberBlock(hex, proposal.block, hash);
    if (proposal.round < this.#round) return; // its block may still decide (line 49)

    const stored = this.#proposals.get(proposal.round) ?? [];
    if (stored.some((s) => s.hex === hex)) return;
    if (stored.length >= MAX_PROPOSALS_PER_ROUND) return;
    stored.push({ proposal, hex });
    this.#proposals.set(proposal.round, stored);
    if (stored.length === 1) {
      this.#votes.noteSender(
        proposal.round,
        toHex(proposer.nodeId),
        this.#set.powerOf(toHex(proposer.nodeId)),
      );
      out.push({ kind: "relay", message: { kind: "proposal", proposal }, except: from });
    } else {
      out.push({
        kind: "equivocation",
        evidence: { kind: "duplicateProposal", first: stored[0].proposal, second: proposal },
      });
    }
  }

  #onTimeout(step: TimeoutStep, height: number, round: number, out: EngineAction[]): void {
    if (height !== this.height || this.#decision || round !== this.#round) return;
    switch (step) {
      case "propose": // line 57
        if (this.#step === "propose") {
          this.#castVote(VoteType.Prevote, null, out);
          this.#step = "prevote";
        }
        break;
      case "prevote": // line 61
        if (this.#step === "prevote") {
          this.#castVote(VoteType.Precommit, null, out);
          this.#step = "precommit";
        }
        break;
      case "precommit": // line 65
        if (round < MAX_ROUND) this.#enterRound(round + 1, out);
        break;
      case "resend":
        this.#resend(out);
        if (this.#stalled()) {
          // Act as the timer that never got armed would have: line 61, then line 65.
          if (this.#step === "prevote") {
            this.#castVote(VoteType.Precommit, null, out);
            this.#step = "precommit";
          } else if (round < MAX_ROUND) {
            this.#enterRound(round + 1, out);
          }
        }
        break;
    }
  }

  /**
   * Not in the paper: a prevote or precommit step that waits for 2f+1 votes with no timeout
   * armed can wait forever if those votes are lost for good (a restarted validator may not
   * re-sign a vote it signed before its crash). After STALL_RESENDS quiet resend intervals the
   * step ends as if its timeout had fired: prevote → precommit nil, precommit → next round.
   * Going step by step (never skipping the precommit) hands the nodes still in this round the
   * precommit they wait for, so line 47 brings everyone to the next round together. Step and
   * round changes never affect safety.
   */
  #stalled(): boolean {
    const at = `${this.#round}/${this.#step}`;
    if (at !== this.#idleAt) {
      this.#idleAt = at;
      this.#idleResends = 0;
    }
    this.#idleResends++;
    if (this.#idleResends < STALL_RESENDS) return false;
    if (this.#step === "prevote") return !this.#prevoteTimeoutArmed.has(this.#round);
    if (this.#step === "precommit") return !this.#precommitTimeoutArmed.has(this.#round);
    return false;
  }

  #bufferNextHeight(message: ConsensusMessage, from: string | null, out: EngineAction[]): void {
    const set = this.#nextSet;
    if (!set) return this.#dropNextHeight("no-set");
    const sig = message.kind === "vote" ? message.vote.signature : message.proposal.signature;
    const key = toHex(sig);
    if (this.#nextHeightSeen.has(key)) return; // a copy of one already buffered
    const height = this.height + 1;
    let signer: Uint8Array;
    let signed: Uint8Array;
    let counts: Map<string, number>;
    let cap: number;
    if (message.kind === "vote") {
      const v = message.vote;
      signer = v.validator;
      signed = voteSignBytes(this.#genesisHash, v.type, v.height, v.round, v.blockHash);
      counts = this.#nextHeightVotesBy;
      cap = MAX_NEXT_HEIGHT_VOTES_PER_VALIDATOR;
    } else {
      const p = message.proposal;
      if (p.round > MAX_FUTURE_PROPOSAL_ROUNDS) return this.#dropNextHeight("far-round");
      if (this.#nextHeightProposals >= MAX_NEXT_HEIGHT_PROPOSALS) {
        return this.#dropNextHeight("full");
      }
      // The proposer of a round is a function of the set, so the claimed signer is implied.
      signer = proposerAt(set, height, p.round).nodeId;
      signed = proposalSignBytes(
        this.#genesisHash,
        p.height,
        p.round,
        p.validRound,
        blockHash(p.block.header),
      );
      counts = this.#nextHeightProposalsBy;
      cap = MAX_NEXT_HEIGHT_PROPOSALS_PER_PROPOSER;
    }
    const id = toHex(signer);
    // Not invalid at every height for every peer's view, so dropped without a penalty.
    if (set.powerOf(id) === 0) return this.#dropNextHeight("not-member");
    const taken = counts.get(id) ?? 0;
    if (taken >= cap) return this.#dropNextHeight("signer-cap");
    if (!this.#verify(signer, signed, sig)) {
      this.#dropNextHeight("bad-signature");
      return this.#reject(out, from, "bad-signature", `${message.kind} for height ${height}`);
    }
    counts.set(id, taken + 1);
    if (message.kind === "proposal") this.#nextHeightProposals++;
    this.#nextHeightSeen.add(key);
    this.#nextHeight.push({ message, from });
  }

  #dropNextHeight(reason: NextHeightDrop): void {
    this.#nextHeightDropped.set(reason, (this.#nextHeightDropped.get(reason) ?? 0) + 1);
  }

  // ---- rules -------------------------------------------------------------------------------

  /** Fires rules until none applies; every firing changes state monotonically. */
  #evaluate(out: EngineAction[]): void {
    for (let pass = 0; pass < MAX_RULE_PASSES; pass++) {
      if (!this.#fireOne(out)) return;
    }
  }

  #fireOne(out: EngineAction[]): boolean {
    if (this.#decision) return false;
    const round = this.#round;

    // Line 49: a block with 2f+1 precommits in any round decides the height.
    for (const q of this.#votes.precommitQuorums()) {
      const known = this.#blocks.get(q.blockHex);
      if (known && this.#valid(q.blockHex)) {
        this.#decide(q.round, q.blockHex, known, out);
        return true;
      }
    }

    // Line 55: f+1 power already in a later round: join the highest such round.
    const target = this.#votes.skipTarget(round);
    if (target > round) {
      this.#enterRound(target, out);
      return true;
    }

    const prevotes = this.#votes.get(VoteType.Prevote, round);
    const current = this.#proposals.get(round)?.[0];

    if (this.#step === "propose" && current) {
      const vr = current.proposal.validRound;
      if (vr === -1) {
        // Line 22.
        const ok = this.#valid(current.hex) &&
          (this.#lockedRound === -1 || this.#lockedHex === current.hex);
        this.#castVote(VoteType.Prevote, ok ? current.hex : null, out);
        this.#step = "prevote";
        return true;
      }
      const pol = this.#votes.get(VoteType.Prevote, vr)?.powerFor(current.hex) ?? 0;
      if (vr < round && hasQuorum(pol, this.#set.totalPower)) {
        // Line 28: a proof of lock from round vr outranks an older lock.
        const ok = this.#valid(current.hex) &&
          (this.#lockedRound <= vr || this.#lockedHex === current.hex);
        this.#castVote(VoteType.Prevote, ok ? current.hex : null, out);
        this.#step = "prevote";
        return true;
      }
    }

    if (this.#step !== "propose" && !this.#lockRuleDone.has(round)) {
      // Line 36: 2f+1 prevotes for a valid block we hold.
      const q = prevotes?.quorumBlock();
      if (q && q !== NIL_HEX && this.#blocks.has(q) && this.#valid(q)) {
        this.#lockRuleDone.add(round);
        if (this.#step === "prevote") {
          this.#lockedHex = q;
          this.#lockedRound = round;
          const locked = this.#blocks.get(q)!;
          this.#castVote(
            VoteType.Precommit,
            q,
            out,
            { height: this.height, round, blockHash: locked.hash },
            { block: locked.block, proofOfLock: prevotes!.votesFor(q) },
          );
          this.#step = "precommit";
        }
        this.#validHex = q;
        this.#validRound = round;
        return true;
      }
    }

    if (this.#adoptLaterValidValue()) return true;

    if (this.#step === "prevote" && prevotes?.quorumBlock() === NIL_HEX) {
      // Line 44.
      this.#castVote(VoteType.Precommit, null, out);
      this.#step = "precommit";
      return true;
    }

    if (
      this.#step === "prevote" && !this.#prevoteTimeoutArmed.has(round) && prevotes?.hasQuorumAny()
    ) {
      // Line 34.
      this.#prevoteTimeoutArmed.add(round);
      this.#schedule("prevote", round, out);
      return true;
    }

    if (
      !this.#precommitTimeoutArmed.has(round) &&
      this.#votes.get(VoteType.Precommit, round)?.hasQuorumAny()
    ) {
      // Line 47.
      this.#precommitTimeoutArmed.add(round);
      this.#schedule("precommit", round, out);
      return true;
    }
    return false;
  }

  /**
   * Line 42–43 for earlier rounds: a proof of lock (2f+1 prevotes for a valid block we hold)
   * from a round after validRound but before the current one, seen too late for line 36,
   * still becomes validValue. Only proposals depend on validValue, and receivers check the
   * proof themselves, so this is always safe. It restores liveness when the validator locked
   * on that block crashed and lost it: another proposer can now re-propose it.
   */
  #adoptLaterValidValue(): boolean {
    for (let r = this.#round - 1; r > this.#validRound; r--) {
      const q = this.#votes.get(VoteType.Prevote, r)?.quorumBlock();
      if (q && q !== NIL_HEX && this.#blocks.has(q) && this.#valid(q)) {
        this.#validHex = q;
        this.#validRound = r;
        return true;
      }
    }
    return false;
  }

  /** StartRound (lines 11–21). */
  #enterRound(round: number, out: EngineAction[]): void {
    this.#round = round;
    this.#step = "propose";
    for (const r of this.#proposals.keys()) if (r < round) this.#proposals.delete(r);
    out.push({
      kind: "scheduleTimeout",
      step: "resend",
      height: this.height,
      round,
      delayMs: this.#timeouts.resendMs,
    });
    if (this.#self !== null && this.#isProposer(round) && this.#propose(round, out)) return;
    this.#schedule("propose", round, out);
  }

  #isProposer(round: number): boolean {
    return toHex(proposerAt(this.#set, this.height, round).nodeId) === this.#self;
  }

  /** Lines 15–19. False when nothing was proposed (no value, or the guard refused). */
  #propose(round: number, out: EngineAction[]): boolean {
    // A proposal of ours for this round already exists (restored after a restart, or a copy
    // relayed back to us): the only one the guard allows, so send that one again.
    const mine = this.#proposals.get(round)?.[0];
    if (mine) {
      out.push({
        kind: "relay",
        message: { kind: "proposal", proposal: mine.proposal },
        except: null,
      });
      return true;
    }
    let known = this.#validHex !== null ? this.#blocks.get(this.#validHex) : undefined;
    if (!known) {
      const block = this.#getValue(this.height, round);
      if (!block || blockShapeError(block) !== null) return false;
      const hash = blockHash(block.header);
      known = { block, hash };
      this.#rememberBlock(toHex(hash), block, hash);
    }
    const validRound = this.#validHex !== null ? this.#validRound : -1;
    const signer = this.#signer!;
    if (!signer.canSign(this.height, round, SignStep.Propose, known.hash)) return false;
    const signature = signer.sign(
      proposalSignBytes(this.#genesisHash, this.height, round, validRound, known.hash),
    );
    const proposal: Proposal = {
      height: this.height,
      round,
      validRound,
      block: known.block,
      signature,
    };
    const hex = toHex(known.hash);
    this.#proposals.set(round, [{ proposal, hex }]);
    this.#seenProposalSigs.add(toHex(signature));
    this.#votes.noteSender(round, this.#self!, this.#set.powerOf(this.#self!));
    out.push({
      kind: "broadcastProposal",
      proposal,
      guard: { height: this.height, round, step: SignStep.Propose, blockHash: known.hash },
    });
    this.#relayProofOfLock(proposal, hex, out);
    return true;
  }

  /**
   * A re-proposal (validRound ≥ 0) is only useful to nodes that see its proof of lock: the
   * 2f+1 prevotes of round validRound. The paper's gossip guarantees they arrive; here the
   * proposer sends them along, so they do even if they were lost or came from an equivocator.
   */
  #relayProofOfLock(proposal: Proposal, hex: string, out: EngineAction[]): void {
    if (proposal.validRound < 0) return;
    for (
      const vote of this.#votes.get(VoteType.Prevote, proposal.validRound)?.votesFor(hex) ?? []
    ) {
      out.push({ kind: "relay", message: { kind: "vote", vote }, except: null });
    }
  }

  /** Signs and broadcasts a vote of the current round, unless the guard refuses. */
  #castVote(
    type: VoteType,
    blockHex: string | null,
    out: EngineAction[],
    lock?: LockState,
    lockEvidence?: LockEvidence,
  ) {
    if (this.#self === null) return;
    const hash = blockHex === null ? ZERO_HASH : this.#blocks.get(blockHex)!.hash;
    const step = signStepOf(type);
    const round = this.#round;
    if (!this.#signer!.canSign(this.height, round, step, hash)) return;
    const signature = this.#signer!.sign(
      voteSignBytes(this.#genesisHash, type, this.height, round, hash),
    );
    const vote: Vote = {
      type,
      height: this.height,
      round,
      blockHash: hash.slice(),
      validator: this.#signer!.publicKey,
      signature,
    };
    if (this.#votes.classify(vote, this.#self).kind === "new") {
      this.#votes.add(vote, this.#self, this.#set.powerOf(this.#self));
    }
    const guard: GuardRecord = { height: this.height, round, step, blockHash: vote.blockHash };
    if (lock) guard.lock = lock;
    out.push(
      lockEvidence
        ? { kind: "broadcastVote", vote, guard, lockEvidence }
        : { kind: "broadcastVote", vote, guard },
    );
  }

  #schedule(step: Step, round: number, out: EngineAction[]): void {
    out.push({
      kind: "scheduleTimeout",
      step,
      height: this.height,
      round,
      delayMs: timeoutDelay(this.#timeouts, step, round),
    });
  }

  /** Re-emits our own messages of this round and the previous one; then re-arms. */
  #resend(out: EngineAction[]): void {
    const round = this.#round;
    if (this.#self !== null) {
      const own = this.#proposals.get(round)?.[0];
      if (own && this.#isProposer(round)) {
        out.push({
          kind: "relay",
          message: { kind: "proposal", proposal: own.proposal },
          except: null,
        });
        this.#relayProofOfLock(own.proposal, own.hex, out);
      }
      for (const r of round > 0 ? [round - 1, round] : [round]) {
        for (const type of [VoteType.Prevote, VoteType.Precommit]) {
          const vote = this.#votes.get(type, r)?.first(this.#self);
          if (vote) out.push({ kind: "relay", message: { kind: "vote", vote }, except: null });
        }
      }
    }
    out.push({
      kind: "scheduleTimeout",
      step: "resend",
      height: this.height,
      round,
      delayMs: this.#timeouts.resendMs,
    });
  }

  #decide(round: number, blockHex: string, known: KnownBlock, out: EngineAction[]): void {
    this.#decision = known.block;
    const votes = this.#votes.get(VoteType.Precommit, round)!.votesFor(blockHex);
    const certificate: Certificate = {
      height: this.height,
      round,
      blockHash: known.hash,
      signatures: votes.map((v) => ({ validator: v.validator, signature: v.signature })),
    };
    out.push({ kind: "commit", block: known.block, certificate });
  }

  // ---- validity and blocks -----------------------------------------------------------------

  /** valid(v): the engine's header checks, then the shell's (docs/consensus.md §5). Cached. */
  #valid(hex: string): boolean {
    const cached = this.#validity.get(hex);
    if (cached !== undefined) return cached;
    const known = this.#blocks.get(hex);
    if (!known) return false;
    const result = this.#headerValid(known.block) && this.#shellValid(known.block);
    this.#validity.set(hex, result);
    return result;
  }

  #headerValid(block: Block): boolean {
    const h = block.header;
    return h.version === BLOCK_VERSION &&
      bytesEqual(h.chainId, this.#genesisHash) &&
      h.height === this.height &&
      bytesEqual(h.prevHash, this.#previous.hash) &&
      h.timestamp > this.#previous.timestamp &&
      bytesEqual(h.validatorSetHash, this.#set.hash) &&
      h.round <= MAX_ROUND &&
      bytesEqual(h.proposer, proposerAt(this.#set, this.height, h.round).nodeId);
  }

  #shellValid(block: Block): boolean {
    try {
      return this.#isValid(block) === true;
    } catch {
      // The shell's check throws InvalidBlockError for bad records; any throw means invalid.
      return false;
    }
  }

  #rememberBlock(hex: string, block: Block, hash: Uint8Array): void {
    if (this.#blocks.has(hex)) return;
    this.#blocks.set(hex, { block, hash });
    if (this.#blocks.size <= MAX_KNOWN_BLOCKS) return;
    const keep = new Set<string>([hex]);
    if (this.#validHex) keep.add(this.#validHex);
    if (this.#lockedHex) keep.add(this.#lockedHex);
    for (const s of this.#proposals.get(this.#round) ?? []) keep.add(s.hex);
    for (const q of this.#votes.precommitQuorums()) keep.add(q.blockHex);
    for (const candidate of this.#blocks.keys()) {
      if (!keep.has(candidate)) {
        this.#blocks.delete(candidate);
        this.#validity.delete(candidate);
        return;
      }
    }
  }
}
