import assert from "node:assert/strict";
import { keyPairFromSeed } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { ByteWriter, DecodeError } from "../../../encoding/binary.ts";
import {
  decodeRecord,
  RecordType,
  recordTypeName,
  type Registration,
  signDeregistration,
  signRegistration,
  verifyRecordSignature,
} from "../../../state/records.ts";

const text = new TextEncoder();
const key = keyPairFromSeed(sha256(text.encode("records-test/key")));
const otherKey = keyPairFromSeed(sha256(text.encode("records-test/other")));
const chainA = sha256(text.encode("chain-a"));
const chainB = sha256(text.encode("chain-b"));

function registration(overrides: Partial<Parameters<typeof signRegistration>[1]> = {}) {
  return signRegistration(key, {
    genesisHash: chainA,
    nonce: 3,
    expiresAt: 1_000,
    rewardAddress: "reward-addr",
    address: "127.0.0.1:24100",
    ...overrides,
  });
}

Deno.test("registration round-trips and verifies for its chain only", () => {
  const rec = registration();
  assert.equal(rec.type, RecordType.Registration);
  const decoded = decodeRecord(rec) as Registration;
  assert.equal(decoded.type, RecordType.Registration);
  assert.deepEqual(decoded.nodeId, key.publicKey);
  assert.equal(decoded.nonce, 3);
  assert.equal(decoded.expiresAt, 1_000);
  assert.equal(decoded.tier, "free");
  assert.equal(decoded.rewardAddress, "reward-addr");
  assert.equal(decoded.address, "127.0.0.1:24100");
  assert.equal(verifyRecordSignature(chainA, decoded), true);
  assert.equal(verifyRecordSignature(chainB, decoded), false);
});

Deno.test("deregistration round-trips and verifies", () => {
  const rec = signDeregistration(key, { genesisHash: chainA, nonce: 7, expiresAt: 99 });
  const decoded = decodeRecord(rec);
  assert.equal(decoded.type, RecordType.Deregistration);
  assert.equal(decoded.nonce, 7);
  assert.equal(decoded.expiresAt, 99);
  assert.equal(verifyRecordSignature(chainA, decoded), true);
});

Deno.test("a paid tier is representable (the state machine, not the codec, refuses it)", () => {
  const decoded = decodeRecord(registration({ tier: "gold" })) as Registration;
  assert.equal(decoded.tier, "gold");
});

Deno.test("every single-bit change of a registration is refused by decode or signature", () => {
  const rec = registration();
  for (let i = 0; i < rec.data.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const data = rec.data.slice();
      data[i] ^= bit;
      let valid = false;
      try {
        valid = verifyRecordSignature(chainA, decodeRecord({ type: rec.type, data }));
      } catch (e) {
        assert.ok(e instanceof DecodeError, `byte ${i}: ${e}`);
      }
      assert.equal(valid, false, `flipping bit ${bit} of byte ${i} still verified`);
    }
  }
});

Deno.test("a signature does not carry over to another nonce, expiry or node", () => {
  const dereg = decodeRecord(
    signDeregistration(key, { genesisHash: chainA, nonce: 0, expiresAt: 9 }),
  );
  assert.equal(verifyRecordSignature(chainA, { ...dereg, nonce: 1 }), false);
  assert.equal(verifyRecordSignature(chainA, { ...dereg, expiresAt: 10 }), false);
  assert.equal(verifyRecordSignature(chainA, { ...dereg, nodeId: otherKey.publicKey }), false);
});

Deno.test("decode is strict: trailing, truncated, unknown type and wrong-type data fail", () => {
  const rec = registration();
  const trailing = new Uint8Array(rec.data.length + 1);
  trailing.set(rec.data);
  assert.throws(() => decodeRecord({ type: rec.type, data: trailing }), DecodeError);
  assert.throws(
    () => decodeRecord({ type: rec.type, data: rec.data.subarray(0, rec.data.length - 1) }),
    DecodeError,
  );
  assert.throws(() => decodeRecord({ type: 0, data: rec.data }), DecodeError);
  assert.throws(() => decodeRecord({ type: 200, data: rec.data }), DecodeError);
  assert.throws(
    () => decodeRecord({ type: RecordType.Deregistration, data: rec.data }),
    DecodeError,
  );
  assert.throws(() => decodeRecord({ type: rec.type, data: new Uint8Array(0) }), DecodeError);
  assert.equal(recordTypeName(200), "unknown(200)");
  assert.equal(recordTypeName(RecordType.Deregistration), "deregistration");
});

/** Hand-built registration data, to reach field values the signer refuses to produce. */
function rawRegistration(tierIndex: number, rewardAddress: string, address: string): Uint8Array {
  return new ByteWriter().fixed(key.publicKey, 32).u64(0).u64(10).u8(tierIndex)
    .string(rewardAddress).string(address).fixed(new Uint8Array(64), 64).finish();
}

Deno.test("decode refuses bad field values", () => {
  const type = RecordType.Registration;
  assert.ok(decodeRecord({ type, data: rawRegistration(0, "r", "a") }));
  assert.throws(() => decodeRecord({ type, data: rawRegistration(4, "r", "a") }), /unknown tier/);
  assert.throws(() => decodeRecord({ type, data: rawRegistration(0, "", "a") }), /empty/);
  assert.throws(() => decodeRecord({ type, data: rawRegistration(0, "r", "") }), /empty/);
  assert.throws(() => decodeRecord({ type, data: rawRegistration(0, "r\n", "a") }), /control/);
  assert.throws(
    () => decodeRecord({ type, data: rawRegistration(0, "r".repeat(129), "a") }),
    /exceeds bound/,
  );
  assert.throws(
    () => decodeRecord({ type, data: rawRegistration(0, "r", "a".repeat(65)) }),
    /exceeds bound/,
  );
  // A length prefix far beyond the data must fail cleanly, not allocate.
  const huge = new ByteWriter().fixed(key.publicKey, 32).u64(0).u64(10).u8(0).u32(0xffffffff)
    .finish();
  assert.throws(() => decodeRecord({ type, data: huge }), DecodeError);
});

Deno.test("signers refuse to produce undecodable records", () => {
  assert.throws(() => registration({ rewardAddress: "" }), RangeError);
  assert.throws(() => registration({ address: "x".repeat(65) }), RangeError);
  assert.throws(() => registration({ nonce: -1 }), RangeError);
});
