import assert from "node:assert/strict";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import type { Message } from "../../../network/messages.ts";
import { SyncService, type SyncTuning } from "../../../sync/service.ts";
import { FakeNetwork, linkNetworks, type RemoteHandler } from "../../support/fake_network.ts";
import { withTimeout } from "../../support/deadline.ts";
import {
  type ChainFixture,
  chainFixture,
  corruptAt,
  FakeChain,
  type FixtureCorruption,
} from "../../support/fake_chain.ts";
import { seededRandomFn } from "../../support/random.ts";

/** Short timeouts so silent peers cost milliseconds, not seconds. */
const FAST: SyncTuning = {
  tickIntervalMs: 10,
  scheduler: { batchBlocks: 50, requestTimeoutMs: 300, stallTimeoutMs: 150 },
};

interface TestNode {
  chain: FakeChain;
  net: FakeNetwork;
  sync: SyncService;
  metrics: ReturnType<typeof createNodeMetrics>;
}

function node(
  f: ChainFixture,
  height: number,
  tuning: SyncTuning = FAST,
  seed = 1,
  now?: () => number,
): TestNode {
  const chain = new FakeChain(f, height);
  const net = new FakeNetwork();
  const metrics = createNodeMetrics();
  const sync = new SyncService({
    network: net,
    chain,
    metrics,
    genesisHash: f.genesisHash,
    random: seededRandomFn(seed),
    workers: 2,
    tuning,
    now,
  });
  sync.start();
  return { chain, net, sync, metrics };
}

function shutdown(...nodes: TestNode[]): void {
  for (const n of nodes) {
    n.sync.close();
    n.net.close();
  }
}

/** One turn of the event loop, so queued tip updates have run (not a timing wait). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A scripted peer that answers getBlocks from `blocksFor` (null: stays silent). */
function server(
  net: FakeNetwork,
  key: string,
  blocksFor: (from: number, count: number) => Uint8Array[] | null,
): RemoteHandler {
  return (m: Message) => {
    if (m.kind !== "getBlocks") return;
    const blocks = blocksFor(m.fromHeight, m.count);
    if (blocks) net.deliver(key, { kind: "blocks", fromHeight: m.fromHeight, blocks });
  };
}

function assertSameChain(chain: FakeChain, f: ChainFixture, height: number): void {
  assert.equal(chain.tip().height, height);
  for (let h = 1; h <= height; h++) {
    assert.deepEqual(chain.getEncodedBlocks(h, 1, Infinity)[0], f.encoded[h - 1], `block ${h}`);
  }
}

Deno.test("sync service: a new node syncs from a single peer, which serves it untroubled", async () => {
  const f = chainFixture(1_200);
  const b = node(f, 1_200);
  const a = node(f, 0);
  try {
    assert.equal(a.sync.state(), "idle");
    linkNetworks(a.net, "A", b.net, "B");
    assert.equal(a.sync.state(), "syncing");
    await withTimeout(a.chain.reached(1_200), 30_000, "sync to 1200");
    await settle();
    assertSameChain(a.chain, f, 1_200);
    assert.equal(a.sync.state(), "synced");
    assert.ok(a.chain.verifiedApplies > 0, "signatures were checked by the pool");
    const info = a.sync.info();
    assert.equal(info.height, 1_200);
    assert.equal(info.targetHeight, 1_200);
    assert.equal(info.progress, 1);
    assert.equal(a.metrics.blocksApplied.get(), 1_200);
    assert.ok(a.metrics.syncRequests.get({ outcome: "ok" }) >= 1_200 / 50);
    assert.match(a.metrics.registry.render(), /timenode_sync_state 2/);
    // Nobody was punished, and the server's limits never kicked in (docs/lessons.md#18).
    assert.deepEqual(a.net.penalties, []);
    assert.deepEqual(b.net.penalties, []);
    const served = b.sync.serveStats();
    assert.equal(served.deferred, 0);
    assert.equal(served.refused, 0);
    // Synced: our new tip is announced once, not per message.
    assert.deepEqual(
      a.net.sentTo("B", "blockAnnounce").map((m) => m.kind === "blockAnnounce" && m.height),
      [1_200],
    );
    assert.equal(a.net.localTip.height, 1_200);
  } finally {
    shutdown(a, b);
  }
});

Deno.test("sync service: one silent and one corrupt peer cannot stop a sync", async () => {
  const f = chainFixture(800);
  const b = node(f, 800);
  const a = node(f, 0, { ...FAST, scheduler: { ...FAST.scheduler, batchBlocks: 40 } });
  try {
    a.net.connect("silent", { bestHeight: 800, remote: () => {} });
    a.net.connect("corrupt", {
      bestHeight: 800,
      // Body tampering passes the signature check; only the chain's payload root catches it.
      remote: server(
        a.net,
        "corrupt",
        (from, count) =>
          f.encoded.slice(from - 1, from - 1 + count).map((e, i) =>
            i === 2 ? corruptAt(f, from + i, "bad-payload-root") : e
          ),
      ),
    });
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(a.chain.reached(800), 30_000, "sync to 800 despite bad peers");
    assertSameChain(a.chain, f, 800);
    const bad = a.net.penaltiesOf("corrupt");
    assert.ok(
      bad.length > 0 &&
        bad.some((p) => p.code === "invalid-block" && p.detail === "bad-payload-root"),
    );
    assert.equal(a.net.peer("corrupt"), undefined, "banned and disconnected");
    assert.deepEqual(a.net.penaltiesOf("B"), []);
    // Silence costs only the small charge for a claim it never backed: far from a ban.
    const silent = a.net.penaltiesOf("silent");
    assert.ok(silent.every((p) => p.code === "unbacked-height-claim"), JSON.stringify(silent));
    assert.ok(silent.reduce((sum, p) => sum + p.score, 0) < 100);
    assert.ok(a.metrics.blocksRejected.get({ reason: "bad-payload-root" }) >= 1);
    const m = a.metrics.syncRequests;
    assert.ok(m.get({ outcome: "timeout" }) + m.get({ outcome: "stalled" }) >= 1);
  } finally {
    shutdown(a, b);
  }
});

for (
  const how of ["bad-signature", "truncated", "bad-link", "bad-timestamp"] as FixtureCorruption[]
) {
  Deno.test(`sync service: a peer serving a corrupted block (${how}) is penalised`, async () => {
    const f = chainFixture(300);
    const b = node(f, 300);
    const a = node(f, 0, { ...FAST, scheduler: { ...FAST.scheduler, batchBlocks: 30 } });
    try {
      a.net.connect("bad", {
        bestHeight: 300,
        remote: server(
          a.net,
          "bad",
          (from, count) =>
            f.encoded.slice(from - 1, from - 1 + count).map((e, i) =>
              i === count - 1 ? corruptAt(f, from + i, how) : e
            ),
        ),
      });
      linkNetworks(a.net, "A", b.net, "B");
      await withTimeout(a.chain.reached(300), 30_000, `sync despite bad ${how}`);
      assertSameChain(a.chain, f, 300);
      assert.ok(a.net.penaltiesOf("bad").some((p) => p.score >= 100));
      assert.deepEqual(a.net.penaltiesOf("B"), []);
    } finally {
      shutdown(a, b);
    }
  });
}

Deno.test("sync service: malformed answers (too many, wrong start, empty) are penalised", async () => {
  const f = chainFixture(300);
  const b = node(f, 300);
  const a = node(f, 0);
  try {
    a.net.connect("overcount", {
      bestHeight: 300,
      remote: server(a.net, "overcount", (from, count) => f.encoded.slice(from - 1, from + count)),
    });
    a.net.connect("shifted", {
      bestHeight: 300,
      remote: (m) => {
        if (m.kind !== "getBlocks") return;
        const blocks = f.encoded.slice(m.fromHeight, m.fromHeight + m.count);
        a.net.deliver("shifted", { kind: "blocks", fromHeight: m.fromHeight, blocks });
      },
    });
    a.net.connect("empty", { bestHeight: 300, remote: server(a.net, "empty", () => []) });
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(a.chain.reached(300), 30_000, "sync despite malformed answers");
    assertSameChain(a.chain, f, 300);
    for (const key of ["overcount", "shifted", "empty"]) {
      assert.ok(a.net.penaltiesOf(key).length > 0, `${key} penalised`);
    }
    assert.ok(
      a.net.penaltiesOf("shifted").some((p) =>
        p.code === "invalid-block" && p.detail === "bad-height"
      ),
    );
    assert.deepEqual(a.net.penaltiesOf("B"), []);
  } finally {
    shutdown(a, b);
  }
});

Deno.test("sync service: a peer that disconnects mid-request has its batch asked elsewhere", async () => {
  const f = chainFixture(300);
  const b = node(f, 300);
  const a = node(f, 0);
  try {
    let dropped = false;
    a.net.connect("dropper", {
      bestHeight: 300,
      remote: (m) => {
        if (m.kind === "getBlocks" && !dropped) {
          dropped = true;
          a.net.disconnect("dropper", "read-error");
        }
      },
    });
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(a.chain.reached(300), 30_000, "sync after a disconnect");
    assert.ok(dropped);
    assert.ok(a.metrics.syncRequests.get({ outcome: "disconnected" }) >= 1);
    assertSameChain(a.chain, f, 300);
  } finally {
    shutdown(a, b);
  }
});

Deno.test("sync service: follows a moving tip, announcing each new tip exactly once", async () => {
  const f = chainFixture(400, 3);
  const b = node(f, 300);
  const a = node(f, 0);
  try {
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(a.chain.reached(300), 30_000, "initial sync");
    await settle();
    assert.equal(a.sync.state(), "synced");
    const announcedBefore = b.net.sentCount.get("blockAnnounce") ?? 0;
    for (let h = 301; h <= 400; h++) {
      b.chain.applyFromFixture(f, h); // B's consensus commits a block
      await withTimeout(a.chain.reached(h), 10_000, `follow to ${h}`);
    }
    await settle();
    assertSameChain(a.chain, f, 400);
    assert.equal((b.net.sentCount.get("blockAnnounce") ?? 0) - announcedBefore, 100);
    const fromA = a.net.sentTo("B", "blockAnnounce").map((m) =>
      m.kind === "blockAnnounce" ? m.height : -1
    );
    assert.deepEqual(fromA, [300, ...Array.from({ length: 100 }, (_, i) => 301 + i)]);
    assert.equal(a.sync.state(), "synced");
  } finally {
    shutdown(a, b);
  }
});

Deno.test("sync service: blocks committed locally meanwhile are neither refetched nor blamed", async () => {
  const f = chainFixture(300);
  const b = node(f, 300);
  const a = node(f, 0);
  try {
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(a.chain.reached(20), 30_000, "first blocks");
    a.chain.applyFromFixture(f, 150); // our own consensus (or a restart) jumps ahead
    await withTimeout(a.chain.reached(300), 30_000, "rest of the sync");
    assertSameChain(a.chain, f, 300);
    assert.deepEqual(a.net.penalties, []);
    assert.equal(a.metrics.blocksRejected.get({ reason: "bad-height" }), 0);
  } finally {
    shutdown(a, b);
  }
});

Deno.test("sync service: serving is bounded in count and bytes, and answers what it has", async () => {
  const f = chainFixture(600);
  const s = node(f, 600, { ...FAST, serveMaxBytes: 10_000 });
  const answers: Message[] = [];
  let waiting: (() => void) | null = null;
  s.net.connect("peer", {
    remote: (m) => {
      answers.push(m);
      waiting?.();
    },
  });
  const ask = async (fromHeight: number, count: number) => {
    const got = new Promise<void>((resolve) => waiting = resolve);
    s.net.deliver("peer", { kind: "getBlocks", fromHeight, count });
    await withTimeout(got, 5_000, "blocks answer");
    const m = answers.pop()!;
    assert.equal(m.kind, "blocks");
    return m.kind === "blocks" ? m : null!;
  };
  try {
    // From block 2 on, every block carries a last commit of the same size: equally long.
    const bytes = await ask(2, 500);
    assert.equal(bytes.fromHeight, 2);
    const size = f.encoded[1].length;
    assert.equal(bytes.blocks.length, Math.floor(10_000 / size));
    assert.deepEqual(bytes.blocks, f.encoded.slice(1, 1 + bytes.blocks.length));
    assert.equal((await ask(599, 10)).blocks.length, 2, "stops at our tip");
    assert.equal((await ask(601, 10)).blocks.length, 0, "nothing past our tip");
    assert.equal((await ask(0, 10)).blocks.length, 0, "genesis is not a block");
    assert.equal((await ask(5, 0)).blocks.length, 0);
    assert.deepEqual(s.net.penalties, []);
  } finally {
    shutdown(s);
  }
});

Deno.test("sync service: requests over the rate wait their turn; only a flood is penalised", async () => {
  const f = chainFixture(600);
  // The serve limiter's clock stands still while the four requests arrive: a scheduling
  // hiccup of 50 ms would otherwise refill the bucket and turn "deferred" into "served".
  const frozenAt = Date.now();
  let frozen = true;
  const s = node(
    f,
    600,
    {
      ...FAST,
      serve: { ratePerSec: 10_000, burst: 500, maxDeferred: 2 },
    },
    1,
    () => frozen ? frozenAt : Date.now(),
  );
  let answered = 0;
  let waiting: (() => void) | null = null;
  s.net.connect("greedy", {
    remote: (m) => {
      if (m.kind === "blocks") answered++;
      waiting?.();
    },
  });
  try {
    for (let i = 0; i < 4; i++) {
      s.net.deliver("greedy", { kind: "getBlocks", fromHeight: 1, count: 500 });
    }
    // One served at once, two deferred, the fourth refused with the lightest penalty.
    assert.deepEqual(s.sync.serveStats(), { served: 1, deferred: 2, refused: 1 });
    assert.deepEqual(s.net.penaltiesOf("greedy").map((p) => p.score), [1]);
    frozen = false; // time runs again: the bucket refills and ticks serve the deferred ones
    await withTimeout(
      new Promise<void>((resolve) => {
        waiting = () => answered === 3 && resolve();
        waiting();
      }),
      5_000,
      "deferred requests answered",
    );
    assert.equal(s.sync.serveStats().served, 3);
  } finally {
    shutdown(s);
  }
});

/**
 * After close nothing moves: requests are not served, announcements and answers to requests
 * still in flight are ignored, and the tick timer no longer asks for blocks. The timer part
 * is judged against a control node that runs the same timers on the same event loop: by the
 * time it has synced 100 blocks, a service that was still ticking would have asked for some.
 * Mutations caught: `close` that returns at once (the getBlocks is answered synchronously), and
 * one that stops the timers but not the handlers, or the handlers but not the timers.
 */
Deno.test("sync service: close stops everything; late events are ignored", async () => {
  const f = chainFixture(300);
  const b = node(f, 300);
  const a = node(f, 0);
  const control = node(f, 0);
  try {
    linkNetworks(a.net, "A", b.net, "B");
    await withTimeout(a.chain.reached(50), 30_000, "some progress");
    a.sync.close();
    a.sync.close();
    const height = a.chain.tip().height;
    const asked = a.net.sentCount.get("getBlocks") ?? 0;
    const served = a.net.sentCount.get("blocks") ?? 0;
    // A live service answers this at once (FakeNetwork delivers synchronously).
    a.net.deliver("B", { kind: "getBlocks", fromHeight: 1, count: 10 });
    assert.equal(a.net.sentCount.get("blocks") ?? 0, served, "a closed service serves nothing");
    a.net.deliver("B", { kind: "blockAnnounce", height: 301, hash: new Uint8Array(32) });

    linkNetworks(control.net, "C", b.net, "B");
    await withTimeout(control.chain.reached(100), 30_000, "the control node syncing");
    assert.equal(a.chain.tip().height, height, "no block applied after close");
    assert.equal(a.net.sentCount.get("getBlocks") ?? 0, asked, "no request after close");
  } finally {
    shutdown(a, b, control);
  }
});

Deno.test("sync service: a claimed height alone never makes the node behind; fetched blocks do", async () => {
  const f = chainFixture(200);
  // Small apply chunks: the probe below gets turns between them.
  const a = node(f, 100, { ...FAST, applyChunkBlocks: 10 });
  try {
    // A peer claims ten million and never answers: "syncing" by its word, but not behind.
    a.net.connect("liar", { bestHeight: 10_000_000, remote: () => {} });
    assert.equal(a.sync.state(), "syncing");
    assert.equal(a.sync.isBehind(), false);
    const charged = new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (a.net.penaltiesOf("liar").some((p) => p.code === "unbacked-height-claim")) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    await withTimeout(charged, 30_000, "the unbacked claim is charged");
    assert.equal(a.sync.isBehind(), false, "a claim alone must not pause consensus");
    assert.equal(a.metrics.unbackedHeightClaims.get(), 1);
    // A peer that serves real blocks above our tip is evidence.
    const b = node(f, 200);
    try {
      let sawBehind = false;
      const probe = setInterval(() => sawBehind ||= a.sync.isBehind(), 1);
      linkNetworks(a.net, "A", b.net, "B");
      await withTimeout(a.chain.reached(200), 30_000, "sync to 200");
      clearInterval(probe);
      assert.ok(sawBehind, "blocks fetched and applied above the tip are evidence");
    } finally {
      shutdown(b);
    }
  } finally {
    shutdown(a);
  }
});
