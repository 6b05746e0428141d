import assert from "node:assert/strict";
import { generateKeyPair } from "../../../crypto/ed25519.ts";
import { signCollateralRegistration, signRegistration } from "../../../state/records.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { addressOf } from "../../../state/address.ts";
import { signedPrecommit } from "../../support/double_sign.ts";
import { recordFaultAtEveryHeight } from "../../../consensus/record_relay.ts";

const chainA = new Uint8Array(32).fill(1);
const chainB = new Uint8Array(32).fill(2);

function registration(genesisHash: Uint8Array, nonce = 0) {
  return signRegistration(generateKeyPair(), {
    genesisHash,
    nonce,
    expiresAt: 1_000,
    rewardAddress: "reward",
    address: "203.0.113.5:24100",
  });
}

Deno.test("record relay: only faults at every height count against the sender", () => {
  // Valid signature: whether it applies at our tip (nonce, expiry) is never the sender's fault.
  assert.equal(recordFaultAtEveryHeight(chainA, registration(chainA, 7)), null);
  // Signed for another chain.
  assert.match(recordFaultAtEveryHeight(chainB, registration(chainA))!, /signature/);
  // A flipped signature byte.
  const r = registration(chainA);
  const tampered = { type: r.type, data: r.data.slice() };
  tampered.data[tampered.data.length - 1] ^= 1;
  assert.match(recordFaultAtEveryHeight(chainA, tampered)!, /signature/);
  // Bytes that do not decode.
  assert.match(
    recordFaultAtEveryHeight(chainA, { type: r.type, data: new Uint8Array(3) })!,
    /malformed/,
  );
});

Deno.test("record relay: a collateral registration needs both signatures, evidence both halves", () => {
  const node = generateKeyPair();
  const owner = generateKeyPair();
  const reg = signCollateralRegistration(node, owner, {
    genesisHash: chainA,
    nonce: 0,
    expiresAt: 1_000,
    tier: "bronze",
    rewardAddress: addressOf("devnet", owner.publicKey),
    address: "203.0.113.5:24100",
    owner: addressOf("devnet", owner.publicKey),
  });
  assert.equal(recordFaultAtEveryHeight(chainA, reg), null);
  // The owner signature is the last 64 bytes.
  const badOwner = { type: reg.type, data: reg.data.slice() };
  badOwner.data[badOwner.data.length - 1] ^= 1;
  assert.match(recordFaultAtEveryHeight(chainA, badOwner)!, /owner signature/);

  const key = generateKeyPair();
  const a = signedPrecommit(chainA, key, 5, 0, new Uint8Array(32).fill(1));
  const b = signedPrecommit(chainA, key, 5, 0, new Uint8Array(32).fill(2));
  const ev = evidenceRecord(a, b);
  assert.equal(recordFaultAtEveryHeight(chainA, ev), null);
  assert.match(recordFaultAtEveryHeight(chainB, ev)!, /evidence signatures/);
  assert.match(
    recordFaultAtEveryHeight(chainA, { type: ev.type, data: ev.data.slice(0, 10) })!,
    /malformed evidence/,
  );
});
