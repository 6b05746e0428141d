/**
 * Which established inbound peer to drop when inbound is full and a newcomer arrives, after
 * Bitcoin Core's eviction rule. Refusing every newcomer instead would let whoever filled the
 * slots first keep them forever; evicting at random would let an attacker with many slots
 * evict honest peers. The rule protects the peers an attacker finds hardest to imitate, then
 * evicts from the most crowded netgroup.
 *
 * Owns: the choice (pure, deterministic given its inputs).
 * Must never: evict a current validator or an outbound peer (the caller passes inbound peers
 * only), or pick anyone when every candidate is protected.
 *
 * Order of protection (each step from what the previous left):
 *  1. current validators: consensus needs them, and they are keyed to known identities.
 *  2. `PROTECT_BY_NETGROUP` peers from distinct netgroups, chosen by a keyed rank the attacker
 *     cannot predict (the caller passes `netgroupRank`, a keyed hash): many addresses in a few
 *     netgroups buy an attacker little.
 *  3. `PROTECT_BY_RTT` peers with the lowest minimum ping time: nearness cannot be faked.
 *  4. half of the rest, the longest connected: an attacker must stay connected for longer
 *     than honest peers, which it cannot arrange after the fact.
 * From what is left, the netgroup with the most peers loses its youngest peer (a tie goes to
 * the netgroup whose youngest is youngest).
 */

/** As Bitcoin Core: a few per kind, so together they keep a third or more of a small node. */
export const PROTECT_BY_NETGROUP = 4;
export const PROTECT_BY_RTT = 8;

export interface EvictionCandidate {
  id: string;
  netgroup: string;
  /** When the connection became ready (any clock, larger is younger). */
  connectedAt: number;
  /** Lowest ping round trip seen; null before the first pong (treated as the slowest). */
  minRttMs: number | null;
  isValidator: boolean;
}

export interface EvictionOptions {
  /** Keyed rank of a netgroup (lower is kept first); a secret per node so nobody can aim. */
  netgroupRank: (netgroup: string) => number;
  protectByNetgroup?: number;
  protectByRtt?: number;
}

/** The id of the peer to evict, or null when every candidate is protected. */
export function selectInboundToEvict(
  candidates: readonly EvictionCandidate[],
  opts: EvictionOptions,
): string | null {
  let rest = candidates.filter((c) => !c.isValidator);

  const byNetgroupCount = opts.protectByNetgroup ?? PROTECT_BY_NETGROUP;
  const ranked = [...rest].sort((a, b) =>
    opts.netgroupRank(a.netgroup) - opts.netgroupRank(b.netgroup) ||
    a.connectedAt - b.connectedAt
  );
  const keptGroups = new Set<string>();
  const kept = new Set<string>();
  for (const c of ranked) {
    if (keptGroups.size >= byNetgroupCount) break;
    if (keptGroups.has(c.netgroup)) continue;
    keptGroups.add(c.netgroup);
    kept.add(c.id);
  }
  rest = rest.filter((c) => !kept.has(c.id));

  const rtt = (c: EvictionCandidate) => c.minRttMs ?? Infinity;
  rest = [...rest].sort((a, b) => rtt(a) - rtt(b) || a.connectedAt - b.connectedAt)
    .slice(opts.protectByRtt ?? PROTECT_BY_RTT);

  rest = [...rest].sort((a, b) => a.connectedAt - b.connectedAt);
  rest = rest.slice(Math.floor(rest.length / 2));
  if (rest.length === 0) return null;

  const groups = new Map<string, EvictionCandidate[]>();
  for (const c of rest) {
    const g = groups.get(c.netgroup) ?? [];
    g.push(c);
    groups.set(c.netgroup, g);
  }
  let worst: EvictionCandidate[] | null = null;
  let worstYoungest = -Infinity;
  for (const g of groups.values()) {
    const youngest = Math.max(...g.map((c) => c.connectedAt));
    if (
      worst === null || g.length > worst.length ||
      (g.length === worst.length && youngest > worstYoungest)
    ) {
      worst = g;
      worstYoungest = youngest;
    }
  }
  const victim = worst!.reduce((a, b) => (b.connectedAt > a.connectedAt ? b : a));
  return victim.id;
}
