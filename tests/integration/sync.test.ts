/**
 * Block sync between real node processes over loopback: catching up from one peer, surviving
 * silent and lying peers, crash safety, genesis isolation, a moving tip, and both connection
 * directions.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { toHex } from "../../encoding/binary.ts";
import { genesisToJson } from "../../chain/genesis_tool.ts";
import { chainDbPath, ChainStore } from "../../chain/store.ts";
import { Chain } from "../../chain/chain.ts";
import { createStateMachine } from "../../state/state.ts";
import { type BuiltBlock, ChainBuilder } from "../support/chain_builder.ts";
import { makeChain } from "../support/make_chain.ts";
import { FakePeer } from "../support/fake_peer.ts";
import { counterValue, freePort, metricValue, NodeProcess, tempDir } from "../support/cluster.ts";

async function node(
  name: string,
  genesis: string,
  dataDir: string,
  peers: string[] = [],
  extra: string[] = [],
) {
  return new NodeProcess({
    name,
    dataDir,
    p2pPort: await freePort(),
    rpcPort: await freePort(),
    genesis,
    peers,
    extra,
    logLevel: "info",
  });
}

interface ChainInfo {
  height: number;
  bestHash: string;
  syncState: string;
}

const info = (n: NodeProcess) => n.rpc<ChainInfo>("getblockchaininfo");

async function waitForHeight(
  n: NodeProcess,
  height: number,
  timeoutMs = 60_000,
): Promise<ChainInfo> {
  return await n.waitFor(
    async () => {
      const i = await info(n);
      return i.height >= height ? i : null;
    },
    `height ${height}`,
    timeoutMs,
  );
}

async function cleanup(nodes: NodeProcess[], dirs: string[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
  for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
}

Deno.test("a fresh node syncs 10,000 blocks from a single peer and ends on the same tip", async () => {
  const dir = await tempDir("sync10k");
  const chain = await makeChain({ dir, blocks: 10_000, bodyBytes: 300 });
  const source = await node("source", chain.genesisFile, chain.dataDir);
  const fresh = await node("fresh", chain.genesisFile, `${dir}/fresh`, []);
  try {
    source.start();
    await source.waitForLog((e) => e.message.startsWith("listening on"), "source listening");
    fresh.opts.peers = [source.p2p];
    fresh.start();
    const done = await waitForHeight(fresh, 10_000, 120_000);
    assert.equal(done.bestHash, chain.tipHash);
    await fresh.waitForLog(
      (e) => e.logger === "timenode.sync" && /synced/i.test(e.message),
      "sync completion log",
    );
    const m = await fresh.metrics();
    assert.equal(metricValue(m, "timenode_blocks_applied_total"), 10_000);
    assert.equal(metricValue(m, "timenode_blocks_rejected_total"), 0);
    // A full sync never trips the server's limits: nobody is scored, nobody is banned.
    const sm = await source.metrics();
    for (const x of [m, sm]) {
      assert.equal(metricValue(x, "timenode_misbehavior_total"), 0);
      assert.equal(metricValue(x, "timenode_bans_total"), 0);
    }
  } finally {
    await cleanup([source, fresh], [dir]);
  }
});

/** Builds a chain in-process (so the test can corrupt its blocks) and stores it for a source node. */
async function builtChain(dir: string, blocks: number, bodyBytes = 200) {
  const builder = ChainBuilder.create({
    validators: 4,
    bodyBytes,
    stateMachine: createStateMachine,
  });
  const built: BuiltBlock[] = [];
  for (let done = 0; done < blocks; done += 500) {
    built.push(...builder.build(Math.min(500, blocks - done)));
  }
  const genesisFile = `${dir}/genesis.json`;
  await Deno.writeTextFile(genesisFile, genesisToJson(builder.genesis));
  const dataDir = `${dir}/source`;
  await Deno.mkdir(dataDir, { recursive: true });
  const chain = new Chain({
    store: ChainStore.open(dataDir, builder.genesisHash),
    genesis: builder.genesis,
    stateMachine: createStateMachine(builder.genesis),
  });
  const r = chain.applyBlocks(built, { signaturesVerified: true });
  chain.close();
  if (r.error) throw r.error;
  return { builder, built, genesisFile, dataDir };
}

Deno.test("sync completes with one silent peer and one lying peer; the liar is penalised", async () => {
  const dir = await tempDir("syncbad");
  const { builder, built, genesisFile, dataDir } = await builtChain(dir, 5_000);
  const silent = new FakePeer({ genesis: builder.genesis, blocks: built, mode: "silent" });
  const liar = new FakePeer({
    genesis: builder.genesis,
    blocks: built,
    mode: "corrupt",
    corrupt: (b) => builder.corrupt(b, "bad-signature"),
  });
  const source = await node("honest", genesisFile, dataDir);
  const fresh = await node("fresh", genesisFile, `${dir}/fresh`);
  try {
    source.start();
    await source.waitForLog((e) => e.message.startsWith("listening on"), "source listening");
    fresh.opts.peers = [silent.address, liar.address, source.p2p];
    fresh.start();
    const done = await waitForHeight(fresh, 5_000, 120_000);
    assert.equal(done.bestHash, toHex(built[built.length - 1].hash));
    assert.ok(silent.getBlocksReceived > 0, "the silent peer was asked and never answered");
    assert.ok(liar.getBlocksReceived > 0, "the liar was asked");
    const penalised = fresh.logsMatching((e) =>
      e.message.includes("misbehaved") &&
      String(e.properties.key).endsWith(liar.address.split(":")[1])
    );
    assert.ok(penalised.length > 0, "the liar was penalised");
    const m = await fresh.metrics();
    assert.ok(metricValue(m, "timenode_blocks_rejected_total") >= 1);
    const gaveUp = counterValue(m, "timenode_sync_requests_total", { outcome: "timeout" }) +
      counterValue(m, "timenode_sync_requests_total", { outcome: "stalled" });
    assert.ok(gaveUp >= 1, "the silent peer's request was given up and re-assigned");
    // Nothing invalid was stored: the chain is exactly the honest one.
    const mid = await fresh.rpc<string>("getblockhash", [2_500]);
    assert.equal(mid, toHex(built[2_499].hash));
  } finally {
    await cleanup([source, fresh], [dir]);
    await silent.close();
    await liar.close();
  }
});

Deno.test("kill -9 during sync, restart: it resumes from its last applied height with an intact store", async () => {
  const dir = await tempDir("synckill");
  const chain = await makeChain({ dir, blocks: 20_000, bodyBytes: 300 });
  const source = await node("source", chain.genesisFile, chain.dataDir);
  const freshDir = `${dir}/fresh`;
  let fresh = await node("fresh", chain.genesisFile, freshDir);
  try {
    source.start();
    await source.waitForLog((e) => e.message.startsWith("listening on"), "source listening");
    fresh.opts.peers = [source.p2p];
    fresh.start();
    const before = await waitForHeight(fresh, 2_000, 60_000);
    assert.ok(before.height < 20_000, "killed mid-sync");
    await fresh.kill9();

    fresh = new NodeProcess({ ...fresh.opts, name: "fresh-restarted" });
    fresh.start();
    const resumed = await fresh.waitForLog(
      (e) => e.message.startsWith("chain tip height="),
      "start-up tip log",
    );
    assert.ok(
      Number(resumed.properties.height) >= before.height,
      `resumed at ${resumed.properties.height}`,
    );
    const done = await waitForHeight(fresh, 20_000, 120_000);
    assert.equal(done.bestHash, chain.tipHash);
    await fresh.stop();
    const db = new DatabaseSync(chainDbPath(freshDir), { readOnly: true });
    try {
      assert.deepEqual(db.prepare("PRAGMA integrity_check").all().map((r) => Object.values(r)[0]), [
        "ok",
      ]);
    } finally {
      db.close();
    }
  } finally {
    await cleanup([source, fresh], [dir]);
  }
});

Deno.test("a node with a different genesis is refused at the handshake and nothing of its chain is stored", async () => {
  const dirA = await tempDir("genesisA");
  const dirB = await tempDir("genesisB");
  // Same network name and genesis time, so the same frame magic: only the genesis hash (a
  // different masternode set) tells the chains apart, and the handshake must catch it.
  const a = await makeChain({ dir: dirA, blocks: 50, network: "twin", validators: 4 });
  const b = await makeChain({ dir: dirB, blocks: 50, network: "twin", validators: 3 });
  const nodeA = await node("a", a.genesisFile, a.dataDir);
  const fresh = await node("fresh-b", b.genesisFile, `${dirB}/fresh`);
  try {
    nodeA.start();
    await nodeA.waitForLog((e) => e.message.startsWith("listening on"), "a listening");
    fresh.opts.peers = [nodeA.p2p];
    fresh.start();
    await fresh.waitForLog(
      (e) => e.message.startsWith("connection from") && e.properties.reason === "wrong-genesis",
      "refusal of the other chain",
    );
    await nodeA.waitForLog(
      (e) => e.message.startsWith("connection from") && e.properties.reason === "wrong-genesis",
      "refusal on the other side too",
    );
    // The refusal can come before the fresh node's RPC is up.
    await fresh.waitForLog((e) => e.message.startsWith("rpc listening on"), "fresh RPC");
    const i = await info(fresh);
    assert.equal(i.height, 0);
    assert.equal((await fresh.rpc<unknown[]>("getpeerinfo")).length, 0);
  } finally {
    await cleanup([nodeA, fresh], [dirA, dirB]);
  }
});

/**
 * A one-masternode chain whose source node holds the validator key, so it keeps producing
 * blocks (every 200 ms) while the fresh node syncs.
 */
async function producingSource(dir: string, blocks: number) {
  const chain = await makeChain({
    dir,
    blocks,
    validators: 1,
    blockIntervalMs: 200,
    bodyBytes: 100,
  });
  await Deno.copyFile(`${dir}/keys/0.json`, `${chain.dataDir}/node_key.json`);
  return chain;
}

for (const direction of ["outbound", "inbound"] as const) {
  Deno.test(`sync follows a moving tip and every sync message flows on ${direction} connections`, async () => {
    const dir = await tempDir(`syncmove-${direction}`);
    const chain = await producingSource(dir, 3_000);
    const source = await node("source", chain.genesisFile, chain.dataDir);
    const fresh = await node("fresh", chain.genesisFile, `${dir}/fresh`);
    try {
      if (direction === "outbound") {
        // The fresh node dials: its connection to the source is outbound.
        source.start();
        await source.waitForLog((e) => e.message.startsWith("listening on"), "source listening");
        fresh.opts.peers = [source.p2p];
        fresh.start();
      } else {
        // The source dials the fresh node: the fresh node's connection is inbound.
        fresh.start();
        await fresh.waitForLog((e) => e.message.startsWith("listening on"), "fresh listening");
        source.opts.peers = [fresh.p2p];
        source.start();
      }
      // The source keeps committing while the fresh node catches up.
      await source.waitForLog(
        (e) => e.message.startsWith("committed height"),
        "the source producing",
        30_000,
      );
      const peers = await fresh.waitFor(
        async () => {
          const p = await fresh.rpc<{ direction: string }[]>("getpeerinfo");
          return p.length === 1 ? p : null;
        },
        "connected to the source",
      );
      assert.equal(peers[0].direction, direction);
      const target = (await info(source)).height + 5;
      await waitForHeight(source, target, 30_000);
      const caughtUp = await waitForHeight(fresh, target, 60_000);
      assert.equal(
        await fresh.rpc<string>("getblockhash", [target]),
        await source.rpc<string>("getblockhash", [target]),
      );
      assert.ok(caughtUp.height > 3_000);
      const fm = await fresh.metrics();
      const sm = await source.metrics();
      assert.ok(metricValue(fm, "timenode_messages_received_total", { kind: "blocks" }) > 0);
      assert.ok(metricValue(fm, "timenode_messages_received_total", { kind: "blockAnnounce" }) > 0);
      assert.ok(metricValue(sm, "timenode_messages_received_total", { kind: "getBlocks" }) > 0);
    } finally {
      await cleanup([source, fresh], [dir]);
    }
  });
}
