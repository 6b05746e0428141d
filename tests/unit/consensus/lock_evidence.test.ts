import assert from "node:assert/strict";
import {
  decodeLockEvidence,
  encodeLockEvidence,
  loadLockEvidence,
  saveLockEvidence,
} from "../../../consensus/lock_evidence.ts";
import type { LockEvidence } from "../../../consensus/engine.ts";
import { VoteType } from "../../../chain/block.ts";

const evidence: LockEvidence = {
  block: {
    header: {
      version: 1,
      chainId: new Uint8Array(32).fill(1),
      height: 7,
      prevHash: new Uint8Array(32).fill(2),
      timestamp: 1_700_000_000_000,
      proposer: new Uint8Array(32).fill(3),
      round: 2,
      payloadRoot: new Uint8Array(32),
      validatorSetHash: new Uint8Array(32).fill(4),
    },
    records: [{ type: 3, data: new Uint8Array([9, 9, 9]) }],
  },
  proofOfLock: [1, 2, 3].map((i) => ({
    type: VoteType.Prevote,
    height: 7,
    round: 2,
    blockHash: new Uint8Array(32).fill(5),
    validator: new Uint8Array(32).fill(i),
    signature: new Uint8Array(64).fill(i),
  })),
};

Deno.test("lock evidence round-trips through its file and survives a reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await loadLockEvidence(dir), null);
    await saveLockEvidence(dir, evidence);
    assert.deepEqual(await loadLockEvidence(dir), evidence);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged lock evidence file is refused, never half-read", () => {
  const bytes = encodeLockEvidence(evidence);
  for (const i of [0, 50, bytes.length - 5, bytes.length - 1]) {
    const bad = bytes.slice();
    bad[i] ^= 0xff;
    assert.throws(() => decodeLockEvidence(bad));
  }
  assert.throws(() => decodeLockEvidence(bytes.subarray(0, bytes.length - 10)));
  assert.deepEqual(decodeLockEvidence(bytes), evidence);
});
