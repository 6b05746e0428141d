import assert from "node:assert/strict";
import { checkEncodedBlocks, signerContextFor } from "../../../sync/verify_worker.ts";
import { VerifyPool } from "../../../sync/verify_pool.ts";
import type { ValidatorSet } from "../../../chain/validators.ts";
import { CHAIN_LIMITS } from "../../../chain/block.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { ChainBuilder } from "../../support/chain_builder.ts";
import { genesisValidatorSet } from "../../support/static_state.ts";
import {
  countingVerifier,
  type HostileCertificate,
  hostileCertificate,
  strangerKey,
  withCertificate,
} from "../../support/hostile_blocks.ts";

const builder = ChainBuilder.create({ validators: 4 });
const set = genesisValidatorSet(builder.genesis);
const blocks = builder.build(12);
const encoded = blocks.map((b) => b.encoded);
const STRANGERS = Array.from({ length: CHAIN_LIMITS.maxValidators }, (_, i) => strangerKey(i));

/** The chain knows the sets of heights 1 .. known (tip + 2), like `Chain.validatorSetFor`. */
const lookupUpTo = (known: number) => (h: number): ValidatorSet | undefined =>
  h >= 1 && h <= known ? set : undefined;

function hostileAt(index: number, kind: HostileCertificate, size?: number): Uint8Array[] {
  const out = encoded.slice();
  const cert = hostileCertificate(builder.genesisHash, blocks[index].cb, kind, size, STRANGERS);
  out[index] = withCertificate(blocks[index].cb, cert);
  return out;
}

Deno.test("signer context: exact sets up to the known height, the last one as a superset above", () => {
  const ctx = signerContextFor(lookupUpTo(4), 3, 4);
  assert.equal(ctx.sets.length, 1);
  assert.deepEqual(ctx.perBlock, [
    { set: 0, exact: true },
    { set: 0, exact: true },
    { set: 0, exact: false },
    { set: 0, exact: false },
  ]);
  // A batch entirely above the known heights finds the highest known set below it.
  const ahead = signerContextFor(lookupUpTo(4), 500, 2);
  assert.deepEqual(ahead.perBlock, [{ set: 0, exact: false }, { set: 0, exact: false }]);
  assert.equal(ahead.sets[0].ids.length, 4);
  assert.deepEqual(signerContextFor(() => undefined, 1, 1).perBlock, [{ set: -1, exact: false }]);
});

const CASES: [HostileCertificate, string, number | undefined][] = [
  ["copies-of-one", "too-many-signatures", undefined],
  ["strangers", "too-many-signatures", undefined],
  ["copies-of-one", "duplicate-signer", 3],
  ["strangers", "not-a-member", 3],
  ["too-little-power", "no-quorum", undefined],
];

for (const [kind, fault, size] of CASES) {
  Deno.test(`verify worker: ${kind} (${size ?? 1000}) is refused as ${fault}, unverified`, () => {
    const batch = hostileAt(5, kind, size);
    const counter = countingVerifier();
    const check = checkEncodedBlocks(
      builder.genesisHash,
      1,
      batch,
      signerContextFor(lookupUpTo(3), 1, batch.length),
      { verify: counter.verify },
    );
    // Block 6 is above the known sets (3): the superset rule still refuses everything but
    // too little power, which waits for the in-order check with the real set.
    if (kind === "too-little-power") {
      assert.equal(check.failure, undefined);
      const exact = checkEncodedBlocks(
        builder.genesisHash,
        1,
        batch,
        signerContextFor(lookupUpTo(20), 1, batch.length),
        { verify: countingVerifier().verify },
      );
      assert.deepEqual(exact.failure, { index: 5, reason: "bad-certificate", fault });
      return;
    }
    assert.deepEqual(check.failure, { index: 5, reason: "bad-certificate", fault });
    // Only the five good blocks before it were verified, 4 signatures each.
    assert.equal(counter.calls(), 5 * 4);
  });
}

Deno.test("verify worker: without sets, duplicate signers are still refused before verifying", () => {
  const batch = hostileAt(0, "copies-of-one");
  const counter = countingVerifier();
  const check = checkEncodedBlocks(builder.genesisHash, 1, batch, undefined, {
    verify: counter.verify,
  });
  assert.deepEqual(check.failure, {
    index: 0,
    reason: "bad-certificate",
    fault: "duplicate-signer",
  });
  assert.equal(counter.calls(), 0);
});

Deno.test("verify pool: with the chain's sets, a flood of strangers is refused and counted", async () => {
  const metrics = createNodeMetrics();
  const pool = new VerifyPool({
    genesisHash: builder.genesisHash,
    workers: 1,
    validatorSetFor: lookupUpTo(14),
    metrics,
  });
  try {
    const good = await pool.verify(1, encoded);
    assert.equal(good.okCount, encoded.length);
    const check = await pool.verify(1, hostileAt(2, "strangers"));
    assert.deepEqual(check.failure, {
      index: 2,
      reason: "bad-certificate",
      fault: "too-many-signatures",
    });
    assert.equal(metrics.certificatesRejected.get({ reason: "too-many-signatures" }), 1);
  } finally {
    pool.close();
  }
});
