/**
 * The sign guard's edges (consensus/sign_guard.ts): the exact argument bounds, files that are
 * checksummed correctly but still not a guard file, and which calls write to disk at all.
 */
import assert from "node:assert/strict";
import { sha256 } from "../../../crypto/hash.ts";
import { ByteWriter } from "../../../encoding/binary.ts";
import { SIGN_GUARD_FILE, SignGuard, SignGuardError } from "../../../consensus/sign_guard.ts";
import { SignStep } from "../../../consensus/sign_position.ts";
import type { ConsensusMessage } from "../../../consensus/engine.ts";
import { blockHash, VoteType, writeProposal, writeVote } from "../../../chain/block.ts";
import {
  buildBlock,
  makeTestValidators,
  signProposal,
  signVote,
} from "../../support/consensus_sim.ts";

const hashA = new Uint8Array(32).fill(0xaa);
const hashB = new Uint8Array(32).fill(0xbb);
const MAGIC = new TextEncoder().encode("timenode/sign-guard/v1");

async function withDir(fn: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sign-guard-rules-" });
  try {
    await fn(`${dir}/${SIGN_GUARD_FILE}`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** A guard file with a correct checksum over whatever body the test wants. */
function checksummed(body: Uint8Array): Uint8Array {
  return new Uint8Array([...body, ...sha256(body)]);
}

function guardBody(
  last: { height: number; round: number; step: number; hash: Uint8Array } | null,
  magic = MAGIC,
): ByteWriter {
  const w = new ByteWriter(160).raw(magic).bool(last !== null);
  if (last) w.u64(last.height).u32(last.round).u8(last.step).fixed(last.hash, 32);
  return w;
}

Deno.test("sign guard: argument bounds are exact", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    // Largest legal values are accepted.
    assert.equal(
      guard.maySign(Number.MAX_SAFE_INTEGER, 0xffffffff, SignStep.Precommit, hashA),
      true,
    );
    assert.equal(guard.maySign(0, 0, SignStep.Propose, hashA), true);
    assert.equal(guard.maySign(0, 0, SignStep.Prevote, hashA), true);
    // One past them is a programming error.
    assert.throws(() => guard.maySign(2 ** 53, 0, SignStep.Prevote, hashA), /bad height/);
    assert.throws(() => guard.maySign(1.5, 0, SignStep.Prevote, hashA), /bad height/);
    assert.throws(() => guard.maySign(1, 0x100000000, SignStep.Prevote, hashA), /bad round/);
    assert.throws(() => guard.maySign(1, -1, SignStep.Prevote, hashA), /bad round/);
    assert.throws(() => guard.maySign(1, 0, 0 as SignStep, hashA), /bad step/);
    assert.throws(
      () => guard.maySign(1, 0, SignStep.Prevote, new Uint8Array(33)),
      /block hash must be 32 bytes/,
    );
    // The lock's position is checked the same way, alone or with a precommit.
    assert.throws(() => guard.recordLock(-1, 0, hashA), /bad height/);
    assert.throws(() => guard.recordLock(1, -1, hashA), /bad round/);
    assert.throws(
      () =>
        guard.recordSigned(1, 0, SignStep.Precommit, hashA, {
          height: 1,
          round: 0,
          blockHash: new Uint8Array(31),
        }),
      RangeError,
    );
    assert.equal(guard.lastSigned, null, "a refused call changes nothing");
    assert.equal(guard.lock, null);
    assert.equal(await exists(path), false);
  });
});

Deno.test("sign guard: a lock alone is stored without inventing a signed position", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    await guard.recordLock(4, 2, hashA);
    const reopened = await SignGuard.open(path);
    assert.equal(reopened.lastSigned, null);
    assert.deepEqual(reopened.lock, { height: 4, round: 2, blockHash: hashA });
    assert.equal(reopened.maySign(0, 0, SignStep.Propose, hashB), true);
  });
});

Deno.test("sign guard: a new lock replaces the old one; the stored lock is a copy", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    const hash = hashA.slice();
    await guard.recordLock(4, 0, hash);
    hash.fill(0xcc);
    assert.deepEqual(guard.lock?.blockHash, hashA, "the caller's buffer is not kept");
    await guard.recordLock(4, 1, hashA);
    assert.deepEqual((await SignGuard.open(path)).lock, { height: 4, round: 1, blockHash: hashA });
    await guard.recordLock(4, 1, hashB);
    assert.deepEqual((await SignGuard.open(path)).lock, { height: 4, round: 1, blockHash: hashB });
    await guard.recordLock(5, 1, hashB);
    assert.deepEqual((await SignGuard.open(path)).lock, { height: 5, round: 1, blockHash: hashB });
  });
});

Deno.test("sign guard: repeating what is already on disk writes nothing", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    const lock = { height: 2, round: 0, blockHash: hashA };
    await guard.recordSigned(2, 0, SignStep.Precommit, hashA, lock);
    // Remove the file: any further write would bring it back.
    await Deno.remove(path);
    await guard.recordSigned(2, 0, SignStep.Precommit, hashA, { ...lock });
    await guard.recordLock(2, 0, hashA.slice());
    assert.equal(await exists(path), false, "a re-send of the same vote and lock is free");
    await guard.recordLock(2, 1, hashA);
    assert.equal(await exists(path), true, "a changed lock is written");
    await Deno.remove(path);
    await guard.recordSigned(3, 0, SignStep.Prevote, hashB);
    assert.deepEqual((await SignGuard.open(path)).lastSigned, {
      height: 3,
      round: 0,
      step: SignStep.Prevote,
      blockHash: hashB,
    });
  });
});

Deno.test("sign guard: the signed block hash is copied, not aliased", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    const hash = hashA.slice();
    await guard.recordSigned(1, 0, SignStep.Prevote, hash);
    hash.fill(0xbb);
    assert.equal(guard.maySign(1, 0, SignStep.Prevote, hashB), false);
    assert.equal(guard.maySign(1, 0, SignStep.Prevote, hashA), true);
    await assert.rejects(
      guard.recordSigned(1, 0, SignStep.Prevote, hashB),
      /refusing to record a conflicting signature at 1\/0/,
    );
  });
});

Deno.test("sign guard: after a failed write, a later write stores everything", async () => {
  await withDir(async (_path, dir) => {
    const path = `${dir}/later/${SIGN_GUARD_FILE}`;
    const guard = await SignGuard.open(path);
    await assert.rejects(guard.recordSigned(1, 0, SignStep.Prevote, hashA));
    await Deno.mkdir(`${dir}/later`);
    await guard.recordSigned(1, 0, SignStep.Prevote, hashA);
    assert.deepEqual((await SignGuard.open(path)).lastSigned?.blockHash, hashA);
  });
});

Deno.test("sign guard: a checksummed file that is not a guard file is refused", async () => {
  await withDir(async (path) => {
    const last = { height: 3, round: 1, step: SignStep.Prevote, hash: hashA };
    // Sanity: the hand-made file is read back when it is right.
    await Deno.writeFile(path, checksummed(guardBody(last).bool(false).finish()));
    assert.deepEqual((await SignGuard.open(path)).lastSigned, {
      height: 3,
      round: 1,
      step: SignStep.Prevote,
      blockHash: hashA,
    });
    // v1 and v2 are both read (docs/security.md); the next version is not ours yet.
    const wrongMagic = new TextEncoder().encode("timenode/sign-guard/v3");
    const good = checksummed(guardBody(last).bool(false).finish());
    const badChecksum = good.slice();
    badChecksum[good.length - 1] ^= 1;
    const cases: [RegExp, Uint8Array][] = [
      [/\(bad magic\)/, checksummed(guardBody(last, wrongMagic).bool(false).finish())],
      [/\(bad step 4\)/, checksummed(guardBody({ ...last, step: 4 }).bool(false).finish())],
      [/\(bad step 0\)/, checksummed(guardBody({ ...last, step: 0 }).bool(false).finish())],
      [/damaged/, checksummed(guardBody(last).bool(false).u8(0).finish())],
      [/\(checksum mismatch\)/, badChecksum],
      [/\(file too short\)/, new Uint8Array(MAGIC.length + 31)],
    ];
    for (const [message, bytes] of cases) {
      await Deno.writeFile(path, bytes);
      await assert.rejects(SignGuard.open(path), (e: unknown) => {
        assert.ok(e instanceof SignGuardError);
        assert.equal(e.name, "SignGuardError");
        assert.match(e.message, message);
        assert.match(e.message, /refusing to start, since signing without it could double-sign/);
        return true;
      });
    }
  });
});

// The v2 bound: a kept proposal of 64 KiB plus 4096 bytes for the rest (consensus/sign_guard.ts).
Deno.test("sign guard: a file over 69,632 bytes is refused before it is read", async () => {
  await withDir(async (path) => {
    await Deno.writeFile(path, new Uint8Array(69_633));
    await assert.rejects(SignGuard.open(path), /69633 bytes: not a guard file/);
    await Deno.writeFile(path, new Uint8Array(69_632));
    await assert.rejects(SignGuard.open(path), /damaged/);
  });
});

// ---- the kept messages (v2): what is kept, what replaces what, and the file's bounds ----------

const V2_MAGIC = new TextEncoder().encode("timenode/sign-guard/v2");
const { set: KEPT_SET, keys: KEPT_KEYS } = makeTestValidators([1], "guard-kept");
const KEY = KEPT_KEYS[0];

function keptBlock(height: number, round: number, dataBytes = 0) {
  return buildBlock({
    set: KEPT_SET,
    height,
    previous: { hash: new Uint8Array(32), timestamp: 1 },
    round,
    records: dataBytes > 0 ? [{ type: 3, data: new Uint8Array(dataBytes) }] : [],
  });
}

const voteMessage = (type: VoteType, height: number, round: number): ConsensusMessage => ({
  kind: "vote",
  vote: signVote(KEY, type, height, round, hashA),
});

function encodedProposalBytes(m: ConsensusMessage): number {
  const w = new ByteWriter();
  if (m.kind === "proposal") writeProposal(w, m.proposal);
  return w.length;
}

Deno.test("sign guard kept: a message of another height or round than the recorded one is not kept", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    for (const [height, round] of [[5, 2], [6, 1], [4, 1]]) {
      await guard.recordSigned(
        5,
        1,
        SignStep.Prevote,
        hashA,
        undefined,
        voteMessage(VoteType.Prevote, height, round),
      );
    }
    assert.deepEqual((await SignGuard.open(path)).lastMessages, []);
  });
});

Deno.test("sign guard kept: recording the same vote or proposal again keeps one copy; both vote types are kept", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    const block = keptBlock(5, 1);
    const proposal: ConsensusMessage = {
      kind: "proposal",
      proposal: signProposal(KEY, 5, 1, -1, block),
    };
    const hash = blockHash(block.header);
    await guard.recordSigned(5, 1, SignStep.Propose, hash, undefined, proposal);
    await guard.recordSigned(5, 1, SignStep.Propose, hash, undefined, proposal);
    const prevote = voteMessage(VoteType.Prevote, 5, 1);
    await guard.recordSigned(5, 1, SignStep.Prevote, hashA, undefined, prevote);
    await guard.recordSigned(5, 1, SignStep.Prevote, hashA, undefined, prevote);
    const precommit = voteMessage(VoteType.Precommit, 5, 1);
    await guard.recordSigned(5, 1, SignStep.Precommit, hashA, undefined, precommit);
    assert.deepEqual((await SignGuard.open(path)).lastMessages, [proposal, prevote, precommit]);
  });
});

Deno.test("sign guard kept: the same round of the next height supersedes the kept messages", async () => {
  await withDir(async (path) => {
    const guard = await SignGuard.open(path);
    await guard.recordSigned(
      5,
      1,
      SignStep.Prevote,
      hashA,
      undefined,
      voteMessage(VoteType.Prevote, 5, 1),
    );
    await guard.recordSigned(
      5,
      1,
      SignStep.Precommit,
      hashA,
      undefined,
      voteMessage(VoteType.Precommit, 5, 1),
    );
    // Height 6, round 1: neither the prevote nor the precommit of height 5 round 1 stays.
    const next = voteMessage(VoteType.Prevote, 6, 1);
    await guard.recordSigned(6, 1, SignStep.Prevote, hashA, undefined, next);
    assert.deepEqual((await SignGuard.open(path)).lastMessages, [next]);
  });
});

Deno.test("sign guard kept: a proposal of exactly 65,536 encoded bytes is kept, one byte more is not", async () => {
  // docs/security.md: a kept proposal is at most 64 KiB encoded (MAX_KEPT_PROPOSAL_BYTES).
  const LIMIT = 65_536;
  const sized = (bytes: number): ConsensusMessage => {
    const base = encodedProposalBytes({
      kind: "proposal",
      proposal: signProposal(KEY, 5, 0, -1, keptBlock(5, 0, 1_000)),
    });
    const block = keptBlock(5, 0, 1_000 + bytes - base);
    const m: ConsensusMessage = { kind: "proposal", proposal: signProposal(KEY, 5, 0, -1, block) };
    assert.equal(encodedProposalBytes(m), bytes, "the fixture hits its size");
    return m;
  };
  for (const [bytes, kept] of [[LIMIT, true], [LIMIT + 1, false]] as const) {
    await withDir(async (path) => {
      const guard = await SignGuard.open(path);
      const m = sized(bytes);
      if (m.kind !== "proposal") throw new Error("unreachable");
      const hash = blockHash(m.proposal.block.header);
      await guard.recordSigned(5, 0, SignStep.Propose, hash, undefined, m);
      assert.deepEqual(
        (await SignGuard.open(path)).lastMessages,
        kept ? [m] : [],
        `${bytes} bytes`,
      );
    });
  }
});

Deno.test("sign guard kept: a file listing more than 3 kept messages, or an unknown kind, is refused", async () => {
  const last = { height: 5, round: 1, step: SignStep.Prevote, hash: hashA };
  const withMessages = (count: number, kinds: number[]) => {
    const w = guardBody(last, V2_MAGIC).bool(false).u8(count);
    for (const kind of kinds) {
      writeVote(w.u8(kind), signVote(KEY, VoteType.Prevote, 5, 1, hashA));
    }
    return checksummed(w.finish());
  };
  await withDir(async (path) => {
    await Deno.writeFile(path, withMessages(3, [1, 1, 1]));
    assert.equal((await SignGuard.open(path)).lastMessages.length, 3, "3 is the bound");
    const cases: [RegExp, Uint8Array][] = [
      [/\(4 kept messages\)/, withMessages(4, [1, 1, 1, 1])],
      [/\(bad message kind 2\)/, withMessages(1, [2])],
    ];
    for (const [message, bytes] of cases) {
      await Deno.writeFile(path, bytes);
      await assert.rejects(SignGuard.open(path), (e: unknown) => {
        assert.ok(e instanceof SignGuardError);
        assert.match(e.message, message);
        return true;
      });
    }
  });
});
