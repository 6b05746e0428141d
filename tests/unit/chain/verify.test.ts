import assert from "node:assert/strict";
import { checkBlock, type CheckContext, MAX_FUTURE_DRIFT_MS } from "../../../chain/verify.ts";
import { type ChainTip, InvalidBlockError, type RejectReason } from "../../../chain/api.ts";
import {
  type BuiltBlock,
  ChainBuilder,
  type Corruption,
  CORRUPTIONS,
  testValidatorKey,
} from "../../support/chain_builder.ts";
import { voteSignBytes, VoteType } from "../../../chain/block.ts";
import { signBytes } from "../../../crypto/ed25519.ts";
import { genesisValidatorSet } from "../../support/static_state.ts";

const builder = ChainBuilder.create({ validators: 4, bodyBytes: 300 });
const set = genesisValidatorSet(builder.genesis);
const genesisTip: ChainTip = {
  height: 0,
  hash: builder.genesisHash,
  timestamp: builder.genesis.genesisTime,
};
const first = builder.next();
const firstTip: ChainTip = {
  height: 1,
  hash: first.hash,
  timestamp: first.cb.block.header.timestamp,
};
const second = builder.next();

function ctx(overrides: Partial<CheckContext> = {}): CheckContext {
  return {
    genesisHash: builder.genesisHash,
    validatorSet: set,
    lastCommitSet: set,
    nowMs: second.cb.block.header.timestamp,
    maxFutureDriftMs: MAX_FUTURE_DRIFT_MS,
    ...overrides,
  };
}

function rejects(prev: ChainTip, item: BuiltBlock, reason: RejectReason, c = ctx()): void {
  assert.throws(() => checkBlock(prev, item.cb, c), (e) => {
    assert.ok(e instanceof InvalidBlockError, String(e));
    assert.equal(e.reason, reason, e.message);
    return true;
  });
}

Deno.test("verify: valid blocks pass and the block hash is returned", () => {
  assert.deepEqual(checkBlock(genesisTip, first.cb, ctx()), first.hash);
  assert.deepEqual(checkBlock(firstTip, second.cb, ctx()), second.hash);
});

for (const how of Object.keys(CORRUPTIONS) as Corruption[]) {
  Deno.test(`verify: corruption "${how}" is rejected as ${CORRUPTIONS[how]}`, () => {
    rejects(firstTip, builder.corrupt(second, how), CORRUPTIONS[how]);
  });
}

Deno.test("verify: a block may run ahead of the clock by the drift allowance, not more", () => {
  const ts = second.cb.block.header.timestamp;
  checkBlock(firstTip, second.cb, ctx({ nowMs: ts - MAX_FUTURE_DRIFT_MS }));
  rejects(firstTip, second, "future-timestamp", ctx({ nowMs: ts - MAX_FUTURE_DRIFT_MS - 1 }));
});

Deno.test("verify: block 1 must be after the genesis time", () => {
  const b = ChainBuilder.create();
  const early = b.next({ timestamp: b.genesis.genesisTime });
  rejects(
    { height: 0, hash: b.genesisHash, timestamp: b.genesis.genesisTime },
    early,
    "bad-timestamp",
    { ...ctx(), genesisHash: b.genesisHash },
  );
});

Deno.test("verify: an unknown validator set rejects instead of guessing", () => {
  rejects(firstTip, second, "bad-validator-set", ctx({ validatorSet: undefined }));
});

Deno.test("verify: a block on another tip is rejected as bad-link or bad-height", () => {
  rejects(genesisTip, second, "bad-height");
  rejects({ ...firstTip, hash: second.hash }, second, "bad-link");
});

Deno.test("verify: signaturesVerified skips only the signature check", () => {
  const badSig = builder.corrupt(second, "bad-signature");
  checkBlock(firstTip, badSig.cb, ctx({ signaturesVerified: true }));
  rejects(firstTip, builder.corrupt(second, "bad-certificate"), "bad-certificate", {
    ...ctx(),
    signaturesVerified: true,
  });
});

Deno.test("verify: a certificate signed by a non-member is refused", () => {
  const outsider = testValidatorKey(99);
  const message = voteSignBytes(builder.genesisHash, VoteType.Precommit, 1, 0, first.hash);
  const cert = first.cb.certificate;
  const cb = {
    block: first.cb.block,
    certificate: {
      ...cert,
      signatures: [
        ...cert.signatures,
        { validator: outsider.publicKey, signature: signBytes(outsider, message) },
      ],
    },
  };
  assert.throws(
    () => checkBlock(genesisTip, cb, ctx()),
    (e) => e instanceof InvalidBlockError && e.reason === "bad-certificate",
  );
});

Deno.test("verify: a certificate with a duplicate signer is refused", () => {
  const sigs = first.cb.certificate.signatures;
  const cb = {
    block: first.cb.block,
    certificate: { ...first.cb.certificate, signatures: [sigs[0], sigs[0], sigs[1]] },
  };
  assert.throws(
    () => checkBlock(genesisTip, cb, ctx()),
    (e) => e instanceof InvalidBlockError && e.reason === "bad-certificate",
  );
});

Deno.test("verify: malformed in-memory fields give a verdict, not a crash", () => {
  const short = {
    block: {
      ...second.cb.block,
      header: { ...second.cb.block.header, prevHash: new Uint8Array(3) },
    },
    certificate: second.cb.certificate,
  };
  rejects(firstTip, { ...second, cb: short }, "decode");
  const nanTime = {
    block: { ...second.cb.block, header: { ...second.cb.block.header, timestamp: NaN } },
    certificate: second.cb.certificate,
  };
  rejects(firstTip, { ...second, cb: nanTime }, "decode");
  const badType = {
    block: { ...second.cb.block, records: [{ type: 256, data: new Uint8Array(1) }] },
    certificate: second.cb.certificate,
  };
  rejects(firstTip, { ...second, cb: badType }, "bad-records");
});
