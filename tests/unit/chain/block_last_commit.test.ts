/**
 * The `lastCommit` of a block body: its encoding round trips, the block hash commits to it, and
 * decoding refuses every non-canonical or oversized form.
 */
import assert from "node:assert/strict";
import {
  type Block,
  blockHash,
  blockPayloadRoot,
  type Certificate,
  CHAIN_LIMITS,
  decodeBlock,
  decodeCommittedBlock,
  encodeBlock,
  encodeCommittedBlock,
  lastCommitDigest,
  payloadRoot,
  sortedCommit,
} from "../../../chain/block.ts";
import { DecodeError } from "../../../encoding/binary.ts";
import { ZERO_HASH } from "../../../crypto/hash.ts";
import { ChainBuilder } from "../../support/chain_builder.ts";

const builder = ChainBuilder.create({ validators: 4 });
const [first, second] = builder.build(2);
const block2 = second.cb.block;
const lastCommit = block2.lastCommit!;

/** `block2` with `commit` as its last commit, payload root matching (order kept as given). */
function withCommit(commit: Certificate): Block {
  const header = { ...block2.header, payloadRoot: payloadRoot(block2.records, [], commit) };
  return { header, records: block2.records, lastCommit: commit };
}

function refused(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeBlock(bytes), (e) => {
    assert.ok(e instanceof DecodeError, String(e));
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("last commit: block 1 has none, block 2 carries block 1's signers sorted by node id", () => {
  assert.equal(first.cb.block.lastCommit, undefined);
  assert.equal(lastCommit.height, 1);
  assert.deepEqual(lastCommit.blockHash, first.hash);
  assert.deepEqual(lastCommit, sortedCommit(first.cb.certificate));
  assert.equal(lastCommit.signatures.length, 4);
});

Deno.test("last commit: blocks and committed blocks round trip with and without it", () => {
  assert.deepEqual(decodeBlock(encodeBlock(first.cb.block)), first.cb.block);
  assert.deepEqual(decodeBlock(encodeBlock(block2)), block2);
  assert.deepEqual(decodeCommittedBlock(second.encoded), second.cb);
  assert.deepEqual(decodeCommittedBlock(encodeCommittedBlock(second.cb)), second.cb);
});

Deno.test("last commit: the payload root, and so the block hash, commits to it", () => {
  assert.deepEqual(lastCommitDigest(undefined), ZERO_HASH);
  assert.deepEqual(blockPayloadRoot(block2), block2.header.payloadRoot);
  const fewer = { ...lastCommit, signatures: lastCommit.signatures.slice(1) };
  const other = withCommit(fewer);
  assert.notDeepEqual(other.header.payloadRoot, block2.header.payloadRoot);
  assert.notDeepEqual(blockHash(other.header), second.hash);
  // Without it the root differs too: the commit cannot be stripped from a block.
  assert.notDeepEqual(payloadRoot(block2.records, []), block2.header.payloadRoot);
});

Deno.test("last commit: signers out of order are refused by the decoder", () => {
  const sigs = lastCommit.signatures;
  const swapped = { ...lastCommit, signatures: [sigs[1], sigs[0], ...sigs.slice(2)] };
  refused(encodeBlock(withCommit(swapped)), /not sorted and unique/);
});

Deno.test("last commit: a repeated signer is refused by the decoder", () => {
  const sigs = lastCommit.signatures;
  const repeated = { ...lastCommit, signatures: [sigs[0], sigs[0], ...sigs.slice(1)] };
  refused(encodeBlock(withCommit(repeated)), /not sorted and unique/);
});

Deno.test("last commit: more signatures than the largest set are refused before reading them", () => {
  const many = Array.from({ length: CHAIN_LIMITS.maxValidators + 1 }, (_, i) => {
    const validator = new Uint8Array(32);
    new DataView(validator.buffer).setUint32(28, i);
    return { validator, signature: new Uint8Array(64) };
  });
  refused(encodeBlock(withCommit({ ...lastCommit, signatures: many })), /exceeds bound 1000/);
});

Deno.test("last commit: trailing bytes, a bad presence flag and truncation are refused", () => {
  const bytes = encodeBlock(block2);
  refused(new Uint8Array([...bytes, 0]), /trailing/);
  refused(bytes.subarray(0, bytes.length - 1), /truncated/);
  const none = encodeBlock(first.cb.block);
  const badFlag = none.slice();
  badFlag[badFlag.length - 1] = 2;
  refused(badFlag, /invalid last commit flag 2/);
  refused(none.subarray(0, none.length - 1), /truncated/);
});
