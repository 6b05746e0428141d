import assert from "node:assert/strict";
import { MAX_POOL_RECORDS, recordId, RecordPool } from "../../../state/record_pool.ts";
import type { BlockRecord } from "../../../chain/block.ts";

const rec = (n: number): BlockRecord => ({ type: 3, data: new Uint8Array([n & 0xff, n >> 8]) });
const accept = () => {};

Deno.test("records are pooled once, in arrival order, and relayed only when new", () => {
  const pool = new RecordPool();
  assert.equal(pool.add(rec(1), accept), "added");
  assert.equal(pool.add(rec(1), accept), "duplicate");
  assert.equal(pool.add(rec(2), accept), "added");
  assert.deepEqual(pool.select(accept), [rec(1), rec(2)]);
  assert.ok(pool.has(recordId(rec(2))));
});

Deno.test("invalid records are refused with the state machine's reason", () => {
  const pool = new RecordPool();
  const r = pool.add(rec(1), () => {
    throw new Error("nonce 3, expected 0");
  });
  assert.deepEqual(r, { invalid: "nonce 3, expected 0" });
  assert.equal(pool.size, 0);
});

Deno.test("select keeps only records that still apply together", () => {
  const pool = new RecordPool();
  for (let i = 0; i < 5; i++) pool.add(rec(i), accept);
  // A check that refuses any set containing both record 1 and record 3 (say, one node's two
  // registrations): the later one waits.
  const check = (rs: readonly BlockRecord[]) => {
    const ids = rs.map((r) => r.data[0]);
    if (ids.includes(1) && ids.includes(3)) throw new Error("conflict");
  };
  assert.deepEqual(pool.select(check).map((r) => r.data[0]), [0, 1, 2, 4]);
});

Deno.test("after a block, included and now-invalid records leave the pool", () => {
  const pool = new RecordPool();
  for (let i = 0; i < 4; i++) pool.add(rec(i), accept);
  const dropped = pool.revalidate([rec(0)], (rs) => {
    if (rs[0].data[0] === 2) throw new Error("expired");
  });
  assert.equal(dropped, 1);
  assert.deepEqual(pool.select(accept).map((r) => r.data[0]), [1, 3]);
  assert.equal(pool.bytes, 4);
});

Deno.test("the pool is bounded", () => {
  const pool = new RecordPool();
  for (let i = 0; i < MAX_POOL_RECORDS; i++) assert.equal(pool.add(rec(i), accept), "added");
  assert.equal(pool.add(rec(MAX_POOL_RECORDS), accept), "full");
  assert.equal(pool.size, MAX_POOL_RECORDS);
});
