/**
 * The account rules at their exact edges (state/accounts.ts): the stored value's layout and
 * bounds, a missing or corrupt account, each stateful transfer rule at its boundary (and one
 * past it) with its reason and detail, the order of the rules, and what the per-block working
 * set writes. Pure: a Map stands in for the chain's state view. Written because mutation
 * testing found these unpinned (docs/testing.md).
 */
import assert from "node:assert/strict";
import type { StateView, StateWrites } from "../../../chain/api.ts";
import {
  type Account,
  accountKey,
  accountOf,
  AccountWorkingSet,
  checkTransfer,
  decodeAccount,
  encodeAccount,
  type StakeAccount,
} from "../../../state/accounts.ts";
import { decodeTransaction, type Transaction, TxInvalidError } from "../../../state/transaction.ts";
import { transfer } from "./ledger_support.ts";

const U128_MAX = 340_282_366_920_938_463_463_374_607_431_768_211_455n;

/** An account as the rules read it back: one that never bonded has nothing locked or unbonding. */
function acct(balance: bigint, nonce: number): StakeAccount {
  return { balance, nonce, locked: 0n, unbonding: [] };
}

function viewOf(accounts: Record<string, Account | StakeAccount>): StateView {
  const entries = new Map<string, Uint8Array>();
  for (const [address, a] of Object.entries(accounts)) {
    entries.set(accountKey(address), encodeAccount(a));
  }
  return { get: (k) => entries.get(k) };
}

function tx(change: Partial<Transaction> = {}): Transaction {
  return { ...decodeTransaction(transfer("alice", "bob")), ...change };
}

/** The refusal of `checkTransfer` as "reason: detail", or "ok". */
function check(
  t: Transaction,
  height: number,
  sender: Account,
  recipientBalance = 0n,
  selfTransfer = false,
): string {
  try {
    checkTransfer(t, height, sender, recipientBalance, selfTransfer);
    return "ok";
  } catch (e) {
    if (e instanceof TxInvalidError) return e.message;
    throw e;
  }
}

Deno.test("accounts rules: the key and the 24-byte value layout", () => {
  assert.equal(accountKey("time1abc"), "acct/time1abc");
  const a = { balance: (7n << 64n) | 0x0102n, nonce: 0x0304 };
  const bytes = encodeAccount(a);
  assert.deepEqual(
    bytes,
    new Uint8Array([2, 1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0]),
  );
  assert.deepEqual(decodeAccount(bytes), acct(a.balance, a.nonce));
  assert.deepEqual(
    decodeAccount(encodeAccount({ balance: U128_MAX, nonce: 0 })),
    acct(U128_MAX, 0),
  );
  assert.deepEqual(decodeAccount(encodeAccount({ balance: 0n, nonce: 9 })), acct(0n, 9));
});

Deno.test("accounts rules: a balance outside [0, 2^128) is never encoded", () => {
  assert.throws(() => encodeAccount({ balance: U128_MAX + 1n, nonce: 0 }), /balance out of range/);
  assert.throws(() => encodeAccount({ balance: -1n, nonce: 0 }), /balance out of range/);
  assert.doesNotThrow(() => encodeAccount({ balance: 0n, nonce: 0 }));
});

Deno.test("accounts rules: a stored value of another length is refused", () => {
  const good = encodeAccount({ balance: 1n, nonce: 1 });
  assert.throws(() => decodeAccount(good.subarray(0, 23)));
  // A longer value is a stake account (24 bytes, then locked and the unbonding list): one extra
  // byte is a truncated stake tail.
  assert.throws(() => decodeAccount(new Uint8Array([...good, 0])), /truncated/);
});

Deno.test("accounts rules: an unknown address has balance 0 and nonce 0, shared read-only", () => {
  const view = viewOf({});
  const a = accountOf(view, "nobody");
  assert.deepEqual(a, acct(0n, 0));
  assert.throws(() => {
    (a as { balance: bigint }).balance = 5n;
  }, TypeError);
  assert.deepEqual(accountOf(view, "somebody else"), acct(0n, 0));
});

Deno.test("accounts rules: a corrupt stored account stops with the key in the message", () => {
  const view: StateView = { get: (k) => (k === "acct/x" ? new Uint8Array(5) : undefined) };
  assert.throws(() => accountOf(view, "x"), /^Error: consensus state is corrupt \(acct\/x\): /);
  assert.deepEqual(accountOf(viewOf({ y: { balance: 3n, nonce: 2 } }), "y"), acct(3n, 2));
});

Deno.test("accounts rules: expiry: valid at its expiry height, expired one after", () => {
  const t = tx({ expiresAt: 10, amount: 1n, fee: 1n });
  const sender = { balance: 10n, nonce: 0 };
  assert.equal(check(t, 10, sender), "ok");
  assert.equal(check(t, 11, sender), "expired: expired at height 10, now 11");
});

Deno.test("accounts rules: the nonce must equal the account's, below is used, above a gap", () => {
  const t = tx({ nonce: 5, amount: 1n, fee: 1n });
  assert.equal(check(t, 1, { balance: 10n, nonce: 5 }), "ok");
  assert.equal(
    check(t, 1, { balance: 10n, nonce: 6 }),
    "nonce-used: nonce 5 already used (next 6)",
  );
  assert.equal(check(t, 1, { balance: 10n, nonce: 4 }), "nonce-gap: nonce 5, expected 4");
});

Deno.test("accounts rules: amount plus fee, and the recipient's balance, stay within u128", () => {
  const rich = { balance: U128_MAX, nonce: 0 };
  assert.equal(check(tx({ amount: U128_MAX - 7n, fee: 7n }), 1, rich), "ok");
  assert.match(check(tx({ amount: U128_MAX - 7n, fee: 8n }), 1, rich), /^amount-overflow: /);
  assert.equal(
    check(tx({ amount: U128_MAX - 7n, fee: 8n }), 1, rich),
    `amount-overflow: amount ${U128_MAX - 7n} + fee overflows u128`,
  );
  const sender = { balance: 100n, nonce: 0 };
  const amount = tx({ amount: 10n, fee: 1n });
  assert.equal(check(amount, 1, sender, U128_MAX - 10n), "ok");
  assert.match(check(amount, 1, sender, U128_MAX - 9n), /^amount-overflow: /);
  // To oneself the balance only loses the fee: the recipient bound does not apply.
  assert.equal(check(amount, 1, sender, U128_MAX - 9n, true), "ok");
  assert.match(check(tx({ amount: U128_MAX, fee: 1n }), 1, rich, 0n, true), /^amount-overflow/);
});

Deno.test("accounts rules: the balance must cover amount plus fee exactly", () => {
  const t = tx({ amount: 60n, fee: 40n });
  assert.equal(check(t, 1, { balance: 100n, nonce: 0 }), "ok");
  assert.equal(
    check(t, 1, { balance: 99n, nonce: 0 }),
    "insufficient-balance: balance 99 < amount 60 + fee 40",
  );
});

Deno.test("accounts rules: the rules apply in order: expiry, nonce, overflow, balance", () => {
  const broke = { balance: 0n, nonce: 3 };
  const all = tx({ expiresAt: 1, nonce: 1, amount: U128_MAX, fee: 1n });
  assert.match(check(all, 2, broke), /^expired/);
  assert.match(check(all, 1, broke), /^nonce-used/);
  assert.match(check({ ...all, nonce: 4 }, 1, broke), /^nonce-gap/);
  assert.match(check({ ...all, nonce: 3 }, 1, broke), /^amount-overflow/);
  assert.match(check({ ...all, nonce: 3, amount: 5n }, 1, broke), /^insufficient-balance/);
});

function written(set: AccountWorkingSet): [string, Account | null][] {
  const writes: StateWrites = new Map();
  set.flush(writes);
  return [...writes].map(([k, v]) => [k, v === null ? null : decodeAccount(v)]);
}

Deno.test("accounts rules: a transfer moves amount and fee, bumps the sender's nonce only", () => {
  const set = new AccountWorkingSet(
    viewOf({ alice: { balance: 100n, nonce: 3 }, bob: { balance: 5n, nonce: 8 } }),
  );
  set.transfer(tx({ amount: 60n, fee: 7n }), "alice", "bob");
  assert.deepEqual(set.get("alice"), acct(33n, 4));
  assert.deepEqual(set.get("bob"), acct(65n, 8));
  // Earlier transfers of the block count for later ones.
  set.transfer(tx({ amount: 3n, fee: 0n }), "bob", "carol");
  assert.deepEqual(set.get("bob"), acct(62n, 9));
  assert.deepEqual(written(set), [
    ["acct/alice", acct(33n, 4)],
    ["acct/bob", acct(62n, 9)],
    ["acct/carol", acct(3n, 0)],
  ]);
});

Deno.test("accounts rules: a transfer to oneself costs only the fee", () => {
  const set = new AccountWorkingSet(viewOf({ alice: { balance: 100n, nonce: 0 } }));
  set.transfer(tx({ amount: 60n, fee: 7n }), "alice", "alice");
  assert.deepEqual(set.get("alice"), acct(93n, 1));
});

Deno.test("accounts rules: credits add up, a zero credit writes nothing, u128 is never passed", () => {
  const set = new AccountWorkingSet(viewOf({ mn: { balance: 10n, nonce: 2 } }));
  set.credit("idle", 0n);
  assert.deepEqual(written(set), [], "a zero credit touches no account");
  set.credit("mn", 5n);
  set.credit("mn", 6n);
  assert.deepEqual(set.get("mn"), acct(21n, 2));
  set.credit("top", U128_MAX);
  assert.equal(set.get("top").balance, U128_MAX);
  assert.throws(() => set.credit("top", 1n), /^Error: balance of top would exceed u128$/);
  assert.equal(set.get("top").balance, U128_MAX, "the refused credit changed nothing");
});

Deno.test("accounts rules: flush writes in address order whatever the order of changes", () => {
  const set = new AccountWorkingSet(viewOf({}));
  for (const a of ["zed", "amy", "max"]) set.credit(a, 1n);
  assert.deepEqual(written(set).map(([k]) => k), ["acct/amy", "acct/max", "acct/zed"]);
  // Unchanged accounts of the view are not written.
  const untouched = new AccountWorkingSet(viewOf({ amy: { balance: 1n, nonce: 0 } }));
  assert.deepEqual(untouched.get("amy"), acct(1n, 0));
  assert.deepEqual(written(untouched), []);
});

// ---- the stake half: locked collateral and unbonding entries ------------------------------------

const NODE_A = "aa".repeat(32);
const NODE_B = "bb".repeat(32);
/** Two members' collateral unbonding, released at heights 50 and 51. */
const TWO_ENTRIES = [
  { nodeId: NODE_A, amount: 4n, releaseHeight: 50 },
  { nodeId: NODE_B, amount: 6n, releaseHeight: 51 },
];

Deno.test("accounts rules: a stake account's tail is locked, then its unbonding entries", () => {
  const a: StakeAccount = {
    balance: 5n,
    nonce: 2,
    locked: 10n,
    unbonding: [{ nodeId: NODE_A, amount: 3n, releaseHeight: 9 }],
  };
  const bytes = encodeAccount(a);
  // 24 bytes of balance and nonce, 16 of locked, a u32 count, then 32 + 16 + 8 per entry.
  assert.equal(bytes.length, 24 + 16 + 4 + 56);
  assert.deepEqual(bytes.subarray(24, 28), new Uint8Array([10, 0, 0, 0]));
  assert.deepEqual(bytes.subarray(40, 44), new Uint8Array([1, 0, 0, 0]));
  assert.deepEqual(decodeAccount(bytes), a);
  // Either part alone writes the tail; neither keeps the 24-byte form.
  const onlyUnbonding = { ...a, locked: 0n };
  assert.deepEqual(decodeAccount(encodeAccount(onlyUnbonding)), onlyUnbonding);
  const onlyLocked = { ...a, unbonding: [] };
  assert.equal(encodeAccount(onlyLocked).length, 24 + 16 + 4);
  assert.deepEqual(decodeAccount(encodeAccount(onlyLocked)), onlyLocked);
  assert.equal(encodeAccount({ ...a, locked: 0n, unbonding: [] }).length, 24);
});

Deno.test("accounts rules: locked and unbonding amounts outside [0, 2^128) are never encoded", () => {
  const base: StakeAccount = { balance: 1n, nonce: 0, locked: 1n, unbonding: [] };
  assert.throws(
    () => encodeAccount({ ...base, locked: U128_MAX + 1n }),
    /^RangeError: locked out of range$/,
  );
  assert.throws(
    () =>
      encodeAccount({
        ...base,
        unbonding: [{ nodeId: NODE_A, amount: U128_MAX + 1n, releaseHeight: 1 }],
      }),
    /^RangeError: unbonding amount out of range$/,
  );
});

Deno.test("accounts rules: lock moves spendable to locked, exactly the balance at most", () => {
  const set = new AccountWorkingSet(
    viewOf({ owner: { balance: 10n, nonce: 1, locked: 0n, unbonding: [] } }),
  );
  assert.equal(set.lock("owner", 11n), false);
  assert.deepEqual(written(set), [], "a refused lock changes nothing");
  assert.equal(set.lock("owner", 10n), true);
  assert.deepEqual(set.get("owner"), { balance: 0n, nonce: 1, locked: 10n, unbonding: [] });
  // Locked past u128 is refused like a balance past it.
  const full = new AccountWorkingSet(
    viewOf({ whale: { balance: 1n, nonce: 0, locked: U128_MAX, unbonding: [] } }),
  );
  assert.throws(() => full.lock("whale", 1n), /^Error: account whale would exceed u128$/);
  const nearlyFull = new AccountWorkingSet(
    viewOf({ whale: { balance: 1n, nonce: 0, locked: U128_MAX - 1n, unbonding: [] } }),
  );
  assert.equal(nearlyFull.lock("whale", 1n), true, "exactly 2^128 − 1 locked is allowed");
  assert.equal(nearlyFull.get("whale").locked, U128_MAX);
});

Deno.test("accounts rules: unbond turns locked into an entry; more than is locked is a bug", () => {
  const set = new AccountWorkingSet(
    viewOf({ owner: { balance: 0n, nonce: 0, locked: 10n, unbonding: [] } }),
  );
  assert.throws(
    () => set.unbond("owner", NODE_A, 11n, 50),
    /^Error: account owner has less locked than 11$/,
  );
  set.unbond("owner", NODE_A, 4n, 50);
  set.unbond("owner", NODE_B, 6n, 51);
  assert.deepEqual(set.get("owner"), {
    balance: 0n,
    nonce: 0,
    locked: 0n,
    unbonding: [
      { nodeId: NODE_A, amount: 4n, releaseHeight: 50 },
      { nodeId: NODE_B, amount: 6n, releaseHeight: 51 },
    ],
  });
});

Deno.test("accounts rules: release moves only the entries due at that height to the balance", () => {
  const owner: StakeAccount = { balance: 1n, nonce: 0, locked: 0n, unbonding: TWO_ENTRIES };
  const set = new AccountWorkingSet(viewOf({ owner }));
  assert.deepEqual(set.release("owner", 49), []);
  assert.deepEqual(written(set), [], "nothing due, nothing written");
  assert.deepEqual(set.release("owner", 50), [NODE_A]);
  // A release that would carry the balance past u128 is refused, never stored wrapped.
  const rich = new AccountWorkingSet(
    viewOf({ rich: { ...owner, balance: U128_MAX - 3n } }),
  );
  assert.throws(() => rich.release("rich", 50), /^Error: account rich would exceed u128$/);
  assert.deepEqual(set.get("owner"), {
    ...owner,
    balance: 5n,
    unbonding: [{ nodeId: NODE_B, amount: 6n, releaseHeight: 51 }],
  });
});

Deno.test("accounts rules: burns destroy locked or one node's unbonding, never below zero", () => {
  const owner: StakeAccount = { balance: 7n, nonce: 0, locked: 10n, unbonding: TWO_ENTRIES };
  const set = new AccountWorkingSet(viewOf({ owner }));
  set.burnLocked("owner", 3n);
  assert.deepEqual(set.get("owner"), { ...owner, locked: 7n }, "the balance is untouched");
  assert.throws(() => set.burnLocked("owner", 8n), /^Error: account owner would go negative$/);
  set.burnUnbonding("owner", NODE_B, 6n);
  assert.deepEqual(set.get("owner").unbonding, [
    { nodeId: NODE_A, amount: 4n, releaseHeight: 50 },
    { nodeId: NODE_B, amount: 0n, releaseHeight: 51 },
  ]);
  assert.throws(
    () => set.burnUnbonding("owner", NODE_A, 5n),
    new RegExp(`^Error: unbonding of ${NODE_A} is below 5$`),
  );
  // A balance below zero is refused the same way (a transfer that skipped its check).
  const broke = new AccountWorkingSet(
    viewOf({ x: { balance: 1n, nonce: 0, locked: 0n, unbonding: [] } }),
  );
  assert.throws(
    () => broke.transfer(tx({ amount: 1n, fee: 1n }), "x", "y"),
    /^Error: account x would go negative$/,
  );
});
