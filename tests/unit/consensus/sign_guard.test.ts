import assert from "node:assert/strict";
import {
  MAX_KEPT_PROPOSAL_BYTES,
  SIGN_GUARD_FILE,
  SignGuard,
  SignGuardError,
} from "../../../consensus/sign_guard.ts";
import { blockHash, VoteType } from "../../../chain/block.ts";
import { ByteWriter } from "../../../encoding/binary.ts";
import { sha256 } from "../../../crypto/hash.ts";
import {
  buildBlock,
  makeTestValidators,
  signProposal,
  signVote,
} from "../../support/consensus_sim.ts";
import { SignStep } from "../../../consensus/sign_position.ts";

const hashA = new Uint8Array(32).fill(0xaa);
const hashB = new Uint8Array(32).fill(0xbb);
const nil = new Uint8Array(32);

async function withDir(fn: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sign-guard-test-" });
  try {
    await fn(`${dir}/${SIGN_GUARD_FILE}`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a fresh guard allows anything and remembers nothing", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    assert.equal(guard.lastSigned, null);
    assert.equal(guard.lock, null);
    assert.equal(guard.maySign(0, 0, SignStep.Propose, hashA), true);
    assert.equal(guard.maySign(9, 3, SignStep.Precommit, nil), true);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("after a restart a conflicting vote is refused and the identical one allowed", async () => {
  await withDir(async (path) => {
    const before = await SignGuard.open(path);
    await before.recordSigned(5, 1, SignStep.Prevote, hashA);

    const guard = await SignGuard.open(path);
    assert.deepEqual(guard.lastSigned, {
      height: 5,
      round: 1,
      step: SignStep.Prevote,
      blockHash: hashA,
    });
    // Same position, other block (or nil): a double sign.
    assert.equal(guard.maySign(5, 1, SignStep.Prevote, hashB), false);
    assert.equal(guard.maySign(5, 1, SignStep.Prevote, nil), false);
    await assert.rejects(guard.recordSigned(5, 1, SignStep.Prevote, hashB), SignGuardError);
    // The very same vote may be re-sent.
    assert.equal(guard.maySign(5, 1, SignStep.Prevote, hashA), true);
    await guard.recordSigned(5, 1, SignStep.Prevote, hashA);
    assert.deepEqual(guard.lastSigned?.blockHash, hashA);
  });
});

Deno.test("positions at or below the last signed one are refused, higher ones allowed", async () => {
  await withDir(async (path) => {
    const first = await SignGuard.open(path);
    await first.recordSigned(10, 2, SignStep.Prevote, hashA);
    const guard = await SignGuard.open(path);
    // Lower step, round or height.
    assert.equal(guard.maySign(10, 2, SignStep.Propose, hashA), false);
    assert.equal(guard.maySign(10, 1, SignStep.Precommit, hashA), false);
    assert.equal(guard.maySign(9, 7, SignStep.Precommit, hashA), false);
    assert.equal(guard.maySign(0, 0, SignStep.Propose, hashA), false);
    // Higher step, round or height: anything goes, including another block.
    assert.equal(guard.maySign(10, 2, SignStep.Precommit, hashB), true);
    assert.equal(guard.maySign(10, 3, SignStep.Propose, hashB), true);
    assert.equal(guard.maySign(11, 0, SignStep.Prevote, nil), true);
    await assert.rejects(guard.recordSigned(9, 0, SignStep.Precommit, hashA), SignGuardError);
  });
});

Deno.test("the position moves forward and survives each restart", async () => {
  await withDir(async (path) => {
    const steps: [number, number, SignStep, Uint8Array][] = [
      [1, 0, SignStep.Propose, hashA],
      [1, 0, SignStep.Prevote, hashA],
      [1, 0, SignStep.Precommit, hashA],
      [1, 1, SignStep.Prevote, nil],
      [2, 0, SignStep.Prevote, hashB],
    ];
    for (const [height, round, step, hash] of steps) {
      const guard = await SignGuard.open(path);
      await guard.recordSigned(height, round, step, hash);
      const reopened = await SignGuard.open(path);
      assert.deepEqual(reopened.lastSigned, { height, round, step, blockHash: hash });
    }
  });
});

Deno.test("the lock is persisted, alone or together with a precommit", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    await guard.recordLock(3, 0, hashA);
    assert.deepEqual((await SignGuard.open(path)).lock, { height: 3, round: 0, blockHash: hashA });
    await guard.recordSigned(3, 1, SignStep.Precommit, hashB, {
      height: 3,
      round: 1,
      blockHash: hashB,
    });
    const reopened = await SignGuard.open(path);
    assert.deepEqual(reopened.lock, { height: 3, round: 1, blockHash: hashB });
    assert.deepEqual(reopened.lastSigned, {
      height: 3,
      round: 1,
      step: SignStep.Precommit,
      blockHash: hashB,
    });
  });
});

Deno.test("a conflicting message is refused at once, even before the first write finished", async () => {
  await withDir(async (path, dir) => {
    const guard = await SignGuard.open(path);
    const writes = [
      guard.recordSigned(4, 0, SignStep.Prevote, hashA),
      guard.recordSigned(4, 0, SignStep.Precommit, hashA),
    ];
    assert.equal(guard.maySign(4, 0, SignStep.Precommit, hashB), false);
    await assert.rejects(guard.recordSigned(4, 0, SignStep.Prevote, hashB), SignGuardError);
    await Promise.all(writes);
    const reopened = await SignGuard.open(path);
    assert.deepEqual(reopened.lastSigned?.step, SignStep.Precommit);
    // The replacement file is renamed into place: nothing is left behind.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, [SIGN_GUARD_FILE]);
  });
});

Deno.test("a damaged guard file stops the node instead of being forgotten", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    await guard.recordSigned(7, 0, SignStep.Prevote, hashA);
    const bytes = await Deno.readFile(path);
    for (const damaged of [bytes.subarray(0, bytes.length - 1), new Uint8Array(0)]) {
      await Deno.writeFile(path, damaged);
      await assert.rejects(SignGuard.open(path), SignGuardError);
    }
    const flipped = bytes.slice();
    flipped[30] ^= 1;
    await Deno.writeFile(path, flipped);
    await assert.rejects(SignGuard.open(path), SignGuardError);
    await Deno.writeFile(path, new Uint8Array(10_000));
    await assert.rejects(SignGuard.open(path), SignGuardError);
  });
});

Deno.test("a write that cannot reach disk rejects, so the caller never sends", async () => {
  await withDir(async (_path, dir) => {
    const guard = await SignGuard.open(`${dir}/missing-dir/${SIGN_GUARD_FILE}`);
    await assert.rejects(guard.recordSigned(1, 0, SignStep.Prevote, hashA));
    // Still refuses a conflicting vote: memory moved forward before the write was attempted.
    assert.equal(guard.maySign(1, 0, SignStep.Prevote, hashB), false);
    // A re-send of the same vote must not succeed while it is not on disk.
    await assert.rejects(guard.recordSigned(1, 0, SignStep.Prevote, hashA));
  });
});

Deno.test("invalid arguments are programming errors", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    assert.throws(() => guard.maySign(-1, 0, SignStep.Prevote, hashA), RangeError);
    assert.throws(() => guard.maySign(1, 0.5, SignStep.Prevote, hashA), RangeError);
    assert.throws(() => guard.maySign(1, 0, 4 as SignStep, hashA), RangeError);
    assert.throws(() => guard.maySign(1, 0, SignStep.Prevote, new Uint8Array(31)), RangeError);
  });
});

Deno.test("the signed messages of the last round are kept in the same file and survive a restart", async () => {
  const { set, keys } = makeTestValidators([1, 1, 1, 1], "guard-msgs");
  const block = buildBlock({
    set,
    height: 5,
    previous: { hash: new Uint8Array(32), timestamp: 1 },
    round: 1,
    proposer: keys[0].publicKey,
  });
  const hash = blockHash(block.header);
  const proposal = signProposal(keys[0], 5, 1, -1, block);
  const prevote = signVote(keys[0], VoteType.Prevote, 5, 1, hash);
  const precommit = signVote(keys[0], VoteType.Precommit, 5, 1, hash);
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    await guard.recordSigned(5, 1, SignStep.Propose, hash, undefined, {
      kind: "proposal",
      proposal,
    });
    await guard.recordSigned(5, 1, SignStep.Prevote, hash, undefined, {
      kind: "vote",
      vote: prevote,
    });
    const lock = { height: 5, round: 1, blockHash: hash };
    await guard.recordSigned(5, 1, SignStep.Precommit, hash, lock, {
      kind: "vote",
      vote: precommit,
    });

    const reopened = await SignGuard.open(path);
    assert.deepEqual(reopened.lastMessages, [
      { kind: "proposal", proposal },
      { kind: "vote", vote: prevote },
      { kind: "vote", vote: precommit },
    ]);
    // A new round supersedes them: only that round's messages are kept.
    const nilPrevote = signVote(keys[0], VoteType.Prevote, 5, 2, nil);
    await reopened.recordSigned(5, 2, SignStep.Prevote, nil, undefined, {
      kind: "vote",
      vote: nilPrevote,
    });
    assert.deepEqual((await SignGuard.open(path)).lastMessages, [{
      kind: "vote",
      vote: nilPrevote,
    }]);
  });
});

Deno.test("a proposal too large to rewrite before every vote is not kept; the votes are", async () => {
  const { set, keys } = makeTestValidators([1], "guard-big");
  const block = buildBlock({
    set,
    height: 2,
    previous: { hash: new Uint8Array(32), timestamp: 1 },
    round: 0,
    records: [{ type: 3, data: new Uint8Array(MAX_KEPT_PROPOSAL_BYTES) }],
  });
  const hash = blockHash(block.header);
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    const proposal = signProposal(keys[0], 2, 0, -1, block);
    await guard.recordSigned(2, 0, SignStep.Propose, hash, undefined, {
      kind: "proposal",
      proposal,
    });
    const vote = signVote(keys[0], VoteType.Prevote, 2, 0, hash);
    await guard.recordSigned(2, 0, SignStep.Prevote, hash, undefined, { kind: "vote", vote });
    assert.deepEqual((await SignGuard.open(path)).lastMessages, [{ kind: "vote", vote }]);
    assert.ok((await Deno.stat(path)).size < 4096);
  });
});

Deno.test("a guard file of the previous format (no messages) is still read", async () => {
  await withDir(async (path) => {
    // v1 layout: magic, last position, lock, then the SHA-256 of all that.
    const body = new ByteWriter(128).raw(new TextEncoder().encode("timenode/sign-guard/v1"))
      .bool(true).u64(9).u32(2).u8(SignStep.Prevote).fixed(hashA, 32).bool(false).finish();
    await Deno.writeFile(
      path,
      new ByteWriter(body.length + 32).raw(body).fixed(sha256(body), 32).finish(),
    );
    const guard = await SignGuard.open(path);
    assert.deepEqual(guard.lastSigned, {
      height: 9,
      round: 2,
      step: SignStep.Prevote,
      blockHash: hashA,
    });
    assert.deepEqual(guard.lastMessages, []);
    assert.equal(guard.maySign(9, 2, SignStep.Prevote, hashB), false);
  });
});
