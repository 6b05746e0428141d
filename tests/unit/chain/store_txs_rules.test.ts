/**
 * The chain store's transaction index (chain/store.ts `txs`): written in the block's own
 * transaction, looked up by id, listed per address newest first with the limit at its edges,
 * and the schema version that introduced it. Written because mutation testing found the index
 * unpinned by the store's tests (docs/testing.md).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { chainDbPath, ChainStore, type IndexedTx, type StoreEntry } from "../../../chain/store.ts";
import { type BuiltBlock, ChainBuilder } from "../../support/chain_builder.ts";

const CHAIN = ChainBuilder.create();
const BLOCKS = CHAIN.build(4);

function id(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

function entry(b: BuiltBlock, txs?: IndexedTx[]): StoreEntry {
  const e: StoreEntry = {
    height: b.cb.block.header.height,
    hash: b.hash,
    encoded: b.encoded,
    writes: new Map(),
  };
  if (txs) e.txs = txs;
  return e;
}

function withStore(fn: (store: ChainStore, dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "timenode-store-txs-" });
  const store = ChainStore.open(dir, CHAIN.genesisHash);
  try {
    fn(store, dir);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Blocks 1..3: alice→bob at 1, bob→carol at 2, carol→alice and alice→dave at 3; 4 has none. */
function fill(store: ChainStore): void {
  store.appendBlocks([
    entry(BLOCKS[0], [{ id: id(1), sender: "alice", recipient: "bob" }]),
    entry(BLOCKS[1], [{ id: id(2), sender: "bob", recipient: "carol" }]),
    entry(BLOCKS[2], [
      { id: id(3), sender: "carol", recipient: "alice" },
      { id: id(4), sender: "alice", recipient: "dave" },
    ]),
    entry(BLOCKS[3]),
  ]);
}

const heights = (rows: { id: Uint8Array; height: number }[]) =>
  rows.map((r) => [r.id[0], r.height]);

Deno.test("store txs rules: an included transfer is found by id at its block's height", () =>
  withStore((store) => {
    fill(store);
    assert.equal(store.transactionHeight(id(1)), 1);
    assert.equal(store.transactionHeight(id(2)), 2);
    assert.equal(store.transactionHeight(id(4)), 3);
    assert.equal(store.transactionHeight(id(9)), undefined);
  }));

Deno.test("store txs rules: an address's transfers, sent or received, newest first", () =>
  withStore((store) => {
    fill(store);
    const alice = heights(store.transactionsOf("alice", 10));
    assert.deepEqual(alice.slice(2), [[1, 1]]);
    assert.deepEqual(alice.slice(0, 2).map(([, h]) => h), [3, 3]);
    assert.deepEqual(alice.slice(0, 2).map(([n]) => n).sort(), [3, 4]);
    assert.deepEqual(heights(store.transactionsOf("bob", 10)), [[2, 2], [1, 1]]);
    assert.deepEqual(heights(store.transactionsOf("dave", 10)), [[4, 3]]);
    assert.deepEqual(store.transactionsOf("nobody", 10), []);
    assert.deepEqual(store.transactionsOf("bob", 10)[0].id, id(2));
  }));

Deno.test("store txs rules: the limit is rounded down; zero, negative and NaN give none", () =>
  withStore((store) => {
    fill(store);
    assert.deepEqual(heights(store.transactionsOf("bob", 1)), [[2, 2]]);
    assert.deepEqual(heights(store.transactionsOf("bob", 1.9)), [[2, 2]]);
    assert.deepEqual(store.transactionsOf("bob", 0), []);
    assert.deepEqual(store.transactionsOf("bob", 0.5), []);
    assert.deepEqual(store.transactionsOf("bob", -3), []);
    assert.deepEqual(store.transactionsOf("bob", NaN), []);
    assert.equal(store.transactionsOf("bob", Infinity).length, 2, "Infinity is capped");
    assert.equal(store.transactionsOf("bob", 1e9).length, 2, "a huge limit is capped, not refused");
  }));

Deno.test("store txs rules: a transfer seen again keeps its first height", () =>
  withStore((store) => {
    store.appendBlocks([entry(BLOCKS[0], [{ id: id(7), sender: "a", recipient: "b" }])]);
    store.appendBlocks([entry(BLOCKS[1], [{ id: id(7), sender: "a", recipient: "b" }])]);
    assert.equal(store.height(), 2);
    assert.equal(store.transactionHeight(id(7)), 1);
    assert.deepEqual(heights(store.transactionsOf("a", 10)), [[7, 1]]);
  }));

Deno.test("store txs rules: a failed batch indexes none of its transfers", () =>
  withStore((store, dir) => {
    const unbindable = {} as unknown as Uint8Array;
    assert.throws(() =>
      store.appendBlocks([
        entry(BLOCKS[0], [{ id: id(1), sender: "a", recipient: "b" }]),
        { ...entry(BLOCKS[1]), writes: new Map([["k", unbindable]]) },
      ])
    );
    assert.equal(store.transactionHeight(id(1)), undefined);
    assert.deepEqual(store.transactionsOf("a", 10), []);
    const db = new DatabaseSync(chainDbPath(dir));
    try {
      const row = db.prepare("SELECT count(*) AS n FROM txs").get() as { n: number };
      assert.equal(row.n, 0);
    } finally {
      db.close();
    }
  }));

Deno.test("store txs rules: this build writes schema 3 (the index came with 2); an older file is refused", () => {
  const dir = Deno.makeTempDirSync({ prefix: "timenode-store-txs-" });
  try {
    ChainStore.open(dir, CHAIN.genesisHash).close();
    const db = new DatabaseSync(chainDbPath(dir));
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as {
        value: Uint8Array;
      };
      assert.deepEqual(row.value, new Uint8Array([3]));
      db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(
        new Uint8Array([2]),
      );
    } finally {
      db.close();
    }
    assert.throws(
      () => ChainStore.open(dir, CHAIN.genesisHash),
      /has chain schema 02, this build reads schema 3; use another --data-dir/,
    );
    // The right first byte in a value of the wrong length is no schema 3 either.
    const db2 = new DatabaseSync(chainDbPath(dir));
    try {
      db2.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(
        new Uint8Array([3, 0]),
      );
    } finally {
      db2.close();
    }
    assert.throws(() => ChainStore.open(dir, CHAIN.genesisHash), /has chain schema 0300, /);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
