import assert from "node:assert/strict";
import { VerifyPool } from "../../../sync/verify_pool.ts";
import { checkEncodedBlocks } from "../../../sync/verify_worker.ts";
import { chainFixture, corruptAt } from "../../support/fake_chain.ts";

const f = chainFixture(400);

Deno.test("verify pool: a valid batch passes with every block's hash, across workers", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 2, chunkBlocks: 64 });
  try {
    const check = await pool.verify(1, f.encoded);
    assert.equal(check.okCount, 400);
    assert.equal(check.failure, undefined);
    assert.deepEqual(check.hashes, f.hashes);
  } finally {
    pool.close();
  }
});

Deno.test("verify pool: stops at the first bad block and says why", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 2, chunkBlocks: 16 });
  try {
    const cases = [
      { index: 70, block: corruptAt(f, 71, "bad-signature"), reason: "bad-signature" },
      { index: 5, block: corruptAt(f, 6, "truncated"), reason: "decode" },
      { index: 0, block: f.encoded[1], reason: "bad-height" },
      { index: 33, block: new Uint8Array(0), reason: "decode" },
    ] as const;
    for (const c of cases) {
      const blocks = f.encoded.slice(0, 100);
      blocks[c.index] = c.block;
      const check = await pool.verify(1, blocks);
      assert.equal(check.okCount, c.index, c.reason);
      assert.deepEqual(check.failure, { index: c.index, reason: c.reason });
      assert.deepEqual(check.hashes, f.hashes.slice(0, c.index));
    }
    // A batch presented at the wrong height fails on its first block.
    const shifted = await pool.verify(2, f.encoded.slice(0, 10));
    assert.deepEqual(shifted.failure, { index: 0, reason: "bad-height" });
  } finally {
    pool.close();
  }
});

Deno.test("verify pool: blocks of another network fail as wrong-chain", async () => {
  const other = chainFixture(3, 2);
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 1 });
  try {
    const check = await pool.verify(1, other.encoded);
    assert.deepEqual(check.failure, { index: 0, reason: "wrong-chain" });
  } finally {
    pool.close();
  }
});

Deno.test("verify pool: re-signed blocks pass here; the chain's in-order checks catch them", () => {
  const check = checkEncodedBlocks(f.genesisHash, 10, [
    corruptAt(f, 10, "bad-link"),
    corruptAt(f, 11, "bad-payload-root"),
  ]);
  assert.equal(check.okCount, 2);
});

Deno.test("verify pool: the caller keeps its arrays (a copy is transferred)", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 1 });
  try {
    const blocks = f.encoded.slice(0, 5);
    const lengths = blocks.map((b) => b.length);
    await pool.verify(1, blocks);
    assert.deepEqual(blocks.map((b) => b.length), lengths);
    assert.ok(lengths.every((n) => n > 0));
  } finally {
    pool.close();
  }
});

Deno.test("verify pool: close rejects pending work and later calls", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 1 });
  const pending = pool.verify(1, f.encoded);
  pool.close();
  await assert.rejects(pending, /closed/);
  await assert.rejects(pool.verify(1, f.encoded.slice(0, 1)), /closed/);
  pool.close(); // idempotent
});
