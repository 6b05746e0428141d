/**
 * The validity rules of a block's `lastCommit` (chain/verify.ts), each with its reason: present
 * exactly from height 2 on, for the block below, from voting members of that block's set holding
 * more than 2/3 of its power. `checkBlock` (sync, commit) skips its signatures; the consensus
 * check of a proposal (`checkProposedLastCommit`) verifies them.
 */
import assert from "node:assert/strict";
import {
  type Certificate,
  type CommitSignature,
  sortedCommit,
  voteSignBytes,
  VoteType,
} from "../../../chain/block.ts";
import { type ChainTip, InvalidBlockError } from "../../../chain/api.ts";
import {
  checkBlock,
  type CheckContext,
  checkProposedLastCommit,
  MAX_FUTURE_DRIFT_MS,
} from "../../../chain/verify.ts";
import { signBytes } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import type { ValidatorSet } from "../../../chain/validators.ts";
import { type BuiltBlock, ChainBuilder, testValidatorKey } from "../../support/chain_builder.ts";

/** Three equal validators: two signers hold exactly 2/3, which is not a quorum. */
function chainOfThree() {
  const b = ChainBuilder.create({ validators: 3, network: "lastcommit" });
  const set = b.stateMachine.validatorSetFor({ get: () => undefined }, 0, 1)!;
  const first = b.next();
  const tip: ChainTip = {
    height: 1,
    hash: first.hash,
    timestamp: first.cb.block.header.timestamp,
  };
  return { b, set, first, tip };
}

function ctx(b: ChainBuilder, set: ValidatorSet, overrides: Partial<CheckContext> = {}) {
  return {
    genesisHash: b.genesisHash,
    validatorSet: set,
    lastCommitSet: set,
    nowMs: Date.UTC(2100, 0, 1),
    maxFutureDriftMs: MAX_FUTURE_DRIFT_MS,
    ...overrides,
  };
}

function rejects(
  tip: ChainTip,
  item: BuiltBlock,
  c: CheckContext,
  reason: string,
  pattern: RegExp,
): void {
  assert.throws(() => checkBlock(tip, item.cb, c), (e) => {
    assert.ok(e instanceof InvalidBlockError, String(e));
    assert.equal(e.reason, reason, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

function precommitBy(b: ChainBuilder, keyIndex: number, c: Certificate): CommitSignature {
  const key = keyIndex >= 0 ? b.keys[keyIndex] : testValidatorKey(1_000 - keyIndex);
  const message = voteSignBytes(b.genesisHash, VoteType.Precommit, c.height, c.round, c.blockHash);
  return { validator: key.publicKey, signature: signBytes(key, message) };
}

Deno.test("last commit rules: a block above height 1 with a subset holding > 2/3 passes", () => {
  const b = ChainBuilder.create({ validators: 4, network: "lastcommit4" });
  const set = b.stateMachine.validatorSetFor({ get: () => undefined }, 0, 1)!;
  const first = b.next();
  const three = { ...first.cb.certificate, signatures: first.cb.certificate.signatures.slice(1) };
  const second = b.next({ lastCommit: sortedCommit(three) });
  const tip = { height: 1, hash: first.hash, timestamp: first.cb.block.header.timestamp };
  assert.deepEqual(checkBlock(tip, second.cb, ctx(b, set)), second.hash);
});

Deno.test("last commit rules: required above height 1, refused at height 1", () => {
  const { b, set, tip } = chainOfThree();
  rejects(tip, b.next({ lastCommit: null }), ctx(b, set), "bad-last-commit", /carries no last/);
  const other = ChainBuilder.create({ validators: 3, network: "lastcommit" });
  const genesisTip = {
    height: 0,
    hash: other.genesisHash,
    timestamp: other.genesis.genesisTime,
  };
  const { first } = chainOfThree();
  const withCommit = other.next({ lastCommit: sortedCommit(first.cb.certificate) });
  rejects(genesisTip, withCommit, ctx(other, set), "bad-last-commit", /block 1 carries/);
});

Deno.test("last commit rules: a commit of another block than prevHash is refused", () => {
  const { b, set, first, tip } = chainOfThree();
  const c = { ...first.cb.certificate, blockHash: sha256(new TextEncoder().encode("other")) };
  const signed = { ...c, signatures: [0, 1, 2].map((i) => precommitBy(b, i, c)) };
  const item = b.next({ lastCommit: sortedCommit(signed) });
  rejects(tip, item, ctx(b, set), "bad-last-commit", /another block than prevHash/);
});

Deno.test("last commit rules: a commit of another height is refused", () => {
  const { b, set, first, tip } = chainOfThree();
  const c = { ...first.cb.certificate, height: 2 };
  const item = b.next({ lastCommit: sortedCommit(c) });
  rejects(tip, item, ctx(b, set), "bad-last-commit", /for height 2, not 1/);
});

Deno.test("last commit rules: signers holding exactly 2/3 are below quorum", () => {
  const { b, set, first, tip } = chainOfThree();
  const c = first.cb.certificate;
  const two = { ...c, signatures: [0, 1].map((i) => precommitBy(b, i, c)) };
  const item = b.next({ lastCommit: sortedCommit(two) });
  rejects(tip, item, ctx(b, set), "bad-last-commit", /need > 2\/3/);
});

Deno.test("last commit rules: a signer outside the set of the height below is refused", () => {
  const { b, set, first, tip } = chainOfThree();
  const c = first.cb.certificate;
  const withStranger = { ...c, signatures: [0, 1, -1].map((i) => precommitBy(b, i, c)) };
  const item = b.next({ lastCommit: sortedCommit(withStranger) });
  rejects(tip, item, ctx(b, set), "bad-last-commit", /not a voting member/);
});

Deno.test("last commit rules: unsorted signers built in memory are refused", () => {
  const { b, set, first, tip } = chainOfThree();
  const sorted = sortedCommit(first.cb.certificate);
  const reversed = { ...sorted, signatures: [...sorted.signatures].reverse() };
  const item = b.next({ lastCommit: reversed });
  rejects(tip, item, ctx(b, set), "bad-last-commit", /not sorted/);
});

Deno.test("last commit rules: the set of the height below must be known", () => {
  const { b, set, tip } = chainOfThree();
  rejects(
    tip,
    b.next(),
    ctx(b, set, { lastCommitSet: undefined }),
    "bad-validator-set",
    /height 1 is not known/,
  );
});

Deno.test("last commit rules: a bad signature passes sync's check but not a proposal's", () => {
  const { b, set, first, tip } = chainOfThree();
  const sorted = sortedCommit(first.cb.certificate);
  const forged = {
    ...sorted,
    signatures: sorted.signatures.map((s, i) => {
      if (i !== 0) return s;
      const signature = s.signature.slice();
      signature[0] ^= 0x01;
      return { validator: s.validator, signature };
    }),
  };
  const item = b.next({ lastCommit: forged });
  // The block's own certificate (every signer verified) vouches for its body during sync.
  assert.deepEqual(checkBlock(tip, item.cb, ctx(b, set)), item.hash);
  const verdict = checkProposedLastCommit(b.genesisHash, forged, 2, tip.hash, set);
  assert.deepEqual(verdict, {
    ok: false,
    fault: "bad-signature",
    why: "a last commit signature does not verify",
  });
  assert.deepEqual(
    checkProposedLastCommit(b.genesisHash, sorted, 2, tip.hash, set),
    { ok: true },
  );
});

Deno.test("last commit rules: a proposal's signers are checked before any signature", () => {
  const { b, set, first, tip } = chainOfThree();
  const c = first.cb.certificate;
  const two = sortedCommit({ ...c, signatures: [0, 1].map((i) => precommitBy(b, i, c)) });
  let verified = 0;
  const counting = () => {
    verified++;
    return true;
  };
  const verdict = checkProposedLastCommit(b.genesisHash, two, 2, tip.hash, set, counting);
  assert.equal(verdict.ok, false);
  assert.equal(verified, 0, "no signature is verified for a commit short of quorum");
  assert.equal(checkProposedLastCommit(b.genesisHash, undefined, 2, tip.hash, set).ok, false);
  assert.equal(
    checkProposedLastCommit(b.genesisHash, undefined, 1, b.genesisHash, set).ok,
    true,
    "height 1 needs none",
  );
});
