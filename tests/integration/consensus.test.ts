/**
 * Masternode consensus between real node processes over loopback: block production, agreement,
 * crash tolerance, partitions, restarts without double-signing, and a late non-masternode.
 */
import assert from "node:assert/strict";
import { addressOf } from "../../state/address.ts";
import {
  freePort,
  metricValue,
  NodeProcess,
  pollUntil,
  rpcCall,
  rpcRefused,
  tempDir,
} from "../support/cluster.ts";
import {
  assertStalled,
  freePortRange,
  heightOf,
  spawnDevnetCommand,
  startDevnet,
  type TestDevnet,
  waitAllAtHeight,
  waitForManifest,
} from "../support/devnet.ts";

/** The joining masternode's reward address (any valid devnet address). */
const JOINER_REWARDS = addressOf("devnet", new Uint8Array(32).fill(0x70));

interface BlockJson {
  height: number;
  hash: string;
  timestamp: number;
  certificate: { round: number; signatures: { validator: string }[] };
  lastCommit: { height: number; blockHash: string; signatures: { validator: string }[] } | null;
}

async function hashesAgree(nodes: NodeProcess[], from: number, to: number): Promise<void> {
  for (let h = from; h <= to; h++) {
    const hashes = await Promise.all(nodes.map((n) => n.rpc<string>("getblockhash", [h])));
    assert.equal(new Set(hashes).size, 1, `height ${h}: ${hashes.join(" ")}`);
  }
}

async function equivocations(nodes: NodeProcess[]): Promise<number> {
  let total = 0;
  for (const n of nodes) total += metricValue(await n.metrics(), "timenode_equivocations_total");
  return total;
}

Deno.test("3 masternodes commit 20+ blocks at a 1 s interval, identical everywhere; a late non-masternode follows", async () => {
  const devnet = await startDevnet(3, 1_000);
  let follower: NodeProcess | null = null;
  try {
    await waitAllAtHeight(devnet.nodes, 10, 60_000);
    // A node outside the masternode set joins late through one masternode and follows the tip.
    follower = new NodeProcess({
      name: "follower",
      dataDir: `${devnet.dir}/follower`,
      p2pPort: await freePort(),
      rpcPort: await freePort(),
      genesis: devnet.manifest.genesis,
      peers: [devnet.manifest.nodes[0].p2p],
      logLevel: "info",
    });
    follower.start();
    await waitAllAtHeight(devnet.nodes, 20, 60_000);
    await hashesAgree(devnet.nodes, 1, 20);
    const tip = Math.min(...await Promise.all(devnet.nodes.map(heightOf)));
    await waitAllAtHeight([follower], tip, 60_000);
    await hashesAgree([...devnet.nodes, follower], 1, tip);
    const info = await follower.rpc<{ isValidator: boolean }>("getconsensusinfo");
    assert.equal(info.isValidator, false);

    // Blocks are certified by > 2/3 of the power, about one interval apart, times increasing.
    const blocks = await Promise.all(
      Array.from({ length: 19 }, (_, i) => devnet.nodes[0].rpc<BlockJson>("getblock", [i + 2])),
    );
    for (let i = 1; i < blocks.length; i++) {
      assert.ok(blocks[i].timestamp > blocks[i - 1].timestamp);
      // More than 2/3 of 3 equal validators is all 3 (2 would be exactly 2/3: no quorum).
      assert.ok(blocks[i].certificate.signatures.length * 3 > 3 * 2);
      // Each carries the commit of the block below it (all three signed that one too).
      assert.equal(blocks[i].lastCommit?.height, blocks[i - 1].height);
      assert.equal(blocks[i].lastCommit?.blockHash, blocks[i - 1].hash);
      assert.equal(blocks[i].lastCommit?.signatures.length, 3);
    }
    // Healthy and fully connected, heights are decided in their first round. A proposal every
    // node wrongly refuses (as when its last commit was once judged against an empty body) costs
    // each height a propose timeout and shows here as round 1 or later everywhere; a rare late
    // proposal on a loaded machine does not fail the test.
    const firstRound = blocks.filter((b) => b.certificate.round === 0).length;
    assert.ok(
      firstRound >= Math.ceil(blocks.length * 0.8),
      `only ${firstRound} of ${blocks.length} heights decided in round 0: ` +
        blocks.map((b) => `${b.height}:r${b.certificate.round}`).join(" "),
    );
    assert.equal(await equivocations(devnet.nodes), 0);
  } finally {
    await follower?.stop();
    await devnet.stop();
  }
});

Deno.test("6 masternodes: kill -9 one, the rest keep committing; restarted, it syncs and votes again", async () => {
  const devnet = await startDevnet(6, 500);
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const victim = devnet.nodes[5];
    const victimId = devnet.manifest.nodes[5].id;
    await victim.kill9();
    const survivors = devnet.nodes.slice(0, 5);
    const atKill = Math.max(...await Promise.all(survivors.map(heightOf)));
    await waitAllAtHeight(survivors, atKill + 5, 60_000);

    devnet.nodes[5] = devnet.processFor(5);
    devnet.nodes[5].start();
    const target = Math.max(...await Promise.all(survivors.map(heightOf))) + 3;
    await waitAllAtHeight(devnet.nodes, target, 60_000);
    await hashesAgree(devnet.nodes, 1, target);
    // It votes again: its precommit appears in certificates after the restart.
    const signedAgain = await devnet.nodes[0].waitFor(
      async () => {
        const h = await heightOf(devnet.nodes[0]);
        const b = await devnet.nodes[0].rpc<BlockJson>("getblock", [h]);
        return b.certificate.signatures.some((s) => s.validator === victimId);
      },
      "the restarted masternode's signature in a certificate",
      30_000,
    );
    assert.ok(signedAgain);
    assert.equal(await equivocations(devnet.nodes), 0);
  } finally {
    await devnet.stop();
  }
});

/**
 * The quorum boundary with real processes: 6 validators of power 1, so 5 of 6 is more than 2/3
 * and 4 of 6 is exactly 2/3. Stopping one keeps the chain going; stopping a second (exactly 1/3
 * of the power gone) stops it, shown by rounds failing at one height, not by a sleep. Restarting
 * one brings the quorum back. Mutation caught: `>` → `>=` in `hasQuorum` (4 of 6 would commit).
 */
Deno.test("6 equal masternodes: 5 keep committing, 4 (exactly 2/3 of the power) cannot; 5 again resume", async () => {
  const devnet = await startDevnet(6, 500);
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    assert.equal(await devnet.nodes[4].stop(), 0);
    const five = devnet.nodes.slice(0, 4).concat(devnet.nodes[5]);
    const atFirstStop = Math.max(...await Promise.all(five.map(heightOf)));
    await waitAllAtHeight(five, atFirstStop + 3, 60_000);

    assert.equal(await devnet.nodes[5].stop(), 0);
    const four = devnet.nodes.slice(0, 4);
    const stalledAt = await Promise.all(four.map((n) => assertStalled(n)));
    const info = await four[0].rpc<{ totalPower: number }>("getconsensusinfo");
    assert.equal(info.totalPower, 6, "six bronze members of power 1: the four hold exactly 4 of 6");
    const tip = Math.max(...stalledAt) - 1;
    await hashesAgree(four, 1, Math.min(...stalledAt) - 1);

    devnet.nodes[5] = devnet.processFor(5);
    devnet.nodes[5].start();
    const back = four.concat(devnet.nodes[5]);
    await waitAllAtHeight(back, tip + 3, 90_000);
    await hashesAgree(back, 1, tip + 3);
    assert.equal(await equivocations(back), 0);
  } finally {
    await devnet.stop();
  }
});

async function partition(devnet: TestDevnet, a: number[], b: number[], action: "add" | "remove") {
  const key = (i: number) => devnet.manifest.nodes[i].p2p;
  for (const [from, to] of [[a, b], [b, a]]) {
    for (const i of from) {
      for (const j of to) await devnet.nodes[i].rpc("setban", [key(j), action, 3600]);
    }
  }
}

Deno.test("partition 3|3: no progress and no fork; healed, commits resume", async () => {
  const devnet = await startDevnet(6, 500);
  const left = [0, 1, 2], right = [3, 4, 5];
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    await partition(devnet, left, right, "add");
    // Wait until no connection crosses the cut.
    for (const [side, other] of [[left, right], [right, left]]) {
      for (const i of side) {
        const node = devnet.nodes[i];
        const forbidden = other.map((j) => devnet.manifest.nodes[j].p2p);
        await node.waitFor(async () => {
          const peers = await node.rpc<{ key: string }[]>("getpeerinfo");
          return !peers.some((p) => forbidden.includes(p.key));
        }, "the partition to take effect");
      }
    }
    // A height already past its precommits may still finish; after that, nothing moves: every
    // node fails round after round at one height (3 of 6 is no quorum on either side).
    const stalledAt = await Promise.all(devnet.nodes.map((n) => assertStalled(n)));
    const frozen = stalledAt.map((h) => h - 1);
    assert.deepEqual(
      await Promise.all(devnet.nodes.map(heightOf)),
      frozen,
      "no progress without a 2/3 quorum",
    );
    const common = Math.min(...frozen);
    await hashesAgree(devnet.nodes, 1, common);

    await partition(devnet, left, right, "remove");
    const target = Math.max(...frozen) + 3;
    await waitAllAtHeight(devnet.nodes, target, 90_000);
    await hashesAgree(devnet.nodes, 1, target);
    assert.equal(await equivocations(devnet.nodes), 0);
  } finally {
    await devnet.stop();
  }
});

Deno.test("a masternode killed mid-round and restarted never signs a conflicting vote", async () => {
  const devnet = await startDevnet(4, 300);
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    for (let cycle = 0; cycle < 3; cycle++) {
      // Kill at an arbitrary moment inside a height, after it has voted at least once.
      const h = await heightOf(devnet.nodes[1]);
      await devnet.nodes[0].waitForLog(
        (e) => e.message.startsWith("committed height") && Number(e.properties.height) > h,
        "a new commit",
        30_000,
      );
      await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 250)));
      await devnet.nodes[0].kill9();
      devnet.nodes[0] = devnet.processFor(0);
      devnet.nodes[0].start();
      await devnet.nodes[0].waitForLog((e) => e.message.startsWith("rpc listening on"), "restart");
    }
    const target = Math.max(...await Promise.all(devnet.nodes.map(heightOf))) + 3;
    await waitAllAtHeight(devnet.nodes, target, 60_000);
    await hashesAgree(devnet.nodes, 1, target);
    assert.equal(await equivocations(devnet.nodes), 0, "no validator saw a conflicting signature");
  } finally {
    await devnet.stop();
  }
});

Deno.test("`timenode devnet` starts a meshed devnet, writes devnet.json, and stops cleanly on SIGINT", async () => {
  const dir = await tempDir("devnetcmd");
  const child = spawnDevnetCommand(dir, 3, freePortRange(6), "piped");
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  try {
    const manifest = await waitForManifest(dir);
    assert.equal(manifest.nodes.length, 3);
    for (const n of manifest.nodes) {
      assert.match(n.id, /^[0-9a-f]{64}$/);
      await pollUntil(
        async () => (await rpcCall<number>(n, "getblockcount")) >= 2,
        `${n.p2p} producing blocks`,
        60_000,
      );
    }
  } finally {
    // A runner that already exited (a node failed, say) is reported with its output below.
    interruptIfRunning(child);
    const status = await child.status;
    const [out, err] = await output;
    assert.equal(status.code, 0, `${out}\n${err}`);
    assert.match(out, /devnet stopped/);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a node registers as a free masternode by a signed record, is listed without a vote, and deregisters", async () => {
  const devnet = await startDevnet(3, 400);
  const dir = await tempDir("joiner");
  const joiner = new NodeProcess({
    name: "joiner",
    dataDir: dir,
    p2pPort: await freePort(),
    rpcPort: await freePort(),
    genesis: devnet.manifest.genesis,
    peers: [devnet.manifest.nodes[0].p2p],
    logLevel: "info",
  });
  try {
    await waitAllAtHeight(devnet.nodes, 2, 60_000);
    joiner.start();
    await joiner.waitForLog((e) => e.message.startsWith("rpc listening on"), "joiner started");
    const joinerId = (await joiner.rpc<{ nodeId: string }>("getnetworkinfo")).nodeId;
    await joiner.waitFor(
      async () => (await joiner.rpc<unknown[]>("getpeerinfo")).length > 0,
      "joiner connected",
    );
    // A reward address must be an address of the network; a typo is refused with the reason.
    await assert.rejects(
      () => joiner.rpc("registermasternode", ["joiner-rewards", joiner.p2p]),
      /rewardAddress: not an address/,
    );
    const submitted = await joiner.rpc<{ status: string }>("registermasternode", [
      JOINER_REWARDS,
      joiner.p2p,
    ]);
    assert.equal(submitted.status, "added");

    // Every masternode derives the same, larger set from the chain.
    for (const n of devnet.nodes) {
      await n.waitFor(
        async () => {
          const list = await n.rpc<{ nodeId: string }[]>("masternodelist");
          return list.some((m) => m.nodeId === joinerId);
        },
        "the joiner in the masternode list",
        30_000,
      );
    }
    // Once listed, a free-tier member holds no power: the total is unchanged, it never signs a
    // certificate and earns nothing (docs/security.md#free-validators).
    const listed = await heightOf(devnet.nodes[0]);
    await waitAllAtHeight(devnet.nodes, listed + 3, 30_000);
    const info = await devnet.nodes[0].rpc<{
      totalPower: number;
      validators: { nodeId: string; power: number }[];
    }>("getconsensusinfo");
    assert.equal(info.totalPower, 3, "three bronze members of power 1");
    assert.equal(info.validators.find((v) => v.nodeId === joinerId)?.power, 0);
    for (let h = listed; h <= listed + 3; h++) {
      const b = await devnet.nodes[0].rpc<BlockJson>("getblock", [h]);
      assert.ok(b.certificate.signatures.every((s) => s.validator !== joinerId), `height ${h}`);
    }
    assert.equal(
      (await joiner.rpc<{ isValidator: boolean }>("getconsensusinfo")).isValidator,
      false,
    );
    const balance = await joiner.rpc<{ balance: string }>("getbalance", [JOINER_REWARDS]);
    assert.equal(balance.balance, "0");

    await joiner.rpc("deregistermasternode");
    await devnet.nodes[1].waitFor(
      async () => {
        const list = await devnet.nodes[1].rpc<{ nodeId: string; leavingFrom: number | null }[]>(
          "masternodelist",
        );
        const me = list.find((m) => m.nodeId === joinerId);
        return !me || me.leavingFrom !== null;
      },
      "the joiner leaving the set",
      30_000,
    );
    const h = await heightOf(devnet.nodes[0]);
    await waitAllAtHeight(devnet.nodes, h + 4, 30_000);
    await hashesAgree([...devnet.nodes], 1, h + 4);
    // Listed but never voting: it never became a validator, so it never logs leaving the set.
    assert.equal(metricValue(await joiner.metrics(), "timenode_is_validator"), 0);
    assert.equal(
      joiner.logs.some((e) => e.message.startsWith("this node left the validator set")),
      false,
    );
    assert.equal(await equivocations(devnet.nodes), 0);
  } finally {
    await joiner.stop();
    await devnet.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a devnet whose runner is killed with SIGKILL leaves no node behind", async () => {
  const dir = await tempDir("devnetkill");
  const child = spawnDevnetCommand(dir, 2, freePortRange(4), "null");
  try {
    const manifest = await waitForManifest(dir);
    for (const n of manifest.nodes) {
      await pollUntil(
        async () => (await rpcCall<number>(n, "getblockcount")) >= 1,
        "node up",
        60_000,
      );
    }
    child.kill("SIGKILL");
    await child.status;
    for (const n of manifest.nodes) {
      // Only a refused connection means "gone"; a hung node's timeout keeps the poll waiting.
      await pollUntil(() => rpcRefused(n), `${n.rpc} to exit with its runner`, 30_000);
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** SIGINT to a child that may have exited already (Deno throws a TypeError then). */
function interruptIfRunning(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGINT");
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
}
