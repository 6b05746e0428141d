/**
 * Block production under each attack of docs/security.md that a connected peer runs, against
 * a real 3-masternode devnet (processes on loopback): for every attack, the heights of a window
 * without it, then of a window with it, alternated so that load drifting on a shared machine
 * hits both sides alike. The row is the rate during the attack as a percentage of the rate just
 * before it (target at least 90%, the bound). The attack scripts are the integration
 * tests' (tests/support/attacks.ts). Idle sockets need IPs of their own: four network-namespace
 * hosts against a follower node on a bridge (root and iproute2; without them that row is an
 * error saying why), whose height then counts with the masternodes'.
 *
 *   deno task bench --only hostile [--quick]
 *
 * Owns: the devnet run and its rows. Must never: leave a process or a data dir behind, or
 * compare windows of different lengths.
 */
import { loadGenesisFile } from "../chain/genesis.ts";
import { decodeKeyFile, NODE_KEY_FILE } from "../crypto/node_key.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../tests/support/devnet.ts";
import {
  type Attack,
  type AttackTarget,
  banTrap,
  certificateFlood,
  fakeHeights,
  idleSockets,
  nextHeightFlood,
} from "../tests/support/attacks.ts";
import { heightsInWindow } from "../tests/support/block_rate.ts";
import { createTestHosts, type TestHosts } from "../tests/support/netns.ts";
import { followerMaker } from "../tests/support/follower.ts";
import type { NodeProcess } from "../tests/support/cluster.ts";
import { type BenchOptions, type BenchRow, benchRow, errorRow, formatNumber } from "./table.ts";

const SUITE = "hostile";
/** The devnet's block interval: one block is a twentieth of a full window. */
const BLOCK_INTERVAL_MS = 1_000;
const WINDOW_MS = 20_000;
const QUICK_WINDOW_MS = 5_000;
/** The bound on production during an attack, against without it. */
const RATE_TARGET_PERCENT = 90;
/** The attacker: four IPs of silent sockets. */
const IDLE_ATTACKER_IPS = 4;

export async function runAttackRateBenchmarks(opts: BenchOptions): Promise<BenchRow[]> {
  const windowMs = opts.quick ? QUICK_WINDOW_MS : WINDOW_MS;
  opts.progress("hostile: starting a 3-masternode devnet for the attack runs");
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const rows: BenchRow[] = [];
  let net: TestHosts | null = null;
  let follower: NodeProcess | null = null;
  const dirs: string[] = [];
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const watched = [...devnet.nodes];
    const port = 24_500 + Math.floor(Math.random() * 400);
    try {
      net = await createTestHosts(IDLE_ATTACKER_IPS);
      follower = await followerMaker(devnet.manifest.genesis, port, dirs)("bench-follower", {
        host: net.bridgeIp,
        peers: devnet.manifest.nodes.map((n) => n.p2p),
        // The bench calls the RPC from the bridge's address, not from loopback.
        extra: ["--rpc-allow-ip", net.bridgeIp],
      });
      follower.start();
      await waitAllAtHeight([follower], 3, 60_000);
      watched.push(follower);
    } catch (e) {
      rows.push(
        errorRow(SUITE, `block rate under idle sockets from ${IDLE_ATTACKER_IPS} IPs`, "%", e),
      );
    }
    const target: AttackTarget = {
      genesis: await loadGenesisFile(devnet.manifest.genesis),
      address: devnet.manifest.nodes[0].p2p,
      tip: () => heightOf(devnet.nodes[0]),
    };
    const keyPath = `${devnet.manifest.nodes[2].dataDir}/${NODE_KEY_FILE}`;
    const member = decodeKeyFile(await Deno.readTextFile(keyPath), keyPath);
    const attacks: Attack[] = [
      fakeHeights(target),
      certificateFlood(target),
      nextHeightFlood(target, member),
      banTrap(target, 60),
      ...(net && follower ? [idleSockets(net.hosts, net.bridgeIp, port)] : []),
    ];
    for (const attack of attacks) {
      if (opts.signal.aborted) break;
      const name = `block rate under ${attack.name}`;
      try {
        opts.progress(`hostile: ${attack.name}, ${windowMs / 1000} s without, then with`);
        const without = await heightsInWindow(watched, windowMs);
        let started = Promise.resolve();
        const during = await heightsInWindow(watched, windowMs, () => {
          started = attack.start();
        });
        await started;
        await attack.stop();
        const perSecond = (h: number) => formatNumber(h / (windowMs / 1000));
        rows.push(benchRow(
          SUITE,
          name,
          without > 0 ? 100 * during / without : 0,
          "%",
          { op: ">=", value: RATE_TARGET_PERCENT },
          `${perSecond(during)} blocks/s during, ${perSecond(without)} without ` +
            `(${during} vs ${without} heights, ${windowMs / 1000} s windows, 3 masternodes` +
            `${follower ? " and a follower" : ""}, ${BLOCK_INTERVAL_MS} ms interval); ` +
            attack.summary(),
        ));
      } catch (e) {
        await attack.stop().catch(() => {});
        rows.push(errorRow(SUITE, name, "%", e, { op: ">=", value: RATE_TARGET_PERCENT }));
      }
    }
  } finally {
    await follower?.stop();
    await devnet.stop();
    await net?.destroy();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
  return rows;
}
