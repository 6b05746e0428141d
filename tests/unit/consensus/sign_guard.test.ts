import assert from "node:assert/strict";
import { SIGN_GUARD_FILE, SignGuard, SignGuardError } from "../../../consensus/sign_guard.ts";
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
