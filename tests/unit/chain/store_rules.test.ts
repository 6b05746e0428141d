/**
 * The chain store's edges (chain/store.ts): the operator message of each damage the open
 * check finds, a state write that fails inside the apply transaction (neither the block nor
 * any of its state is kept), the range and state reads at their bounds, and the meta checks.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { encodeCommittedBlock } from "../../../chain/block.ts";
import { chainDbPath, ChainStore, type StoreEntry } from "../../../chain/store.ts";
import type { StateWrites } from "../../../chain/api.ts";
import { type BuiltBlock, ChainBuilder } from "../../support/chain_builder.ts";

const enc = new TextEncoder();

function entry(b: BuiltBlock, writes: StateWrites = new Map()): StoreEntry {
  return { height: b.cb.block.header.height, hash: b.hash, encoded: b.encoded, writes };
}

function withDir<T>(fn: (dir: string) => T): T {
  const dir = Deno.makeTempDirSync({ prefix: "timenode-store-rules-" });
  try {
    return fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function tamper(dir: string, sql: string, ...params: (number | Uint8Array)[]): void {
  const db = new DatabaseSync(chainDbPath(dir));
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

/** One chain for every damage case: building and signing blocks dominates this file's time. */
const DAMAGE_CHAIN = ChainBuilder.create({ bodyBytes: 50 });
const DAMAGE_BLOCKS = DAMAGE_CHAIN.build(5);

/** Stores blocks 1..4, damages the file, and returns the damage named by the open check. */
function damageMessage(damage: (dir: string, blocks: BuiltBlock[]) => void): string {
  let message = "";
  const b = DAMAGE_CHAIN;
  const blocks = DAMAGE_BLOCKS;
  return withDir((dir) => {
    const store = ChainStore.open(dir, b.genesisHash);
    store.appendBlocks(blocks.slice(0, 4).map((x) => entry(x)));
    store.close();
    damage(dir, blocks);
    assert.throws(() => ChainStore.open(dir, b.genesisHash), (e: unknown) => {
      message = (e as Error).message;
      assert.equal((e as Error).name, "ChainStoreError");
      return true;
    });
    const path = chainDbPath(dir);
    assert.ok(message.startsWith(`chain store ${path} is corrupt: `), message);
    assert.ok(message.endsWith("; restore it from a backup or move it away and resync"), message);
    return message.slice(`chain store ${path} is corrupt: `.length).replace(/; restore.*$/, "");
  });
}

Deno.test("store rules: each damage found at open has its own message", () => {
  assert.equal(
    damageMessage((dir) => tamper(dir, "DELETE FROM blocks WHERE height = 2")),
    "highest block is 4 but 3 blocks are stored",
  );
  assert.match(
    damageMessage((dir, blocks) =>
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", blocks[3].encoded.slice(0, 90))
    ),
    /^block 4 does not decode \(.+\)$/,
  );
  assert.equal(
    damageMessage((dir, blocks) =>
      tamper(dir, "UPDATE blocks SET hash = ? WHERE height = 4", blocks[4].hash)
    ),
    "block 4 does not hash to its stored hash",
  );
  assert.equal(
    damageMessage((dir, blocks) =>
      tamper(
        dir,
        "UPDATE blocks SET hash = ?, encoded = ? WHERE height = 4",
        blocks[4].hash,
        blocks[4].encoded,
      )
    ),
    "block stored at 4 says height 5",
  );
  assert.equal(
    damageMessage((dir, blocks) => {
      const swapped = encodeCommittedBlock({
        block: blocks[3].cb.block,
        certificate: blocks[2].cb.certificate,
      });
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", swapped);
    }),
    "block 4 carries a certificate for another block",
  );
  assert.equal(
    damageMessage((dir, blocks) => {
      const cert = blocks[3].cb.certificate;
      const swapped = encodeCommittedBlock({
        block: blocks[3].cb.block,
        certificate: { ...cert, blockHash: blocks[2].hash },
      });
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", swapped);
    }),
    "block 4 carries a certificate for another block",
  );
  assert.equal(
    damageMessage((dir, blocks) => {
      const cert = blocks[3].cb.certificate;
      const swapped = encodeCommittedBlock({
        block: blocks[3].cb.block,
        certificate: { ...cert, height: 3 },
      });
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", swapped);
    }),
    "block 4 carries a certificate for another block",
  );
  assert.equal(
    damageMessage((dir, blocks) => {
      const block = { ...blocks[3].cb.block, records: [] };
      const bytes = encodeCommittedBlock({ block, certificate: blocks[3].cb.certificate });
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", bytes);
    }),
    "block 4 body does not match its payload root",
  );
  assert.equal(
    damageMessage((dir, blocks) => {
      const cert = blocks[3].cb.certificate;
      const signatures = cert.signatures.map((s, i) =>
        i === 0 ? { ...s, signature: cert.signatures[1].signature } : s
      );
      const bytes = encodeCommittedBlock({
        block: blocks[3].cb.block,
        certificate: { ...cert, signatures },
      });
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", bytes);
    }),
    "block 4 has a certificate signature that does not verify",
  );
  assert.equal(
    damageMessage((dir, blocks) =>
      tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 3", blocks[1].encoded)
    ),
    "block 3 does not hash to its stored hash",
  );
});

Deno.test("store rules: a block of another chain at the tip is named as such", () => {
  const foreign = ChainBuilder.create({ bodyBytes: 50, network: "otherchain" }).build(4)[3];
  assert.equal(
    damageMessage(
      (dir) =>
        tamper(
          dir,
          "UPDATE blocks SET hash = ?, encoded = ? WHERE height = 4",
          foreign.hash,
          foreign.encoded,
        ),
    ),
    "block 4 belongs to another chain",
  );
});

Deno.test("store rules: a tip whose parent is not the block below is refused", () => {
  const other = ChainBuilder.create({ bodyBytes: 51 }).build(4);
  const message = damageMessage((dir) => {
    tamper(dir, "DELETE FROM blocks WHERE height = 4");
    tamper(
      dir,
      "INSERT INTO blocks (height, hash, encoded) VALUES (4, ?, ?)",
      other[3].hash,
      other[3].encoded,
    );
  });
  assert.equal(message, "block 4 does not link to block 3");
});

Deno.test("store rules: a chain of one block links to the genesis and reopens", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const [first] = b.build(1);
    const store = ChainStore.open(dir, b.genesisHash);
    store.appendBlocks([entry(first)]);
    store.close();
    const reopened = ChainStore.open(dir, b.genesisHash);
    assert.equal(reopened.height(), 1);
    assert.deepEqual(reopened.tip()?.hash, first.hash);
    assert.equal(reopened.tip()?.timestamp, first.cb.block.header.timestamp);
    reopened.close();
    reopened.close();
  }));

Deno.test("store rules: a failing state write stores neither the blocks nor any state", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const blocks = b.build(3);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      store.appendBlocks([entry(blocks[0], new Map([["k", enc.encode("old")]]))]);
      assert.deepEqual(store.getState("k"), enc.encode("old"));
      // A value SQLite cannot bind fails the state write after both block inserts ran.
      const unbindable = {} as unknown as Uint8Array;
      const writes: StateWrites = new Map([["k", enc.encode("new")], ["z", unbindable]]);
      assert.throws(() => store.appendBlocks([entry(blocks[1]), entry(blocks[2], writes)]));
      assert.equal(store.height(), 1);
      assert.equal(store.getEncoded(2), undefined);
      assert.deepEqual(store.getState("k"), enc.encode("old"), "the cache kept the old value");
      assert.equal(store.getState("z"), undefined);
    } finally {
      store.close();
    }
    const reopened = ChainStore.open(dir, b.genesisHash);
    try {
      assert.equal(reopened.height(), 1);
      assert.equal(reopened.heightOfHash(blocks[1].hash), undefined);
      assert.deepEqual(reopened.getState("k"), enc.encode("old"));
      // The store is still usable: the same blocks go in once the writes are sound.
      reopened.appendBlocks([entry(blocks[1]), entry(blocks[2], new Map([["k", null]]))]);
      assert.equal(reopened.height(), 3);
      assert.equal(reopened.getState("k"), undefined);
    } finally {
      reopened.close();
    }
  }));

Deno.test("store rules: an entry whose bytes name another height is refused before writing", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const blocks = b.build(2);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      const lying = { ...entry(blocks[0]), encoded: blocks[1].encoded };
      assert.throws(() => store.appendBlocks([lying]), /appendBlocks: encoded block at 1 says 2/);
      assert.equal(store.height(), 0);
      store.appendBlocks([]);
      assert.equal(store.height(), 0);
    } finally {
      store.close();
    }
  }));

Deno.test("store rules: reads are bounded by the tip and round counts down", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 10 });
    const blocks = b.build(4);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      store.appendBlocks(blocks.map((x) => entry(x)));
      assert.deepEqual(store.getEncoded(4), blocks[3].encoded);
      assert.equal(store.getEncoded(1.5), undefined);
      assert.equal(store.getEncoded(5), undefined);
      assert.deepEqual(store.getEncodedRange(1, 2.9, 1 << 20).length, 2);
      assert.deepEqual(store.getEncodedRange(1, 0.5, 1 << 20), []);
      assert.deepEqual(store.getEncodedRange(1, NaN, 1 << 20), []);
      assert.equal(store.getEncodedRange(2, 10, 0).length, 1, "a zero budget still gives one");
      assert.equal(store.getEncodedRange(2, 10, -5).length, 1);
      assert.deepEqual(store.getEncodedRange(4, 10, 1 << 20), [blocks[3].encoded]);
    } finally {
      store.close();
    }
  }));

Deno.test("store rules: state values are copies, from the file and from the cache", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const [first, second] = b.build(2);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      assert.equal(store.getState("k"), undefined, "an absent key, remembered as absent");
      store.appendBlocks([entry(first, new Map([["k", enc.encode("v1")]]))]);
      const got = store.getState("k")!;
      got.fill(0);
      assert.deepEqual(store.getState("k"), enc.encode("v1"));
      const written = enc.encode("v2");
      store.appendBlocks([entry(second, new Map([["k", written]]))]);
      written.fill(0);
      assert.deepEqual(store.getState("k"), enc.encode("v2"));
    } finally {
      store.close();
    }
    const reopened = ChainStore.open(dir, b.genesisHash);
    try {
      const fromFile = reopened.getState("k")!;
      fromFile.fill(0);
      assert.deepEqual(reopened.getState("k"), enc.encode("v2"));
    } finally {
      reopened.close();
    }
  }));

Deno.test("store rules: a schema version of the wrong length or missing is refused", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    ChainStore.open(dir, b.genesisHash).close();
    tamper(dir, "UPDATE meta SET value = ? WHERE key = 'schema_version'", new Uint8Array([1, 0]));
    assert.throws(
      () => ChainStore.open(dir, b.genesisHash),
      /has chain schema 0100, this build reads schema 3;/,
    );
    tamper(dir, "DELETE FROM meta WHERE key = 'schema_version'");
    assert.throws(() => ChainStore.open(dir, b.genesisHash), /has chain schema none/);
  }));

Deno.test("store rules: a height missing below the tip is named", () => {
  const message = damageMessage((dir, blocks) => {
    // Four rows with 4 on top, but 3 replaced by a row at height 0.
    tamper(dir, "DELETE FROM blocks WHERE height = 3");
    tamper(
      dir,
      "INSERT INTO blocks (height, hash, encoded) VALUES (0, ?, ?)",
      blocks[4].hash,
      blocks[4].encoded,
    );
  });
  assert.equal(message, "block 3 is missing");
});

Deno.test("store rules: the file is in WAL mode, and a data dir that is a file is refused", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    ChainStore.open(dir, b.genesisHash).close();
    const db = new DatabaseSync(chainDbPath(dir));
    try {
      assert.equal(
        (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
        "wal",
      );
    } finally {
      db.close();
    }
    const file = `${dir}/not-a-dir`;
    Deno.writeTextFileSync(file, "x");
    assert.throws(
      () => ChainStore.open(file, b.genesisHash),
      (e: unknown) =>
        (e as Error).name === "ChainStoreError" &&
        (e as Error).message.startsWith(`cannot open chain store ${chainDbPath(file)}: `),
    );
  }));

Deno.test("store rules: batch errors name the entry; the tip is a copy; a closed store is closed", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const blocks = b.build(4);
    const store = ChainStore.open(dir, b.genesisHash);
    assert.throws(
      () => store.appendBlocks([entry(blocks[0]), entry(blocks[2])]),
      /appendBlocks: entry 1 has height 3, expected 2/,
    );
    const first = entry(blocks[0]);
    first.hash = first.hash.slice();
    store.appendBlocks([first]);
    first.hash.fill(0);
    assert.deepEqual(store.tip()?.hash, blocks[0].hash);
    store.appendBlocks([entry(blocks[1])]);
    assert.equal(store.getEncodedRange(1, 1, 1 << 20).length, 1, "a count of one gives one");
    store.close();
    assert.throws(() => store.getState("anything"));
    store.close();
  }));
