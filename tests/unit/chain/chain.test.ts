import assert from "node:assert/strict";
import { bytesEqual, DecodeError, fromHex } from "../../../encoding/binary.ts";
import type { Block } from "../../../chain/block.ts";
import type { Genesis } from "../../../chain/genesis.ts";
import { makeValidatorSet, type ValidatorSet } from "../../../chain/validators.ts";
import {
  InvalidBlockError,
  type RejectReason,
  type StateMachine,
  type StateView,
  type StateWrites,
} from "../../../chain/api.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import { MAX_FUTURE_DRIFT_MS } from "../../../chain/verify.ts";
import {
  type BuiltBlock,
  ChainBuilder,
  type Corruption,
  CORRUPTIONS,
} from "../../support/chain_builder.ts";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-chain-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function openChain(
  dir: string,
  b: ChainBuilder,
  opts: { now?: () => number; stateMachine?: StateMachine } = {},
): Chain {
  return new Chain({
    store: ChainStore.open(dir, b.genesisHash),
    genesis: b.genesis,
    stateMachine: opts.stateMachine ?? b.stateMachine,
    now: opts.now,
  });
}

function assertRejected(fn: () => void, reason: RejectReason): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof InvalidBlockError, String(e));
    assert.equal(e.reason, reason, e.message);
    return true;
  });
}

Deno.test("chain: a new chain stands at the genesis", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const chain = openChain(dir, b);
    try {
      assert.deepEqual(chain.tip(), {
        height: 0,
        hash: b.genesisHash,
        timestamp: b.genesis.genesisTime,
      });
      assert.deepEqual(chain.genesisHash, b.genesisHash);
      assert.equal(chain.getHeightOfHash(b.genesisHash), 0);
      assert.equal(chain.getBlock(0), undefined);
      assert.equal(chain.getBlock(1), undefined);
      assert.deepEqual(chain.getEncodedBlocks(1, 10, 1 << 20), []);
      assert.deepEqual(chain.validatorSetFor(1)?.validators.length, 4);
    } finally {
      chain.close();
    }
  }));

Deno.test("chain: refuses a store opened for another genesis", () =>
  withDir((dir) => {
    const a = ChainBuilder.create({ network: "net-a" });
    const b = ChainBuilder.create({ network: "net-b" });
    const store = ChainStore.open(dir, a.genesisHash);
    try {
      assert.throws(
        () => new Chain({ store, genesis: b.genesis, stateMachine: b.stateMachine }),
        /opened for genesis/,
      );
    } finally {
      store.close();
    }
  }));

Deno.test("chain: applies blocks, serves them, and resumes at the tip after reopening", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 200 });
    const blocks = b.build(6);
    let chain = openChain(dir, b);
    try {
      chain.applyBlock(blocks[0].cb);
      chain.applyBlock(blocks[1].cb, blocks[1].encoded);
      assert.deepEqual(chain.applyBlocks(blocks.slice(2, 5)), { applied: 3 });
      assert.equal(chain.tip().height, 5);
      assert.deepEqual(chain.tip().hash, blocks[4].hash);
      for (const [i, x] of blocks.slice(0, 5).entries()) {
        assert.deepEqual(chain.getBlock(i + 1), x.cb);
        assert.equal(chain.getHeightOfHash(x.hash), i + 1);
      }
      assert.deepEqual(
        chain.getEncodedBlocks(2, 2, 1 << 20),
        [blocks[1].encoded, blocks[2].encoded],
      );
      assert.equal(chain.getHeightOfHash(blocks[5].hash), undefined);
    } finally {
      chain.close();
    }
    chain = openChain(dir, b);
    try {
      assert.deepEqual(chain.tip(), {
        height: 5,
        hash: blocks[4].hash,
        timestamp: blocks[4].cb.block.header.timestamp,
      });
      chain.applyBlock(blocks[5].cb, blocks[5].encoded);
      assert.equal(chain.tip().height, 6);
    } finally {
      chain.close();
    }
  }));

for (const how of Object.keys(CORRUPTIONS) as Corruption[]) {
  Deno.test(`chain: "${how}" is rejected as ${CORRUPTIONS[how]} and nothing is stored`, () =>
    withDir((dir) => {
      const b = ChainBuilder.create({ bodyBytes: 100 });
      const [first, second] = b.build(2);
      const bad = b.corrupt(second, how);
      let chain = openChain(dir, b);
      try {
        chain.applyBlock(first.cb, first.encoded);
        assertRejected(() => chain.applyBlock(bad.cb, bad.encoded), CORRUPTIONS[how]);
        const viaBatch = chain.applyBlocks([bad]);
        assert.equal(viaBatch.applied, 0);
        assert.equal(viaBatch.error?.reason, CORRUPTIONS[how]);
        assert.equal(chain.tip().height, 1);
        assert.equal(chain.getBlock(2), undefined);
        assert.equal(chain.getHeightOfHash(bad.hash), undefined);
      } finally {
        chain.close();
      }
      chain = openChain(dir, b);
      try {
        assert.equal(chain.tip().height, 1, "nothing of the bad block reached the disk");
        chain.applyBlock(second.cb, second.encoded);
        assert.equal(chain.tip().height, 2);
      } finally {
        chain.close();
      }
    }));
}

Deno.test("chain: a batch whose block k is invalid keeps the blocks before k", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 100 });
    const blocks = b.build(10);
    const batch = [...blocks];
    batch[6] = b.corrupt(blocks[6], "bad-signature");
    let chain = openChain(dir, b);
    try {
      const result = chain.applyBlocks(batch);
      assert.equal(result.applied, 6);
      assert.equal(result.error?.reason, "bad-signature");
      assert.equal(chain.tip().height, 6);
      assert.deepEqual(chain.tip().hash, blocks[5].hash);
    } finally {
      chain.close();
    }
    chain = openChain(dir, b);
    try {
      assert.equal(chain.tip().height, 6);
      assert.deepEqual(chain.applyBlocks(blocks.slice(6)), { applied: 4 });
      assert.equal(chain.tip().height, 10);
    } finally {
      chain.close();
    }
  }));

Deno.test("chain: a batch with a gap stops at the gap", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const blocks = b.build(5);
    const chain = openChain(dir, b);
    try {
      const result = chain.applyBlocks([blocks[0], blocks[1], blocks[3], blocks[4]]);
      assert.equal(result.applied, 2);
      assert.equal(result.error?.reason, "bad-height");
      assert.equal(chain.tip().height, 2);
    } finally {
      chain.close();
    }
  }));

Deno.test("chain: encoded bytes that are not the block's encoding are refused", () =>
  withDir((dir) => {
    const b = ChainBuilder.create({ bodyBytes: 100 });
    const [first, second] = b.build(2);
    const chain = openChain(dir, b);
    try {
      assertRejected(() => chain.applyBlock(first.cb, second.encoded), "decode");
      const result = chain.applyBlocks([first, { cb: second.cb, encoded: first.encoded }]);
      assert.equal(result.applied, 1);
      assert.equal(result.error?.reason, "decode");
      assert.deepEqual(chain.getEncodedBlocks(1, 5, 1 << 20), [first.encoded]);
    } finally {
      chain.close();
    }
  }));

Deno.test("chain: the future bound follows the injected clock", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const first = b.next();
    const ts = first.cb.block.header.timestamp;
    let now = ts - MAX_FUTURE_DRIFT_MS - 1;
    const chain = openChain(dir, b, { now: () => now });
    try {
      assertRejected(() => chain.applyBlock(first.cb), "future-timestamp");
      now += 1;
      chain.applyBlock(first.cb);
      assert.equal(chain.tip().height, 1);
    } finally {
      chain.close();
    }
  }));

Deno.test("chain: onBlockApplied fires in order, after commit, and survives a throwing handler", () =>
  withDir((dir) => {
    const b = ChainBuilder.create();
    const blocks = b.build(4);
    const chain = openChain(dir, b);
    const seen: number[] = [];
    try {
      chain.onBlockApplied(() => {
        throw new Error("subscriber bug");
      });
      chain.onBlockApplied((cb, hash) => {
        const h = cb.block.header.height;
        assert.deepEqual(hash, blocks[h - 1].hash);
        // Committed before anyone hears of it: readable, and the tip already covers it.
        assert.deepEqual(chain.getBlock(h), cb);
        assert.ok(chain.tip().height >= h);
        seen.push(h);
      });
      chain.applyBlock(blocks[0].cb);
      chain.applyBlocks(blocks.slice(1));
      assert.deepEqual(seen, [1, 2, 3, 4]);
      assertRejected(() => chain.applyBlock(blocks[0].cb), "bad-height");
      assert.deepEqual(seen, [1, 2, 3, 4], "a rejected block is not announced");
    } finally {
      chain.close();
    }
  }));

// A state machine whose validator set and checks depend on state written by earlier blocks:
// a block with a ROTATE record hands the set from the first four masternodes to the last four,
// and every block must find the counter its predecessor wrote.
const ROTATE = 7;
const UNPARSEABLE = 9;
const CRASH = 10;

class RotatingStateMachine implements StateMachine {
  readonly #before: ValidatorSet;
  readonly #after: ValidatorSet;
  readonly #ignorePoison: boolean;
  constructor(genesis: Genesis, opts: { ignorePoison?: boolean } = {}) {
    this.#ignorePoison = opts.ignorePoison ?? false;
    const members = genesis.masternodes.map((m) => ({
      nodeId: fromHex(m.nodeId),
      tier: m.tier,
      power: 1,
      rewardAddress: m.rewardAddress,
      address: m.address,
    }));
    this.#before = makeValidatorSet(members.slice(0, 4));
    this.#after = makeValidatorSet(members.slice(1, 5));
  }
  /** The new set certifies the heights after the block that rotated (its `lastCommit` too). */
  validatorSetFor(view: StateView, _tip: number, height: number): ValidatorSet {
    const rotatedAt = view.get("rotated");
    return rotatedAt && height > rotatedAt[0] ? this.#after : this.#before;
  }
  apply(view: StateView, block: Block): StateWrites {
    const count = view.get("count")?.[0] ?? 0;
    if (count !== (block.header.height - 1) % 256) {
      throw new InvalidBlockError("bad-records", `state counter ${count} out of step`);
    }
    const writes: StateWrites = new Map([["count", new Uint8Array([block.header.height % 256])]]);
    // Written at odd heights, deleted at even ones: deletes must show through the overlay too.
    writes.set("odd", block.header.height % 2 === 1 ? new Uint8Array([1]) : null);
    if (block.header.height % 2 === 0 && view.get("odd") === undefined) {
      throw new InvalidBlockError("bad-records", "odd marker missing");
    }
    for (const r of block.records) {
      if (r.type === ROTATE) writes.set("rotated", new Uint8Array([block.header.height]));
      if (this.#ignorePoison) continue;
      if (r.type === UNPARSEABLE) throw new DecodeError("record does not parse");
      if (r.type === CRASH) throw new TypeError("state machine bug");
    }
    return writes;
  }
}

function rotatingChain(): { b: ChainBuilder; blocks: BuiltBlock[] } {
  const b = ChainBuilder.create({
    validators: 5,
    stateMachine: (g) => new RotatingStateMachine(g),
  });
  const blocks = [
    ...b.build(3),
    b.next({ records: [{ type: ROTATE, data: new Uint8Array(1) }] }),
    ...b.build(4),
  ];
  return { b, blocks };
}

Deno.test("chain: a batch validates exactly like the same blocks one by one", async () => {
  const { b, blocks } = rotatingChain();
  // The set really changes: blocks after the rotation are certified by another set.
  assert.ok(
    !bytesEqual(
      blocks[2].cb.block.header.validatorSetHash,
      blocks[5].cb.block.header.validatorSetHash,
    ),
  );
  const results: { state: (string | undefined)[]; tip: Uint8Array }[] = [];
  for (const mode of ["one-by-one", "batch"]) {
    await withDir((dir) => {
      const chain = openChain(dir, b, { stateMachine: new RotatingStateMachine(b.genesis) });
      try {
        if (mode === "batch") {
          assert.deepEqual(chain.applyBlocks(blocks), { applied: 8 });
        } else {
          for (const x of blocks) chain.applyBlock(x.cb, x.encoded);
        }
        const view = chain.stateView();
        results.push({
          state: ["count", "odd", "rotated"].map((k) => view.get(k)?.join(",")),
          tip: chain.tip().hash,
        });
      } finally {
        chain.close();
      }
    });
  }
  assert.deepEqual(results[0], results[1]);
  assert.deepEqual(results[0].state, ["8", undefined, "4"]);
});

Deno.test("chain: an unparseable record is a bad block; a state machine bug is not", () =>
  withDir((dir) => {
    // Builders whose state machine ignores the poison records can certify blocks that the
    // chain's own state machine then chokes on.
    const lenient = () =>
      ChainBuilder.create({
        validators: 5,
        stateMachine: (g) => new RotatingStateMachine(g, { ignorePoison: true }),
      });
    const secondWith = (type: number) => {
      const fork = lenient();
      fork.next();
      return fork.next({ records: [{ type, data: new Uint8Array(1) }] });
    };
    const b = lenient();
    const first = b.next();
    const chain = openChain(dir, b, { stateMachine: new RotatingStateMachine(b.genesis) });
    try {
      chain.applyBlock(first.cb, first.encoded);
      const unparseable = secondWith(UNPARSEABLE);
      assertRejected(() => chain.applyBlock(unparseable.cb, unparseable.encoded), "bad-records");
      assert.throws(() => chain.applyBlocks([secondWith(CRASH)]), TypeError);
      assert.equal(chain.tip().height, 1);
      assert.equal(chain.getBlock(2), undefined);
      chain.applyBlock(b.next().cb);
      assert.equal(chain.tip().height, 2);
    } finally {
      chain.close();
    }
  }));
