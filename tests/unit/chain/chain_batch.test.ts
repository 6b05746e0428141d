/**
 * Batched applying as sync does it: blocks a verify worker decoded and hashed (`ApplyItem.workerHash`),
 * several per SQLite transaction, and what a failure in the middle of a batch leaves behind.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Chain } from "../../../chain/chain.ts";
import { chainDbPath, ChainStore } from "../../../chain/store.ts";
import { type BuiltBlock, ChainBuilder } from "../../support/chain_builder.ts";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-chain-batch-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function openChain(dir: string, b: ChainBuilder): Chain {
  return new Chain({
    store: ChainStore.open(dir, b.genesisHash),
    genesis: b.genesis,
    stateMachine: b.stateMachine,
  });
}

/** SQL on a second connection, as an operator's shell (or a failing disk) would act. */
function onDisk(dir: string, sql: string): void {
  const db = new DatabaseSync(chainDbPath(dir));
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

/** As a worker hands a block over: decoded, with its bytes and its hash. */
const workerItem = (x: BuiltBlock) => ({ cb: x.cb, encoded: x.encoded, workerHash: x.hash });

Deno.test("chain batch: worker-checked blocks store their very bytes; tip checks still run", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 200 });
    const blocks = b.build(6);
    const chain = openChain(dir, b);
    try {
      const result = chain.applyBlocks(blocks.slice(0, 4).map(workerItem), {
        signaturesVerified: true,
      });
      assert.deepEqual(result, { applied: 4 });
      assert.deepEqual(
        chain.getEncodedBlocks(1, 10, 1 << 20),
        blocks.slice(0, 4).map((x) => x.encoded),
      );
      assert.deepEqual(chain.tip().hash, blocks[3].hash);
      // The link is the chain's check, whoever hashed the block.
      const skip = chain.applyBlocks([workerItem(blocks[5])], { signaturesVerified: true });
      assert.equal(skip.error?.reason, "bad-height");
      // A hash that is not the block's cannot slip through: the certificate names the real one.
      const wrong = chain.applyBlocks([{ ...workerItem(blocks[4]), workerHash: blocks[3].hash }], {
        signaturesVerified: true,
      });
      assert.equal(wrong.applied, 0);
      assert.equal(wrong.error?.reason, "bad-certificate");
      assert.equal(chain.tip().height, 4);
    } finally {
      chain.close();
    }
  }));

Deno.test("chain batch: a disk failure at block k stores nothing of that batch; the file holds a consistent prefix", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ validators: 4, bodyBytes: 100 });
    const blocks = b.build(10);
    let chain = openChain(dir, b);
    try {
      assert.deepEqual(chain.applyBlocks(blocks.slice(0, 4).map(workerItem)), { applied: 4 });
      // The disk fails while the next batch writes its 3rd block (height 7).
      onDisk(
        dir,
        "CREATE TRIGGER injected_fault BEFORE INSERT ON blocks WHEN NEW.height = 7 " +
          "BEGIN SELECT RAISE(ABORT, 'injected disk fault'); END",
      );
      assert.throws(
        () => chain.applyBlocks(blocks.slice(4).map(workerItem)),
        /injected disk fault/,
      );
      assert.equal(chain.tip().height, 4, "the tip moves only after a commit");
    } finally {
      chain.close();
    }
    onDisk(dir, "DROP TRIGGER injected_fault");
    chain = openChain(dir, b);
    try {
      assert.equal(chain.tip().height, 4);
      assert.deepEqual(chain.tip().hash, blocks[3].hash);
      assert.equal(chain.getBlock(5), undefined);
      // The state on disk is block 4's: the rest of the chain applies on it and ends where the
      // builder's did (each block's validator set comes from that state).
      assert.deepEqual(chain.applyBlocks(blocks.slice(4).map(workerItem)), { applied: 6 });
      assert.deepEqual(chain.tip().hash, blocks[9].hash);
    } finally {
      chain.close();
    }
  }));
