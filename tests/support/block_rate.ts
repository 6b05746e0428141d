/**
 * Block production and honest sessions of a real network, measured around an attack: the
 * heights a network gains in a window, and the sessions of its honest peers (unchanged
 * sessions mean zero disconnects).
 *
 * Must never: assert anything itself (the tests and benches compare what it measures).
 */
import type { NodeProcess } from "./cluster.ts";
import { heightOf } from "./devnet.ts";

interface PeerInfo {
  key: string;
  nodeId: string;
  sessionId: number;
}

/** Heights the network gains in `windowMs` (the slowest node's view); `during` runs first. */
export async function heightsInWindow(
  nodes: NodeProcess[],
  windowMs: number,
  during?: () => void,
): Promise<number> {
  const start = Math.min(...await Promise.all(nodes.map(heightOf)));
  during?.();
  await new Promise((r) => setTimeout(r, windowMs));
  const end = Math.min(...await Promise.all(nodes.map(heightOf)));
  return end - start;
}

/** The node ids of `nodes` (hex). */
export async function nodeIds(nodes: NodeProcess[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const n of nodes) ids.add((await n.rpc<{ nodeId: string }>("getnetworkinfo")).nodeId);
  return ids;
}

/** The honest peers' sessions as each of `nodes` sees them, sorted. */
export async function honestSessions(
  nodes: NodeProcess[],
  honestIds: Set<string>,
): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    for (const p of await n.rpc<PeerInfo[]>("getpeerinfo")) {
      if (honestIds.has(p.nodeId)) out.push(`${n.name}/${p.key}#${p.sessionId}`);
    }
  }
  return out.sort();
}

/** The bound: at least 90% of the heights without the attack, one block of slack. */
export function holdsRate(during: number, baseline: number): boolean {
  return during >= Math.floor(0.9 * baseline) - 1;
}
