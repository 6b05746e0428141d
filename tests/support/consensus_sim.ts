/**
 * Test support for consensus: fixtures (keys, validator sets, blocks, signed votes and
 * proposals, an in-memory sign guard) and a deterministic simulator of a whole validator
 * network around real `ConsensusEngine`s.
 *
 * The simulator owns a virtual clock, a seeded PRNG (support/random.ts), and a network with per-message delays
 * (hence reordering), drops, partitions, crash and restart (a restarted node keeps its chain
 * and its sign guard and loses everything else) and byzantine validators that sign
 * conflicting votes and proposals for different peers. It records every commit of every
 * honest node, so tests can assert safety (no two different blocks at one height) and
 * liveness (heights committed after GST).
 *
 * Must never: read the wall clock, use Math.random, or touch the network or disk. The same
 * options always give the same run.
 */
import { bytesEqual, toHex } from "../../encoding/binary.ts";
import { sha256, ZERO_HASH } from "../../crypto/hash.ts";
import { type KeyPair, keyPairFromSeed, signBytes, verifySignature } from "../../crypto/ed25519.ts";
import {
  type Block,
  BLOCK_VERSION,
  blockHash,
  type BlockRecord,
  type Certificate,
  type CommittedBlock,
  payloadRoot,
  type Proposal,
  proposalSignBytes,
  sortedCommit,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../../chain/block.ts";
import { makeValidatorSet, type ValidatorSet } from "../../chain/validators.ts";
import { checkCertificateQuorum, verifyCertificateSignatures } from "../../chain/certificate.ts";
import { checkProposedLastCommit } from "../../chain/verify.ts";
import {
  comparePositions,
  type LockState,
  type SignedPosition,
  type SignStep,
} from "../../consensus/sign_position.ts";
import {
  ConsensusEngine,
  type ConsensusMessage,
  type ConsensusSigner,
  type EngineAction,
  type EngineEvent,
  type EngineOptions,
  type LockEvidence,
} from "../../consensus/engine.ts";
import { DEFAULT_TIMEOUTS, type TimeoutConfig } from "../../consensus/constants.ts";
import { proposerAt } from "../../consensus/proposer.ts";
import { EventQueue } from "./event_queue.ts";
import { TestRandom } from "./random.ts";

// ---- fixtures ------------------------------------------------------------------------------

export const TEST_GENESIS_HASH = sha256(new TextEncoder().encode("timenode/test/consensus"));
export const TEST_GENESIS_TIME = 1_000_000;

const keyCache = new Map<string, KeyPair>();

/** A deterministic key per label, cached: key derivation dominates small tests otherwise. */
export function testKey(label: string): KeyPair {
  let k = keyCache.get(label);
  if (!k) {
    k = keyPairFromSeed(sha256(new TextEncoder().encode(`timenode/test-key/${label}`)));
    keyCache.set(label, k);
  }
  return k;
}

export interface TestValidators {
  set: ValidatorSet;
  /** keys[i] signs for set.validators[i] (node-id order). */
  keys: KeyPair[];
}

/** A validator set with the given powers; `keys` are in the set's (node id) order. */
export function makeTestValidators(powers: readonly number[], label = "v"): TestValidators {
  const unsorted = powers.map((power, i) => ({ key: testKey(`${label}-${i}`), power }));
  const set = makeValidatorSet(unsorted.map(({ key, power }, i) => ({
    nodeId: key.publicKey,
    tier: "free" as const,
    power,
    rewardAddress: `reward-${i}`,
    address: `127.0.0.1:${24_000 + i}`,
  })));
  const byId = new Map(unsorted.map((u) => [toHex(u.key.publicKey), u.key]));
  return { set, keys: set.validators.map((v) => byId.get(toHex(v.nodeId))!) };
}

export interface BlockSpec {
  set: ValidatorSet;
  height: number;
  previous: { hash: Uint8Array; timestamp: number };
  round: number;
  /** Defaults to the proposer of (height, round). */
  proposer?: Uint8Array;
  timestamp?: number;
  records?: BlockRecord[];
  genesisHash?: Uint8Array;
  /** The commit of height − 1 the block carries (none at height 1). */
  lastCommit?: Certificate;
}

export function buildBlock(spec: BlockSpec): Block {
  const records = spec.records ?? [];
  return {
    header: {
      version: BLOCK_VERSION,
      chainId: spec.genesisHash ?? TEST_GENESIS_HASH,
      height: spec.height,
      prevHash: spec.previous.hash,
      timestamp: spec.timestamp ?? spec.previous.timestamp + 1_000,
      proposer: spec.proposer ?? proposerAt(spec.set, spec.height, spec.round).nodeId,
      round: spec.round,
      payloadRoot: payloadRoot(records, [], spec.lastCommit),
      validatorSetHash: spec.set.hash,
    },
    records,
    ...(spec.lastCommit ? { lastCommit: spec.lastCommit } : {}),
  };
}

export function signVote(
  key: KeyPair,
  type: VoteType,
  height: number,
  round: number,
  hash: Uint8Array,
  genesisHash = TEST_GENESIS_HASH,
): Vote {
  return {
    type,
    height,
    round,
    blockHash: hash,
    validator: key.publicKey,
    signature: signBytes(key, voteSignBytes(genesisHash, type, height, round, hash)),
  };
}

export function signProposal(
  key: KeyPair,
  height: number,
  round: number,
  validRound: number,
  block: Block,
  genesisHash = TEST_GENESIS_HASH,
): Proposal {
  const hash = blockHash(block.header);
  return {
    height,
    round,
    validRound,
    block,
    signature: signBytes(key, proposalSignBytes(genesisHash, height, round, validRound, hash)),
  };
}

/** The rules of consensus/sign_guard.ts in memory, with a synchronous record. */
export class MemorySignGuard {
  lastSigned: SignedPosition | null = null;
  lock: LockState | null = null;
  /** The locked block and its proof of lock, persisted with the lock (docs §11). */
  lockEvidence: LockEvidence | null = null;
  /** The signed messages of the last (height, round), kept in the same write (docs §11). */
  lastMessages: ConsensusMessage[] = [];
  refusals = 0;

  maySign(height: number, round: number, step: SignStep, hash: Uint8Array): boolean {
    const last = this.lastSigned;
    if (last === null) return true;
    const order = comparePositions({ height, round, step }, last);
    return order > 0 || (order === 0 && bytesEqual(hash, last.blockHash));
  }

  record(
    height: number,
    round: number,
    step: SignStep,
    hash: Uint8Array,
    lock?: LockState,
    lockEvidence?: LockEvidence,
    message?: ConsensusMessage,
  ) {
    if (!this.maySign(height, round, step, hash)) {
      throw new Error(`sign guard: conflicting signature at ${height}/${round}/${step}`);
    }
    const last = this.lastSigned;
    if (!last || last.height !== height || last.round !== round) this.lastMessages = [];
    this.lastSigned = { height, round, step, blockHash: hash.slice() };
    if (lock) this.lock = { ...lock, blockHash: lock.blockHash.slice() };
    if (lockEvidence) this.lockEvidence = lockEvidence;
    if (message) this.lastMessages.push(message);
  }
}

/** A signer in front of `guard` (null: no guard at all, as a byzantine node would run). */
export function guardedSigner(key: KeyPair, guard: MemorySignGuard | null): ConsensusSigner {
  return {
    publicKey: key.publicKey,
    canSign(height, round, step, hash) {
      if (guard === null || guard.maySign(height, round, step, hash)) return true;
      guard.refusals++;
      return false;
    },
    sign: (message) => signBytes(key, message),
  };
}

// ---- virtual clock -----------------------------------------------------------------------

/** The shared virtual-time queue plus the simulation's clock. */
class VirtualClock {
  readonly #events = new EventQueue();
  now = 0;

  get size(): number {
    return this.#events.size;
  }

  at(time: number, run: () => void): void {
    this.#events.push(Math.max(time, this.now), run);
  }

  /** Runs the next event; false when none is left or it lies beyond `until`. */
  step(until: number): boolean {
    if (this.#events.peekTime() > until) return false;
    const e = this.#events.pop()!;
    this.now = e.at;
    e.run();
    return true;
  }
}

// ---- the simulated network ---------------------------------------------------------------

export interface LinkProfile {
  dropRate: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export interface Partition {
  startMs: number;
  endMs: number;
  /** Nodes in different groups cannot reach each other; a node in no group reaches nobody. */
  groups: number[][];
}

export interface Crash {
  node: number;
  atMs: number;
  /** Null: stays down for the rest of the run. */
  restartAtMs: number | null;
  /** The node also loses its chain: only the sign guard survives (it catches up like sync). */
  wipeChain?: boolean;
}

export interface SimOptions {
  seed: number;
  /** Voting power per node; node i holds key `sim-i`. */
  powers: number[];
  /** Nodes that sign conflicting proposals and votes for different peers. */
  byzantine?: number[];
  /**
   * Chance that an honest node crashes right after its guard write, before the signed message
   * leaves it (restarting 10 ms to 2 s later): what a power cut between fsync and send does.
   */
  crashAfterGuardWrite?: number;
  /**
   * From `atMs` on, every guard write of `node` fails (a full disk): the shell must stop the
   * node at once, as consensus/service.ts does, and the node stays down.
   */
  failingGuard?: { node: number; atMs: number };
  /**
   * Validator-set changes, as registrations and deregistrations would make them: from
   * `fromHeight` on, node i has power `powers[i]` (0: a listed free-tier member without a
   * vote; null: not a member). Before the first entry the set is `powers`. Every node learns
   * each height's set from the schedule, as every node derives it from the chain.
   */
  setSchedule?: { fromHeight: number; powers: (number | null)[] }[];
  /**
   * Byzantine twins of proposals carry the validator-set hash of the height before theirs: a
   * stale set, which only the engine's validatorSetHash check refuses at a set change.
   */
  byzantineStaleSet?: boolean;
  /**
   * Byzantine twins of proposals in rounds ≥ 1 claim validRound = round − 1 for a fresh block
   * (built as if proposed in that round) and never send the proof of lock it would need. Only
   * the line-28 check (2f+1 prevotes of validRound) keeps locked honest nodes from prevoting it.
   */
  byzantineFakeValidRound?: boolean;
  /** Act on `relay` actions (re-broadcast of others' messages); resends always go out. */
  relay?: boolean;
  /** Before GST links follow `preGst`, after it `postGst`. */
  gstMs: number;
  preGst?: LinkProfile;
  postGst?: LinkProfile;
  partitions?: Partition[];
  crashes?: Crash[];
  /** Stop once every honest node that is up has committed this many heights. */
  targetHeight: number;
  maxTimeMs: number;
  timeouts?: TimeoutConfig;
  /** Pacing gap between a commit and the next height's start (the block interval). */
  commitDelayMs?: number;
  /**
   * Serve committed blocks to lagging peers, as sync would (default true). Turn it off to test
   * the consensus rules alone: catch-up would otherwise hand a lagging node the decided block
   * before a broken rule had the chance to let it commit another one. Liveness then needs every
   * node to decide by itself, so such runs only check safety.
   */
  catchUp?: boolean;
  /** Debugging aid: called with one line per engine input and output. */
  trace?: (line: string) => void;
}

export interface SimResult {
  /** Heights at which honest nodes committed different blocks: must stay empty. */
  forks: { height: number; hashes: string[] }[];
  /** Commits whose certificate failed quorum or signature checks: must be 0. */
  badCertificates: number;
  /**
   * Commits of a block above height 1 without a valid last commit (the previous block's
   * precommits, > 2/3 of its set, signatures good): must be 0.
   */
  badLastCommits: number;
  /** Commits of a block naming another validator set than its height's: must be 0. */
  wrongSetBlocks: number;
  /** Valid-looking messages an honest engine refused: must be 0 (nobody forges here). */
  rejected: number;
  /** Committed height per node at the end. */
  heights: number[];
  /** Virtual time at which some honest node first committed each height (index = height). */
  firstCommitAt: number[];
  equivocationsReported: number;
  signRefusals: number;
  messagesSent: number;
  endMs: number;
  /** Each node's engine at the end, for failure messages. */
  finalStates: string[];
}

type SimMessage =
  | ConsensusMessage
  | { kind: "commit"; committed: CommittedBlock }
  | { kind: "getCommit"; height: number };

const DEFAULT_PRE_GST: LinkProfile = { dropRate: 0.2, minDelayMs: 5, maxDelayMs: 3_000 };
const DEFAULT_POST_GST: LinkProfile = { dropRate: 0, minDelayMs: 5, maxDelayMs: 200 };
/** Signature checks are memoized across nodes: each message is verified once per run. */
const VERIFY_MEMO_LIMIT = 200_000;

/** Verified (key, message) per signature: a hit must match both exactly, so it stays exact. */
const verifyMemo = new Map<string, { publicKey: Uint8Array; message: Uint8Array }>();

function memoVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = String.fromCharCode(...signature);
  const hit = verifyMemo.get(key);
  if (hit && bytesEqual(hit.publicKey, publicKey) && bytesEqual(hit.message, message)) return true;
  const ok = verifySignature(publicKey, message, signature);
  if (ok) {
    if (verifyMemo.size >= VERIFY_MEMO_LIMIT) verifyMemo.clear();
    verifyMemo.set(key, { publicKey, message: message.slice() });
  }
  return ok;
}

function short(bytes: Uint8Array): string {
  return toHex(bytes).slice(0, 6);
}

function describeVote(v: Vote): string {
  return `${v.type === VoteType.Prevote ? "prevote" : "precommit"} h${v.height}r${v.round} ` +
    `${short(v.blockHash)} by ${short(v.validator)}`;
}

function describeEvent(e: EngineEvent): string {
  switch (e.kind) {
    case "vote":
      return describeVote(e.vote);
    case "proposal":
      return `proposal h${e.proposal.height}r${e.proposal.round} vr${e.proposal.validRound} ` +
        short(blockHash(e.proposal.block.header));
    case "timeout":
      return `timeout ${e.step} h${e.height}r${e.round}`;
  }
}

function describeAction(a: EngineAction): string {
  switch (a.kind) {
    case "broadcastVote":
      return describeVote(a.vote);
    case "broadcastProposal":
      return `proposal r${a.proposal.round} vr${a.proposal.validRound} ` +
        short(blockHash(a.proposal.block.header));
    case "commit":
      return `commit ${short(a.certificate.blockHash)} r${a.certificate.round}`;
    case "rejected":
      return `rejected ${a.reason}: ${a.detail}`;
    default:
      return a.kind;
  }
}

function messageHeight(m: ConsensusMessage): number {
  return m.kind === "vote" ? m.vote.height : m.proposal.height;
}

interface SimNode {
  index: number;
  key: KeyPair;
  byzantine: boolean;
  up: boolean;
  /** Bumped on crash and restart so timers and starts of an old life do nothing. */
  life: number;
  /** Durable: survives crashes. */
  chain: CommittedBlock[];
  guard: MemorySignGuard;
  engine: ConsensusEngine | null;
  /** Last time we served a catch-up block, by "peer/height". */
  served: Map<string, number>;
  /** Restarts still scheduled: a node that is down but will return is not done. */
  pendingRestarts: number;
}

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  readonly #o: SimOptions;
  readonly #random: TestRandom;
  readonly #queue = new VirtualClock();
  readonly #set: ValidatorSet;
  readonly #keys: KeyPair[];
  readonly #scheduledSets = new Map<number, ValidatorSet>();
  readonly #nodes: SimNode[];
  readonly #timeouts: TimeoutConfig;
  readonly #pre: LinkProfile;
  readonly #post: LinkProfile;
  /** Per "height/round": the proposal a byzantine node saw (real) and its own fresh twin. */
  readonly #byzantineBlocks = new Map<string, { real: Uint8Array; twin?: Uint8Array }>();
  /** height → block hash → true, over honest commits. */
  readonly #committed = new Map<number, Set<string>>();
  readonly #result: SimResult;

  constructor(options: SimOptions) {
    this.#o = options;
    this.#random = new TestRandom(options.seed);
    this.#timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.#pre = options.preGst ?? DEFAULT_PRE_GST;
    this.#post = options.postGst ?? DEFAULT_POST_GST;
    const keys = options.powers.map((_, i) => testKey(`sim-${i}`));
    this.#keys = keys;
    this.#set = this.#makeSet(options.powers);
    const byzantine = new Set(options.byzantine ?? []);
    this.#nodes = keys.map((key, index) => ({
      index,
      key,
      byzantine: byzantine.has(index),
      up: true,
      life: 0,
      chain: [],
      guard: new MemorySignGuard(),
      engine: null,
      served: new Map(),
      pendingRestarts: 0,
    }));
    this.#result = {
      forks: [],
      badCertificates: 0,
      badLastCommits: 0,
      wrongSetBlocks: 0,
      rejected: 0,
      heights: [],
      firstCommitAt: [],
      equivocationsReported: 0,
      signRefusals: 0,
      messagesSent: 0,
      endMs: 0,
      finalStates: [],
    };
  }

  #makeSet(powers: readonly (number | null)[]): ValidatorSet {
    return makeValidatorSet(
      this.#keys.flatMap((key, i) =>
        powers[i] === null || powers[i] === undefined ? [] : [{
          nodeId: key.publicKey,
          tier: powers[i] === 0 ? "free" as const : "bronze" as const,
          power: powers[i]!,
          rewardAddress: `sim-reward-${i}`,
          address: `127.0.0.1:${25_000 + i}`,
        }]
      ),
    );
  }

  /** The set that certifies `height`: the genesis powers, changed by the schedule. */
  #setFor(height: number): ValidatorSet {
    const schedule = this.#o.setSchedule ?? [];
    let index = -1;
    schedule.forEach((entry, i) => {
      if (
        entry.fromHeight <= height && (index < 0 || entry.fromHeight >= schedule[index].fromHeight)
      ) {
        index = i;
      }
    });
    if (index < 0) return this.#set;
    let set = this.#scheduledSets.get(index);
    if (!set) {
      set = this.#makeSet(schedule[index].powers);
      this.#scheduledSets.set(index, set);
    }
    return set;
  }

  run(): SimResult {
    for (const c of this.#o.crashes ?? []) {
      // A crash at time 0 means the node starts down: it never gets to sign anything.
      if (c.atMs <= 0) this.#nodes[c.node].up = false;
      else this.#queue.at(c.atMs, () => this.#crash(this.#nodes[c.node], c.wipeChain ?? false));
      if (c.restartAtMs !== null) {
        const node = this.#nodes[c.node];
        node.pendingRestarts++;
        this.#queue.at(c.restartAtMs, () => {
          node.pendingRestarts--;
          this.#restart(node);
        });
      }
    }
    for (const node of this.#nodes) this.#startHeight(node, node.life);
    while (!this.#done() && this.#queue.step(this.#o.maxTimeMs)) {
      // each step runs one event
    }
    const r = this.#result;
    r.heights = this.#nodes.map((n) => n.chain.length);
    r.signRefusals = this.#nodes.reduce((s, n) => s + n.guard.refusals, 0);
    r.endMs = this.#queue.now;
    r.finalStates = this.#nodes.map((n) => {
      const e = n.engine;
      if (!n.up || !e) return `node ${n.index}: down at ${n.chain.length}`;
      return `node ${n.index}${n.byzantine ? " (byzantine)" : ""}: h${e.height} r${e.round} ` +
        `${e.step} locked ${e.lockedRound} valid ${e.validRound}`;
    });
    return r;
  }

  #done(): boolean {
    return this.#nodes.every((n) =>
      n.byzantine || (!n.up && n.pendingRestarts === 0) || n.chain.length >= this.#o.targetHeight
    );
  }

  // ---- node lifecycle ----

  #crash(node: SimNode, wipeChain: boolean): void {
    if (!node.up) return;
    node.up = false;
    node.life++;
    node.engine = null;
    node.served.clear();
    if (wipeChain) node.chain = [];
  }

  #restart(node: SimNode): void {
    if (node.up) return;
    node.up = true;
    node.life++;
    this.#startHeight(node, node.life);
  }

  /** Creates the engine for the height after the node's chain tip and replays buffers. */
  #startHeight(node: SimNode, life: number): void {
    if (!node.up || node.life !== life) return;
    const height = node.chain.length + 1;
    if (node.engine && node.engine.height === height) return;
    const previous = node.chain.length === 0
      ? { hash: TEST_GENESIS_HASH, timestamp: TEST_GENESIS_TIME }
      : {
        hash: blockHash(node.chain[node.chain.length - 1].block.header),
        timestamp: node.chain[node.chain.length - 1].block.header.timestamp,
      };
    const buffered = node.engine?.height === height - 1 ? node.engine.takeNextHeightMessages() : [];
    const engine = new ConsensusEngine({
      height,
      validators: this.#setFor(height),
      nextValidators: this.#setFor(height + 1),
      previous,
      genesisHash: TEST_GENESIS_HASH,
      signer: guardedSigner(node.key, node.byzantine ? null : node.guard),
      timeouts: this.#timeouts,
      getValue: (h, round) => this.#buildValue(node, h, round, previous),
      isValid: (block) =>
        block.records.length === 1 && block.records[0].type === 7 &&
        checkProposedLastCommit(
          TEST_GENESIS_HASH,
          block.lastCommit,
          height,
          previous.hash,
          this.#setFor(Math.max(1, height - 1)),
          memoVerify,
        ).ok,
      verify: memoVerify,
      restore: {
        lastSigned: node.guard.lastSigned,
        lock: node.guard.lock,
        lockEvidence: node.guard.lockEvidence,
        lastMessages: node.guard.lastMessages,
      },
    });
    node.engine = engine;
    this.#apply(node, engine, engine.start());
    for (const b of buffered) this.#feed(node, { ...b.message, from: b.from } as EngineEvent);
  }

  #buildValue(
    node: SimNode,
    height: number,
    round: number,
    previous: { hash: Uint8Array; timestamp: number },
  ): Block {
    const data = new TextEncoder().encode(
      `${node.index}/${height}/${round}/${this.#random.next()}`,
    );
    return buildBlock({
      set: this.#setFor(height),
      height,
      previous,
      round,
      proposer: node.key.publicKey,
      timestamp: Math.max(this.#queue.now, previous.timestamp + 1),
      records: [{ type: 7, data }],
      // What the shell proposes: the certificate of the block below, as committed here.
      lastCommit: height >= 2 ? sortedCommit(node.chain[height - 2].certificate) : undefined,
    });
  }

  #feed(node: SimNode, event: EngineEvent): void {
    const engine = node.engine;
    if (!engine) return;
    if (this.#o.trace) this.#trace(node, "in", describeEvent(event));
    this.#apply(node, engine, engine.handle(event));
  }

  #trace(node: SimNode, direction: string, what: string): void {
    const e = node.engine;
    const at = e ? `h${e.height}r${e.round}:${e.step}` : "-";
    this.#o.trace!(`${this.#queue.now} n${node.index} ${at} ${direction} ${what}`);
  }

  #apply(node: SimNode, engine: ConsensusEngine, actions: EngineAction[]): void {
    for (const a of actions) {
      if (node.engine !== engine) return; // the node crashed or moved on meanwhile
      if (this.#o.trace && a.kind !== "relay" && a.kind !== "scheduleTimeout") {
        this.#trace(node, "out", describeAction(a));
      }
      switch (a.kind) {
        case "broadcastProposal":
        case "broadcastVote": {
          const message: ConsensusMessage = a.kind === "broadcastVote"
            ? { kind: "vote", vote: a.vote }
            : { kind: "proposal", proposal: a.proposal };
          if (!node.byzantine && !this.#guardWrite(node, a, message)) return;
          this.#broadcastSigned(node, message);
          break;
        }
        case "relay":
          if (a.except === null || this.#o.relay) this.#broadcast(node, a.message, a.except);
          break;
        case "scheduleTimeout": {
          const life = node.life;
          this.#queue.at(this.#queue.now + a.delayMs, () => {
            if (node.life !== life || node.engine !== engine) return;
            this.#feed(node, { kind: "timeout", step: a.step, height: a.height, round: a.round });
          });
          break;
        }
        case "commit":
          this.#commit(node, { block: a.block, certificate: a.certificate });
          break;
        case "equivocation":
          this.#result.equivocationsReported++;
          break;
        case "rejected":
          this.#result.rejected++;
          break;
      }
    }
  }

  /**
   * The shell's guard write before a send. False when the node does not get to send: its
   * write failed (it stops for good, as the real shell exits) or it crashed right after it.
   */
  #guardWrite(
    node: SimNode,
    a: Extract<EngineAction, { kind: "broadcastVote" | "broadcastProposal" }>,
    message: ConsensusMessage,
  ): boolean {
    const failing = this.#o.failingGuard;
    if (failing && failing.node === node.index && this.#queue.now >= failing.atMs) {
      this.#crash(node, false);
      return false;
    }
    const g = a.guard;
    const evidence = a.kind === "broadcastVote" ? a.lockEvidence : undefined;
    node.guard.record(g.height, g.round, g.step, g.blockHash, g.lock, evidence, message);
    const rate = this.#o.crashAfterGuardWrite ?? 0;
    if (rate > 0 && this.#random.chance(rate)) {
      this.#crash(node, false);
      node.pendingRestarts++;
      this.#queue.at(this.#queue.now + this.#random.int(10, 2_000), () => {
        node.pendingRestarts--;
        this.#restart(node);
      });
      return false;
    }
    return true;
  }

  #commit(node: SimNode, committed: CommittedBlock): boolean {
    const height = committed.block.header.height;
    if (height !== node.chain.length + 1) return false;
    const hash = blockHash(committed.block.header);
    const set = this.#setFor(height);
    if (!bytesEqual(committed.block.header.validatorSetHash, set.hash)) {
      this.#result.wrongSetBlocks++;
      return false;
    }
    const quorum = checkCertificateQuorum(committed.certificate, height, hash, set);
    if (!quorum.ok || !verifyCertificateSignatures(TEST_GENESIS_HASH, committed.certificate)) {
      this.#result.badCertificates++;
      return false;
    }
    const below = height >= 2 ? blockHash(node.chain[height - 2].block.header) : null;
    const lastCommit = checkProposedLastCommit(
      TEST_GENESIS_HASH,
      committed.block.lastCommit,
      height,
      below ?? TEST_GENESIS_HASH,
      this.#setFor(Math.max(1, height - 1)),
      memoVerify,
    );
    if (!lastCommit.ok) this.#result.badLastCommits++;
    node.chain.push(committed);
    if (!node.byzantine) {
      let hashes = this.#committed.get(height);
      if (!hashes) {
        hashes = new Set();
        this.#committed.set(height, hashes);
        this.#result.firstCommitAt[height] = this.#queue.now;
      }
      hashes.add(toHex(hash));
      if (hashes.size === 2) this.#result.forks.push({ height, hashes: [...hashes] });
    }
    const life = node.life;
    this.#queue.at(
      this.#queue.now + (this.#o.commitDelayMs ?? 0),
      () => this.#startHeight(node, life),
    );
    return true;
  }

  // ---- network ----

  #broadcastSigned(node: SimNode, message: ConsensusMessage): void {
    if (!node.byzantine) return this.#broadcast(node, message, null);
    // Byzantine: half of the peers get the real message, the other half a conflicting one.
    const twin = this.#conflicting(node, message);
    for (const peer of this.#nodes) {
      if (peer === node) continue;
      // A proposal with a fake validRound goes to everyone: the more honest nodes prevote it
      // without its proof of lock, the sooner a broken line-28 check shows as a fork.
      const allTwin = twin.kind === "proposal" && twin.proposal.validRound >= 0;
      this.#send(node, peer, allTwin ? twin : this.#random.chance(0.5) ? message : twin);
    }
  }

  /**
   * The byzantine twin of a message, chosen to attack locks: a proposal's twin is a fresh
   * block with validRound −1 (as if it had never seen a proof of lock); a vote's twin backs
   * another block of the round than the engine chose: the fresh twin, else the round's real
   * proposal, else nil.
   */
  #conflicting(node: SimNode, message: ConsensusMessage): ConsensusMessage {
    if (message.kind === "proposal") {
      const p = message.proposal;
      const records = [{ type: 7, data: new Uint8Array([node.index, p.round & 0xff, 0xbb]) }];
      // A fake validRound: the block claims to come from round − 1 (whose proposer it names,
      // as a re-proposal would), with no proof of lock behind it.
      const fakeValidRound = this.#o.byzantineFakeValidRound && p.round > 0 ? p.round - 1 : -1;
      const block = buildBlock({
        set: this.#setFor(p.height),
        height: p.height,
        previous: { hash: p.block.header.prevHash, timestamp: p.block.header.timestamp - 1 },
        round: fakeValidRound >= 0 ? fakeValidRound : p.round,
        proposer: fakeValidRound >= 0 ? undefined : node.key.publicKey,
        timestamp: p.block.header.timestamp + 1,
        records,
        lastCommit: p.block.lastCommit,
      });
      if (this.#o.byzantineStaleSet) {
        // The set of the height before: differs from the right one exactly at a set change.
        block.header.validatorSetHash = this.#setFor(p.height - 1).hash;
      }
      const hash = blockHash(block.header);
      this.#byzantineBlocks.set(`${p.height}/${p.round}`, {
        real: blockHash(p.block.header),
        twin: hash,
      });
      return {
        kind: "proposal",
        proposal: signProposal(node.key, p.height, p.round, fakeValidRound, block),
      };
    }
    const v = message.vote;
    const seen = this.#byzantineBlocks.get(`${v.height}/${v.round}`);
    // Back a different block than the engine did: its own fresh twin first (to build a
    // competing quorum), then the round's real proposal, then nil.
    const choices = [seen?.twin, seen?.real, new Uint8Array(32)];
    const other = choices.find((c) => c !== undefined && !bytesEqual(c, v.blockHash)) ??
      sha256(new Uint8Array([node.index, v.round & 0xff, 0xee]));
    return { kind: "vote", vote: signVote(node.key, v.type, v.height, v.round, other) };
  }

  #broadcast(node: SimNode, message: SimMessage, exceptIndex: string | null): void {
    for (const peer of this.#nodes) {
      if (peer === node || String(peer.index) === exceptIndex) continue;
      this.#send(node, peer, message);
    }
  }

  #reachable(a: number, b: number, now: number): boolean {
    for (const p of this.#o.partitions ?? []) {
      if (now < p.startMs || now >= p.endMs) continue;
      const ga = p.groups.findIndex((g) => g.includes(a));
      const gb = p.groups.findIndex((g) => g.includes(b));
      if (ga === -1 || ga !== gb) return false;
    }
    return true;
  }

  #send(from: SimNode, to: SimNode, message: SimMessage): void {
    const now = this.#queue.now;
    this.#result.messagesSent++;
    if (!this.#reachable(from.index, to.index, now)) return;
    const link = now < this.#o.gstMs ? this.#pre : this.#post;
    if (link.dropRate > 0 && this.#random.chance(link.dropRate)) return;
    const delay = this.#random.int(link.minDelayMs, link.maxDelayMs);
    this.#queue.at(now + delay, () => this.#deliver(from, to, message));
  }

  #deliver(from: SimNode, to: SimNode, message: SimMessage): void {
    if (!to.up) return;
    if (message.kind === "commit") {
      // Catch-up, as the shell's sync path would apply a block with its certificate.
      if (message.committed.block.header.height === to.chain.length + 1) {
        this.#commit(to, message.committed);
      }
      return;
    }
    if (message.kind === "getCommit") {
      if (message.height <= to.chain.length) this.#serveCatchUp(to, from, message.height);
      return;
    }
    const height = messageHeight(message);
    if (height <= to.chain.length) {
      this.#serveCatchUp(to, from, height);
      return;
    }
    if (height >= to.chain.length + 2) {
      // The sender is ahead by more than the buffered next height: ask it, as sync would.
      this.#requestCatchUp(to, from, to.chain.length + 1);
    }
    if (to.byzantine && message.kind === "proposal") {
      const key = `${message.proposal.height}/${message.proposal.round}`;
      if (!this.#byzantineBlocks.has(key)) {
        this.#byzantineBlocks.set(key, { real: blockHash(message.proposal.block.header) });
      }
    }
    const peer = String(from.index);
    this.#feed(
      to,
      message.kind === "vote"
        ? { kind: "vote", vote: message.vote, from: peer }
        : { kind: "proposal", proposal: message.proposal, from: peer },
    );
  }

  #requestCatchUp(node: SimNode, peer: SimNode, height: number): void {
    if (this.#o.catchUp === false) return;
    const key = `ask/${peer.index}/${height}`;
    const last = node.served.get(key);
    const now = this.#queue.now;
    if (last !== undefined && now - last < this.#timeouts.resendMs) return;
    node.served.set(key, now);
    this.#send(node, peer, { kind: "getCommit", height });
  }

  /** A peer is behind: send it our block of that height, at most once per resend interval. */
  #serveCatchUp(node: SimNode, peer: SimNode, height: number): void {
    if (this.#o.catchUp === false) return;
    const key = `${peer.index}/${height}`;
    const last = node.served.get(key);
    const now = this.#queue.now;
    if (last !== undefined && now - last < this.#timeouts.resendMs) return;
    node.served.set(key, now);
    this.#send(node, peer, { kind: "commit", committed: node.chain[height - 1] });
  }
}

/** Certificate signer ids in hex, for assertions. */
export function certificateSigners(cert: Certificate): string[] {
  return cert.signatures.map((s) => toHex(s.validator));
}

// ---- engine harness for unit tests ---------------------------------------------------------
// Four validators of power 1 (quorum = 3, f+1 = 2) at height 1; the proposer of round r is
// validator r mod 4. Every `harness()` call builds a fresh engine: no state between tests.

export const HEIGHT = 1;
export const PREVIOUS = { hash: TEST_GENESIS_HASH, timestamp: TEST_GENESIS_TIME };
export const { set: SET, keys: KEYS } = makeTestValidators([1, 1, 1, 1], "engine");

/**
 * An engine of the fixture, not started: height 1 on SET, no signer, no value to propose, every
 * block valid; `overrides` replace any of these (`nextValidators` follows `validators`).
 */
export function newTestEngine(overrides: Partial<EngineOptions> = {}): ConsensusEngine {
  const validators = overrides.validators ?? SET;
  return new ConsensusEngine({
    height: HEIGHT,
    validators,
    nextValidators: validators,
    previous: PREVIOUS,
    genesisHash: TEST_GENESIS_HASH,
    signer: null,
    getValue: () => null,
    isValid: () => true,
    ...overrides,
  });
}

/** Index (in KEYS) of the proposer of `round` at HEIGHT. */
export function proposerIndex(round: number): number {
  const id = toHex(proposerAt(SET, HEIGHT, round).nodeId);
  return KEYS.findIndex((k) => toHex(k.publicKey) === id);
}

/**
 * A block built by the proposer of `round`, distinguished by `tag` (its one record) unless
 * `overrides.records` replaces the records.
 */
export function makeBlock(
  round: number,
  tag = 0,
  overrides: Pick<BlockSpec, "timestamp" | "records" | "lastCommit"> = {},
): Block {
  return buildBlock({
    set: SET,
    height: HEIGHT,
    previous: PREVIOUS,
    round,
    timestamp: overrides.timestamp,
    records: overrides.records ?? [{ type: 1, data: new Uint8Array([round, tag]) }],
    lastCommit: overrides.lastCommit,
  });
}

export function hashOf(block: Block): Uint8Array {
  return blockHash(block.header);
}

export function proposal(round: number, validRound: number, block: Block): Proposal {
  return signProposal(KEYS[proposerIndex(round)], HEIGHT, round, validRound, block);
}

export function prevote(i: number, round: number, block: Block | null, height = HEIGHT): Vote {
  return signVote(KEYS[i], VoteType.Prevote, height, round, block ? hashOf(block) : ZERO_HASH);
}

export function precommit(i: number, round: number, block: Block | null, height = HEIGHT): Vote {
  return signVote(KEYS[i], VoteType.Precommit, height, round, block ? hashOf(block) : ZERO_HASH);
}

export interface Harness {
  engine: ConsensusEngine;
  guard: MemorySignGuard;
  /** Feeds one message; returns the actions. */
  vote(v: Vote, from?: string): EngineAction[];
  propose(p: Proposal, from?: string): EngineAction[];
  timeout(step: "propose" | "prevote" | "precommit" | "resend", round: number): EngineAction[];
  getValueCalls: number[];
}

export interface HarnessOptions {
  /** Index of our own key, or null for a non-validator. */
  me: number | null;
  isValid?: (block: Block) => boolean;
  signer?: ConsensusSigner | null;
  restore?: EngineOptions["restore"];
  /** The set of HEIGHT + 1 (default SET; null: unknown). */
  nextValidators?: ValidatorSet | null;
  verify?: EngineOptions["verify"];
}

export function harness(opts: HarnessOptions): Harness & { startActions: EngineAction[] } {
  const guard = new MemorySignGuard();
  const getValueCalls: number[] = [];
  const signer = opts.signer !== undefined
    ? opts.signer
    : opts.me === null
    ? null
    : guardedSigner(KEYS[opts.me], guard);
  const engine = new ConsensusEngine({
    height: HEIGHT,
    validators: SET,
    nextValidators: opts.nextValidators === undefined ? SET : opts.nextValidators,
    verify: opts.verify,
    previous: PREVIOUS,
    genesisHash: TEST_GENESIS_HASH,
    signer,
    getValue: (_h, round) => {
      getValueCalls.push(round);
      return makeBlock(round, 99);
    },
    isValid: opts.isValid ?? (() => true),
    restore: opts.restore,
  });
  // Mirror the shell: record every signed message in the guard before "sending" it.
  const record = (actions: EngineAction[]) => {
    for (const a of actions) {
      if (a.kind === "broadcastVote" || a.kind === "broadcastProposal") {
        const g = a.guard;
        const evidence = a.kind === "broadcastVote" ? a.lockEvidence : undefined;
        guard.record(g.height, g.round, g.step, g.blockHash, g.lock, evidence);
      }
    }
    return actions;
  };
  const startActions = record(engine.start());
  return {
    engine,
    guard,
    startActions,
    getValueCalls,
    vote: (v, from = "peer") => record(engine.handle({ kind: "vote", vote: v, from })),
    propose: (p, from = "peer") => record(engine.handle({ kind: "proposal", proposal: p, from })),
    timeout: (step, round) =>
      record(engine.handle({ kind: "timeout", step, height: HEIGHT, round })),
  };
}

/** Votes this node broadcast among `actions`. */
export function sentVotes(actions: EngineAction[], type?: VoteType): Vote[] {
  const out: Vote[] = [];
  for (const a of actions) {
    if (a.kind === "broadcastVote" && (type === undefined || a.vote.type === type)) {
      out.push(a.vote);
    }
  }
  return out;
}

export function sentProposals(actions: EngineAction[]): Proposal[] {
  const out: Proposal[] = [];
  for (const a of actions) if (a.kind === "broadcastProposal") out.push(a.proposal);
  return out;
}

/** Votes relayed (passed on or re-sent) among `actions`. */
export function relayedVotes(actions: EngineAction[]): Vote[] {
  return actions.flatMap((a) =>
    a.kind === "relay" && a.message.kind === "vote" ? [a.message.vote] : []
  );
}

/** Proposals relayed (passed on or re-sent) among `actions`. */
export function relayedProposals(actions: EngineAction[]): Proposal[] {
  return actions.flatMap((a) =>
    a.kind === "relay" && a.message.kind === "proposal" ? [a.message.proposal] : []
  );
}

export function timeoutsOf(actions: EngineAction[], step: string) {
  return actions.flatMap((a) => a.kind === "scheduleTimeout" && a.step === step ? [a] : []);
}

export function isNil(v: Vote): boolean {
  return v.blockHash.every((b) => b === 0);
}

export function hexOf(bytes: Uint8Array): string {
  return toHex(bytes);
}

/** The engine's `verify` option, counting its calls: how often a signature was checked. */
export function countingVerify() {
  let calls = 0;
  return {
    verify: (k: Uint8Array, m: Uint8Array, s: Uint8Array) => {
      calls++;
      return verifySignature(k, m, s);
    },
    calls: () => calls,
  };
}
