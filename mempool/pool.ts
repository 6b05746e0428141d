/**
 * The mempool: valid transfers waiting for a block (docs/state.md#the-mempool). Pure: the
 * caller passes the accounts at the tip and the next height; signatures are checked before
 * `add` (state/transaction.ts, in a verify worker).
 *
 * Owns: the byte and per-sender bounds, admission against the tip (expiry, nonce window,
 * balance covering the sender's pending transfers), replace-by-fee, lowest-fee-rate eviction,
 * choosing a block's transactions (highest fee rate first, nonce order per sender) and
 * revalidation after each block.
 * Must never: grow past its bounds, hold two transactions of one (sender, nonce), or hand a
 * proposer a list that does not apply on the tip.
 */
import type { Account } from "../state/accounts.ts";
import { checkTransfer } from "../state/accounts.ts";
import { MAX_AMOUNT } from "../state/amount.ts";
import { type Transaction, TxInvalidError } from "../state/transaction.ts";

/** 32 MiB of encoded transactions: ~200,000 transfers, minutes of full blocks. */
export const DEFAULT_MAX_POOL_BYTES = 32 * 1024 * 1024;
/** Pending transfers per sender: a wallet's burst, not enough for one sender to crowd out others. */
export const DEFAULT_MAX_PER_SENDER = 64;
/** Replacement of the same (sender, nonce) must pay this much more fee, in percent. */
export const RBF_MIN_INCREASE_PERCENT = 10n;

export interface PoolEntry {
  id: string;
  bytes: Uint8Array;
  tx: Transaction;
  sender: string;
  recipient: string;
}

export type PoolRefusal =
  | "duplicate"
  | "expired"
  | "nonce-used"
  | "nonce-gap"
  | "insufficient-balance"
  | "amount-overflow"
  | "replacement-underpriced"
  | "sender-limit"
  | "mempool-full";

export type AddOutcome =
  | { added: true; replaced?: string; evicted: string[] }
  | { added: false; reason: PoolRefusal; detail: string };

export type AccountLookup = (address: string) => Account;

export interface MempoolOptions {
  maxBytes?: number;
  maxPerSender?: number;
}

/** Fee-rate order: a before b when a pays more per byte (exact, no floats). */
function higherRate(a: PoolEntry, b: PoolEntry): boolean {
  return a.tx.fee * BigInt(b.bytes.length) > b.tx.fee * BigInt(a.bytes.length);
}

export class Mempool {
  readonly maxBytes: number;
  readonly maxPerSender: number;
  readonly #byId = new Map<string, PoolEntry>();
  readonly #bySender = new Map<string, Map<number, PoolEntry>>();
  /** Pooled ids by expiry height: `revalidate` finds what expires without a full scan. */
  readonly #byExpiry = new Map<number, Set<string>>();
  /** Per sender: the amount + fee of all its pending transfers, and its highest pending nonce. */
  readonly #senderTotals = new Map<string, { cost: bigint; maxNonce: number }>();
  /** Senders whose pending transfers were added or replaced since the last `revalidate`. */
  readonly #dirty = new Set<string>();
  #bytes = 0;

  constructor(opts: MempoolOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_POOL_BYTES;
    this.maxPerSender = opts.maxPerSender ?? DEFAULT_MAX_PER_SENDER;
  }

  get size(): number {
    return this.#byId.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  get(id: string): PoolEntry | undefined {
    return this.#byId.get(id);
  }

  entries(): IterableIterator<PoolEntry> {
    return this.#byId.values();
  }

  /** Pending transfers of `sender`, in nonce order. */
  pendingOf(sender: string): PoolEntry[] {
    return [...(this.#bySender.get(sender)?.values() ?? [])].sort((a, b) =>
      a.tx.nonce - b.tx.nonce
    );
  }

  /**
   * The refusal `add` would give `e` against the tip now, short of a full pool (eviction is
   * decided in `add`); null when `add` would try it. Changes nothing: admission asks it before
   * spending a signature check on a transfer the pool would refuse anyway (a stale nonce, one
   * too far ahead, a sender at its limit).
   */
  precheck(
    e: PoolEntry,
    accountOf: AccountLookup,
    height: number,
  ): { reason: PoolRefusal; detail: string } | null {
    const refuse = (reason: PoolRefusal, detail: string) => ({ reason, detail });
    if (this.#byId.has(e.id)) return refuse("duplicate", "already pooled");
    const tx = e.tx;
    if (height > tx.expiresAt) return refuse("expired", `expired at height ${tx.expiresAt}`);
    const account = accountOf(e.sender);
    if (tx.nonce < account.nonce) {
      return refuse("nonce-used", `nonce ${tx.nonce} already used (next ${account.nonce})`);
    }
    if (tx.nonce >= account.nonce + this.maxPerSender) {
      return refuse("nonce-gap", `nonce ${tx.nonce} is too far ahead of ${account.nonce}`);
    }
    if (tx.amount + tx.fee > MAX_AMOUNT) return refuse("amount-overflow", "amount + fee > u128");
    const mine = this.#bySender.get(e.sender);
    const existing = mine?.get(tx.nonce);
    if (existing) {
      const needed = existing.tx.fee + existing.tx.fee * RBF_MIN_INCREASE_PERCENT / 100n;
      if (tx.fee < needed) {
        return refuse("replacement-underpriced", `replacing needs a fee of at least ${needed}`);
      }
    } else if ((mine?.size ?? 0) >= this.maxPerSender) {
      return refuse("sender-limit", `${this.maxPerSender} transfers of this sender are pending`);
    }
    // The balance must cover this transfer and the sender's pending ones of lower nonces: all
    // of them in the usual case of a next nonce (summed once per sender, not per admission).
    const totals = this.#senderTotals.get(e.sender);
    let committed = 0n;
    if (totals !== undefined && tx.nonce > totals.maxNonce) committed = totals.cost;
    else {
      for (const p of mine?.values() ?? []) {
        if (p.tx.nonce < tx.nonce) committed += p.tx.amount + p.tx.fee;
      }
    }
    if (account.balance < committed + tx.amount + tx.fee) {
      return refuse(
        "insufficient-balance",
        `balance ${account.balance} does not cover ${committed} pending + ${tx.amount + tx.fee}`,
      );
    }
    return null;
  }

  /**
   * Admits `e` (stateless checks, signature included, already passed) against the tip: the
   * account lookup gives tip state, `height` is the next block's height.
   */
  add(e: PoolEntry, accountOf: AccountLookup, height: number): AddOutcome {
    const refusal = this.precheck(e, accountOf, height);
    if (refusal) return { added: false, ...refusal };
    const existing = this.#bySender.get(e.sender)?.get(e.tx.nonce);
    const evicted: string[] = [];
    const freed = existing ? existing.bytes.length : 0;
    while (this.#bytes - freed + e.bytes.length > this.maxBytes) {
      const victim = this.#lowestRate(existing?.id);
      if (!victim || !higherRate(e, victim)) {
        return {
          added: false,
          reason: "mempool-full",
          detail: "the pool is full of transfers paying at least as much",
        };
      }
      evicted.push(...this.#removeFrom(victim));
    }
    if (existing) this.#remove(existing.id);
    this.#insert(e);
    return { added: true, replaced: existing?.id, evicted };
  }

  /**
   * Transfers for the next block: highest fee rate first among each sender's next nonce, in
   * nonce order per sender, within `maxBytes` (each encoded transaction costs `overhead` more).
   * Every chosen transfer applies on the tip after the ones before it.
   */
  select(
    accountOf: AccountLookup,
    height: number,
    maxBytes: number,
    maxCount = Infinity,
    overhead = 4,
  ): Uint8Array[] {
    const heads = new MaxHeap();
    const queues = new Map<string, PoolEntry[]>();
    const accounts = new Map<string, Account>();
    for (const sender of this.#bySender.keys()) {
      const account = accountOf(sender);
      const queue = this.pendingOf(sender).filter((p) => p.tx.nonce >= account.nonce);
      if (queue.length === 0 || queue[0].tx.nonce !== account.nonce) continue;
      accounts.set(sender, account);
      queues.set(sender, queue);
      heads.push(queue.shift()!);
    }
    const chosen: Uint8Array[] = [];
    const get = (address: string) => accounts.get(address) ?? accountOf(address);
    let bytes = 0;
    for (let e = heads.pop(); e && chosen.length < maxCount; e = heads.pop()) {
      if (bytes + e.bytes.length + overhead > maxBytes) continue; // this sender's rest waits
      const account = get(e.sender);
      try {
        checkTransfer(e.tx, height, account, get(e.recipient).balance, e.sender === e.recipient);
      } catch (err) {
        if (err instanceof TxInvalidError) continue; // revalidation drops it
        throw err;
      }
      accounts.set(e.sender, {
        balance: account.balance - e.tx.amount - e.tx.fee,
        nonce: account.nonce + 1,
      });
      const r = get(e.recipient);
      accounts.set(e.recipient, { balance: r.balance + e.tx.amount, nonce: r.nonce });
      chosen.push(e.bytes);
      bytes += e.bytes.length + overhead;
      const next = queues.get(e.sender)!.shift();
      if (next && next.tx.nonce === account.nonce + 1) heads.push(next);
    }
    return chosen;
  }

  /**
   * After a block: drops the included ids and every transfer that no longer fits the tip
   * (nonce used, expired for `nextHeight`, or no longer covered by the balance). Returns the
   * dropped ids that were not included.
   *
   * With `changed` (the addresses whose account the block may have lowered or whose nonce it
   * moved: the senders of its transfers), only those senders are checked, with the senders of
   * transfers that expire now and those whose pending transfers changed since the last call (an
   * earlier nonce that arrived later can leave a later one uncovered): every other sender's
   * transfers fit an account the block did not touch, exactly as after the last call. Without
   * it, every sender is checked (a block whose records lock balances, or a caller that cannot
   * tell).
   */
  revalidate(
    included: Iterable<string>,
    accountOf: AccountLookup,
    nextHeight: number,
    changed?: Iterable<string>,
  ): string[] {
    const check = new Set<string>(changed === undefined ? this.#bySender.keys() : changed);
    for (const id of included) {
      const e = this.#byId.get(id);
      if (e) {
        check.add(e.sender);
        this.#remove(id);
      }
    }
    if (changed !== undefined) {
      for (const sender of this.#dirty) check.add(sender);
      for (const [expiresAt, ids] of this.#byExpiry) {
        if (nextHeight <= expiresAt) continue;
        for (const id of ids) check.add(this.#byId.get(id)!.sender);
      }
    }
    this.#dirty.clear();
    const dropped: string[] = [];
    for (const sender of check) {
      const byNonce = this.#bySender.get(sender);
      if (byNonce === undefined) continue;
      const account = accountOf(sender);
      let committed = 0n;
      for (const e of [...byNonce.values()].sort((a, b) => a.tx.nonce - b.tx.nonce)) {
        const cost = e.tx.amount + e.tx.fee;
        if (
          e.tx.nonce < account.nonce || nextHeight > e.tx.expiresAt ||
          account.balance < committed + cost
        ) {
          this.#remove(e.id);
          dropped.push(e.id);
          continue;
        }
        committed += cost;
      }
    }
    return dropped;
  }

  remove(id: string): boolean {
    if (!this.#byId.has(id)) return false;
    this.#remove(id);
    return true;
  }

  #insert(e: PoolEntry): void {
    this.#byId.set(e.id, e);
    let m = this.#bySender.get(e.sender);
    if (!m) this.#bySender.set(e.sender, m = new Map());
    m.set(e.tx.nonce, e);
    this.#bytes += e.bytes.length;
    const totals = this.#senderTotals.get(e.sender);
    const cost = e.tx.amount + e.tx.fee;
    if (totals === undefined) this.#senderTotals.set(e.sender, { cost, maxNonce: e.tx.nonce });
    else {
      totals.cost += cost;
      if (e.tx.nonce > totals.maxNonce) totals.maxNonce = e.tx.nonce;
    }
    let expiring = this.#byExpiry.get(e.tx.expiresAt);
    if (!expiring) this.#byExpiry.set(e.tx.expiresAt, expiring = new Set());
    expiring.add(e.id);
    this.#dirty.add(e.sender);
  }

  #remove(id: string): void {
    const e = this.#byId.get(id);
    if (!e) return;
    this.#byId.delete(id);
    const m = this.#bySender.get(e.sender)!;
    m.delete(e.tx.nonce);
    if (m.size === 0) {
      this.#bySender.delete(e.sender);
      this.#dirty.delete(e.sender);
      this.#senderTotals.delete(e.sender);
    } else {
      const totals = this.#senderTotals.get(e.sender)!;
      totals.cost -= e.tx.amount + e.tx.fee;
      if (e.tx.nonce === totals.maxNonce) totals.maxNonce = Math.max(...m.keys());
    }
    this.#bytes -= e.bytes.length;
    const expiring = this.#byExpiry.get(e.tx.expiresAt)!;
    expiring.delete(e.id);
    if (expiring.size === 0) this.#byExpiry.delete(e.tx.expiresAt);
  }

  /** Removes `victim` and the sender's later nonces, which could no longer apply. */
  #removeFrom(victim: PoolEntry): string[] {
    const out: string[] = [];
    for (const e of this.pendingOf(victim.sender)) {
      if (e.tx.nonce >= victim.tx.nonce) {
        this.#remove(e.id);
        out.push(e.id);
      }
    }
    return out;
  }

  /** The entry paying the least per byte (skipping `except`); linear, only when full. */
  #lowestRate(except?: string): PoolEntry | undefined {
    let low: PoolEntry | undefined;
    for (const e of this.#byId.values()) {
      if (e.id === except) continue;
      if (!low || higherRate(low, e)) low = e;
    }
    return low;
  }
}

/** A binary max-heap of entries by fee rate (ties: arrival order is not tracked, id order). */
class MaxHeap {
  readonly #a: PoolEntry[] = [];
  push(e: PoolEntry): void {
    const a = this.#a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): PoolEntry | undefined {
    const a = this.#a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: PoolEntry, b: PoolEntry): boolean {
  if (higherRate(a, b)) return true;
  if (higherRate(b, a)) return false;
  return a.id < b.id;
}
