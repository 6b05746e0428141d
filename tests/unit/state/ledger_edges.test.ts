/**
 * Two ledger edges of the state machine (state/state.ts) that mutation testing found unpinned
 * (docs/testing.md, third pass): a body of exactly `maxBlockBytes` is accepted (one byte more
 * is not), and `apply` tells the verified-transaction cache of every signature it checked.
 */
import assert from "node:assert/strict";
import type { BlockRecord } from "../../../chain/block.ts";
import { bodySize } from "../../../chain/verify.ts";
import { createStateMachine } from "../../../state/state.ts";
import { RecordType } from "../../../state/records.ts";
import { transactionIdHex } from "../../../state/transaction.ts";
import { StakeChain, stakeGenesis } from "./stake_support.ts";

const MAX_RECORD_BYTES = 65_536;

/** Data records whose block body is exactly `size` bytes. */
function dataRecordsOfBody(size: number): BlockRecord[] {
  const record = (n: number): BlockRecord => ({
    type: RecordType.Data,
    data: new Uint8Array(n),
  });
  const perRecord = bodySize([record(0)], []) - bodySize([], []);
  const records: BlockRecord[] = [];
  while (bodySize([...records, record(MAX_RECORD_BYTES)], []) <= size) {
    records.push(record(MAX_RECORD_BYTES));
  }
  records.push(record(size - bodySize(records, []) - perRecord));
  assert.equal(bodySize(records, []), size);
  return records;
}

Deno.test("ledger edges: a body of exactly maxBlockBytes is accepted, one byte more is not", () => {
  const c = new StakeChain();
  c.apply();
  const max = c.sm.ledger.maxBlockBytes;
  assert.equal(max, 2 * 1024 * 1024, "the default limit, 2 MiB");
  assert.equal(c.refusal({ records: dataRecordsOfBody(max) }), "accepted");
  assert.match(
    c.refusal({ records: dataRecordsOfBody(max + 1) }),
    /body of 2097153 bytes exceeds maxBlockBytes 2097152/,
  );
});

Deno.test("ledger edges: apply tells the verified cache of each signature it checked", () => {
  const added: string[] = [];
  const verified = { has: () => false, add: (id: string) => added.push(id) };
  const c = new StakeChain(stakeGenesis());
  // The same chain, with a state machine that has the cache.
  const sm = createStateMachine(c.genesis, { verified });
  c.apply();
  const tx = c.transfer("alice", "bob", 5n);
  sm.apply(c.view, c.block({ transactions: [tx] }));
  assert.deepEqual(added, [transactionIdHex(tx)]);
  // Verified for the caller already: nothing is checked, so nothing is added.
  added.length = 0;
  sm.apply(c.view, c.block({ transactions: [tx] }), {
    signaturesVerified: true,
  });
  assert.deepEqual(added, []);
});
