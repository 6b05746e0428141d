/**
 * Sync against the real chain (chain/chain.ts over SQLite): the rejection reasons the real
 * validation gives are routed to the peer that served the block, and nothing invalid is stored.
 */
import assert from "node:assert/strict";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import type { Message } from "../../../network/messages.ts";
import { SyncService, type SyncTuning } from "../../../sync/service.ts";
import {
  type BuiltBlock,
  ChainBuilder,
  type Corruption,
  CORRUPTIONS,
} from "../../support/chain_builder.ts";
import { FakeNetwork, linkNetworks } from "../../support/fake_network.ts";
import { StaticStateMachine } from "../../support/static_state.ts";
import { withTimeout } from "../../support/deadline.ts";
import { seededRandomFn } from "../../support/random.ts";

const TUNING: SyncTuning = {
  tickIntervalMs: 10,
  scheduler: { batchBlocks: 20, requestTimeoutMs: 300, stallTimeoutMs: 150 },
};

const builder = ChainBuilder.create({ bodyBytes: 1_000 });
const blocks = builder.build(400);

interface RealNode {
  chain: Chain;
  net: FakeNetwork;
  sync: SyncService;
  metrics: ReturnType<typeof createNodeMetrics>;
  dir: string;
}

function realNode(height: number, seed = 1): RealNode {
  const dir = Deno.makeTempDirSync({ prefix: "timenode-sync-" });
  const chain = new Chain({
    store: ChainStore.open(dir, builder.genesisHash),
    genesis: builder.genesis,
    stateMachine: new StaticStateMachine(builder.genesis),
  });
  if (height > 0) {
    const { applied, error } = chain.applyBlocks(
      blocks.slice(0, height).map((b) => ({ cb: b.cb, encoded: b.encoded })),
    );
    assert.equal(applied, height, error?.message);
  }
  const net = new FakeNetwork();
  const metrics = createNodeMetrics();
  const sync = new SyncService({
    network: net,
    chain,
    metrics,
    genesisHash: builder.genesisHash,
    random: seededRandomFn(seed),
    workers: 2,
    tuning: TUNING,
  });
  sync.start();
  return { chain, net, sync, metrics, dir };
}

function stop(...nodes: RealNode[]): void {
  for (const n of nodes) {
    n.sync.close();
    n.net.close();
    n.chain.close();
    Deno.removeSync(n.dir, { recursive: true });
  }
}

function reached(chain: Chain, height: number): Promise<void> {
  if (chain.tip().height >= height) return Promise.resolve();
  return new Promise((resolve) =>
    chain.onBlockApplied(() => chain.tip().height >= height && resolve())
  );
}

function assertStored(chain: Chain, height: number): void {
  assert.equal(chain.tip().height, height);
  for (let h = 1; h <= height; h++) {
    assert.deepEqual(chain.getEncodedBlocks(h, 1, Infinity)[0], blocks[h - 1].encoded);
  }
}

Deno.test("sync into the real chain: a new node catches up from one peer", async () => {
  const b = realNode(400);
  const a = realNode(0);
  try {
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(reached(a.chain, 400), 30_000, "sync to 400");
    assertStored(a.chain, 400);
    assert.deepEqual(a.net.penalties, []);
    assert.deepEqual(b.net.penalties, []);
  } finally {
    stop(a, b);
  }
});

/** What our pipeline reports when the worker sees the fault before the chain does. */
const EXPECTED_REASON: Partial<Record<Corruption, string>> = {
  // An oversized record cannot even be decoded with the block bounds.
  "bad-records": "decode",
};

/**
 * Not a fault for the real chain: a certificate from a later round than the header's is how a
 * re-proposed block gets committed (chain/verify.ts), so that "corruption" is a valid block.
 */
const STILL_VALID: ReadonlySet<Corruption> = new Set(["bad-cert-round"]);
/** Refused, but not the peer's fault for sure: our own clock may be behind. */
const NOT_BLAMED: ReadonlySet<Corruption> = new Set(["future-timestamp"]);

for (
  const how of (Object.keys(CORRUPTIONS) as Corruption[]).filter((c) =>
    !STILL_VALID.has(c) && !NOT_BLAMED.has(c)
  )
) {
  Deno.test(`sync into the real chain: a peer serving a ${how} block is blamed`, async () => {
    const b = realNode(200);
    const a = realNode(0);
    const reason = EXPECTED_REASON[how] ?? CORRUPTIONS[how];
    try {
      const serveSpoiled = (m: Message) => {
        if (m.kind !== "getBlocks") return;
        const answer: BuiltBlock[] = blocks.slice(m.fromHeight - 1, m.fromHeight - 1 + m.count);
        if (answer.length === 0) return;
        answer[answer.length - 1] = builder.corrupt(answer[answer.length - 1], how);
        a.net.deliver("bad", {
          kind: "blocks",
          fromHeight: m.fromHeight,
          blocks: answer.map((x) => x.encoded),
        });
      };
      a.net.connect("bad", { bestHeight: 200, remote: serveSpoiled });
      linkNetworks(a.net, "A", b.net, "B");
      await withTimeout(reached(a.chain, 200), 30_000, `sync despite ${how}`);
      assertStored(a.chain, 200);
      const blamed = a.net.penaltiesOf("bad");
      assert.ok(
        blamed.some((p) => p.score >= 100 && p.code === "invalid-block" && p.detail === reason),
        JSON.stringify(blamed),
      );
      assert.ok(a.metrics.blocksRejected.get({ reason }) >= 1);
      assert.deepEqual(a.net.penaltiesOf("B"), []);
    } finally {
      stop(a, b);
    }
  });
}

Deno.test("sync into the real chain: a block ahead of our clock is refused without blaming its peer", async () => {
  const b = realNode(200);
  const a = realNode(0);
  try {
    const serveFuture = (m: Message) => {
      if (m.kind !== "getBlocks") return;
      const answer: BuiltBlock[] = blocks.slice(m.fromHeight - 1, m.fromHeight - 1 + m.count);
      if (answer.length === 0) return;
      answer[answer.length - 1] = builder.corrupt(answer[answer.length - 1], "future-timestamp");
      a.net.deliver("ahead", {
        kind: "blocks",
        fromHeight: m.fromHeight,
        blocks: answer.map((x) => x.encoded),
      });
    };
    a.net.connect("ahead", { bestHeight: 200, remote: serveFuture });
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(reached(a.chain, 200), 30_000, "sync despite a block from the future");
    assertStored(a.chain, 200);
    assert.ok(a.metrics.blocksRejected.get({ reason: "future-timestamp" }) >= 1);
    assert.deepEqual(a.net.penaltiesOf("ahead"), []);
  } finally {
    stop(a, b);
  }
});
