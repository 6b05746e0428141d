/**
 * The last-commit collector alone: late precommits join the commit they belong to (verified,
 * from members, once each), anything else is left alone, and the window a proposer waits is
 * the block interval up to its ceiling, on a virtual clock.
 */
import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import { verifySignature } from "../../../crypto/ed25519.ts";
import { ZERO_HASH } from "../../../crypto/hash.ts";
import { type Certificate, VoteType } from "../../../chain/block.ts";
import {
  LastCommitCollector,
  lastCommitWindowMs,
  windowRemainingMs,
} from "../../../consensus/last_commit.ts";
import { LAST_COMMIT_WINDOW_MAX_MS } from "../../../consensus/constants.ts";
import {
  buildBlock,
  hashOf,
  makeTestValidators,
  signVote,
  TEST_GENESIS_HASH,
  TEST_GENESIS_TIME,
  testKey,
} from "../../support/consensus_sim.ts";

const { set, keys } = makeTestValidators([1, 1, 1, 1], "collector");
const block = buildBlock({
  set,
  height: 5,
  previous: { hash: ZERO_HASH, timestamp: TEST_GENESIS_TIME },
  round: 0,
});
const hash = hashOf(block);
const ROUND = 1;

function precommit(i: number, round = ROUND, h = hash, height = 5) {
  return signVote(keys[i], VoteType.Precommit, height, round, h);
}

/** The quorum the engine committed with: validators 0, 1 and 2. */
function certificate(): Certificate {
  return {
    height: 5,
    round: ROUND,
    blockHash: hash,
    signatures: [2, 0, 1].map((i) => {
      const v = precommit(i);
      return { validator: v.validator, signature: v.signature };
    }),
  };
}

function signers(c: Certificate | null): string[] {
  return (c?.signatures ?? []).map((s) => toHex(s.validator));
}

const sortedIds = (indexes: number[]) => indexes.map((i) => toHex(keys[i].publicKey)).sort();

Deno.test("last commit collector: a late precommit of the committed block joins, sorted", () => {
  const c = new LastCommitCollector(TEST_GENESIS_HASH, verifySignature);
  assert.equal(c.certificateFor(5), null, "nothing before the first commit");
  c.reset(certificate(), set, 1_000);
  assert.deepEqual(signers(c.certificateFor(5)), sortedIds([0, 1, 2]));
  assert.equal(c.offer(precommit(3)), "added");
  const all = c.certificateFor(5)!;
  assert.deepEqual(signers(all), sortedIds([0, 1, 2, 3]));
  assert.equal(all.round, ROUND);
  assert.deepEqual(all.blockHash, hash);
  assert.equal(c.offer(precommit(3)), "known", "a copy adds nothing");
  assert.equal(c.offer(precommit(0)), "known");
  assert.equal(c.size, 4);
  assert.equal(c.certificateFor(4), null, "only the collected height");
});

Deno.test("last commit collector: other votes are not its business", () => {
  const c = new LastCommitCollector(TEST_GENESIS_HASH, verifySignature);
  c.reset(certificate(), set, 0);
  assert.equal(c.offer(precommit(3, ROUND + 1)), "other", "another round");
  assert.equal(c.offer(precommit(3, ROUND, ZERO_HASH)), "other", "nil");
  assert.equal(c.offer(precommit(3, ROUND, hash, 6)), "other", "another height");
  const prevote = signVote(keys[3], VoteType.Prevote, 5, ROUND, hash);
  assert.equal(c.offer(prevote), "other", "a prevote");
  assert.equal(c.size, 3);
});

Deno.test("last commit collector: strangers and bad signatures are refused, never held", () => {
  let verified = 0;
  const c = new LastCommitCollector(TEST_GENESIS_HASH, (k, m, s) => {
    verified++;
    return verifySignature(k, m, s);
  });
  c.reset(certificate(), set, 0);
  const stranger = signVote(testKey("stranger"), VoteType.Precommit, 5, ROUND, hash);
  assert.equal(c.offer(stranger), "not-member");
  assert.equal(verified, 0, "membership is checked before the signature");
  const forged = { ...precommit(3), signature: precommit(3).signature.slice() };
  forged.signature[0] ^= 1;
  assert.equal(c.offer(forged), "bad-signature");
  assert.equal(c.size, 3);
  assert.equal(c.offer(precommit(3)), "added", "the real one still joins afterwards");
});

Deno.test("last commit collector: the same commit merges; a new block starts afresh", () => {
  const c = new LastCommitCollector(TEST_GENESIS_HASH, verifySignature);
  c.reset(certificate(), set, 1_000);
  c.offer(precommit(3));
  // The chain's notification of our own commit (or a synced copy of the block) comes again.
  const v = precommit(0);
  c.reset(
    { ...certificate(), signatures: [{ validator: v.validator, signature: v.signature }] },
    set,
    2_000,
  );
  assert.equal(c.size, 4, "late signers survive");
  assert.equal(c.committedAt, 1_000, "the window opened at the first commit");
  const next = { ...certificate(), height: 6, blockHash: ZERO_HASH, signatures: [] };
  c.reset(next, set, 3_000);
  assert.equal(c.height, 6);
  assert.equal(c.size, 0);
  assert.equal(c.committedAt, 3_000);
});

Deno.test("last commit window: the block interval up to the ceiling, then never a stall", () => {
  assert.equal(lastCommitWindowMs(300), 300);
  assert.equal(lastCommitWindowMs(LAST_COMMIT_WINDOW_MAX_MS * 60), LAST_COMMIT_WINDOW_MAX_MS);
  const window = lastCommitWindowMs(1_000);
  // Virtual clock: committed at t = 10 000.
  assert.equal(windowRemainingMs(10_000, 10_000, window), window);
  assert.equal(windowRemainingMs(10_000, 10_400, window), window - 400);
  assert.equal(windowRemainingMs(10_000, 10_000 + window, window), 0);
  assert.equal(windowRemainingMs(10_000, 99_000, window), 0, "late is never negative");
});
