import assert from "node:assert/strict";
import { Mempool, type PoolEntry } from "../../../mempool/pool.ts";
import type { Account } from "../../../state/accounts.ts";
import { addressOf, encodeAddress } from "../../../state/address.ts";
import { decodeTransaction, transactionIdHex } from "../../../state/transaction.ts";
import { addr, NETWORK, transfer, type TransferOpts } from "../state/ledger_support.ts";
import { TestRandom } from "../../support/random.ts";

const TIME = 100_000_000n;

function entry(from: string, to: string, o: TransferOpts = {}): PoolEntry {
  const bytes = transfer(from, to, o);
  const tx = decodeTransaction(bytes);
  return {
    id: transactionIdHex(bytes),
    bytes,
    tx,
    sender: addressOf(NETWORK, tx.sender),
    recipient: encodeAddress(NETWORK, tx.recipient),
  };
}

class Accounts {
  readonly map = new Map<string, Account>();
  constructor(init: Record<string, bigint>) {
    for (const [name, balance] of Object.entries(init)) {
      this.map.set(addr(name), { balance, nonce: 0 });
    }
  }
  readonly get = (a: string): Account => this.map.get(a) ?? { balance: 0n, nonce: 0 };
  /** Applies chosen transfers as a block would. */
  apply(chosen: Uint8Array[]): string[] {
    for (const bytes of chosen) {
      const tx = decodeTransaction(bytes);
      const s = addressOf(NETWORK, tx.sender);
      const r = encodeAddress(NETWORK, tx.recipient);
      const sa = this.get(s);
      this.map.set(s, { balance: sa.balance - tx.amount - tx.fee, nonce: sa.nonce + 1 });
      const ra = this.get(r);
      this.map.set(r, { balance: ra.balance + tx.amount, nonce: ra.nonce });
    }
    return chosen.map(transactionIdHex);
  }
}

const added = (o: ReturnType<Mempool["add"]>) => {
  assert.ok(o.added, o.added ? "" : `${o.reason}: ${o.detail}`);
  return o;
};
const refused = (o: ReturnType<Mempool["add"]>) => (o.added ? "added" : o.reason);

Deno.test("mempool: blocks take the highest fee rate first, in nonce order per sender", () => {
  const pool = new Mempool();
  const acc = new Accounts({ alice: 100n * TIME, bob: 100n * TIME, carol: 100n * TIME });
  const a0 = entry("alice", "dave", { nonce: 0, fee: 5_000n });
  const a1 = entry("alice", "dave", { nonce: 1, fee: 90_000n });
  const b0 = entry("bob", "dave", { nonce: 0, fee: 20_000n });
  const c0 = entry("carol", "dave", { nonce: 0, fee: 50_000n });
  // Arrival order must not matter; a1 arriving before a0 waits for it.
  for (const e of [a1, b0, a0, c0]) added(pool.add(e, acc.get, 1));
  const chosen = pool.select(acc.get, 1, 1 << 20).map(transactionIdHex);
  assert.deepEqual(chosen, [c0.id, b0.id, a0.id, a1.id]);
  // Within a byte budget of two transfers, the two best available go.
  const two = pool.select(acc.get, 1, 2 * (a0.bytes.length + 4)).map(transactionIdHex);
  assert.deepEqual(two, [c0.id, b0.id]);
});

Deno.test("mempool: admission refuses what cannot apply, each with its reason", () => {
  const pool = new Mempool({ maxPerSender: 4 });
  const acc = new Accounts({ alice: 10n * TIME });
  assert.equal(refused(pool.add(entry("alice", "bob", { expiresAt: 5 }), acc.get, 6)), "expired");
  assert.equal(refused(pool.add(entry("carol", "bob"), acc.get, 1)), "insufficient-balance");
  acc.map.set(addr("alice"), { balance: 10n * TIME, nonce: 3 });
  assert.equal(refused(pool.add(entry("alice", "bob", { nonce: 2 }), acc.get, 1)), "nonce-used");
  assert.equal(refused(pool.add(entry("alice", "bob", { nonce: 7 }), acc.get, 1)), "nonce-gap");
  for (let n = 3; n < 7; n++) added(pool.add(entry("alice", "bob", { nonce: n }), acc.get, 1));
  acc.map.set(addr("alice"), { balance: 10n * TIME, nonce: 2 });
  assert.equal(refused(pool.add(entry("alice", "bob", { nonce: 2 }), acc.get, 1)), "sender-limit");
  const e = entry("alice", "bob", { nonce: 3 });
  assert.equal(refused(pool.add(e, acc.get, 1)), "duplicate");
  // Pending transfers count against the balance: 4 × 1 TIME pooled, 6 more does not fit 10.
  const p = new Mempool();
  const a = new Accounts({ alice: 10n * TIME });
  for (let n = 0; n < 4; n++) added(p.add(entry("alice", "bob", { nonce: n }), a.get, 1));
  assert.equal(
    refused(p.add(entry("alice", "bob", { nonce: 4, amount: 6n * TIME }), a.get, 1)),
    "insufficient-balance",
  );
});

Deno.test("mempool: replace-by-fee needs 10% more for the same sender and nonce", () => {
  const pool = new Mempool();
  const acc = new Accounts({ alice: 10n * TIME });
  const first = entry("alice", "bob", { fee: 10_000n });
  added(pool.add(first, acc.get, 1));
  const cheap = entry("alice", "carol", { fee: 10_999n });
  assert.equal(refused(pool.add(cheap, acc.get, 1)), "replacement-underpriced");
  const better = entry("alice", "carol", { fee: 11_000n });
  const o = added(pool.add(better, acc.get, 1));
  assert.equal(o.added && o.replaced, first.id);
  assert.equal(pool.size, 1);
  assert.ok(pool.has(better.id) && !pool.has(first.id));
  assert.equal(pool.bytes, better.bytes.length);
});

Deno.test("mempool: when full, the lowest fee rate leaves for a better one", () => {
  const one = entry("alice", "bob").bytes.length;
  const pool = new Mempool({ maxBytes: 3 * one });
  const acc = new Accounts({ alice: TIME * 10n, bob: TIME * 10n, carol: TIME * 10n, dave: TIME });
  const low = entry("alice", "bob", { fee: 2_000n });
  const lowNext = entry("alice", "bob", { nonce: 1, fee: 90_000n });
  const mid = entry("bob", "alice", { fee: 30_000n });
  for (const e of [low, lowNext, mid]) added(pool.add(e, acc.get, 1));
  // Not better than the lowest: refused, nothing leaves.
  assert.equal(
    refused(pool.add(entry("carol", "bob", { fee: 1_900n }), acc.get, 1)),
    "mempool-full",
  );
  const rich = entry("carol", "bob", { fee: 40_000n });
  const o = added(pool.add(rich, acc.get, 1));
  // The lowest leaves together with the sender's later nonce, which could no longer apply.
  assert.deepEqual(o.added && o.evicted, [low.id, lowNext.id]);
  assert.ok(pool.bytes <= pool.maxBytes);
  assert.deepEqual([...pool.entries()].map((e) => e.id).sort(), [mid.id, rich.id].sort());
});

Deno.test("mempool: after a block, included and now-invalid transfers leave", () => {
  const pool = new Mempool();
  const acc = new Accounts({ alice: 3n * TIME, bob: 10n * TIME });
  const a0 = entry("alice", "carol", { nonce: 0, amount: TIME });
  const a1 = entry("alice", "carol", { nonce: 1, amount: TIME });
  const b0 = entry("bob", "carol", { nonce: 0, expiresAt: 2 });
  const b1 = entry("bob", "carol", { nonce: 1 });
  for (const e of [a0, a1, b0, b1]) added(pool.add(e, acc.get, 1));
  // Block 1 includes a0 only; elsewhere alice spent most of her balance with nonce 1.
  const included = acc.apply([a0.bytes]);
  acc.map.set(addr("alice"), { balance: 10_000n, nonce: 1 });
  const dropped = pool.revalidate(included, acc.get, 2);
  assert.deepEqual(dropped, [a1.id]);
  assert.ok(!pool.has(a0.id));
  // At height 3, b0 has expired; b1 stays (it waits for a nonce 0 that may come again).
  assert.deepEqual(pool.revalidate([], acc.get, 3), [b0.id]);
  assert.ok(pool.has(b1.id));
  assert.deepEqual(pool.select(acc.get, 3, 1 << 20), []);
});

Deno.test("mempool: revalidating only a block's senders checks only them, and catches a late earlier nonce", () => {
  const pool = new Mempool();
  const acc = new Accounts({ alice: 10n * TIME, bob: 10n * TIME, carol: 3n * TIME });
  // carol's nonce 1 arrives first and fits alone; her nonce 0 then fits alone too, but both
  // together need 4 TIME of her 3.
  const c1 = entry("carol", "dave", { nonce: 1, amount: 2n * TIME });
  const c0 = entry("carol", "dave", { nonce: 0, amount: 2n * TIME });
  const a0 = entry("alice", "dave", { nonce: 0 });
  const a1 = entry("alice", "dave", { nonce: 1 });
  const b0 = entry("bob", "dave", { nonce: 0 });
  for (const e of [c1, c0, a0, a1, b0]) added(pool.add(e, acc.get, 1));
  assert.deepEqual(pool.revalidate([], acc.get, 1, []), [c1.id], "carol changed since: checked");
  // Block 1 holds alice's transfer only: bob is not looked up at all.
  const looked: string[] = [];
  const lookup = (a: string) => (looked.push(a), acc.get(a));
  const included = acc.apply([a0.bytes]);
  assert.deepEqual(pool.revalidate(included, lookup, 2, [addr("alice")]), []);
  assert.deepEqual(looked, [addr("alice")]);
  assert.ok(pool.has(a1.id) && pool.has(b0.id) && pool.has(c0.id) && !pool.has(a0.id));
});

Deno.test("mempool: incremental revalidation drops exactly what a full one drops (seeded histories)", () => {
  const names = ["w0", "w1", "w2", "w3", "w4", "w5"];
  for (const seed of [1, 2, 3]) {
    const rnd = new TestRandom(seed);
    const acc = new Accounts(
      Object.fromEntries(names.map((n) => [n, BigInt(rnd.int(1, 6)) * TIME])),
    );
    const full = new Mempool({ maxPerSender: 6 });
    const incremental = new Mempool({ maxPerSender: 6 });
    let height = 1;
    for (let step = 0; step < 25; step++) {
      for (let k = rnd.int(0, 5); k > 0; k--) {
        const from = rnd.pick(names);
        const e = entry(from, rnd.pick(names), {
          nonce: acc.get(addr(from)).nonce + rnd.int(0, 4),
          amount: BigInt(rnd.int(1, 3)) * TIME / 2n,
          fee: BigInt(rnd.int(10_000, 30_000)),
          expiresAt: height + rnd.int(0, 4),
        });
        assert.deepEqual(
          refused(incremental.add(e, acc.get, height)),
          refused(full.add(e, acc.get, height)),
        );
      }
      // A block: a prefix of what the pool offers, and sometimes a transfer it never saw that
      // uses a sender's next nonce.
      const chosen = full.select(acc.get, height, 1 << 20);
      const block = chosen.slice(0, rnd.int(0, chosen.length));
      const outsider = rnd.pick(names);
      const own = acc.get(addr(outsider));
      if (rnd.chance(0.5)) {
        const spent = new Set(block.map((b) => addressOf(NETWORK, decodeTransaction(b).sender)));
        if (!spent.has(addr(outsider)) && own.balance > TIME) {
          block.push(transfer(outsider, rnd.pick(names), { nonce: own.nonce, amount: TIME / 2n }));
        }
      }
      const senders = block.map((b) => addressOf(NETWORK, decodeTransaction(b).sender));
      const included = acc.apply(block);
      height++;
      const a = full.revalidate(included, acc.get, height).sort();
      const b = incremental.revalidate(included, acc.get, height, senders).sort();
      assert.deepEqual(b, a, `seed ${seed} height ${height}: dropped`);
      const ids = (p: Mempool) => [...p.entries()].map((e) => e.id).sort();
      assert.deepEqual(ids(incremental), ids(full), `seed ${seed} height ${height}: pooled`);
      // A sender's next nonce must fit its balance less everything it has pending, exactly.
      for (const name of names) {
        const pending = full.pendingOf(addr(name));
        if (pending.length === 0 || pending.length >= 6) continue;
        const spent = pending.reduce((sum, e) => sum + e.tx.amount + e.tx.fee, 0n);
        const room = acc.get(addr(name)).balance - spent - 10_000n;
        if (room < 2n) continue;
        const next = pending[pending.length - 1].tx.nonce + 1;
        const fits = entry(name, "w0", { nonce: next, amount: room, fee: 10_000n, expiresAt: 99 });
        const over = entry(name, "w0", { nonce: next, amount: room + 1n, fee: 10_000n });
        assert.equal(full.precheck(fits, acc.get, height), null, `${name} fits exactly`);
        assert.equal(full.precheck(over, acc.get, height)?.reason, "insufficient-balance");
      }
    }
  }
});

Deno.test("mempool: what select returns applies as one block", () => {
  const pool = new Mempool();
  const acc = new Accounts({ alice: 2n * TIME });
  // bob has nothing until alice pays him; his transfer then applies in the same block.
  added(pool.add(entry("alice", "bob", { amount: TIME, fee: 10_000n }), acc.get, 1));
  const chosen = pool.select(acc.get, 1, 1 << 20);
  assert.equal(chosen.length, 1);
  acc.apply(chosen);
  assert.equal(acc.get(addr("bob")).balance, TIME);
});
