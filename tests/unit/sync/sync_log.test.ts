/**
 * What sync says at info: a real catch-up (more than a few blocks, or longer than a second), not
 * the block a peer's gossip brought a moment before this node's own commit.
 */
import assert from "node:assert/strict";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { resetLogging, setupLogging } from "../../../node/log.ts";
import { SyncService } from "../../../sync/service.ts";
import { FakeNetwork, linkNetworks } from "../../support/fake_network.ts";
import { type ChainFixture, chainFixture, FakeChain } from "../../support/fake_chain.ts";
import { withTimeout } from "../../support/deadline.ts";
import { seededRandomFn } from "../../support/random.ts";

interface LogLine {
  level: string;
  message: string;
}

function syncNode(f: ChainFixture, height: number) {
  const chain = new FakeChain(f, height);
  const net = new FakeNetwork();
  const sync = new SyncService({
    network: net,
    chain,
    metrics: createNodeMetrics(),
    genesisHash: f.genesisHash,
    random: seededRandomFn(1),
    workers: 1,
    tuning: { tickIntervalMs: 10 },
  });
  sync.start();
  return { chain, net, sync };
}

async function withLogs(body: () => Promise<void>): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  setupLogging({ level: "info", format: "json", write: (l) => lines.push(JSON.parse(l)) });
  try {
    await body();
  } finally {
    resetLogging();
  }
  return lines;
}

const isSyncNews = (l: LogLine) => /^Sync (started|still syncing)|^Synced at/.test(l.message);

Deno.test("sync log: one block from gossip at a time is debug; a catch-up is info", async () => {
  const f = chainFixture(60, 5);
  const b = syncNode(f, 10);
  const a = syncNode(f, 10);
  const follow = await withLogs(async () => {
    linkNetworks(a.net, "A", b.net, "B");
    for (let h = 11; h <= 20; h++) {
      b.chain.applyFromFixture(f, h); // the peer commits first and tells us
      await withTimeout(a.chain.reached(h), 10_000, `follow to ${h}`);
    }
  });
  assert.deepEqual(follow.filter(isSyncNews), [], "following the tip block by block is quiet");

  // Now a real catch-up: the peer is 40 blocks ahead.
  a.sync.close();
  a.net.close();
  const c = syncNode(f, 20);
  for (let h = 21; h <= 60; h++) b.chain.applyFromFixture(f, h);
  try {
    const catchUp = await withLogs(async () => {
      linkNetworks(c.net, "C", b.net, "B2");
      await withTimeout(c.chain.reached(60), 30_000, "catch up to 60");
    });
    const news = catchUp.filter(isSyncNews);
    assert.ok(news.some((l) => l.message.startsWith("Sync started at 20")), JSON.stringify(news));
    assert.ok(news.every((l) => l.level === "INFO"));
  } finally {
    for (const n of [b, c]) {
      n.sync.close();
      n.net.close();
    }
  }
});
