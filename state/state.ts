/**
 * The deterministic chain state machine: the masternode set, record nonces and balances.
 *
 * Owns: the state key layout and value encodings, the validity rules of masternode records,
 * the validator set of every height (genesis set, then changes that take effect exactly
 * ACTIVATION_DELAY blocks after the block that makes them), the stake rules (collateral locked
 * by registrations, unbonding and its release, downtime jailing from `lastCommit`, unjail,
 * slashing and tombstones by evidence), the order of a block's effects (genesis allocations
 * and collateral at height 1, releases, downtime, records, transfers, rewards and fees), and
 * crediting block rewards by reward weight. Account values and the transfer rules are
 * state/accounts.ts's; the miss bitmap is state/liveness.ts's; evidence bytes state/evidence.ts's;
 * unbonding, release and tombstone keys state/bonds.ts's.
 * Voting power is the tier's power unless jailed; free-tier members have power 0: listed, but
 * never proposing, counting toward quorum or signing. The rules are written down in
 * docs/state.md.
 * Must never: read anything but the `StateView` and the block it is given (no clock, no
 * network, no local configuration): every node must derive the same set and the same state
 * bytes from the same chain (docs/lessons.md#14). It never writes storage itself; `apply`
 * returns the writes and the chain commits them with the block.
 */
import {
  ByteReader,
  ByteWriter,
  DecodeError,
  fromHex,
  toHex,
  writeList,
} from "../encoding/binary.ts";
import { sha256 } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH } from "../crypto/ed25519.ts";
import { type Block, CHAIN_LIMITS, transactionsOf } from "../chain/block.ts";
import { bodySize } from "../chain/verify.ts";
import {
  InvalidBlockError,
  type StateMachine,
  type StateView,
  type StateWrites,
} from "../chain/api.ts";
import {
  type Genesis,
  genesisHash as computeGenesisHash,
  ledgerOf,
  type LedgerParams,
  stakeOf,
  type StakeParams,
  type Tier,
  TIERS,
} from "../chain/genesis.ts";
import {
  accountOf,
  AccountWorkingSet,
  checkTransfer,
  MAX_UNBONDING_ENTRIES,
  type StakeAccount,
} from "./accounts.ts";
import { formatAmount } from "./amount.ts";
import { countHeight, decodeLiveness, livenessKey } from "./liveness.ts";
import { decodeEvidence, type Evidence, verifyEvidenceSignatures } from "./evidence.ts";
import { addressOf, checkAddress, encodeAddress } from "./address.ts";
import {
  checkTxFormat,
  type Transaction,
  transactionIdsOf,
  TxInvalidError,
  type TxRules,
  verifyTxSignature,
} from "./transaction.ts";
import { makeValidatorSet, type Validator, type ValidatorSet } from "../chain/validators.ts";
import {
  decodeRecord,
  type MasternodeRecord,
  RECORD_LIMITS,
  RecordType,
  recordTypeName,
  verifyOwnerSignature,
  verifyRecordSignature,
} from "./records.ts";
import {
  isTombstoned,
  releaseDue,
  slashUnbonding,
  startUnbonding,
  tombstone,
  unbondOf,
} from "./bonds.ts";
import { corrupt, decodeU64, encodeU64, readOrCorrupt, type StateRead } from "./stored.ts";
import { type Earner, splitBlockReward } from "./rewards.ts";

/**
 * A record in block h changes the set from height h + 2. Two blocks give every node time to
 * have applied the change before it must certify with the new set, and the set of the next
 * block (h + 1) is already fixed when block h is proposed, so a proposal never changes who
 * votes on its own successor.
 */
export const ACTIVATION_DELAY = 2;

/**
 * Decoded sets kept in memory, keyed by content hash. A handful covers the sets of the heights
 * that consensus and sync ask for over and over (tip, tip + 1, tip + 2).
 */
const SET_CACHE_SIZE = 8;

// The state key layout. Keys are ASCII prefixes plus a height, a hex id or an address; each
// prefix ends in "/" so no key of one family can equal a key of another.
const KEY = {
  /** u64: the height of the newest set snapshot (may be up to tip + ACTIVATION_DELAY). */
  setHead: "vs/head",
  /** Snapshot pointer of the set that takes effect at `height`: prev height + content hash. */
  setAt: (height: number) => `vs/at/${height}`,
  /** Set content (members), addressed by its SHA-256, so repeated sets are stored once. */
  setData: (contentHashHex: string) => `vs/set/${contentHashHex}`,
  /** u64: how many records of this node the chain holds; the next record must carry it. */
  nonce: (nodeIdHex: string) => `mn/nonce/${nodeIdHex}`,
  // "mn/unbond/", "unbond/at/", "mn/tomb/": collateral after it leaves, owned by state/bonds.ts.
  // "acct/<address>": an account, owned by state/accounts.ts.
  // "mn/live/<nodeHex>": a member's misses in the window, owned by state/liveness.ts.
} as const;

/** The "previous snapshot" of the first stored snapshot: the genesis set. */
const GENESIS_SNAPSHOT_HEIGHT = 0;

/** The first height a genesis member certifies. */
const GENESIS_ACTIVE_FROM = 1;

/** One member of the set as stored: a validator minus its power (a function of the tier). */
interface Member {
  nodeId: Uint8Array;
  tier: Tier;
  rewardAddress: string;
  address: string;
  /** First height whose set contains this membership. */
  activeFrom: number;
  /** The address whose collateral backs it; "" for none (free tier). */
  owner: string;
  /** 0 when not jailed; else the first block height whose unjail record is valid. */
  jailedUntil: number;
}

interface Snapshot {
  members: readonly Member[];
  /** Hex node ids of `members`, in the same order (computed once per cached set). */
  ids: readonly string[];
  set: ValidatorSet;
  contentHash: Uint8Array;
}

export type MasternodeStatus = "active" | "pending" | "jailed" | "unbonding" | "tombstoned";

/** One masternode as RPC shows it (`masternodelist`); JSON-safe (amounts are strings). */
export interface MasternodeInfo {
  /** Hex node id. */
  nodeId: string;
  tier: Tier;
  power: number;
  rewardAddress: string;
  address: string;
  /** First height this member certifies; above the tip while the registration is pending. */
  activeFrom: number;
  /** First height it no longer certifies, when its departure is already on the chain. */
  leavingFrom: number | null;
  /** The address whose collateral backs it; null for free tier (or an unowned genesis member). */
  owner: string | null;
  /** Locked collateral in TIME (decimal string) and in base units. */
  collateral: string;
  collateralUnits: string;
  rewardWeight: number;
  status: MasternodeStatus;
  /** Heights missed within the last `signedBlocksWindow`. */
  missedBlocks: number;
  /** First height an unjail record is valid; null when not jailed. */
  jailedUntil: number | null;
}

/** The chain's state machine plus the read-only queries RPC and record signers need. */
export interface MasternodeStateMachine extends StateMachine {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  masternodeList(view: StateView, tipHeight: number): MasternodeInfo[];
  balanceOf(view: StateView, address: string): bigint;
  /** Spendable balance, nonce, locked collateral and unbonding entries. */
  accountOf(view: StateView, address: string): StakeAccount;
  recordNonceOf(view: StateView, nodeId: Uint8Array): number;
  /** The ledger parameters of the genesis (fees, block size, allocations). */
  readonly ledger: LedgerParams;
  /** The stake parameters of the genesis (collateral, weights, periods, slash). */
  readonly stake: StakeParams;
  /** The stateless transaction rules of this chain. */
  readonly txRules: TxRules;
}

/** Transaction ids whose signature this node already verified (mempool admission). */
export interface VerifiedTransactions {
  has(txIdHex: string): boolean;
  /** Told of every signature `apply` verified itself, so checking a proposal and then
   * committing the same block verifies each signature once. */
  add?(txIdHex: string): void;
}

export interface StateMachineOptions {
  /** Lets `apply` skip the signatures a verify worker already checked. */
  verified?: VerifiedTransactions;
}

// ---------------------------------------------------------------------------------------------
// Value encodings. State is written only by `apply`, so a value that fails to decode means
// the store is corrupt: those errors are thrown as plain errors, never as a block rejection.

function encodeMembers(members: readonly Member[]): Uint8Array {
  const w = new ByteWriter(64 + members.length * 128);
  writeList(w, members, (w, m) => {
    w.fixed(m.nodeId, PUBLIC_KEY_LENGTH).u8(TIERS.indexOf(m.tier)).string(m.rewardAddress)
      .string(m.address).u64(m.activeFrom).string(m.owner).u64(m.jailedUntil);
  });
  return w.finish();
}

function decodeMembers(bytes: Uint8Array): Member[] {
  const r = new ByteReader(bytes);
  const members = r.list(CHAIN_LIMITS.maxValidators, (r): Member => {
    const nodeId = r.fixed(PUBLIC_KEY_LENGTH).slice();
    const tierIndex = r.u8();
    if (tierIndex >= TIERS.length) throw new DecodeError(`unknown tier ${tierIndex}`);
    return {
      nodeId,
      tier: TIERS[tierIndex],
      rewardAddress: r.string(RECORD_LIMITS.maxRewardAddressBytes),
      address: r.string(RECORD_LIMITS.maxAddressBytes),
      activeFrom: r.u64(),
      owner: r.string(RECORD_LIMITS.maxRewardAddressBytes),
      jailedUntil: r.u64(),
    };
  });
  r.end();
  for (let i = 1; i < members.length; i++) {
    if (toHex(members[i - 1].nodeId) >= toHex(members[i].nodeId)) {
      throw new DecodeError("set members not in ascending node id order");
    }
  }
  return members;
}

interface SnapshotPointer {
  /** Height of the snapshot before this one; GENESIS_SNAPSHOT_HEIGHT for the genesis set. */
  prev: number;
  contentHash: Uint8Array;
}

function encodePointer(p: SnapshotPointer): Uint8Array {
  return new ByteWriter(40).u64(p.prev).fixed(p.contentHash, 32).finish();
}

function decodePointer(bytes: Uint8Array): SnapshotPointer {
  const r = new ByteReader(bytes);
  const p = { prev: r.u64(), contentHash: r.fixed(32).slice() };
  r.end();
  return p;
}

// ---------------------------------------------------------------------------------------------
// Queries that need no genesis.

/** Balance of an address; 0 for an address that was never credited. */
export function balanceOf(view: StateView, address: string): bigint {
  return accountOf(view, address).balance;
}

/** The nonce the node's next record must carry: how many of its records the chain holds. */
export function recordNonceOf(view: StateView, nodeId: Uint8Array): number {
  return readOrCorrupt(view, KEY.nonce(toHex(nodeId)), decodeU64) ?? 0;
}

// ---------------------------------------------------------------------------------------------

function genesisMembers(genesis: Genesis): Member[] {
  return genesis.masternodes.map((m) => ({
    nodeId: fromHex(m.nodeId),
    tier: m.tier,
    rewardAddress: m.rewardAddress,
    address: m.address,
    activeFrom: GENESIS_ACTIVE_FROM,
    owner: m.owner ?? "",
    jailedUntil: 0,
  })).sort((a, b) => (toHex(a.nodeId) < toHex(b.nodeId) ? -1 : 1));
}

function isHeight(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The chain's state machine for `genesis`. Pure apart from a bounded cache of decoded sets. */
export function createStateMachine(
  genesis: Genesis,
  opts: StateMachineOptions = {},
): MasternodeStateMachine {
  const chainId = computeGenesisHash(genesis);
  const ledger = ledgerOf(genesis);
  const txRules: TxRules = { genesisHash: chainId, minFeePerByte: ledger.minFeePerByte };
  const stake = stakeOf(genesis);
  // parseGenesis holds tierPower.free at 0: a free member is listed but has no voting power;
  // a jailed member keeps its seat (and its locked collateral) without power.
  const powerOf = (m: Member): number => (m.jailedUntil > 0 ? 0 : genesis.tierPower[m.tier]);
  /** What a member has locked: its tier's collateral when an owner backs it. */
  const collateralOf = (m: Member): bigint => (m.owner ? stake.tierCollateral[m.tier] : 0n);
  const toValidator = (m: Member): Validator => ({
    nodeId: m.nodeId,
    tier: m.tier,
    power: powerOf(m),
    rewardAddress: m.rewardAddress,
    address: m.address,
  });
  const buildSnapshot = (members: readonly Member[], contentHash: Uint8Array): Snapshot => ({
    members,
    ids: members.map((m) => toHex(m.nodeId)),
    set: makeValidatorSet(members.map(toValidator)),
    contentHash,
  });

  const genesisMemberList = genesisMembers(genesis);
  const genesisSnapshot = buildSnapshot(
    genesisMemberList,
    sha256(encodeMembers(genesisMemberList)),
  );

  // Content-addressed, so an entry can never go stale: the same hash is the same members.
  const cache = new Map<string, Snapshot>();
  const loadSnapshot = (view: StateView, contentHash: Uint8Array): Snapshot => {
    const hashHex = toHex(contentHash);
    const hit = cache.get(hashHex);
    if (hit) return hit;
    const key = KEY.setData(hashHex);
    const members = readOrCorrupt(view, key, decodeMembers);
    if (!members) return corrupt(key, new Error("missing set data"));
    const snapshot = buildSnapshot(members, contentHash);
    if (cache.size >= SET_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(hashHex, snapshot);
    return snapshot;
  };

  const headOf = (view: StateView): number =>
    readOrCorrupt(view, KEY.setHead, decodeU64) ?? GENESIS_SNAPSHOT_HEIGHT;

  /** The snapshot in effect at `height`: the newest one that took effect at or before it. */
  const snapshotAt = (view: StateView, height: number): Snapshot => {
    let at = headOf(view);
    // Each step moves to a strictly lower height, so the walk ends at the genesis set at worst.
    while (at !== GENESIS_SNAPSHOT_HEIGHT) {
      const key = KEY.setAt(at);
      const pointer = readOrCorrupt(view, key, decodePointer);
      if (!pointer) return corrupt(key, new Error("missing set pointer"));
      if (pointer.prev >= at) return corrupt(key, new Error("pointer does not go back"));
      if (at <= height) return loadSnapshot(view, pointer.contentHash);
      at = pointer.prev;
    }
    return genesisSnapshot;
  };

  const validatorSetFor = (
    view: StateView,
    tipHeight: number,
    height: number,
  ): ValidatorSet | undefined => {
    if (!isHeight(tipHeight) || !isHeight(height) || height < 1) return undefined;
    if (height > tipHeight + ACTIVATION_DELAY) return undefined;
    return snapshotAt(view, height).set;
  };

  const apply = (
    view: StateView,
    block: Block,
    applyOpts?: { signaturesVerified?: boolean },
  ): StateWrites => {
    const height = block.header.height;
    if (!isHeight(height) || height < 1) {
      throw new InvalidBlockError("bad-height", `block height ${height} cannot be applied`);
    }
    const certifying = snapshotAt(view, height);
    // A member without voting power (free tier, jailed) never proposes: it is listed, nothing more.
    if (certifying.set.powerOf(toHex(block.header.proposer)) === 0) {
      throw new InvalidBlockError(
        "bad-proposer",
        `proposer ${
          toHex(block.header.proposer).slice(0, 12)
        } has no voting power in the set of height ${height}`,
      );
    }
    const transactions = transactionsOf(block);
    const size = bodySize(block.records, transactions);
    if (size > ledger.maxBlockBytes) {
      throw new InvalidBlockError(
        "bad-transactions",
        `body of ${size} bytes exceeds maxBlockBytes ${ledger.maxBlockBytes}`,
      );
    }
    const writes: StateWrites = new Map();
    // Reads of this block's own earlier writes see them (a release, then a slash, ...).
    const current = (key: string): Uint8Array | undefined =>
      writes.has(key) ? writes.get(key) ?? undefined : view.get(key);
    const accounts = new AccountWorkingSet(view);
    if (height === 1) {
      for (const a of ledger.alloc) accounts.credit(a.address, a.units);
      lockGenesisCollateral(accounts);
    }
    releaseDue(current, accounts, writes, height);
    // Read once: downtime and rewards both need who signed height - 1.
    const signers = lastCommitSigners(block);
    applySetChanges(view, current, block, signers, accounts, writes);
    const fees = applyTransactions(
      accounts,
      transactions,
      height,
      applyOpts?.signaturesVerified ?? false,
    );
    creditRewards(view, accounts, certifying, block, signers, fees);
    accounts.flush(writes);
    return writes;
  };

  /** Block 1 locks the genesis members' collateral out of their owners' allocations. */
  const lockGenesisCollateral = (accounts: AccountWorkingSet): void => {
    for (const m of genesisMemberList) {
      if (!m.owner) continue;
      // parseGenesis refuses a genesis whose alloc does not cover this: a code-built one may not.
      if (!accounts.lock(m.owner, collateralOf(m))) {
        throw new Error(`genesis alloc of ${m.owner} does not cover its members' collateral`);
      }
    }
  };

  /** Starts unbonding a departing member's collateral, released `unbondingBlocks` later. */
  const unbondMember = (
    current: StateRead,
    accounts: AccountWorkingSet,
    writes: StateWrites,
    nodeId: string,
    owner: string,
    units: bigint,
    height: number,
  ): void =>
    startUnbonding(current, accounts, writes, {
      nodeId,
      owner,
      units,
      releaseHeight: height + stake.unbondingBlocks,
    });

  const applyTransactions = (
    accounts: AccountWorkingSet,
    transactions: readonly Uint8Array[],
    height: number,
    signaturesVerified: boolean,
  ): bigint => {
    let fees = 0n;
    const ids = transactionIdsOf(transactions);
    transactions.forEach((bytes, index) => {
      const id = ids[index];
      try {
        const tx: Transaction = checkTxFormat(txRules, bytes);
        if (!signaturesVerified && !opts.verified?.has(id)) {
          if (!verifyTxSignature(chainId, tx)) {
            throw new TxInvalidError("bad-signature", "the signature does not verify");
          }
          opts.verified?.add?.(id);
        }
        const from = addressOf(genesis.network, tx.sender);
        const to = encodeAddress(genesis.network, tx.recipient);
        checkTransfer(tx, height, accounts.get(from), accounts.get(to).balance, from === to);
        accounts.transfer(tx, from, to);
        fees += tx.fee;
      } catch (e) {
        if (e instanceof TxInvalidError) {
          throw new InvalidBlockError(
            "bad-transactions",
            `transaction ${index} ${id.slice(0, 16)}: ${e.message}`,
          );
        }
        throw e;
      }
    });
    return fees;
  };

  /** Signers of height - 1 from the block's `lastCommit`, or null when it carries none. */
  const lastCommitSigners = (block: Block): Set<string> | null => {
    const commit = block.lastCommit;
    // Height 1 has no previous height to certify.
    if (!commit || block.header.height < 2 || commit.height !== block.header.height - 1) {
      return null;
    }
    return new Set(commit.signatures.map((s) => toHex(s.validator)));
  };

  /**
   * Everything that changes the set from height + ACTIVATION_DELAY: downtime jails, then the
   * records in block order, all checked against the working set (the set of height + 1, already
   * fixed by earlier blocks, changed by what came before in this block).
   */
  const applySetChanges = (
    view: StateView,
    current: StateRead,
    block: Block,
    signers: Set<string> | null,
    accounts: AccountWorkingSet,
    writes: StateWrites,
  ): void => {
    const height = block.header.height;
    if (block.records.length > CHAIN_LIMITS.maxRecords) {
      throw new InvalidBlockError("bad-records", `${block.records.length} records exceed bound`);
    }
    const effectiveAt = height + ACTIVATION_DELAY;
    const base = snapshotAt(view, effectiveAt - 1);
    const working = new Map(base.members.map((m, i) => [base.ids[i], m]));
    let changed = false;
    const totalPower = () => [...working.values()].reduce((sum, m) => sum + powerOf(m), 0);

    changed = countDowntime(view, current, block, signers, working, writes, totalPower) ||
      changed;
    // Data records change no consensus state: a block of only those skips the record work.
    if (!block.records.every((r) => r.type === RecordType.Data)) {
      changed = applyRecords(view, current, block, accounts, writes, working, totalPower) ||
        changed;
    }
    if (!changed) return;

    const members = [...working.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, m]) => m);
    const content = encodeMembers(members);
    const contentHash = sha256(content);
    if (toHex(contentHash) === toHex(base.contentHash)) return;

    const head = headOf(view);
    if (head >= effectiveAt) {
      throw new Error(`state head ${head} is already at or past ${effectiveAt}: applied twice?`);
    }
    const dataKey = KEY.setData(toHex(contentHash));
    if (view.get(dataKey) === undefined) writes.set(dataKey, content);
    writes.set(KEY.setAt(effectiveAt), encodePointer({ prev: head, contentHash }));
    writes.set(KEY.setHead, encodeU64(effectiveAt));
  };

  /**
   * Counts height - 1 for every voting member of its set that is still in the working set, and
   * jails (from height + 2) each one above `missedBlocksMax`, never leaving the set without
   * power. Returns whether the working set changed.
   */
  const countDowntime = (
    view: StateView,
    current: StateRead,
    block: Block,
    signers: Set<string> | null,
    working: Map<string, Member>,
    writes: StateWrites,
    totalPower: () => number,
  ): boolean => {
    const height = block.header.height;
    if (height < 2) return false;
    const counted = height - 1;
    let changed = false;
    const countedSet = snapshotAt(view, counted);
    countedSet.members.forEach((m, i) => {
      if (powerOf(m) === 0) return;
      const id = countedSet.ids[i];
      const member = working.get(id);
      // A member on its way out (or already jailed) is no longer counted.
      if (!member || member.jailedUntil > 0) return;
      const key = livenessKey(id);
      const missed = signers !== null && !signers.has(id);
      let next;
      try {
        next = countHeight(current(key), stake.signedBlocksWindow, counted, missed);
      } catch (e) {
        return corrupt(key, e);
      }
      if (next.value !== undefined) writes.set(key, next.value);
      if (next.missedInWindow <= stake.missedBlocksMax) return;
      if (totalPower() - powerOf(member) === 0) return; // never an empty active set
      working.set(id, { ...member, jailedUntil: height + stake.jailBlocks });
      changed = true;
    });
    return changed;
  };

  const applyRecords = (
    view: StateView,
    current: StateRead,
    block: Block,
    accounts: AccountWorkingSet,
    writes: StateWrites,
    working: Map<string, Member>,
    totalPower: () => number,
  ): boolean => {
    const height = block.header.height;
    const effectiveAt = height + ACTIVATION_DELAY;
    const bad = (index: number, why: string): never => {
      throw new InvalidBlockError("bad-records", `record ${index}: ${why}`);
    };
    const nonces = new Map<string, number>();
    const join = (index: number, what: string, id: string, m: Member) => {
      if (working.has(id)) bad(index, `${what}: already a member`);
      if (working.size >= CHAIN_LIMITS.maxValidators) bad(index, `${what}: the set is full`);
      working.set(id, m);
      // A new membership starts with a clean window.
      if (current(livenessKey(id)) !== undefined) writes.set(livenessKey(id), null);
    };
    const checkRewardAddress = (index: number, what: string, rewardAddress: string) => {
      const check = checkAddress(genesis.network, rewardAddress);
      if (!check.ok) bad(index, `${what}: reward address ${rewardAddress}: ${check.why}`);
    };

    block.records.forEach((raw, index) => {
      if (raw.type === RecordType.Data) return;
      if (raw.type === RecordType.Evidence) {
        applyEvidence(index, raw, height, current, accounts, writes, working, totalPower, bad);
        return;
      }
      let record: MasternodeRecord;
      try {
        record = decodeRecord(raw);
      } catch (e) {
        if (e instanceof DecodeError) bad(index, `${recordTypeName(raw.type)}: ${e.message}`);
        throw e;
      }
      const id = toHex(record.nodeId);
      const what = `${recordTypeName(record.type)} of ${id.slice(0, 12)}`;
      if (height > record.expiresAt) bad(index, `${what} expired at height ${record.expiresAt}`);
      const expectedNonce = nonces.get(id) ?? recordNonceOf(view, record.nodeId);
      if (record.nonce !== expectedNonce) {
        bad(index, `${what} has nonce ${record.nonce}, expected ${expectedNonce}`);
      }
      if (!verifyRecordSignature(chainId, record)) bad(index, `${what} has a bad signature`);
      // Before any other reason a registration could be refused: for a slashed node this is
      // the one that never goes away (not, say, its collateral still unbonding).
      const joining = record.type === RecordType.Registration ||
        record.type === RecordType.CollateralRegistration;
      if (joining && isTombstoned(current, id)) {
        bad(index, `${what}: tombstoned for double signing`);
      }

      switch (record.type) {
        case RecordType.Registration:
          checkRewardAddress(index, what, record.rewardAddress);
          if (record.tier !== "free") {
            bad(index, `${what}: ${record.tier} tier needs a collateral registration (type 4)`);
          }
          join(index, what, id, {
            nodeId: record.nodeId,
            tier: record.tier,
            rewardAddress: record.rewardAddress,
            address: record.address,
            activeFrom: effectiveAt,
            owner: "",
            jailedUntil: 0,
          });
          break;
        case RecordType.CollateralRegistration: {
          checkRewardAddress(index, what, record.rewardAddress);
          const ownerCheck = checkAddress(genesis.network, record.owner);
          if (!ownerCheck.ok) bad(index, `${what}: owner ${record.owner}: ${ownerCheck.why}`);
          if (addressOf(genesis.network, record.ownerKey) !== record.owner) {
            bad(index, `${what}: owner key does not match owner address ${record.owner}`);
          }
          if (!verifyOwnerSignature(chainId, record)) bad(index, `${what}: bad owner signature`);
          const pending = unbondOf(current, id);
          if (pending) {
            bad(index, `${what}: its collateral is still unbonding until ${pending.releaseHeight}`);
          }
          // Bounds the entries of one account (see MAX_UNBONDING_ENTRIES).
          const entries = accounts.get(record.owner).unbonding.length;
          if (entries >= MAX_UNBONDING_ENTRIES / 2) {
            bad(index, `${what}: owner ${record.owner} has ${entries} unbonding entries`);
          }
          const collateral = stake.tierCollateral[record.tier];
          const member: Member = {
            nodeId: record.nodeId,
            tier: record.tier,
            rewardAddress: record.rewardAddress,
            address: record.address,
            activeFrom: effectiveAt,
            owner: record.owner,
            jailedUntil: 0,
          };
          join(index, what, id, member);
          if (!accounts.lock(record.owner, collateral)) {
            bad(
              index,
              `${what}: insufficient spendable balance: ${record.owner} has ${
                formatAmount(accounts.get(record.owner).balance)
              } TIME, ${record.tier} collateral is ${formatAmount(collateral)} TIME`,
            );
          }
          break;
        }
        case RecordType.Deregistration: {
          const leaving = working.get(id);
          if (!leaving) bad(index, `${what}: not a member`);
          if (totalPower() - powerOf(leaving!) === 0) {
            bad(index, `${what}: would leave the set without voting power`);
          }
          working.delete(id);
          if (current(livenessKey(id)) !== undefined) writes.set(livenessKey(id), null);
          if (leaving!.owner) {
            unbondMember(
              current,
              accounts,
              writes,
              id,
              leaving!.owner,
              collateralOf(leaving!),
              height,
            );
          }
          break;
        }
        case RecordType.Unjail: {
          const jailed = working.get(id);
          if (!jailed || jailed.jailedUntil === 0) bad(index, `${what}: not jailed`);
          if (height < jailed!.jailedUntil) {
            bad(index, `${what}: jailed until ${jailed!.jailedUntil}`);
          }
          working.set(id, { ...jailed!, jailedUntil: 0 });
          if (current(livenessKey(id)) !== undefined) writes.set(livenessKey(id), null);
          break;
        }
        default: {
          const unhandled: never = record;
          bad(index, `no rule for record ${(unhandled as MasternodeRecord).type}`);
        }
      }
      nonces.set(id, expectedNonce + 1);
    });

    for (const [id, nonce] of [...nonces].sort(([a], [b]) => (a < b ? -1 : 1))) {
      writes.set(KEY.nonce(id), encodeU64(nonce));
    }
    // Every record but data changes the working set or is refused; a nonce-only change cannot
    // happen, so "some signed record or evidence applied" is "the set changed".
    return block.records.some((r) => r.type !== RecordType.Data);
  };

  /** Double-sign evidence: slash, tombstone, remove (docs/state.md#double-signing). */
  const applyEvidence = (
    index: number,
    raw: { type: number; data: Uint8Array },
    height: number,
    current: StateRead,
    accounts: AccountWorkingSet,
    writes: StateWrites,
    working: Map<string, Member>,
    totalPower: () => number,
    bad: (index: number, why: string) => never,
  ): void => {
    let evidence: Evidence;
    try {
      evidence = decodeEvidence(raw);
    } catch (e) {
      if (e instanceof DecodeError) bad(index, `evidence: ${e.message}`);
      throw e;
    }
    const id = toHex(evidence.validator);
    const what = `evidence against ${id.slice(0, 12)} at height ${evidence.height}`;
    if (evidence.height > height) bad(index, `${what}: a future height`);
    if (height - evidence.height > stake.evidenceMaxAge) {
      bad(index, `${what}: too old (evidenceMaxAge ${stake.evidenceMaxAge})`);
    }
    if (snapshotAt({ get: current }, evidence.height).set.powerOf(id) === 0) {
      bad(index, `${what}: not a voting member of that height's set`);
    }
    if (isTombstoned(current, id)) bad(index, `${what}: duplicate, already tombstoned`);
    if (!verifyEvidenceSignatures(chainId, evidence)) bad(index, `${what}: bad signature`);

    const member = working.get(id);
    if (member && totalPower() - powerOf(member) === 0) {
      bad(index, `${what}: would leave the set without voting power`);
    }
    // Collateral of an earlier membership that is still unbonding is slashed too (the node may
    // have come back as free tier meanwhile). A paid member never has one: see registration.
    slashUnbonding(current, accounts, writes, id, stake.slashPercent);
    if (member) {
      working.delete(id);
      const collateral = collateralOf(member);
      if (collateral > 0n) {
        const slash = collateral * BigInt(stake.slashPercent) / 100n;
        accounts.burnLocked(member.owner, slash);
        unbondMember(current, accounts, writes, id, member.owner, collateral - slash, height);
      }
    }
    tombstone(writes, id, height);
    if (current(livenessKey(id)) !== undefined) writes.set(livenessKey(id), null);
  };

  /**
   * Block rewards to the members that signed height - 1 (its `lastCommit`), plus the voteless
   * unjailed ones, by reward weight; without a `lastCommit`, to the unjailed members of the
   * certifying set. Fees go to the proposer (docs/state.md#rewards).
   */
  const creditRewards = (
    view: StateView,
    accounts: AccountWorkingSet,
    certifying: Snapshot,
    block: Block,
    signers: Set<string> | null,
    fees: bigint,
  ): void => {
    const height = block.header.height;
    const earners: Earner[] = [];
    const from = signers ? snapshotAt(view, height - 1) : certifying;
    from.members.forEach((m, i) => {
      if (m.jailedUntil > 0) return;
      if (signers && powerOf(m) > 0 && !signers.has(from.ids[i])) return;
      earners.push({ rewardAddress: m.rewardAddress, weight: stake.tierRewardWeight[m.tier] });
    });
    // `apply` checked that the proposer has power in the certifying set.
    const proposer = certifying.set.get(toHex(block.header.proposer))!;
    for (const credit of splitBlockReward(earners, proposer.rewardAddress, genesis.rewards)) {
      accounts.credit(credit.rewardAddress, credit.amount);
    }
    // Fees go to the proposer, in the same step as its reward (docs/state.md#fees-and-block-space).
    if (fees > 0n) accounts.credit(proposer.rewardAddress, fees);
  };

  const masternodeList = (view: StateView, tipHeight: number): MasternodeInfo[] => {
    if (!isHeight(tipHeight)) throw new RangeError(`invalid tip height ${tipHeight}`);
    const next = snapshotAt(view, tipHeight + 1);
    const latest = snapshotAt(view, tipHeight + ACTIVATION_DELAY);
    const leaving = new Map<string, number>();
    // A member of the next set missing from a later one leaves at the first height without it.
    for (let h = tipHeight + 2; h <= tipHeight + ACTIVATION_DELAY; h++) {
      const set = snapshotAt(view, h).set;
      for (const m of next.members) {
        const id = toHex(m.nodeId);
        if (!leaving.has(id) && !set.get(id)) leaving.set(id, h);
      }
    }
    const byId = new Map<string, Member>();
    for (const m of [...next.members, ...latest.members]) {
      const id = toHex(m.nodeId);
      // The later membership wins: a member that left and rejoined shows its new activeFrom.
      if (!byId.has(id) || latest.set.get(id)) byId.set(id, m);
    }
    const nextById = new Map(next.members.map((m) => [toHex(m.nodeId), m]));
    return [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, m]) => {
      const jailedUntil = m.jailedUntil || nextById.get(id)?.jailedUntil || 0;
      const liveness = readOrCorrupt(
        view,
        livenessKey(id),
        (b) => decodeLiveness(b, stake.signedBlocksWindow),
      );
      const status: MasternodeStatus = isTombstoned((k) => view.get(k), id)
        ? "tombstoned"
        : leaving.has(id)
        ? "unbonding"
        : jailedUntil > 0
        ? "jailed"
        : m.activeFrom > tipHeight + 1
        ? "pending"
        : "active";
      const collateral = collateralOf(m);
      return {
        nodeId: id,
        tier: m.tier,
        // The power it certifies the next block with; a pending member's future power.
        power: powerOf(nextById.get(id) ?? m),
        rewardAddress: m.rewardAddress,
        address: m.address,
        activeFrom: m.activeFrom,
        leavingFrom: leaving.get(id) ?? null,
        owner: m.owner || null,
        collateral: formatAmount(collateral),
        collateralUnits: collateral.toString(),
        rewardWeight: stake.tierRewardWeight[m.tier],
        status,
        missedBlocks: liveness?.missed ?? 0,
        jailedUntil: jailedUntil > 0 ? jailedUntil : null,
      };
    });
  };

  return {
    genesis,
    genesisHash: chainId,
    validatorSetFor,
    apply,
    masternodeList,
    balanceOf,
    accountOf,
    recordNonceOf,
    ledger,
    stake,
    txRules,
  };
}

/**
 * Masternodes of the set that certifies the next block, plus registrations already on the chain
 * that take effect later. A standalone form of `MasternodeStateMachine.masternodeList`.
 */
export function masternodeList(
  view: StateView,
  tipHeight: number,
  genesis: Genesis,
): MasternodeInfo[] {
  return createStateMachine(genesis).masternodeList(view, tipHeight);
}
