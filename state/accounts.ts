/**
 * Accounts and the transfer rule: balance and nonce per address, and what a transfer does to
 * them (docs/state.md#accounts, #transfer-transactions).
 *
 * Owns: the account key family (`acct/<address>`) and its value encoding, the stateful
 * validity rules of a transfer (expiry, nonce, overflow, balance) and their order, and the
 * per-block working set that makes earlier transactions of a block count for later ones.
 * Must never: read anything but the `StateView`, let a balance leave [0, 2^128), or write
 * storage itself (state/state.ts returns the writes with the block's).
 */
import { ByteReader, ByteWriter } from "../encoding/binary.ts";
import type { StateView, StateWrites } from "../chain/api.ts";
import { MAX_AMOUNT } from "./amount.ts";
import { type Transaction, TxInvalidError } from "./transaction.ts";

export interface Account {
  balance: bigint;
  /** Transfers this address has sent: the nonce its next transfer must carry. */
  nonce: number;
}

const U64_MASK = (1n << 64n) - 1n;
const EMPTY: Account = Object.freeze({ balance: 0n, nonce: 0 });

/** The state key of an account. The "acct/" family is owned here; state/state.ts lists it. */
export function accountKey(address: string): string {
  return `acct/${address}`;
}

export function encodeAccount(a: Account): Uint8Array {
  if (a.balance < 0n || a.balance > MAX_AMOUNT) throw new RangeError(`balance out of range`);
  return new ByteWriter(24).u64big(a.balance & U64_MASK).u64big(a.balance >> 64n).u64(a.nonce)
    .finish();
}

export function decodeAccount(bytes: Uint8Array): Account {
  const r = new ByteReader(bytes);
  const lo = r.u64big();
  const hi = r.u64big();
  const nonce = r.u64();
  r.end();
  return { balance: (hi << 64n) | lo, nonce };
}

/** The account of `address` at the tip; an address never seen has balance 0, nonce 0. */
export function accountOf(view: StateView, address: string): Account {
  const bytes = view.get(accountKey(address));
  if (bytes === undefined) return EMPTY;
  try {
    return decodeAccount(bytes);
  } catch (e) {
    throw new Error(`consensus state is corrupt (${accountKey(address)}): ${(e as Error).message}`);
  }
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
  readonly #changed = new Map<string, Account>();
  constructor(private readonly view: StateView) {}

  get(address: string): Account {
    return this.#changed.get(address) ?? accountOf(this.view, address);
  }

  credit(address: string, units: bigint): void {
    if (units === 0n) return;
    const a = this.get(address);
    const balance = a.balance + units;
    // Unreachable within the supply (rewards ≤ 10^15 per block) but never stored wrapped.
    if (balance > MAX_AMOUNT) throw new Error(`balance of ${address} would exceed u128`);
    this.#changed.set(address, { balance, nonce: a.nonce });
  }

  /** Applies a transfer that passed `checkTransfer`. */
  transfer(tx: Transaction, from: string, to: string): void {
    const s = this.get(from);
    this.#changed.set(from, { balance: s.balance - tx.amount - tx.fee, nonce: s.nonce + 1 });
    const r = this.get(to);
    this.#changed.set(to, { balance: r.balance + tx.amount, nonce: r.nonce });
  }

  /** Adds the changed accounts to `writes`, in address order (deterministic). */
  flush(writes: StateWrites): void {
    for (const address of [...this.#changed.keys()].sort()) {
      writes.set(accountKey(address), encodeAccount(this.#changed.get(address)!));
    }
  }
}
