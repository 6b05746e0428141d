import assert from "node:assert/strict";
import { DecodeError } from "../../../encoding/binary.ts";
import { sha256 } from "../../../crypto/hash.ts";
import {
  checkTxStateless,
  decodeTransaction,
  encodeTransaction,
  MAX_TX_BYTES,
  STATELESS_REASONS,
  transactionIdHex,
  TxInvalidError,
  type TxRejectReason,
  type TxRules,
} from "../../../state/transaction.ts";
import { randomInt, SeededRandom } from "../../../network/random.ts";
import { GENESIS_HASH, transfer } from "./ledger_support.ts";

const RULES: TxRules = { genesisHash: GENESIS_HASH, minFeePerByte: 10n };

function reasonOf(bytes: Uint8Array): TxRejectReason | "ok" {
  try {
    checkTxStateless(RULES, bytes);
    return "ok";
  } catch (e) {
    if (e instanceof TxInvalidError) return e.reason;
    throw e;
  }
}

Deno.test("transaction: encode/decode round trip, id is the hash of the encoding", () => {
  const bytes = transfer("alice", "bob", { memo: new TextEncoder().encode("invoice 7") });
  const tx = decodeTransaction(bytes);
  assert.equal(tx.nonce, 0);
  assert.equal(tx.amount, 100_000_000n);
  assert.deepEqual(encodeTransaction(tx), bytes);
  assert.equal(transactionIdHex(bytes).length, 64);
  assert.equal(reasonOf(bytes), "ok");
  const big = transfer("alice", "bob", { amount: (1n << 128n) - 1n, memo: new Uint8Array(80) });
  assert.equal(big.length, MAX_TX_BYTES);
  assert.equal(decodeTransaction(big).amount, (1n << 128n) - 1n);
});

Deno.test("transaction: each stateless rule has its own reason", () => {
  assert.equal(reasonOf(new Uint8Array([1, 2, 3])), "malformed");
  const good = transfer("alice", "bob");
  assert.equal(reasonOf(new Uint8Array([...good, 0])), "malformed");
  const v2 = good.slice();
  v2[0] = 2;
  assert.equal(reasonOf(v2), "malformed");
  const other = sha256(new TextEncoder().encode("other chain"));
  assert.equal(reasonOf(transfer("alice", "bob", { genesisHash: other })), "wrong-chain");
  assert.equal(reasonOf(transfer("alice", "bob", { memo: new Uint8Array(81) })), "memo-too-long");
  assert.equal(reasonOf(transfer("alice", "bob", { fee: 1_649n })), "fee-too-low");
  assert.equal(reasonOf(transfer("alice", "bob", { fee: 1_650n })), "ok");
  const forged = good.slice();
  forged[forged.length - 1] ^= 1;
  assert.equal(reasonOf(forged), "bad-signature");
  const tampered = good.slice();
  tampered[60] ^= 1; // inside the amount: the signature no longer covers it
  assert.equal(reasonOf(tampered), "bad-signature");
  for (const r of ["malformed", "wrong-chain", "memo-too-long", "fee-too-low", "bad-signature"]) {
    assert.ok(STATELESS_REASONS.has(r as TxRejectReason));
  }
  assert.ok(!STATELESS_REASONS.has("nonce-used"));
});

Deno.test("transaction: seeded fuzz of the decoder never throws anything but DecodeError", () => {
  const rng = new SeededRandom(0x7a11);
  const int = (n: number) => randomInt(rng, n);
  const seeds = [transfer("alice", "bob"), transfer("bob", "alice", { memo: new Uint8Array(40) })];
  for (let i = 0; i < 20_000; i++) {
    const base = seeds[i % seeds.length];
    let bytes: Uint8Array;
    switch (i % 4) {
      case 0: // flip bits
        bytes = base.slice();
        for (let k = 0; k < 1 + int(4); k++) {
          bytes[int(bytes.length)] ^= 1 << int(8);
        }
        break;
      case 1: // truncate
        bytes = base.slice(0, int(base.length));
        break;
      case 2: // extend
        bytes = new Uint8Array([...base, ...rng.bytes(1 + int(8))]);
        break;
      default: // noise
        bytes = rng.bytes(int(300));
    }
    try {
      const tx = decodeTransaction(bytes);
      // What decodes re-encodes to the very same bytes: the encoding is canonical.
      assert.deepEqual(encodeTransaction(tx), bytes);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
    const r = reasonOf(bytes);
    if (r !== "ok") assert.ok(STATELESS_REASONS.has(r));
  }
});
