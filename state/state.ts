/**
 * The deterministic chain state machine: the masternode set, record nonces and balances.
 *
 * Owns: the state key layout and value encodings, the validity rules of masternode records,
 * the validator set of every height (genesis set, then changes that take effect exactly
 * ACTIVATION_DELAY blocks after the block that carries them), the order of a block's effects
 * (records, genesis allocations at height 1, transfers, rewards and fees), and crediting
 * block rewards. Account values and the transfer rules are state/accounts.ts's.
 * Voting power is the tier's power; free-tier members (the only tier a record can register
 * until collateral exists) have power 0: listed, but never proposing, counting toward quorum,
 * signing or earning a reward. Only genesis members hold paid tiers.
 * The rules are written down in docs/state.md.
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
  type Tier,
  TIERS,
} from "../chain/genesis.ts";
import { type Account, accountOf, AccountWorkingSet, checkTransfer } from "./accounts.ts";
import { addressOf, checkAddress, encodeAddress } from "./address.ts";
import {
  checkTxFormat,
  type Transaction,
  transactionIdHex,
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
  verifyRecordSignature,
} from "./records.ts";
import { splitBlockReward } from "./rewards.ts";

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
  // "acct/<address>": an account (balance u128, nonce u64), owned by state/accounts.ts.
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
}

interface Snapshot {
  members: readonly Member[];
  set: ValidatorSet;
  contentHash: Uint8Array;
}

/** One masternode as RPC shows it (`masternodelist`). */
export interface MasternodeInfo {
  /** Hex node id. */
  nodeId: string;
  tier: Tier;
  power: number;
  rewardAddress: string;
  address: string;
  /** First height this member certifies; above the tip while the registration is pending. */
  activeFrom: number;
  /** First height it no longer certifies, when its deregistration is already on the chain. */
  leavingFrom: number | null;
}

/** The chain's state machine plus the read-only queries RPC and record signers need. */
export interface MasternodeStateMachine extends StateMachine {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  masternodeList(view: StateView, tipHeight: number): MasternodeInfo[];
  balanceOf(view: StateView, address: string): bigint;
  accountOf(view: StateView, address: string): Account;
  recordNonceOf(view: StateView, nodeId: Uint8Array): number;
  /** The ledger parameters of the genesis (fees, block size, allocations). */
  readonly ledger: LedgerParams;
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
      .string(m.address).u64(m.activeFrom);
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

function encodeU64(v: number): Uint8Array {
  return new ByteWriter(8).u64(v).finish();
}

function decodeU64(bytes: Uint8Array): number {
  const r = new ByteReader(bytes);
  const v = r.u64();
  r.end();
  return v;
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

function corrupt(what: string, cause: unknown): never {
  throw new Error(`consensus state is corrupt (${what}): ${(cause as Error).message}`);
}

function readOrCorrupt<T>(
  view: StateView,
  key: string,
  decode: (b: Uint8Array) => T,
): T | undefined {
  const bytes = view.get(key);
  if (bytes === undefined) return undefined;
  try {
    return decode(bytes);
  } catch (e) {
    return corrupt(key, e);
  }
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
  // parseGenesis holds tierPower.free at 0: a free member is listed but has no voting power.
  const powerOf = (m: { tier: Tier }): number => genesis.tierPower[m.tier];
  const toValidator = (m: Member): Validator => ({
    nodeId: m.nodeId,
    tier: m.tier,
    power: powerOf(m),
    rewardAddress: m.rewardAddress,
    address: m.address,
  });
  const buildSnapshot = (members: readonly Member[], contentHash: Uint8Array): Snapshot => ({
    members,
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
    const certifying = snapshotAt(view, height).set;
    // A member without voting power (free tier) never proposes: it is listed, nothing more.
    if (certifying.powerOf(toHex(block.header.proposer)) === 0) {
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
    applyRecords(view, block, writes);
    const accounts = new AccountWorkingSet(view);
    if (height === 1) { for (const a of ledger.alloc) accounts.credit(a.address, a.units); }
    const fees = applyTransactions(
      accounts,
      transactions,
      height,
      applyOpts?.signaturesVerified ?? false,
    );
    creditRewards(accounts, certifying, block, fees);
    accounts.flush(writes);
    return writes;
  };

  const applyTransactions = (
    accounts: AccountWorkingSet,
    transactions: readonly Uint8Array[],
    height: number,
    signaturesVerified: boolean,
  ): bigint => {
    let fees = 0n;
    transactions.forEach((bytes, index) => {
      const id = transactionIdHex(bytes);
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

  const applyRecords = (view: StateView, block: Block, writes: StateWrites): void => {
    const height = block.header.height;
    if (block.records.length === 0) return;
    const bad = (index: number, why: string): never => {
      throw new InvalidBlockError("bad-records", `record ${index}: ${why}`);
    };
    if (block.records.length > CHAIN_LIMITS.maxRecords) {
      throw new InvalidBlockError("bad-records", `${block.records.length} records exceed bound`);
    }
    // Data records change no consensus state: a block of only those skips the member-set work.
    if (block.records.every((r) => r.type === RecordType.Data)) return;

    // Records are checked against the set as it will be at height + ACTIVATION_DELAY: the set
    // of height + ACTIVATION_DELAY - 1 (already fixed by earlier blocks) changed by the
    // records before this one in the same block.
    const effectiveAt = height + ACTIVATION_DELAY;
    const base = snapshotAt(view, effectiveAt - 1);
    const working = new Map(base.members.map((m) => [toHex(m.nodeId), m]));
    const nonces = new Map<string, number>();

    block.records.forEach((raw, index) => {
      if (raw.type === RecordType.Data) return;
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

      switch (record.type) {
        case RecordType.Registration:
          {
            const check = checkAddress(genesis.network, record.rewardAddress);
            if (!check.ok) {
              bad(index, `${what}: reward address ${record.rewardAddress}: ${check.why}`);
            }
          }
          if (record.tier !== "free") {
            bad(index, `${what}: ${record.tier} tier needs collateral; only genesis has it`);
          }
          if (working.has(id)) bad(index, `${what}: already a member`);
          if (working.size >= CHAIN_LIMITS.maxValidators) bad(index, `${what}: the set is full`);
          working.set(id, {
            nodeId: record.nodeId,
            tier: record.tier,
            rewardAddress: record.rewardAddress,
            address: record.address,
            activeFrom: effectiveAt,
          });
          break;
        case RecordType.Deregistration: {
          const leaving = working.get(id);
          if (!leaving) bad(index, `${what}: not a member`);
          const powerLeft = [...working.values()].reduce((sum, m) => sum + powerOf(m), 0) -
            powerOf(leaving!);
          if (powerLeft === 0) bad(index, `${what}: would leave the set without voting power`);
          working.delete(id);
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

  const creditRewards = (
    accounts: AccountWorkingSet,
    certifying: ValidatorSet,
    block: Block,
    fees: bigint,
  ): void => {
    for (const credit of splitBlockReward(certifying, block.header.proposer, genesis.rewards)) {
      accounts.credit(credit.rewardAddress, credit.amount);
    }
    // Fees go to the proposer, in the same step as its reward (docs/state.md#fees-and-block-space).
    const proposer = certifying.get(toHex(block.header.proposer));
    if (proposer && fees > 0n) accounts.credit(proposer.rewardAddress, fees);
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
    return [...byId.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, m]) => ({
      nodeId: id,
      tier: m.tier,
      power: powerOf(m),
      rewardAddress: m.rewardAddress,
      address: m.address,
      activeFrom: m.activeFrom,
      leavingFrom: leaving.get(id) ?? null,
    }));
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
