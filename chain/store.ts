/**
 * The chain's SQLite file: committed blocks by height and the consensus state they produced.
 *
 * Owns: `<dataDir>/chain.db`, its schema, its pragmas, the startup sanity check of the stored
 * chain, and the one write path (`appendBlocks`), which stores blocks and their state writes in a
 * single transaction so a crash leaves either all of a batch or none of it.
 * Must never: validate blocks (chain/verify.ts does, before anything reaches here), serve a chain
 * that fails the open check, open a data dir that belongs to another genesis, or hold a
 * transaction open across more than one call (it would block the event loop and other readers).
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { join } from "node:path";
import { ByteReader, bytesEqual, toHex } from "../encoding/binary.ts";
import { blockHash, decodeCommittedBlock, payloadRoot, readHeader } from "./block.ts";
import { verifyCertificateSignatures } from "./certificate.ts";
import type { ChainTip, StateWrites } from "./api.ts";

/** The store's file name inside the data dir. */
export const CHAIN_DB_FILE = "chain.db";

/**
 * Bumped when the table layout changes; an older file is refused rather than misread.
 * 2: the `txs` index of included transfers.
 * 3: blocks of version 3 (the body carries the previous height's commit); older blocks are not
 *    decoded any more, so an older file is refused instead of failing at its first block.
 */
export const SCHEMA_VERSION = 3;

/**
 * How long a statement waits for a lock held by another connection (an operator's sqlite3
 * shell, a backup) before failing. Long enough to ride out a checkpoint, short enough that a
 * stuck lock surfaces as an error instead of a hung node.
 */
const BUSY_TIMEOUT_MS = 5_000;

/** Hard cap on one range read, whatever the caller asks: bounds memory per request. */
const MAX_RANGE_COUNT = 10_000;

/**
 * State values kept in memory. The state machine reads the same few keys (the set head, the
 * reward balances) for every block, and each SQLite lookup cost more than the rest of applying
 * the block. Far more than the hot keys; cleared when full, since those come straight back.
 */
const STATE_CACHE_ENTRIES = 4_096;

export interface StoreEntry {
  height: number;
  hash: Uint8Array;
  /** `encodeCommittedBlock` bytes. */
  encoded: Uint8Array;
  writes: StateWrites;
  /** Transfers of the block, indexed for `gettransaction` and wallet history. */
  txs?: readonly IndexedTx[];
}

/** One included transfer as the index keeps it. */
export interface IndexedTx {
  /** SHA-256 of the encoded transaction. */
  id: Uint8Array;
  sender: string;
  recipient: string;
}

/** Thrown when the data dir cannot be used: wrong genesis, corrupt chain, unknown schema. */
export class ChainStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChainStoreError";
  }
}

function failCorrupt(path: string, what: string): never {
  throw new ChainStoreError(
    `chain store ${path} is corrupt: ${what}; restore it from a backup or move it away and ` +
      `resync`,
  );
}

export function chainDbPath(dataDir: string): string {
  return join(dataDir, CHAIN_DB_FILE);
}

interface Statements {
  getMeta: StatementSync;
  putMeta: StatementSync;
  getEncoded: StatementSync;
  getRange: StatementSync;
  heightOfHash: StatementSync;
  hashAt: StatementSync;
  insertBlock: StatementSync;
  getState: StatementSync;
  putState: StatementSync;
  deleteState: StatementSync;
  heightAndCount: StatementSync;
  insertTx: StatementSync;
  txHeight: StatementSync;
  txsOfAddress: StatementSync;
}

export class ChainStore {
  readonly dataDir: string;
  readonly genesisHash: Uint8Array;
  readonly #db: DatabaseSync;
  readonly #st: Statements;
  /**
   * Committed state by key; null when the key is known to be absent. This store is the only
   * writer and updates it after each COMMIT, so it never holds a value the file does not.
   */
  readonly #stateCache = new Map<string, Uint8Array | null>();
  #tip: ChainTip | undefined;

  private constructor(dataDir: string, db: DatabaseSync, genesisHash: Uint8Array) {
    this.dataDir = dataDir;
    this.#db = db;
    this.genesisHash = genesisHash.slice();
    this.#st = {
      getMeta: db.prepare("SELECT value FROM meta WHERE key = ?"),
      putMeta: db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)"),
      getEncoded: db.prepare("SELECT encoded FROM blocks WHERE height = ?"),
      getRange: db.prepare(
        "SELECT encoded FROM blocks WHERE height >= ? AND height < ? ORDER BY height",
      ),
      heightOfHash: db.prepare("SELECT height FROM blocks WHERE hash = ?"),
      hashAt: db.prepare("SELECT hash FROM blocks WHERE height = ?"),
      insertBlock: db.prepare("INSERT INTO blocks (height, hash, encoded) VALUES (?, ?, ?)"),
      getState: db.prepare("SELECT value FROM state WHERE key = ?"),
      putState: db.prepare(
        "INSERT INTO state (key, value) VALUES (?, ?) " +
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      deleteState: db.prepare("DELETE FROM state WHERE key = ?"),
      heightAndCount: db.prepare("SELECT max(height) AS top, count(*) AS n FROM blocks"),
      insertTx: db.prepare(
        "INSERT OR IGNORE INTO txs (id, height, sender, recipient) VALUES (?, ?, ?, ?)",
      ),
      txHeight: db.prepare("SELECT height FROM txs WHERE id = ?"),
      txsOfAddress: db.prepare(
        "SELECT id, height FROM txs WHERE sender = ? OR recipient = ? " +
          "ORDER BY height DESC LIMIT ?",
      ),
    };
  }

  /**
   * Opens (creating if needed) `<dataDir>/chain.db` for the chain of `genesisHash`. Throws
   * `ChainStoreError` with an operator-facing message when the dir belongs to another genesis
   * or the stored tip is damaged.
   */
  static open(dataDir: string, genesisHash: Uint8Array): ChainStore {
    const path = chainDbPath(dataDir);
    let db: DatabaseSync | undefined;
    try {
      Deno.mkdirSync(dataDir, { recursive: true });
      db = new DatabaseSync(path);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // WAL + synchronous=NORMAL survives kill -9: a commit has been write()n to the WAL before
      // COMMIT returns, and the OS page cache keeps it when the process dies. Only an OS crash or
      // power loss can drop the last few commits (WAL fsyncs at checkpoints), and even then the
      // file stays consistent. Those blocks are certified and re-synced from peers, so we skip
      // an fsync per commit, which would stall the event loop on slow VPS disks (docs/lessons.md#17).
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS blocks (
          height INTEGER PRIMARY KEY,
          hash BLOB NOT NULL UNIQUE,
          encoded BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS txs (
          id BLOB PRIMARY KEY,
          height INTEGER NOT NULL,
          sender TEXT NOT NULL,
          recipient TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS txs_sender ON txs (sender, height);
        CREATE INDEX IF NOT EXISTS txs_recipient ON txs (recipient, height);
      `);
      const store = new ChainStore(dataDir, db, genesisHash);
      store.#checkMeta();
      store.#tip = store.#checkTip();
      return store;
    } catch (e) {
      db?.close();
      if (e instanceof ChainStoreError) throw e;
      // Not a database, no permission, disk full: name the file so the operator knows where.
      throw new ChainStoreError(`cannot open chain store ${path}: ${(e as Error).message}`);
    }
  }

  #checkMeta(): void {
    const stored = this.#metaValue("genesis_hash");
    if (stored === undefined) {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        this.#st.putMeta.run("genesis_hash", this.genesisHash);
        this.#st.putMeta.run("schema_version", new Uint8Array([SCHEMA_VERSION]));
        this.#db.exec("COMMIT");
      } catch (e) {
        this.#db.exec("ROLLBACK");
        throw e;
      }
      return;
    }
    if (!bytesEqual(stored, this.genesisHash)) {
      throw new ChainStoreError(
        `data dir ${this.dataDir} belongs to genesis ${toHex(stored)}, configured genesis is ` +
          `${toHex(this.genesisHash)}; use another --data-dir`,
      );
    }
    const version = this.#metaValue("schema_version");
    if (version === undefined || version.length !== 1 || version[0] !== SCHEMA_VERSION) {
      throw new ChainStoreError(
        `data dir ${this.dataDir} has chain schema ${version ? toHex(version) : "none"}, this ` +
          `build reads schema ${SCHEMA_VERSION}; use another --data-dir`,
      );
    }
  }

  #metaValue(key: string): Uint8Array | undefined {
    const row = this.#st.getMeta.get(key) as { value: Uint8Array } | undefined;
    return row?.value;
  }

  /**
   * Refuses to serve a damaged chain: heights must be exactly 1..N, and the tip (and the block
   * below it) must decode, hash to their stored hash, match their payload root and certificate
   * signatures, and link up to the genesis. Older blocks are not re-read, so startup cost does not
   * grow with the chain; `integrityCheck` is the deeper, slower operator check.
   */
  #checkTip(): ChainTip | undefined {
    const path = chainDbPath(this.dataDir);
    const corrupt = (what: string) => failCorrupt(path, what);
    const { top, n } = this.#st.heightAndCount.get() as { top: number | null; n: number };
    if (n === 0) return undefined;
    if (top !== n) corrupt(`highest block is ${top} but ${n} blocks are stored`);
    const height = n;
    const checkStored = (h: number) => {
      const row = this.#st.getEncoded.get(h) as { encoded: Uint8Array } | undefined;
      const stored = this.#hashAt(h);
      if (!row || !stored) return corrupt(`block ${h} is missing`);
      let cb;
      try {
        cb = decodeCommittedBlock(row.encoded);
      } catch (e) {
        return corrupt(`block ${h} does not decode (${(e as Error).message})`);
      }
      const hash = blockHash(cb.block.header);
      if (!bytesEqual(hash, stored)) corrupt(`block ${h} does not hash to its stored hash`);
      if (cb.block.header.height !== h) {
        corrupt(`block stored at ${h} says height ${cb.block.header.height}`);
      }
      if (!bytesEqual(cb.block.header.chainId, this.genesisHash)) {
        corrupt(`block ${h} belongs to another chain`);
      }
      if (cb.certificate.height !== h || !bytesEqual(cb.certificate.blockHash, hash)) {
        corrupt(`block ${h} carries a certificate for another block`);
      }
      if (
        !bytesEqual(
          cb.block.header.payloadRoot,
          payloadRoot(cb.block.records, cb.block.transactions, cb.block.lastCommit),
        )
      ) {
        corrupt(`block ${h} body does not match its payload root`);
      }
      if (!verifyCertificateSignatures(this.genesisHash, cb.certificate)) {
        corrupt(`block ${h} has a certificate signature that does not verify`);
      }
      return cb;
    };
    const tip = checkStored(height);
    let below = this.genesisHash;
    if (height > 1) {
      checkStored(height - 1);
      below = this.#hashAt(height - 1)!;
    }
    if (!bytesEqual(tip.block.header.prevHash, below)) {
      corrupt(`block ${height} does not link to block ${height - 1}`);
    }
    return Object.freeze({
      height,
      hash: blockHash(tip.block.header),
      timestamp: tip.block.header.timestamp,
    });
  }

  #hashAt(height: number): Uint8Array | undefined {
    return (this.#st.hashAt.get(height) as { hash: Uint8Array } | undefined)?.hash;
  }

  /** Height of the highest stored block; 0 when only the genesis exists. */
  height(): number {
    return this.#tip?.height ?? 0;
  }

  /** The highest stored block, or undefined when only the genesis exists. */
  tip(): ChainTip | undefined {
    return this.#tip;
  }

  getEncoded(height: number): Uint8Array | undefined {
    if (!Number.isSafeInteger(height) || height < 1 || height > this.height()) return undefined;
    return (this.#st.getEncoded.get(height) as { encoded: Uint8Array } | undefined)?.encoded;
  }

  /**
   * Blocks `from`, `from + 1`, ... stopping after `count` blocks, at the tip, or before
   * `maxBytes` would be exceeded; always at least one block when block `from` exists.
   */
  getEncodedRange(from: number, count: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (!Number.isSafeInteger(from) || from < 1 || !(count >= 1)) return out;
    const budget = maxBytes > 0 ? maxBytes : 0; // NaN from a caller must not mean "unlimited"
    const end = Math.min(from + Math.min(Math.floor(count), MAX_RANGE_COUNT), this.height() + 1);
    let bytes = 0;
    for (const row of this.#st.getRange.iterate(from, end)) {
      const encoded = (row as { encoded: Uint8Array }).encoded;
      if (out.length > 0 && bytes + encoded.length > budget) break;
      out.push(encoded);
      bytes += encoded.length;
    }
    return out;
  }

  heightOfHash(hash: Uint8Array): number | undefined {
    const row = this.#st.heightOfHash.get(hash) as { height: number } | undefined;
    return row?.height;
  }

  getState(key: string): Uint8Array | undefined {
    const cached = this.#stateCache.get(key);
    // Copies out, so a caller that modifies what it got cannot change the cached value.
    if (cached !== undefined) return cached === null ? undefined : cached.slice();
    const value = (this.#st.getState.get(key) as { value: Uint8Array } | undefined)?.value;
    this.#cacheState(key, value === undefined ? null : value.slice());
    return value;
  }

  #cacheState(key: string, value: Uint8Array | null): void {
    if (this.#stateCache.size >= STATE_CACHE_ENTRIES && !this.#stateCache.has(key)) {
      this.#stateCache.clear();
    }
    this.#stateCache.set(key, value);
  }

  /**
   * Stores consecutive blocks above the tip, with each block's state writes applied in order,
   * in ONE transaction: all of them or none. Throws (and stores nothing) on a height gap or
   * any SQLite error.
   */
  appendBlocks(entries: readonly StoreEntry[]): void {
    if (entries.length === 0) return;
    const base = this.height();
    entries.forEach((e, i) => {
      if (e.height !== base + 1 + i) {
        throw new Error(
          `appendBlocks: entry ${i} has height ${e.height}, expected ${base + 1 + i}`,
        );
      }
    });
    const last = entries[entries.length - 1];
    // The header leads the encoding, so the new tip's timestamp is read without a full decode.
    const lastHeader = readHeader(new ByteReader(last.encoded));
    if (lastHeader.height !== last.height) {
      throw new Error(`appendBlocks: encoded block at ${last.height} says ${lastHeader.height}`);
    }
    // Inside one transaction only the last write of a key can be seen by anyone, so each key is
    // written once: a sync batch credits the same few balances hundreds of times.
    const finalWrites = new Map<string, Uint8Array | null>();
    for (const e of entries) for (const [key, value] of e.writes) finalWrites.set(key, value);
    const st = this.#st;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const e of entries) {
        st.insertBlock.run(e.height, e.hash, e.encoded);
        for (const t of e.txs ?? []) st.insertTx.run(t.id, e.height, t.sender, t.recipient);
      }
      for (const [key, value] of finalWrites) {
        if (value === null) st.deleteState.run(key);
        else st.putState.run(key, value);
      }
      this.#db.exec("COMMIT");
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw e;
    }
    for (const [key, value] of finalWrites) this.#cacheState(key, value && value.slice());
    this.#tip = Object.freeze({
      height: last.height,
      hash: last.hash.slice(),
      timestamp: lastHeader.timestamp,
    });
  }

  /** Height of the block that includes transaction `id`, if any. */
  transactionHeight(id: Uint8Array): number | undefined {
    return (this.#st.txHeight.get(id) as { height: number } | undefined)?.height;
  }

  /** Transfers from or to `address`, newest first, at most `limit`. */
  transactionsOf(address: string, limit: number): { id: Uint8Array; height: number }[] {
    const n = Math.max(0, Math.min(Math.floor(limit) || 0, MAX_RANGE_COUNT));
    return (this.#st.txsOfAddress.all(address, address, n) as {
      id: Uint8Array;
      height: number;
    }[]).map((r) => ({ id: r.id, height: r.height }));
  }

  /** SQLite's own page-level check ("ok" when healthy). Slow on big files: operator use. */
  integrityCheck(): string {
    const rows = this.#db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join("\n");
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
