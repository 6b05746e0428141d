/**
 * A member online but slower than the quorum is never jailed (docs/state.md#downtime-and-jail):
 * four masternodes on hosts of their own (network namespaces), one of them with 300 ms added to
 * everything it sends, for three signed-blocks windows. Its late precommits are still collected
 * into the next block's `lastCommit`, so it never nears the jail threshold. Needs root and
 * iproute2, as CI has.
 *
 * There is no `tc netem` on this machine, so the delay is a proxy (tests/support/delay_proxy.ts)
 * inside the slow member's namespace: there the other hosts' IPs are local addresses, so its
 * dials to them land on the proxy, which forwards to a second address of each host, adding
 * 300 ms to the slow member's bytes. (The others' dials to it cannot complete, since its answers
 * to their IPs stay in its namespace: it is connected to each of them by its own dials.)
 *
 * The issue asks for 500 heights. The last-commit window is the block interval (capped at 1 s),
 * so it must exceed the 300 ms: at a 500 ms interval 500 heights take over four minutes, more
 * than the suite can afford; this runs 60 heights (three windows of 20).
 */
import assert from "node:assert/strict";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { createKeyFile, NODE_KEY_FILE } from "../../crypto/node_key.ts";
import { toHex } from "../../encoding/binary.ts";
import { genesisToJson, makeDevnetGenesis } from "../../chain/genesis_tool.ts";
import { addressOf } from "../../state/address.ts";
import { metricValue, NodeProcess, tempDir } from "../support/cluster.ts";
import { createTestHosts } from "../support/netns.ts";
import { waitAllAtHeight } from "../support/devnet.ts";
import { entryOf, signersOf } from "../support/stake.ts";

const P2P = 24300;
const PROXY = new URL("../support/delay_proxy.ts", import.meta.url).pathname;
/** Above the 300 ms delay: the last-commit window is the block interval (docs/consensus.md). */
const INTERVAL_MS = 500;
const EXTRA_LATENCY_MS = 300;
/** Three signed-blocks windows of 20 by default; at least that many when set. */
const HEIGHTS = Math.max(60, Number(Deno.env.get("STAKE_LATENCY_HEIGHTS") ?? 60) || 60);

/** A node whose p2p port listens on every address of its host (RPC stays on its IP). */
class AllAddressesNode extends NodeProcess {
  override args(): string[] {
    const a = super.args();
    a[a.indexOf("--listen") + 1] = `0.0.0.0:${this.opts.p2pPort}`;
    return a;
  }
}

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

Deno.test("stake: a member behind 300 ms of extra latency is never jailed", async () => {
  const net = await createTestHosts(4);
  const dir = await tempDir("latency");
  const nodes: NodeProcess[] = [];
  let proxy: Deno.ChildProcess | null = null;
  try {
    const keys = net.hosts.map(() => generateKeyPair());
    const genesis = makeDevnetGenesis({
      network: "devnet",
      blockIntervalMs: INTERVAL_MS,
      nodes: keys.map((k, i) => ({
        publicKey: k.publicKey,
        address: `${net.hosts[i].ip}:${P2P}`,
        rewardAddress: addressOf("devnet", k.publicKey),
      })),
      alloc: {},
    });
    await Deno.writeTextFile(`${dir}/genesis.json`, genesisToJson(genesis));
    for (const [i, host] of net.hosts.entries()) {
      const dataDir = `${dir}/node-${i}`;
      await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
      await createKeyFile(`${dataDir}/${NODE_KEY_FILE}`, keys[i]);
      const Kind = i < 3 ? AllAddressesNode : NodeProcess;
      nodes.push(
        new Kind({
          name: `mn${i}`,
          dataDir,
          host: host.ip,
          netns: host.netns,
          p2pPort: P2P,
          rpcPort: P2P + 1,
          genesis: `${dir}/genesis.json`,
          peers: net.hosts.filter((_, j) => j !== i).map((h) => `${h.ip}:${P2P}`),
          // Pings every second: the round trips show the delay is on the slow member's links.
          extra: ["--rpc-allow-ip", net.bridgeIp, "--ping-interval", "1"],
          logLevel: "info",
        }),
      );
    }
    // The slow member's dials to host X land on its proxy, which adds 300 ms to what it sends.
    const slow = net.hosts[3].netns;
    const subnet = net.hosts[0].ip.split(".").slice(0, 3).join(".");
    // It must not answer ARP for those IPs on the bridge, or it would capture the others'
    // traffic to each other.
    const arp = await new Deno.Command("ip", {
      args: ["netns", "exec", slow, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"],
    }).output();
    assert.ok(arp.success, "arp_ignore in the slow member's namespace");
    const proxied: string[] = [];
    for (const [i, host] of net.hosts.slice(0, 3).entries()) {
      const alias = `${subnet}.${101 + i}`;
      await ip("-n", host.netns, "addr", "add", `${alias}/24`, "dev", "eth0");
      await ip("-n", slow, "addr", "add", `${host.ip}/32`, "dev", "lo");
      proxied.push(`${host.ip}:${P2P}`, `${alias}:${P2P}`, String(EXTRA_LATENCY_MS), "0");
    }
    proxy = new Deno.Command("ip", {
      args: ["netns", "exec", slow, Deno.execPath(), "run", "-A", PROXY, ...proxied],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = proxy.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.match((await reader.read()).value ?? "", /ready/);
    reader.releaseLock();

    for (const n of nodes) n.start();
    const slowId = toHex(keys[3].publicKey);
    await waitAllAtHeight(nodes, HEIGHTS, 240_000 + HEIGHTS * 2 * INTERVAL_MS);
    const [mn0] = nodes;
    const entry = await entryOf(mn0, slowId);
    assert.equal(entry?.status, "active");
    assert.equal(entry?.jailedUntil, null);
    assert.ok(entry!.missedBlocks <= 5, `missed ${entry!.missedBlocks} of the last 20`);
    assert.equal(metricValue(await nodes[3].metrics(), "timenode_stake_jailed"), 0);
    // The delay is real: mn0's round trips to the slow member take the 300 ms, to mn1 not.
    const peers = await mn0.rpc<{ nodeId: string; minRttMs: number | null }[]>("getpeerinfo");
    const rtt = (id: string) => peers.find((p) => p.nodeId === id)?.minRttMs ?? null;
    // The proxy's timer may fire a fraction of a millisecond early (299.97 ms was seen).
    const slowRtt = rtt(slowId) ?? 0;
    assert.ok(slowRtt >= EXTRA_LATENCY_MS - 5, `rtt to the slow member ${slowRtt}`);
    const fast = rtt(toHex(keys[1].publicKey));
    assert.ok(fast !== null && fast < EXTRA_LATENCY_MS, `rtt to mn1 ${fast}`);
    // Late, but counted: named as a signer in most recent heights.
    let signed = 0;
    for (let h = HEIGHTS - 20; h < HEIGHTS; h++) {
      if ((await signersOf(mn0, h)).includes(slowId)) signed++;
    }
    assert.ok(signed >= 15, `signed ${signed} of the last 20 heights`);
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    if (proxy) {
      proxy.kill("SIGTERM");
      await proxy.stdout.cancel().catch(() => {});
      await proxy.status;
    }
    await net.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
