/**
 * The certificate checks (chain/certificate.ts) one rejection at a time, each with the reason
 * it gives: wrong height, another block, a signer counted twice, a non-member, too little
 * power (counted by power, not by heads); and signature verification of every signer.
 */
import assert from "node:assert/strict";
import { type Certificate, VoteType } from "../../../chain/block.ts";
import {
  checkCertificate,
  checkCertificateQuorum,
  verifyCertificateSignatures,
} from "../../../chain/certificate.ts";
import { toHex } from "../../../encoding/binary.ts";
import {
  makeTestValidators,
  signVote,
  TEST_GENESIS_HASH,
  testKey,
} from "../../support/consensus_sim.ts";

const HEIGHT = 7;
const BLOCK = new Uint8Array(32).fill(0x42);
// Powers 1, 1, 1 and 6 in the set's id order once sorted below: total 9, quorum needs > 6.
const { set, keys } = makeTestValidators([1, 1, 1, 6], "cert-rules");
const heavy = keys.find((k) => set.powerOf(toHex(k.publicKey)) === 6)!;
const light = keys.filter((k) => k !== heavy);

function certificate(signers: typeof keys, round = 0, height = HEIGHT): Certificate {
  return {
    height,
    round,
    blockHash: BLOCK,
    signatures: signers.map((k) => {
      const v = signVote(k, VoteType.Precommit, height, round, BLOCK);
      return { validator: v.validator, signature: v.signature };
    }),
  };
}

function refusal(cert: Certificate, height = HEIGHT, block = BLOCK): string {
  const r = checkCertificateQuorum(cert, height, block, set);
  assert.equal(r.ok, false, "expected a refusal");
  return (r as { why: string }).why;
}

Deno.test("certificate: power decides, not the number of signers", () => {
  assert.deepEqual(checkCertificateQuorum(certificate([heavy, light[0]]), HEIGHT, BLOCK, set), {
    ok: true,
  });
  assert.equal(refusal(certificate(light)), "signers hold 3 of 9 power, need > 2/3");
  // 6 of 9 is exactly 2/3.
  assert.equal(refusal(certificate([heavy])), "signers hold 6 of 9 power, need > 2/3");
});

Deno.test("certificate: another height or another block is refused with the reason", () => {
  const cert = certificate([heavy, ...light]);
  assert.equal(refusal(cert, HEIGHT + 1), `certificate height ${HEIGHT} != ${HEIGHT + 1}`);
  assert.equal(refusal(cert, HEIGHT, new Uint8Array(32)), "certificate is for another block");
});

Deno.test("certificate: a signer listed twice is refused, even when power would suffice", () => {
  const cert = certificate([heavy, light[0], heavy]);
  const id = toHex(heavy.publicKey).slice(0, 12);
  assert.equal(refusal(cert), `${id} signed twice`);
});

Deno.test("certificate: a signer outside the set is refused, even with a quorum beside it", () => {
  const stranger = testKey("cert-rules-stranger");
  // Four signers fit the four voting members, so the membership check is the one that speaks.
  const cert = certificate([heavy, light[0], light[1], stranger]);
  const id = toHex(stranger.publicKey).slice(0, 12);
  assert.equal(refusal(cert), `signer ${id} is not a voting member of the validator set`);
  // More signatures than voting members is refused before any signer is looked at.
  assert.equal(
    refusal(certificate([heavy, ...light, stranger])),
    "5 signatures, the set has 4 voting members",
  );
});

Deno.test("certificate: every signature must be a precommit of this height, round and block", () => {
  const good = certificate([heavy, ...light], 2);
  assert.equal(verifyCertificateSignatures(TEST_GENESIS_HASH, good), true);
  assert.equal(verifyCertificateSignatures(new Uint8Array(32).fill(9), good), false);
  assert.equal(verifyCertificateSignatures(TEST_GENESIS_HASH, { ...good, round: 3 }), false);
  assert.equal(verifyCertificateSignatures(TEST_GENESIS_HASH, { ...good, height: 8 }), false);
  // One bad signature among good ones, in any position.
  for (let i = 0; i < good.signatures.length; i++) {
    const signatures = good.signatures.map((s, j) =>
      j === i ? { ...s, signature: good.signatures[(i + 1) % 4].signature } : s
    );
    assert.equal(verifyCertificateSignatures(TEST_GENESIS_HASH, { ...good, signatures }), false);
  }
  // Prevotes are not precommits.
  const prevote = signVote(heavy, VoteType.Prevote, HEIGHT, 2, BLOCK);
  const withPrevote = {
    ...good,
    signatures: [{ validator: prevote.validator, signature: prevote.signature }],
  };
  assert.equal(verifyCertificateSignatures(TEST_GENESIS_HASH, withPrevote), false);
});

Deno.test("certificate: each refusal names its fault, which decides whether the sender is charged", () => {
  // Sync and consensus act on the fault, not on the text: another height or block is a
  // certificate for something else (the sender may be on another branch), a bad signature is a
  // forgery.
  const good = certificate([heavy, ...light]);
  const fault = (r: ReturnType<typeof checkCertificateQuorum>) => r.ok ? "ok" : r.fault;
  assert.equal(fault(checkCertificateQuorum(good, HEIGHT + 1, BLOCK, set)), "wrong-block");
  assert.equal(fault(checkCertificateQuorum(good, HEIGHT, new Uint8Array(32), set)), "wrong-block");
  assert.equal(
    fault(checkCertificateQuorum(certificate([heavy]), HEIGHT, BLOCK, set)),
    "no-quorum",
  );
  assert.deepEqual(checkCertificate(TEST_GENESIS_HASH, good, HEIGHT, BLOCK, set), { ok: true });
  const forged = {
    ...good,
    signatures: good.signatures.map((s, i) =>
      i === 0 ? { ...s, signature: new Uint8Array(64) } : s
    ),
  };
  assert.deepEqual(checkCertificate(TEST_GENESIS_HASH, forged, HEIGHT, BLOCK, set), {
    ok: false,
    fault: "bad-signature",
    why: "a certificate signature does not verify",
  });
  // The cheap checks speak first: a forged certificate of another height is "wrong-block".
  assert.equal(
    fault(checkCertificate(TEST_GENESIS_HASH, forged, HEIGHT + 1, BLOCK, set)),
    "wrong-block",
  );
});
