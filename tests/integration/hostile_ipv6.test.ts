/**
 * Bans against a real network over IPv6 (item 6 of docs/security.md): a node that follows a
 * 3-masternode devnet listens on an IPv6 address of a bridge; an attacker host owns a /64 and
 * sends garbage from several of its addresses, an honest host in another /64 of the same /48
 * stays connected. The score and the ban cover the attacker's whole /64, an operator ban
 * survives the automatic ones and a restart, and block production holds.
 */
import assert from "node:assert/strict";
import { loadGenesisFile } from "../../chain/genesis.ts";
import { ByteWriter } from "../../encoding/binary.ts";
import { MessageId } from "../../network/messages.ts";
import { banPrefix } from "../../network/netgroup.ts";
import { metricValue, NodeProcess } from "../support/cluster.ts";
import { followerMaker } from "../support/follower.ts";
import { startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { createTestHosts } from "../support/netns.ts";
import { heightsInWindow, holdsRate, honestSessions, nodeIds } from "../support/block_rate.ts";

const WINDOW_MS = 10_000;
const BLOCK_INTERVAL_MS = 1_000;
/** 20 points per garbage connection against a ban at 100: the fifth or sixth. */
const GARBAGE_ATTEMPTS = 8;

/**
 * Runs inside the attacker's namespace: connects from each given local address in turn (node:net
 * can choose the source address, Deno.connect cannot), sends the bytes, waits for the node to
 * close, and pauses briefly so each close is scored before the next connect.
 */
const GARBAGE_SENDER = `
import net from "node:net";
const [host, port, attempts, hex, ...locals] = Deno.args;
const bytes = Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16)));
for (let i = 0; i < Number(attempts); i++) {
  await new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port), localAddress: locals[i % locals.length] });
    s.on("connect", () => s.write(bytes));
    s.on("data", () => {});
    s.on("error", resolve);
    s.on("close", resolve);
  });
  await new Promise((r) => setTimeout(r, 300));
}
`;

async function sendGarbage(
  magic: number,
  netns: string,
  host: string,
  port: number,
  attempts: number,
  from: string[],
): Promise<void> {
  // A 3 GB length prefix: refused before any allocation, 20 points to the sender's IP.
  const frame = new ByteWriter(14).u32(magic).u16(MessageId.blocks).u32(3_000_000_000).u32(0)
    .finish();
  const hex = Array.from(frame, (b) => b.toString(16).padStart(2, "0")).join("");
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", netns, Deno.execPath(), "eval", GARBAGE_SENDER, "--", host]
      .concat([String(port), String(attempts), hex, ...from]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

interface Ban {
  key: string;
  reason: string;
  operator?: boolean;
}

Deno.test("IPv6 bans cover the /64, an operator ban survives automatic bans and a restart", async () => {
  const net = await createTestHosts(2, { ipv6PerHost: [3, 1] });
  const [attacker, honestHost] = net.hosts;
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const dirs: string[] = [];
  const port = 24_500 + Math.floor(Math.random() * 400);
  const listen6 = `[${net.bridgeIp6}]:${port}`;
  const mk = followerMaker(devnet.manifest.genesis, port, dirs);
  // p2p on the IPv6 addresses, RPC on loopback.
  let target = await mk("target", {
    listen: listen6,
    peers: devnet.manifest.nodes.map((n) => n.p2p),
  });
  const honest = await mk("honest", {
    netns: honestHost.netns,
    listen: `[${honestHost.ip6s[0]}]:${port}`,
    peers: [listen6],
  });
  const magic = (await loadGenesisFile(devnet.manifest.genesis)).magic;
  const attacker64 = banPrefix(attacker.ip6s[0])!;
  const honest64 = banPrefix(honestHost.ip6s[0])!;
  const isHonest = (p: { key: string }) => banPrefix(p.key) === honest64;
  try {
    target.start();
    await waitAllAtHeight([...devnet.nodes, target], 3, 60_000);
    honest.start();
    await target.waitFor(
      async () => (await target.rpc<{ key: string }[]>("getpeerinfo")).some(isHonest),
      "the honest IPv6 peer connected",
      60_000,
    );
    // The operator bans one address of an unrelated /64: the ban covers that /64.
    const operatorKey = net.bridgeIp6.replace(/::fe$/, ":99::5");
    await target.rpc("setban", [operatorKey, "add", 86_400]);
    const operator64 = banPrefix(operatorKey)!;

    const watched = [...devnet.nodes, target];
    // The honest peers: the masternodes, and the IPv6 host (its RPC is inside its namespace).
    const ids = await nodeIds(devnet.nodes);
    const peers = await target.rpc<{ key: string; nodeId: string }[]>("getpeerinfo");
    ids.add(peers.find(isHonest)!.nodeId);
    const before = await honestSessions([target], ids);
    const baseline = await heightsInWindow(watched, WINDOW_MS);
    let attacking = Promise.resolve();
    const during = await heightsInWindow(watched, WINDOW_MS, () => {
      // Garbage from two addresses of the attacker's /64, alternately: 8 attempts are 4 per
      // address, 80 points each if scores were per address (no ban), 160 for the /64 (a ban).
      attacking = sendGarbage(magic, attacker.netns, net.bridgeIp6, port, GARBAGE_ATTEMPTS, [
        attacker.ip6s[0],
        attacker.ip6s[1],
      ]);
    });
    await attacking;
    console.log(`heights per ${WINDOW_MS / 1000} s: ${baseline} without, ${during} during`);
    assert.ok(holdsRate(during, baseline), `${during} heights during vs ${baseline} without`);
    assert.deepEqual(await honestSessions([target], ids), before, "no honest disconnect");

    const bans = await target.rpc<Ban[]>("listbanned");
    assert.ok(bans.some((b) => b.key === attacker64 && !b.operator), JSON.stringify(bans));
    const scored = target.logsMatching((e) =>
      e.message.startsWith("peer ") && banPrefix(String(e.properties.key)) === attacker64
    );
    assert.ok(scored.length <= 6, `${scored.length} garbage connections scored before the ban`);
    // A third address of the /64, never used before, is refused at once.
    const refusedBefore = metricValue(await target.metrics(), "timenode_inbound_rejected_total", {
      reason: "banned",
    });
    await sendGarbage(magic, attacker.netns, net.bridgeIp6, port, 1, [attacker.ip6s[2]]);
    await target.waitFor(
      async () =>
        metricValue(await target.metrics(), "timenode_inbound_rejected_total", {
          reason: "banned",
        }) > refusedBefore,
      "the third address refused as banned",
    );

    // Each change of the list was saved (batched: see tests/unit/network/save_throttle.test.ts).
    assert.ok(metricValue(await target.metrics(), "timenode_ban_list_writes_total") >= 1);
    // Both bans are on disk after a clean stop, the operator's still marked, and back after a
    // restart.
    await target.stop();
    const onDisk = JSON.parse(await Deno.readTextFile(`${target.opts.dataDir}/bans.json`));
    const diskText = JSON.stringify(onDisk);
    assert.ok(diskText.includes(attacker64) && diskText.includes(operator64), diskText);
    target = new NodeProcess(target.opts);
    target.start();
    await target.waitForLog((e) => e.message.startsWith("rpc listening on"), "restart", 60_000);
    const reloaded = await target.rpc<Ban[]>("listbanned");
    assert.ok(
      reloaded.some((b) => b.key === operator64 && b.operator),
      `the operator ban survived: ${JSON.stringify(reloaded)}`,
    );
    assert.ok(reloaded.some((b) => b.key === attacker64 && !b.operator));
  } finally {
    await honest.stop();
    await target.stop();
    await devnet.stop();
    await net.destroy();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
