/**
 * The transaction codec and stateless rules at their exact edges (state/transaction.ts): the
 * documented sizes as literal numbers, each encoder refusal one past its bound, the decoder's
 * refusals with the message it gives, the signed bytes' layout (domain tag, genesis hash, body),
 * and each stateless refusal at its boundary with its detail. Written because mutation testing
 * found these unpinned (docs/testing.md).
 */
import assert from "node:assert/strict";
import { DecodeError, toHex } from "../../../encoding/binary.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { verifySignature } from "../../../crypto/ed25519.ts";
import {
  chainTagOf,
  checkTxFormat,
  checkTxStateless,
  decodeTransaction,
  encodeTransaction,
  MAX_DECODED_TX_BYTES,
  MAX_TX_BYTES,
  minimumFee,
  type Transaction,
  transactionId,
  transactionIdHex,
  transactionIdsOf,
  transferSize,
  TX_LIMITS,
  TX_VERSION,
  TxInvalidError,
  type TxRules,
  txSignBytes,
  verifyTxSignature,
} from "../../../state/transaction.ts";
import { GENESIS_HASH, transfer, walletKey } from "./ledger_support.ts";

const RULES: TxRules = { genesisHash: GENESIS_HASH, minFeePerByte: 10n };
const U64_MAX = 18_446_744_073_709_551_615n;
const U128_MAX = 340_282_366_920_938_463_463_374_607_431_768_211_455n;

function sample(change: Partial<Transaction> = {}): Transaction {
  return { ...decodeTransaction(transfer("alice", "bob")), ...change };
}

function refusal(run: () => unknown): { reason: string; message: string } | "ok" {
  try {
    run();
    return "ok";
  } catch (e) {
    if (e instanceof TxInvalidError) return { reason: e.reason, message: e.message };
    throw e;
  }
}

Deno.test("transaction rules: the documented sizes, as literal numbers", () => {
  assert.equal(TX_VERSION, 1);
  assert.equal(TX_LIMITS.maxMemoBytes, 80);
  assert.equal(TX_LIMITS.maxDecodedMemoBytes, 256);
  assert.equal(TX_LIMITS.chainTagBytes, 4);
  assert.equal(MAX_TX_BYTES, 245);
  assert.equal(MAX_DECODED_TX_BYTES, 421);
  assert.equal(transferSize(0), 165);
  assert.equal(transferSize(80), 245);
  assert.equal(transfer("alice", "bob").length, 165);
  assert.equal(transfer("alice", "bob", { memo: new Uint8Array(7) }).length, 172);
});

Deno.test("transaction rules: the byte layout of every field", () => {
  const tx = sample({
    nonce: 0x0102_0304,
    amount: (0x0a0b_0c0dn << 64n) | 0x1122_3344_5566_7788n,
    fee: 0x99n,
    expiresAt: 0x0506,
    memo: new Uint8Array([0xaa, 0xbb]),
  });
  const bytes = encodeTransaction(tx);
  assert.equal(bytes[0], 1, "version");
  assert.deepEqual(bytes.subarray(1, 5), GENESIS_HASH.subarray(0, 4), "chain tag");
  assert.deepEqual(bytes.subarray(5, 37), walletKey("alice").publicKey, "sender");
  assert.deepEqual(bytes.subarray(45, 65), tx.recipient, "recipient");
  assert.deepEqual(bytes.subarray(97, 101), new Uint8Array([2, 0, 0, 0]), "memo length");
  assert.deepEqual(bytes.subarray(101, 103), tx.memo, "memo");
  assert.deepEqual(bytes.subarray(103), tx.signature, "signature last");
  const back = decodeTransaction(bytes);
  assert.equal(back.nonce, 0x0102_0304);
  assert.equal(back.amount, tx.amount, "both halves of the u128 amount");
  assert.equal(back.fee, 0x99n);
  assert.equal(back.expiresAt, 0x0506);
  assert.deepEqual(back.memo, tx.memo);
  // Only the low half, then only the high half: each lands in its own eight bytes.
  const low = encodeTransaction(sample({ amount: 5n }));
  const high = encodeTransaction(sample({ amount: 5n << 64n }));
  assert.notDeepEqual(low.subarray(65, 73), new Uint8Array(8));
  assert.deepEqual(low.subarray(73, 81), new Uint8Array(8));
  assert.deepEqual(high.subarray(65, 73), new Uint8Array(8));
  assert.equal(decodeTransaction(low).amount, 5n);
  assert.equal(decodeTransaction(high).amount, 5n << 64n);
});

Deno.test("transaction rules: the encoder refuses each value one past its bound", () => {
  assert.doesNotThrow(() => encodeTransaction(sample({ amount: U128_MAX })));
  assert.doesNotThrow(() => encodeTransaction(sample({ amount: 0n })));
  assert.throws(() => encodeTransaction(sample({ amount: U128_MAX + 1n })), /amount out of range/);
  assert.throws(() => encodeTransaction(sample({ amount: -1n })), /amount out of range/);
  assert.equal(decodeTransaction(encodeTransaction(sample({ fee: U64_MAX }))).fee, U64_MAX);
  assert.doesNotThrow(() => encodeTransaction(sample({ fee: 0n })));
  assert.throws(() => encodeTransaction(sample({ fee: U64_MAX + 1n })), /fee out of range/);
  assert.throws(() => encodeTransaction(sample({ fee: -1n })), /fee out of range/);
  const longest = encodeTransaction(sample({ memo: new Uint8Array(256) }));
  assert.equal(longest.length, 421);
  assert.throws(() => encodeTransaction(sample({ memo: new Uint8Array(257) })), /memo too long/);
});

Deno.test("transaction rules: the decoder refuses with the reason it gives", () => {
  const longest = encodeTransaction(sample({ memo: new Uint8Array(256) }));
  assert.equal(decodeTransaction(longest).memo.length, 256, "421 bytes decode");
  assert.throws(
    () => decodeTransaction(new Uint8Array(422)),
    (e) => e instanceof DecodeError && /transaction of 422 bytes exceeds 421/.test(e.message),
  );
  const v0 = transfer("alice", "bob");
  v0[0] = 0;
  assert.throws(() => decodeTransaction(v0), /unknown transaction version 0/);
  // A memo length of 257 inside a short input: refused by its bound, not by running out.
  const memo257 = encodeTransaction(sample({ memo: new Uint8Array(0) }));
  memo257.set([1, 1, 0, 0], 97);
  assert.throws(() => decodeTransaction(memo257), /length 257 exceeds bound 256/);
  assert.throws(() => decodeTransaction(new Uint8Array([...transfer("a", "b"), 9])), /trailing/);
});

Deno.test("transaction rules: a decoded transaction does not share the input's bytes", () => {
  // The mempool keeps decoded transactions while the network reuses its read buffers.
  const bytes = transfer("alice", "bob", { memo: new Uint8Array([1, 2, 3]) });
  const tx = decodeTransaction(bytes);
  const before = structuredClone(tx);
  bytes.fill(0xee);
  assert.deepEqual(tx, before);
});

Deno.test("transaction rules: the id is SHA-256 of the whole encoding", () => {
  const bytes = transfer("alice", "bob");
  assert.deepEqual(transactionId(bytes), sha256(bytes));
  const hex = [...sha256(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(transactionIdHex(bytes), hex);
});

Deno.test("transaction rules: the signed bytes are the domain tag, the genesis hash, then the body", () => {
  const bytes = transfer("alice", "bob", { memo: new Uint8Array([4, 5]) });
  const tx = decodeTransaction(bytes);
  const signed = txSignBytes(GENESIS_HASH, tx);
  const domain = new TextEncoder().encode("timenode/tx/v1");
  const body = bytes.subarray(0, bytes.length - 64);
  assert.deepEqual(signed, new Uint8Array([...domain, ...GENESIS_HASH, ...body]));
  assert.ok(verifySignature(tx.sender, signed, tx.signature));
  assert.ok(verifyTxSignature(GENESIS_HASH, tx));
  const other = sha256(new TextEncoder().encode("another chain"));
  assert.ok(!verifyTxSignature(other, tx), "the genesis hash is signed, not only its tag");
});

Deno.test("transaction rules: the chain tag is the genesis hash's first four bytes", () => {
  assert.deepEqual(chainTagOf(GENESIS_HASH), GENESIS_HASH.subarray(0, 4));
  assert.deepEqual(decodeTransaction(transfer("alice", "bob")).chainTag, chainTagOf(GENESIS_HASH));
  // Same tag, other hash: the format check passes, the signature does not.
  const sameTag = GENESIS_HASH.slice();
  sameTag[31] ^= 1;
  const forged = transfer("alice", "bob", { genesisHash: sameTag });
  assert.doesNotThrow(() => checkTxFormat(RULES, forged));
  assert.equal(
    (refusal(() => checkTxStateless(RULES, forged)) as { reason: string }).reason,
    "bad-signature",
  );
});

Deno.test("transaction rules: each stateless refusal at its edge, with its detail", () => {
  const wrongChain = transfer("alice", "bob", { genesisHash: new Uint8Array(32).fill(0xab) });
  assert.deepEqual(refusal(() => checkTxFormat(RULES, wrongChain)), {
    reason: "wrong-chain",
    message: "wrong-chain: signed for chain abababab…",
  });
  assert.equal(
    refusal(() =>
      checkTxStateless(
        RULES,
        transfer("alice", "bob", {
          memo: new Uint8Array(80),
        }),
      )
    ),
    "ok",
  );
  assert.deepEqual(
    refusal(() => checkTxFormat(RULES, transfer("alice", "bob", { memo: new Uint8Array(81) }))),
    { reason: "memo-too-long", message: "memo-too-long: memo of 81 bytes exceeds 80" },
  );
  // 165 bytes at 10 per byte: 1,650 is the minimum.
  assert.equal(minimumFee(RULES, 165), 1_650n);
  assert.equal(minimumFee({ ...RULES, minFeePerByte: 3n }, 200), 600n);
  assert.equal(refusal(() => checkTxStateless(RULES, transfer("a", "b", { fee: 1_650n }))), "ok");
  assert.deepEqual(refusal(() => checkTxFormat(RULES, transfer("a", "b", { fee: 1_649n }))), {
    reason: "fee-too-low",
    message: "fee-too-low: fee 1649 below the minimum 1650",
  });
  const bad = transfer("alice", "bob");
  bad[bad.length - 1] ^= 1;
  assert.deepEqual(refusal(() => checkTxStateless(RULES, bad)), {
    reason: "bad-signature",
    message: "bad-signature: the signature does not verify",
  });
  assert.doesNotThrow(() => checkTxFormat(RULES, bad), "the format check leaves signatures out");
  const malformed = refusal(() => checkTxFormat(RULES, new Uint8Array([1, 2])));
  assert.equal((malformed as { reason: string }).reason, "malformed");
  assert.match((malformed as { message: string }).message, /^malformed: /);
});

Deno.test("transaction rules: a transfer without a memo carries an empty one", () => {
  const tx = decodeTransaction(transfer("alice", "bob"));
  assert.equal(tx.memo.length, 0);
  assert.equal(tx.version, 1);
  assert.equal(tx.expiresAt, 1_000);
});

Deno.test("transaction rules: only a decoding failure is a malformed transaction", () => {
  // A refusal is named for logs and metrics; anything else (a bug on our side, not the peer's
  // fault) propagates as it is instead of being charged to the sender as "malformed".
  try {
    checkTxFormat(RULES, new Uint8Array([1]));
    assert.fail("refused");
  } catch (e) {
    assert.ok(e instanceof TxInvalidError);
    assert.equal(e.name, "TxInvalidError");
  }
  assert.throws(
    () => checkTxFormat(RULES, undefined as unknown as Uint8Array),
    (e) => e instanceof TypeError,
  );
});

Deno.test("transaction rules: a block's transaction ids are each encoding's SHA-256, in block order", () => {
  const txs = [
    transfer("alice", "bob"),
    transfer("bob", "carol", { nonce: 3 }),
    transfer("carol", "alice"),
  ];
  const ids = transactionIdsOf(txs);
  assert.deepEqual(ids, txs.map((tx) => toHex(sha256(tx))));
  // Asked again for the same list (prepare, judge, commit, pool): the same ids.
  assert.deepEqual(transactionIdsOf(txs), ids);
  assert.deepEqual(transactionIdsOf([]), []);
});
