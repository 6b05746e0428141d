/**
 * Block production under each attack of docs/security.md that a connected peer runs, against
 * a real 3-masternode devnet (processes on loopback): for every attack, the heights of a window
 * without it, then of a window with it, alternated so that load drifting on a shared machine
 * hits both sides alike. The row is the rate during the attack as a percentage of the rate just
 * before it (target at least 90%, the issue's bound). The attack scripts are the integration
 * tests' (tests/support/attacks.ts).
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
  nextHeightFlood,
} from "../tests/support/attacks.ts";
import { heightsInWindow } from "../tests/support/block_rate.ts";
import { type BenchOptions, type BenchRow, benchRow, errorRow, formatNumber } from "./table.ts";

const SUITE = "hostile";
/** The devnet's block interval: one block is a twentieth of a full window. */
const BLOCK_INTERVAL_MS = 1_000;
const WINDOW_MS = 20_000;
const QUICK_WINDOW_MS = 5_000;
/** The bound on production during an attack, against without it. */
const RATE_TARGET_PERCENT = 90;

export async function runAttackRateBenchmarks(opts: BenchOptions): Promise<BenchRow[]> {
  const windowMs = opts.quick ? QUICK_WINDOW_MS : WINDOW_MS;
  opts.progress("hostile: starting a 3-masternode devnet for the attack runs");
  const devnet = await startDevnet(3, BLOCK_INTERVAL_MS);
  const rows: BenchRow[] = [];
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
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
    ];
    for (const attack of attacks) {
      if (opts.signal.aborted) break;
      const name = `block rate under ${attack.name}`;
      try {
        opts.progress(`hostile: ${attack.name}, ${windowMs / 1000} s without, then with`);
        const without = await heightsInWindow(devnet.nodes, windowMs);
        let started = Promise.resolve();
        const during = await heightsInWindow(devnet.nodes, windowMs, () => {
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
            `(${during} vs ${without} heights, ${windowMs / 1000} s windows, 3 masternodes, ` +
            `${BLOCK_INTERVAL_MS} ms interval); ${attack.summary()}`,
        ));
      } catch (e) {
        await attack.stop().catch(() => {});
        rows.push(errorRow(SUITE, name, "%", e, { op: ">=", value: RATE_TARGET_PERCENT }));
      }
    }
  } finally {
    await devnet.stop();
  }
  return rows;
}
