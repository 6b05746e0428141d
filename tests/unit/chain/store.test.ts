import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { bytesEqual, toHex } from "../../../encoding/binary.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { chainDbPath, ChainStore, ChainStoreError, type StoreEntry } from "../../../chain/store.ts";
import type { StateWrites } from "../../../chain/api.ts";
import { type BuiltBlock, ChainBuilder } from "../../support/chain_builder.ts";

const enc = new TextEncoder();

function entry(b: BuiltBlock, writes: StateWrites = new Map()): StoreEntry {
  return { height: b.cb.block.header.height, hash: b.hash, encoded: b.encoded, writes };
}

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs raw SQL on the store file, as a disk fault or a careless operator would. */
function tamper(dir: string, sql: string, ...params: (number | Uint8Array)[]): void {
  const db = new DatabaseSync(chainDbPath(dir));
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

Deno.test("store: empty store starts at the genesis", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      assert.equal(store.height(), 0);
      assert.equal(store.tip(), undefined);
      assert.equal(store.getEncoded(1), undefined);
      assert.deepEqual(store.getEncodedRange(1, 10, 1 << 20), []);
      assert.equal(store.getState("x"), undefined);
      assert.equal(store.integrityCheck(), "ok");
    } finally {
      store.close();
    }
  }));

Deno.test("store: blocks and state round trip, and reopen resumes at the tip", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 100 });
    const blocks = b.build(5);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      store.appendBlocks([
        entry(blocks[0], new Map([["a", enc.encode("1")], ["b", enc.encode("2")]])),
        entry(blocks[1], new Map([["a", enc.encode("3")], ["b", null]])),
      ]);
      store.appendBlocks(blocks.slice(2).map((x) => entry(x)));
      assert.equal(store.height(), 5);
      assert.deepEqual(store.tip(), {
        height: 5,
        hash: blocks[4].hash,
        timestamp: blocks[4].cb.block.header.timestamp,
      });
      for (const [i, x] of blocks.entries()) {
        assert.deepEqual(store.getEncoded(i + 1), x.encoded);
        assert.equal(store.heightOfHash(x.hash), i + 1);
      }
      assert.equal(store.getEncoded(6), undefined);
      assert.equal(store.getEncoded(0), undefined);
      assert.equal(store.heightOfHash(sha256(enc.encode("nope"))), undefined);
      assert.deepEqual(store.getState("a"), enc.encode("3"));
      assert.equal(store.getState("b"), undefined, "a null write deletes the key");
    } finally {
      store.close();
    }
    const reopened = ChainStore.open(dir, b.genesisHash);
    try {
      assert.equal(reopened.height(), 5);
      assert.ok(bytesEqual(reopened.tip()!.hash, blocks[4].hash));
      assert.deepEqual(reopened.getState("a"), enc.encode("3"));
      const more = b.next();
      reopened.appendBlocks([entry(more)]);
      assert.equal(reopened.height(), 6);
    } finally {
      reopened.close();
    }
  }));

Deno.test("store: range reads stop at count, tip and byte budget, but return at least one", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 1000 });
    const blocks = b.build(10);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      store.appendBlocks(blocks.map((x) => entry(x)));
      // Blocks from 2 on carry a last commit of the same size, so they are all equally long.
      const size = blocks[1].encoded.length;
      assert.deepEqual(
        store.getEncodedRange(3, 4, 1 << 20),
        blocks.slice(2, 6).map((x) => x.encoded),
      );
      assert.equal(store.getEncodedRange(8, 100, 1 << 20).length, 3, "stops at the tip");
      assert.equal(store.getEncodedRange(2, 10, size * 3).length, 3, "fits the byte budget");
      assert.equal(store.getEncodedRange(2, 10, size * 3 - 1).length, 2);
      assert.equal(store.getEncodedRange(1, 10, 1).length, 1, "always one block");
      assert.equal(store.getEncodedRange(1, 10, NaN).length, 1, "NaN is no budget");
      assert.deepEqual(store.getEncodedRange(11, 10, 1 << 20), []);
      assert.deepEqual(store.getEncodedRange(0, 10, 1 << 20), []);
      assert.deepEqual(store.getEncodedRange(-5, 10, 1 << 20), []);
      assert.deepEqual(store.getEncodedRange(1, 0, 1 << 20), []);
      assert.deepEqual(store.getEncodedRange(1.5, 3, 1 << 20), []);
    } finally {
      store.close();
    }
  }));

Deno.test("store: a data dir of another genesis is refused with an operator message", () =>
  withDir((dir) => {
    const a = ChainBuilder.create({ network: "net-a" });
    const b = ChainBuilder.create({ network: "net-b" });
    ChainStore.open(dir, a.genesisHash).close();
    assert.throws(() => ChainStore.open(dir, b.genesisHash), (e) => {
      assert.ok(e instanceof ChainStoreError);
      assert.equal(
        e.message,
        `data dir ${dir} belongs to genesis ${toHex(a.genesisHash)}, configured genesis is ` +
          `${toHex(b.genesisHash)}; use another --data-dir`,
      );
      return true;
    });
    ChainStore.open(dir, a.genesisHash).close();
  }));

Deno.test("store: a file that is not a database is refused with its path", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(chainDbPath(dir), "this is not sqlite ".repeat(100));
    const b = ChainBuilder.create();
    assert.throws(() => ChainStore.open(dir, b.genesisHash), (e) => {
      assert.ok(e instanceof ChainStoreError);
      assert.ok(e.message.startsWith(`cannot open chain store ${chainDbPath(dir)}:`), e.message);
      return true;
    });
  }));

Deno.test("store: an unknown schema version is refused", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    ChainStore.open(dir, b.genesisHash).close();
    tamper(dir, "UPDATE meta SET value = ? WHERE key = 'schema_version'", new Uint8Array([99]));
    assert.throws(() => ChainStore.open(dir, b.genesisHash), /schema 63.*use another --data-dir/);
  }));

function corruptionCase(name: string, damage: (dir: string, blocks: BuiltBlock[]) => void) {
  Deno.test(`store: corruption detected at open: ${name}`, () =>
    withDir((dir) => {
      const b = ChainBuilder.create({ bodyBytes: 50 });
      const blocks = b.build(4);
      const store = ChainStore.open(dir, b.genesisHash);
      store.appendBlocks(blocks.map((x) => entry(x)));
      store.close();
      damage(dir, blocks);
      assert.throws(() => ChainStore.open(dir, b.genesisHash), (e) => {
        assert.ok(e instanceof ChainStoreError, String(e));
        assert.match(e.message, /is corrupt/);
        return true;
      });
    }));
}

corruptionCase("a flipped byte in the tip's body", (dir, blocks) => {
  const bytes = blocks[3].encoded.slice();
  bytes[200] ^= 0xff; // inside the filler record: the payload root no longer matches
  tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", bytes);
});
corruptionCase("a flipped byte in the tip's certificate signature", (dir, blocks) => {
  const bytes = blocks[3].encoded.slice();
  bytes[bytes.length - 10] ^= 0x01;
  tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", bytes);
});
corruptionCase("a flipped byte in the tip's header", (dir, blocks) => {
  const bytes = blocks[3].encoded.slice();
  bytes[60] ^= 0x01;
  tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", bytes);
});
corruptionCase("truncated tip bytes", (dir, blocks) => {
  tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 4", blocks[3].encoded.slice(0, 100));
});
corruptionCase("the block below the tip replaced", (dir, blocks) => {
  tamper(dir, "UPDATE blocks SET encoded = ? WHERE height = 3", blocks[1].encoded);
});
corruptionCase("a gap in the heights", (dir) => {
  tamper(dir, "DELETE FROM blocks WHERE height = 2");
});
corruptionCase("a stored hash that is not the block's", (dir) => {
  tamper(dir, "UPDATE blocks SET hash = ? WHERE height = 4", sha256(enc.encode("other")));
});
corruptionCase("a tip that does not link to the block below", (dir, blocks) => {
  // Blocks 3 and 4 both swapped for the same block: each hashes fine, but 4 != link of 3.
  tamper(dir, "DELETE FROM blocks WHERE height >= 3");
  tamper(
    dir,
    "INSERT INTO blocks (height, hash, encoded) VALUES (3, ?, ?)",
    blocks[2].hash,
    blocks[2].encoded,
  );
  const other = ChainBuilder.create({ bodyBytes: 51 }).build(4)[3];
  tamper(
    dir,
    "INSERT INTO blocks (height, hash, encoded) VALUES (4, ?, ?)",
    other.hash,
    other.encoded,
  );
});

Deno.test("store: appendBlocks is all or nothing", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const blocks = b.build(4);
    const store = ChainStore.open(dir, b.genesisHash);
    try {
      store.appendBlocks([entry(blocks[0])]);
      // The fourth entry reuses a stored hash: the UNIQUE constraint fails mid-transaction.
      const bad = [
        entry(blocks[1], new Map([["k", enc.encode("v")]])),
        entry(blocks[2]),
        { ...entry(blocks[3]), hash: blocks[0].hash },
      ];
      assert.throws(() => store.appendBlocks(bad));
      assert.equal(store.height(), 1);
      assert.equal(store.getEncoded(2), undefined);
      assert.equal(store.getState("k"), undefined);
      assert.throws(() => store.appendBlocks([entry(blocks[2])]), /height 3, expected 2/);
      store.appendBlocks(blocks.slice(1).map((x) => entry(x)));
      assert.equal(store.height(), 4);
    } finally {
      store.close();
    }
    const reopened = ChainStore.open(dir, b.genesisHash);
    assert.equal(reopened.height(), 4);
    reopened.close();
  }));

/**
 * A failure while writing a block's STATE (not its block row) must take the block down with
 * it: the state writes belong to the block's transaction. The failure is injected by the
 * database itself (a trigger that aborts on one key, as a full disk or an I/O error would),
 * so no production hook is needed. The write of "a" before the failing one must roll back too.
 * Mutation caught: moving the state writes of `appendBlocks` after `COMMIT` (the block then
 * survives the reopen without its state).
 */
const STATE_FAULTS = {
  put: {
    trigger: "BEFORE INSERT ON state WHEN NEW.key = 'poison'",
    failing: ["poison", enc.encode("y")],
  },
  delete: {
    trigger: "BEFORE DELETE ON state WHEN OLD.key = 'victim'",
    failing: ["victim", null],
  },
} as const;

for (const [op, fault] of Object.entries(STATE_FAULTS)) {
  Deno.test(`store: a failed state ${op} rolls back the block too, also after reopen`, () =>
    withDir((dir) => {
      const b = ChainBuilder.create();
      const blocks = b.build(3);
      const store = ChainStore.open(dir, b.genesisHash);
      try {
        store.appendBlocks([
          entry(blocks[0], new Map([["a", enc.encode("1")], ["victim", enc.encode("x")]])),
        ]);
        tamper(
          dir,
          `CREATE TRIGGER injected_fault ${fault.trigger} ` +
            "BEGIN SELECT RAISE(ABORT, 'injected state fault'); END",
        );
        const writes: StateWrites = new Map([["a", enc.encode("2")], fault.failing]);
        assert.throws(
          () => store.appendBlocks([entry(blocks[1], writes), entry(blocks[2])]),
          /injected state fault/,
        );
        assert.equal(store.height(), 1, "the open store still says height 1");
      } finally {
        store.close();
      }
      const reopened = ChainStore.open(dir, b.genesisHash);
      try {
        assert.equal(reopened.height(), 1);
        assert.equal(reopened.getEncoded(2), undefined, "block 2 must not be stored");
        assert.equal(reopened.getEncoded(3), undefined, "block 3 must not be stored");
        assert.deepEqual(reopened.getState("a"), enc.encode("1"), "block 2's write of a");
        assert.deepEqual(reopened.getState("victim"), enc.encode("x"));
        assert.equal(reopened.getState("poison"), undefined);
      } finally {
        reopened.close();
      }
    }));
}
