/**
 * This node's own standing in the stake rules, as `getconsensusinfo` and the metrics show it:
 * its status, its misses against the jail threshold, and a warning before it gets jailed.
 *
 * Owns: the near-jail rule (when to warn) and the set-power sums of the metrics, as pure
 * functions of a `masternodelist` answer and the genesis parameters.
 * Must never: read the state, the clock or the network itself (node/node.ts hands it the list).
 */

/** The fields of a `masternodelist` entry this module reads (state/state.ts `MasternodeInfo`). */
export interface MasternodeEntry {
  nodeId: string;
  tier: string;
  power: number;
  status: string;
  missedBlocks: number;
  jailedUntil: number | null;
}

/** The genesis parameters of the downtime rule (docs/state.md#downtime-and-jail). */
export interface DowntimeParams {
  signedBlocksWindow: number;
  missedBlocksMax: number;
}

/**
 * Warn once more than half of the allowed misses are used: at the devnet's 10 of 20 that leaves
 * 5 heights of warning, at mainnet's 504 of 1,008 about 42 hours, time enough to fix a node
 * before it is jailed. Earlier would warn on every restart; later leaves no time to act.
 */
export const NEAR_JAIL_FRACTION = 0.5;

const TOMBSTONED_WARNING =
  "this node double-signed: its id is tombstoned and can never register again";

export interface OwnStakeStatus {
  /**
   * `masternodelist` status; when this node is not listed, "tombstoned" if it was slashed,
   * else "none".
   */
  status: string;
  tier: string | null;
  power: number;
  missedBlocks: number;
  missedBlocksMax: number;
  signedBlocksWindow: number;
  jailedUntil: number | null;
  /** A sentence for the operator when action is needed soon, else null. */
  warning: string | null;
}

/**
 * `tombstoned` says whether the state holds this node's tombstone: a slashed node leaves the set
 * (and so the list) two blocks after its evidence, and its operator must still be told why.
 */
export function ownStakeStatus(
  list: readonly MasternodeEntry[],
  nodeId: string,
  params: DowntimeParams,
  tombstoned = false,
): OwnStakeStatus {
  const me = list.find((m) => m.nodeId === nodeId);
  const base = {
    missedBlocksMax: params.missedBlocksMax,
    signedBlocksWindow: params.signedBlocksWindow,
  };
  if (!me) {
    return {
      ...base,
      status: tombstoned ? "tombstoned" : "none",
      tier: null,
      power: 0,
      missedBlocks: 0,
      jailedUntil: null,
      warning: tombstoned ? TOMBSTONED_WARNING : null,
    };
  }
  return {
    ...base,
    status: me.status,
    tier: me.tier,
    power: me.power,
    missedBlocks: me.missedBlocks,
    jailedUntil: me.jailedUntil,
    warning: warningFor(me, params),
  };
}

function warningFor(me: MasternodeEntry, p: DowntimeParams): string | null {
  if (me.status === "tombstoned") return TOMBSTONED_WARNING;
  if (me.status === "jailed") {
    return `this node is jailed: no power, no rewards; send timenode wallet unjail from height ` +
      `${me.jailedUntil ?? "?"} on`;
  }
  if (me.power > 0 && me.missedBlocks > p.missedBlocksMax * NEAR_JAIL_FRACTION) {
    return `near the jail threshold: missed ${me.missedBlocks} of the last ` +
      `${p.signedBlocksWindow} heights; one more than ${p.missedBlocksMax} jails this node`;
  }
  return null;
}

/**
 * The set's power at the next height: `active` counts toward a quorum; `total` adds back the
 * tier power that jailed members would have.
 */
export function setPower(
  list: readonly MasternodeEntry[],
  tierPower: Readonly<Record<string, number>>,
): { total: number; active: number } {
  let total = 0;
  let active = 0;
  for (const m of list) {
    active += m.power;
    total += m.status === "jailed" ? Math.max(m.power, tierPower[m.tier] ?? 0) : m.power;
  }
  return { total, active };
}
