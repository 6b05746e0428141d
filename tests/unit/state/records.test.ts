import assert from "node:assert/strict";
import { keyPairFromSeed, signBytes } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { ByteWriter, DecodeError } from "../../../encoding/binary.ts";
import { voteSignBytes, VoteType } from "../../../chain/block.ts";
import {
  assembleCollateralRegistration,
  collateralRegistrationSignBytes,
  decodeRecord,
  RecordType,
  recordTypeName,
  type Registration,
  signCollateralRegistration,
  signDeregistration,
  signRegistration,
  signUnjail,
  verifyOwnerSignature,
  verifyRecordSignature,
} from "../../../state/records.ts";
import {
  decodeEvidence,
  evidenceRecord,
  verifyEvidenceSignatures,
} from "../../../state/evidence.ts";

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

Deno.test("records: a collateral registration signed in two steps equals the one-step form", () => {
  const node = keyPairFromSeed(new Uint8Array(32).fill(0x41));
  const owner = keyPairFromSeed(new Uint8Array(32).fill(0x42));
  const genesisHash = new Uint8Array(32).fill(9);
  const p = {
    genesisHash,
    nonce: 3,
    expiresAt: 50,
    tier: "silver" as const,
    rewardAddress: "reward",
    address: "10.0.0.1:1",
    owner: "owner-address",
  };
  const oneStep = signCollateralRegistration(node, owner, p);
  const full = { ...p, nodeId: node.publicKey, ownerKey: owner.publicKey };
  const bytes = collateralRegistrationSignBytes(full);
  const twoStep = assembleCollateralRegistration(
    full,
    signBytes(node, bytes),
    signBytes(owner, bytes),
  );
  assert.deepEqual(twoStep, oneStep);
  assert.equal(oneStep.type, RecordType.CollateralRegistration);
  const decoded = decodeRecord(oneStep);
  assert.equal(decoded.type, RecordType.CollateralRegistration);
  if (decoded.type !== RecordType.CollateralRegistration) return;
  assert.equal(decoded.tier, "silver");
  assert.equal(decoded.owner, "owner-address");
  assert.ok(verifyRecordSignature(genesisHash, decoded));
  assert.ok(verifyOwnerSignature(genesisHash, decoded));
  assert.ok(!verifyOwnerSignature(new Uint8Array(32), decoded), "bound to the chain");
  // Strict: free tier, a missing owner signature, trailing bytes.
  const tierAt = 32 + 8 + 8;
  const free = oneStep.data.slice();
  free[tierAt] = 0;
  assert.throws(() => decodeRecord({ type: 4, data: free }), /not a paid tier/);
  assert.throws(() => decodeRecord({ type: 4, data: oneStep.data.subarray(0, -64) }));
  const longer = new Uint8Array(oneStep.data.length + 1);
  longer.set(oneStep.data);
  assert.throws(() => decodeRecord({ type: 4, data: longer }));
});

Deno.test("records: unjail round-trips; evidence has one canonical encoding", () => {
  const node = keyPairFromSeed(new Uint8Array(32).fill(0x43));
  const genesisHash = new Uint8Array(32).fill(9);
  const unjail = signUnjail(node, { genesisHash, nonce: 1, expiresAt: 9 });
  assert.equal(recordTypeName(unjail.type), "unjail");
  assert.ok(verifyRecordSignature(genesisHash, decodeRecord(unjail)));
  const vote = (byte: number) => {
    const blockHash = new Uint8Array(32).fill(byte);
    return {
      type: VoteType.Prevote,
      height: 4,
      round: 1,
      blockHash,
      validator: node.publicKey,
      signature: signBytes(node, voteSignBytes(genesisHash, VoteType.Prevote, 4, 1, blockHash)),
    };
  };
  const ab = evidenceRecord(vote(1), vote(2));
  const ba = evidenceRecord(vote(2), vote(1));
  assert.deepEqual(ab, ba);
  assert.equal(recordTypeName(ab.type), "evidence");
  const decoded = decodeEvidence(ab);
  assert.ok(verifyEvidenceSignatures(genesisHash, decoded));
  assert.ok(!verifyEvidenceSignatures(new Uint8Array(32), decoded));
  // Swapped halves on the wire are refused, so one offence can't be included twice as two records.
  const halfStart = 1 + 32 + 8 + 4 + 1;
  const half = 32 + 64;
  const swapped = ab.data.slice();
  swapped.set(ab.data.subarray(halfStart + half, halfStart + 2 * half), halfStart);
  swapped.set(ab.data.subarray(halfStart, halfStart + half), halfStart + half);
  assert.throws(() => decodeEvidence({ type: 6, data: swapped }), /ascending/);
  assert.throws(() => decodeRecord(ab), /unknown record type 6/);
});
