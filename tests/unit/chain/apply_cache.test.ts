/**
 * A proposal's state writes are kept for its commit: used only for the same block on the same
 * parent, dropped when the tip moves, and never a way around the checks of a bad block.
 */
import assert from "node:assert/strict";
import type { Block } from "../../../chain/block.ts";
import {
  InvalidBlockError,
  type StateMachine,
  type StateView,
  type StateWrites,
} from "../../../chain/api.ts";
import { ApplyCache, MAX_ENTRIES } from "../../../chain/apply_cache.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import type { ValidatorSet } from "../../../chain/validators.ts";
import { ChainBuilder, FILLER_RECORD_TYPE } from "../../support/chain_builder.ts";

const COUNT_KEY = "test/count";
const POISON = 0xff;

/**
 * Counts its runs; its writes depend on the parent state (a running count), so writes taken
 * from the wrong parent would show in the stored state; a record starting with POISON is invalid.
 */
class CountingStateMachine implements StateMachine {
  runs = 0;
  constructor(private readonly inner: StateMachine) {}
  validatorSetFor(view: StateView, tipHeight: number, height: number): ValidatorSet | undefined {
    return this.inner.validatorSetFor(view, tipHeight, height);
  }
  apply(view: StateView, block: Block): StateWrites {
    this.runs++;
    if (block.records.some((r) => r.data[0] === POISON)) {
      throw new InvalidBlockError("bad-records", "poisoned record");
    }
    const before = view.get(COUNT_KEY)?.[0] ?? 0;
    return new Map([[COUNT_KEY, Uint8Array.of(before + block.records.length)]]);
  }
}

const record = (first: number) => ({ type: FILLER_RECORD_TYPE, data: Uint8Array.of(first, 1) });

async function withChain(
  fn: (chain: Chain, b: ChainBuilder, sm: CountingStateMachine) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-apply-cache-" });
  const b = ChainBuilder.create();
  const sm = new CountingStateMachine(b.stateMachine);
  const chain = new Chain({
    store: ChainStore.open(dir, b.genesisHash),
    genesis: b.genesis,
    stateMachine: sm,
  });
  try {
    fn(chain, b, sm);
  } finally {
    chain.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const countOf = (chain: Chain) => chain.stateView().get(COUNT_KEY)?.[0];

Deno.test("apply cache: a judged proposal commits without running the state machine again", () =>
  withChain((chain, b, sm) => {
    const first = b.next({ records: [record(1), record(2)] });
    chain.checkProposal(first.cb.block);
    assert.equal(sm.runs, 1);
    chain.applyBlock(first.cb);
    assert.equal(sm.runs, 1);
    assert.deepEqual(chain.applyCacheStats, { hits: 1, misses: 0 });
    assert.equal(countOf(chain), 2);
    assert.equal(chain.tip().height, 1);
    // The next height is judged on the new tip and reuses nothing of the last one.
    const second = b.next({ records: [record(3)] });
    chain.checkProposal(second.cb.block);
    chain.applyBlock(second.cb);
    assert.equal(sm.runs, 2);
    assert.equal(countOf(chain), 3);
  }));

Deno.test("apply cache: another block on the same parent runs the state machine", () =>
  withChain((chain, b, sm) => {
    const fork = ChainBuilder.create();
    const judged = fork.next({ records: [record(1)] });
    const committed = b.next({ records: [record(1), record(2), record(3)] });
    chain.checkProposal(judged.cb.block);
    chain.applyBlock(committed.cb);
    assert.equal(sm.runs, 2);
    assert.equal(countOf(chain), 3, "the committed block's own writes are stored");
    assert.deepEqual(chain.applyCacheStats, { hits: 0, misses: 1 });
  }));

Deno.test("apply cache: the same header with another body object is judged again", () =>
  withChain((chain, b, sm) => {
    const item = b.next({ records: [record(1)] });
    chain.checkProposal(item.cb.block);
    const copy = { ...item.cb, block: { ...item.cb.block, records: [...item.cb.block.records] } };
    chain.applyBlock(copy);
    assert.equal(sm.runs, 2);
    assert.equal(countOf(chain), 1);
  }));

Deno.test("apply cache: a bad block is still rejected, judged or not", () =>
  withChain((chain, b, sm) => {
    const poisoned = ChainBuilder.create().next({ records: [record(POISON)] });
    assert.throws(() => chain.checkProposal(poisoned.cb.block), InvalidBlockError);
    assert.throws(() => chain.applyBlock(poisoned.cb), InvalidBlockError);
    assert.equal(sm.runs, 2, "a failed judgement leaves nothing to reuse");
    // A valid body with a certificate that does not certify it is refused before any reuse.
    const good = b.next({ records: [record(1)] });
    chain.checkProposal(good.cb.block);
    const forged = b.corrupt(good, "bad-signature");
    assert.throws(() => chain.applyBlock(forged.cb), InvalidBlockError);
    assert.equal(chain.tip().height, 0);
    chain.applyBlock(good.cb);
    assert.equal(chain.tip().height, 1);
    assert.equal(countOf(chain), 1);
  }));

Deno.test("apply cache: a proposal that does not extend the tip is refused", () =>
  withChain((chain, b) => {
    b.next();
    const ahead = b.next();
    assert.throws(
      () => chain.checkProposal(ahead.cb.block),
      (e) => e instanceof InvalidBlockError && e.reason === "bad-link",
    );
  }));

Deno.test("apply cache: entries are one-shot, per parent, for the same body, and bounded", () => {
  const cache = new ApplyCache();
  const body = { records: [], transactions: undefined, lastCommit: undefined };
  const writes: StateWrites = new Map([["k", null]]);
  cache.put("p1", "b1", body, writes);
  assert.equal(cache.take("p2", "b1", body), undefined, "another parent");
  assert.equal(cache.take("p1", "b1", { ...body, records: [] }), undefined, "another body");
  assert.equal(cache.take("p1", "b1", body), writes);
  assert.equal(cache.take("p1", "b1", body), undefined, "used up");

  cache.put("p1", "a", body, writes);
  cache.put("p2", "b", body, writes);
  cache.retainParent("p2");
  assert.equal(cache.size, 1);
  assert.equal(cache.take("p1", "a", body), undefined);
  assert.equal(cache.take("p2", "b", body), writes);

  for (let i = 0; i < MAX_ENTRIES + 3; i++) cache.put("p", `b${i}`, body, writes);
  assert.equal(cache.size, MAX_ENTRIES);
  assert.equal(cache.take("p", "b0", body), undefined, "the oldest went first");
  assert.equal(cache.take("p", `b${MAX_ENTRIES + 2}`, body), writes);
});
