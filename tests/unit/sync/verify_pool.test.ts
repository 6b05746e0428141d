import assert from "node:assert/strict";
import { VerifyPool } from "../../../sync/verify_pool.ts";
import { checkEncodedBlocks } from "../../../sync/verify_worker.ts";
import { blockHash, decodeCommittedBlock } from "../../../chain/block.ts";
import { chainFixture, corruptAt } from "../../support/fake_chain.ts";

const f = chainFixture(400);

Deno.test("verify pool: a valid batch passes with every block's hash, across workers", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 2, chunkBlocks: 64 });
  try {
    const check = await pool.verify(1, f.encoded);
    assert.equal(check.okCount, 400);
    assert.equal(check.failure, undefined);
    assert.deepEqual(check.blocks.map((b) => b.hash), f.hashes);
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
      assert.deepEqual(check.blocks.map((b) => b.hash), f.hashes.slice(0, c.index));
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

Deno.test("verify pool: re-signed blocks with a bad link pass here; the chain's in-order checks catch them", () => {
  const check = checkEncodedBlocks(f.genesisHash, 10, [corruptAt(f, 10, "bad-link")]);
  assert.equal(check.okCount, 1);
});

Deno.test("verify pool: a re-signed block whose body does not match its payload root fails here", () => {
  const check = checkEncodedBlocks(f.genesisHash, 10, [
    f.encoded[9],
    corruptAt(f, 11, "bad-payload-root"),
  ]);
  assert.deepEqual(check.failure, { index: 1, reason: "bad-payload-root" });
  assert.equal(check.okCount, 1);
});

Deno.test("verify pool: passing blocks come back as their bytes and hashes, in one buffer per chunk", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 2, chunkBlocks: 7 });
  try {
    const check = await pool.verify(1, f.encoded.slice(0, 30));
    assert.equal(check.blocks.length, 30);
    check.blocks.forEach((b, i) => {
      assert.deepEqual(b.encoded, f.encoded[i]);
      assert.deepEqual(b.hash, blockHash(decodeCommittedBlock(b.encoded).block.header));
    });
    // No per-block copies on the way back: a chunk's blocks are views into the buffer the
    // worker returned, which is not the caller's.
    const first = check.blocks[0];
    assert.equal(check.blocks[6].encoded.buffer, first.encoded.buffer);
    assert.notEqual(check.blocks[7].encoded.buffer, first.encoded.buffer);
    assert.notEqual(first.encoded.buffer, f.encoded[0].buffer);
  } finally {
    pool.close();
  }
});

Deno.test("verify pool: decoding as views points into the bytes, and decodes the same block", () => {
  const bytes = f.encoded[3].slice();
  const viewed = decodeCommittedBlock(bytes, "view");
  assert.equal(viewed.block.header.chainId.buffer, bytes.buffer);
  assert.equal(viewed.certificate.signatures[0].signature.buffer, bytes.buffer);
  const copied = decodeCommittedBlock(bytes);
  assert.notEqual(copied.block.header.chainId.buffer, bytes.buffer);
  assert.deepEqual(viewed, copied);
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

Deno.test("verify pool: a commit is verified from its header alone, whatever the block's body", async () => {
  const pool = new VerifyPool({ genesisHash: f.genesisHash, workers: 1 });
  try {
    // Block 5 has a body (and a last commit): the worker must not ask for it, only the hash
    // its votes sign (the regression: a header with an empty body failed its payload root).
    const cb = decodeCommittedBlock(f.encoded[4]);
    assert.ok(cb.block.lastCommit, "the fixture's blocks carry a last commit");
    assert.equal(await pool.verifyCommit(cb.block.header, cb.certificate), true);
    const forged = structuredClone(cb.certificate);
    forged.signatures[0].signature[0] ^= 1;
    assert.equal(await pool.verifyCommit(cb.block.header, forged), false);
    const other = decodeCommittedBlock(f.encoded[5]);
    assert.equal(await pool.verifyCommit(other.block.header, cb.certificate), false);
    const twice = structuredClone(cb.certificate);
    twice.signatures.push(twice.signatures[0]);
    assert.equal(await pool.verifyCommit(cb.block.header, twice), false);
  } finally {
    pool.close();
  }
});
