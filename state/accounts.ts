/**
 * Accounts and the transfer rule: spendable balance, nonce, locked collateral and unbonding
 * entries per address, and what a transfer does to them (docs/state.md#accounts,
 * #transfer-transactions, #collateral).
 *
 * Owns: the account key family (`acct/<address>`) and its value encoding, the stateful
 * validity rules of a transfer (expiry, nonce, overflow, balance) and their order, the moves
 * between spendable, locked and unbonding, and the per-block working set that makes earlier
 * transactions and records of a block count for later ones.
 * Must never: read anything but the `StateView`, let any part of an account leave [0, 2^128),
 * let a transfer spend locked or unbonding coins, or write storage itself (state/state.ts
 * returns the writes with the block's).
 */
import { ByteReader, ByteWriter, fromHex, toHex } from "../encoding/binary.ts";
import { PUBLIC_KEY_LENGTH } from "../crypto/ed25519.ts";
import type { StateView, StateWrites } from "../chain/api.ts";
import { MAX_AMOUNT } from "./amount.ts";
import { type Transaction, TxInvalidError } from "./transaction.ts";
import { readOrCorrupt, readU128, writeU128 } from "./stored.ts";

/** What a transfer reads: the spendable balance and the nonce. */
export interface Account {
  /** Spendable balance: what transfers may move. */
  balance: bigint;
  /** Transfers this address has sent: the nonce its next transfer must carry. */
  nonce: number;
}

/** Collateral that left `locked` and becomes spendable when `releaseHeight` is applied. */
export interface UnbondingEntry {
  /** Hex node id of the member whose collateral this was. */
  nodeId: string;
  amount: bigint;
  releaseHeight: number;
}

/** A whole account: what a transfer reads plus the stake parts. */
export interface StakeAccount extends Account {
  /** Collateral of the members this address backs. */
  locked: bigint;
  /** In the order they were made. */
  unbonding: readonly UnbondingEntry[];
}

/**
 * Unbonding entries one account may hold. A collateral registration is refused while its owner
 * holds `MAX_UNBONDING_ENTRIES / 2` or more (state/state.ts), and an owner backs at most
 * `CHAIN_LIMITS.maxValidators` (1,000) members that could all leave, so the count stays below
 * this bound and a stored account always decodes.
 */
export const MAX_UNBONDING_ENTRIES = 2_000;
const EMPTY: StakeAccount = Object.freeze({
  balance: 0n,
  nonce: 0,
  locked: 0n,
  unbonding: Object.freeze([]),
});

/** The state key of an account. The "acct/" family is owned here; state/state.ts lists it. */
export function accountKey(address: string): string {
  return `acct/${address}`;
}

function writeAmount(w: ByteWriter, v: bigint, what: string): void {
  if (v < 0n || v > MAX_AMOUNT) throw new RangeError(`${what} out of range`);
  writeU128(w, v);
}

/**
 * Balance and nonce; the stake tail (locked, unbonding) only when the account has stake, so an
 * account that never bonded keeps the 24-byte encoding it had before the stake rules.
 */
export function encodeAccount(a: Account | StakeAccount): Uint8Array {
  const w = new ByteWriter(24);
  writeAmount(w, a.balance, "balance");
  w.u64(a.nonce);
  const locked = "locked" in a ? a.locked : 0n;
  const unbonding = "unbonding" in a ? a.unbonding : [];
  if (locked > 0n || unbonding.length > 0) {
    writeAmount(w, locked, "locked");
    w.u32(unbonding.length);
    for (const e of unbonding) {
      w.fixed(fromHex(e.nodeId), PUBLIC_KEY_LENGTH);
      writeAmount(w, e.amount, "unbonding amount");
      w.u64(e.releaseHeight);
    }
  }
  return w.finish();
}

export function decodeAccount(bytes: Uint8Array): StakeAccount {
  const r = new ByteReader(bytes);
  const balance = readU128(r);
  const nonce = r.u64();
  if (r.remaining === 0) return { balance, nonce, locked: 0n, unbonding: [] };
  const locked = readU128(r);
  const unbonding = r.list(MAX_UNBONDING_ENTRIES, (r): UnbondingEntry => ({
    nodeId: toHex(r.fixed(PUBLIC_KEY_LENGTH)),
    amount: readU128(r),
    releaseHeight: r.u64(),
  }));
  r.end();
  return { balance, nonce, locked, unbonding };
}

/** The account of `address` at the tip; an address never seen has everything 0 and empty. */
export function accountOf(view: StateView, address: string): StakeAccount {
  return readOrCorrupt(view, accountKey(address), decodeAccount) ?? EMPTY;
}

/**
 * The stateful rules, in order: expiry, nonce, overflow, balance. `sender` is the sender's
 * account as the block's earlier transactions left it; `recipientBalance` the recipient's.
 * Throws `TxInvalidError` with the rule's reason.
 */
export function checkTransfer(
  tx: Transaction,
  height: number,
  sender: Account,
  recipientBalance: bigint,
  selfTransfer: boolean,
): void {
  if (height > tx.expiresAt) {
    throw new TxInvalidError("expired", `expired at height ${tx.expiresAt}, now ${height}`);
  }
  if (tx.nonce < sender.nonce) {
    throw new TxInvalidError("nonce-used", `nonce ${tx.nonce} already used (next ${sender.nonce})`);
  }
  if (tx.nonce > sender.nonce) {
    throw new TxInvalidError("nonce-gap", `nonce ${tx.nonce}, expected ${sender.nonce}`);
  }
  const cost = tx.amount + tx.fee;
  if (cost > MAX_AMOUNT || (!selfTransfer && recipientBalance + tx.amount > MAX_AMOUNT)) {
    throw new TxInvalidError("amount-overflow", `amount ${tx.amount} + fee overflows u128`);
  }
  if (sender.balance < cost) {
    throw new TxInvalidError(
      "insufficient-balance",
      `balance ${sender.balance} < amount ${tx.amount} + fee ${tx.fee}`,
    );
  }
}

/** Accounts touched by one block, on top of the view; `flush` turns them into writes. */
export class AccountWorkingSet {
  readonly #changed = new Map<string, StakeAccount>();
  constructor(private readonly view: StateView) {}

  get(address: string): StakeAccount {
    return this.#changed.get(address) ?? accountOf(this.view, address);
  }

  #set(address: string, a: StakeAccount): void {
    if (a.balance < 0n || a.locked < 0n) throw new Error(`account ${address} would go negative`);
    // Unreachable within the supply (rewards ≤ 10^15 per block) but never stored wrapped.
    if (a.balance > MAX_AMOUNT || a.locked > MAX_AMOUNT) {
      throw new Error(`account ${address} would exceed u128`);
    }
    this.#changed.set(address, a);
  }

  credit(address: string, units: bigint): void {
    if (units === 0n) return;
    const a = this.get(address);
    const balance = a.balance + units;
    // Unreachable within the supply (rewards ≤ 10^15 per block) but never stored wrapped.
    if (balance > MAX_AMOUNT) throw new Error(`balance of ${address} would exceed u128`);
    this.#set(address, { ...a, balance });
  }

  /** Applies a transfer that passed `checkTransfer`. */
  transfer(tx: Transaction, from: string, to: string): void {
    const s = this.get(from);
    this.#set(from, { ...s, balance: s.balance - tx.amount - tx.fee, nonce: s.nonce + 1 });
    const r = this.get(to);
    this.#set(to, { ...r, balance: r.balance + tx.amount });
  }

  /** Spendable → locked. False (nothing changed) when the spendable balance is short. */
  lock(address: string, units: bigint): boolean {
    const a = this.get(address);
    if (a.balance < units) return false;
    this.#set(address, { ...a, balance: a.balance - units, locked: a.locked + units });
    return true;
  }

  /**
   * Locked → an unbonding entry released by block `releaseHeight`. Throws when less is locked:
   * the caller only unbonds collateral it locked, so that would be a bug or corrupt state.
   */
  unbond(address: string, nodeId: string, units: bigint, releaseHeight: number): void {
    const a = this.get(address);
    if (a.locked < units) throw new Error(`account ${address} has less locked than ${units}`);
    this.#set(address, {
      ...a,
      locked: a.locked - units,
      unbonding: [...a.unbonding, { nodeId, amount: units, releaseHeight }],
    });
  }

  /** Moves the entries released at `height` to the spendable balance; returns their node ids. */
  release(address: string, height: number): string[] {
    const a = this.get(address);
    const due = a.unbonding.filter((e) => e.releaseHeight === height);
    if (due.length === 0) return [];
    const units = due.reduce((sum, e) => sum + e.amount, 0n);
    this.#set(address, {
      ...a,
      balance: a.balance + units,
      unbonding: a.unbonding.filter((e) => e.releaseHeight !== height),
    });
    return due.map((e) => e.nodeId);
  }

  /** Destroys `units` of locked collateral (a slash): credited to nobody. */
  burnLocked(address: string, units: bigint): void {
    const a = this.get(address);
    this.#set(address, { ...a, locked: a.locked - units });
  }

  /** Destroys `units` of the unbonding entry of `nodeId` (a slash after the node left). */
  burnUnbonding(address: string, nodeId: string, units: bigint): void {
    const a = this.get(address);
    this.#set(address, {
      ...a,
      unbonding: a.unbonding.map((e) => {
        if (e.nodeId !== nodeId) return e;
        if (e.amount < units) throw new Error(`unbonding of ${nodeId} is below ${units}`);
        return { ...e, amount: e.amount - units };
      }),
    });
  }

  /** Adds the changed accounts to `writes`, in address order (deterministic). */
  flush(writes: StateWrites): void {
    for (const address of [...this.#changed.keys()].sort()) {
      writes.set(accountKey(address), encodeAccount(this.#changed.get(address)!));
    }
  }
}
