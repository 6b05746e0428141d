import assert from "node:assert/strict";
import { type CertificateFault, checkCertificate } from "../../../chain/certificate.ts";
import { checkBlock, MAX_FUTURE_DRIFT_MS } from "../../../chain/verify.ts";
import { InvalidBlockError } from "../../../chain/api.ts";
import { makeValidatorSet } from "../../../chain/validators.ts";
import { toHex } from "../../../encoding/binary.ts";
import { ChainBuilder } from "../../support/chain_builder.ts";
import { genesisValidatorSet } from "../../support/static_state.ts";
import {
  countingVerifier,
  type HostileCertificate,
  hostileCertificate,
} from "../../support/hostile_blocks.ts";

const builder = ChainBuilder.create({ validators: 4 });
const set = genesisValidatorSet(builder.genesis);
const block = builder.next();
const genesisTip = {
  height: 0,
  hash: builder.genesisHash,
  timestamp: builder.genesis.genesisTime,
};

const CASES: [HostileCertificate, CertificateFault][] = [
  ["copies-of-one", "too-many-signatures"],
  ["strangers", "too-many-signatures"],
  ["too-little-power", "no-quorum"],
];

for (const [kind, fault] of CASES) {
  Deno.test(`certificate: ${kind} is refused as ${fault} with zero signature verifications`, () => {
    const cert = hostileCertificate(builder.genesisHash, block.cb, kind);
    const counter = countingVerifier();
    const verdict = checkCertificate(
      builder.genesisHash,
      cert,
      1,
      block.hash,
      set,
      counter.verify,
    );
    assert.deepEqual(verdict.ok ? null : verdict.fault, fault);
    assert.equal(counter.calls(), 0);

    // The same through the block check every chain path uses.
    const viaBlock = countingVerifier();
    assert.throws(
      () =>
        checkBlock(genesisTip, { block: block.cb.block, certificate: cert }, {
          genesisHash: builder.genesisHash,
          validatorSet: set,
          nowMs: block.cb.block.header.timestamp,
          maxFutureDriftMs: MAX_FUTURE_DRIFT_MS,
          verify: viaBlock.verify,
        }),
      (e) => e instanceof InvalidBlockError && e.reason === "bad-certificate",
    );
    assert.equal(viaBlock.calls(), 0);
  });
}

Deno.test("certificate: few enough duplicates or strangers to fit the count are still refused unverified", () => {
  const dup = hostileCertificate(builder.genesisHash, block.cb, "copies-of-one", 3);
  const strangers = hostileCertificate(builder.genesisHash, block.cb, "strangers", 3);
  for (const [cert, fault] of [[dup, "duplicate-signer"], [strangers, "not-a-member"]] as const) {
    const counter = countingVerifier();
    const verdict = checkCertificate(
      builder.genesisHash,
      cert,
      1,
      block.hash,
      set,
      counter.verify,
    );
    assert.equal(verdict.ok ? null : verdict.fault, fault);
    assert.equal(counter.calls(), 0);
  }
});

Deno.test("certificate: a member without voting power counts as a stranger", () => {
  // The same members, one demoted to free tier (power 0): its signature is not accepted.
  const demoted = makeValidatorSet(
    set.validators.map((v, i) => (i === 0 ? { ...v, tier: "free" as const, power: 0 } : v)),
  );
  const counter = countingVerifier();
  const cert = block.cb.certificate;
  const signedByDemoted = cert.signatures.some((s) => demoted.get(toHex(s.validator))?.power === 0);
  assert.ok(signedByDemoted);
  const verdict = checkCertificate(
    builder.genesisHash,
    cert,
    1,
    block.hash,
    demoted,
    counter.verify,
  );
  assert.equal(verdict.ok ? null : verdict.fault, "too-many-signatures");
  assert.equal(counter.calls(), 0);
});

Deno.test("certificate: a valid one is verified signature by signature, and a forged one fails", () => {
  const counter = countingVerifier();
  const cert = block.cb.certificate;
  assert.deepEqual(
    checkCertificate(builder.genesisHash, cert, 1, block.hash, set, counter.verify),
    { ok: true },
  );
  assert.equal(counter.calls(), cert.signatures.length);
  const forged = {
    ...cert,
    signatures: cert.signatures.map((s, i) =>
      i === 0 ? { ...s, signature: s.signature.map((b, j) => (j === 0 ? b ^ 1 : b)) } : s
    ),
  };
  const verdict = checkCertificate(builder.genesisHash, forged, 1, block.hash, set);
  assert.equal(verdict.ok ? null : verdict.fault, "bad-signature");
});
