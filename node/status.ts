/**
 * The one-screen status of a running node, shared by `timenode status` and the devnet's live
 * view: what to fetch over RPC, and how to render it as lines a human reads at a glance.
 *
 * Owns: the status snapshot, its rendering, and the warnings (no peers, chain stalled, clock
 * skew, consensus stuck in rounds). Whether the chain is stalled is the node's own verdict (the
 * one /health gives, `--stall-blocks`), never a second rule of this screen's.
 * Must never: print or exit (callers do), or call anything but read-only RPC methods.
 */

/** A block stamped this far ahead of our clock means one of the two clocks is off. */
const CLOCK_SKEW_WARN_MS = 2_000;
/** Rounds at one height beyond this mean the validators cannot agree (or reach each other). */
const ROUNDS_WARN = 3;

export interface StatusSnapshot {
  /** Local time the snapshot was taken (ms). */
  at: number;
  uptimeSeconds: number;
  network: { version: string; network: string; nodeId: string; listen: string | null };
  chain: {
    genesisHash: string;
    height: number;
    bestTime: number;
    blockIntervalMs: number;
    syncState: string;
    targetHeight: number;
    progress: number;
    /** The node's own verdict (node/stall_watch.ts, `--stall-blocks`): the one /health uses. */
    stall: { stalled: boolean; quietSeconds: number; thresholdSeconds: number };
  };
  peers: { direction: string; bestHeight: number; key: string }[];
  consensus: {
    height: number;
    round: number;
    step: string;
    proposer: string | null;
    isValidator: boolean;
    nodeId: string;
    totalPower: number;
    validators: { nodeId: string; power: number }[];
    lastCommit: { height: number; round: number; at: number } | null;
  };
  masternodes: { nodeId: string; power: number; activeFrom: number; leavingFrom: number | null }[];
}

/** Calls the read-only methods a snapshot needs, in parallel. */
export async function fetchStatus(
  call: (method: string) => Promise<unknown>,
  now: () => number = Date.now,
): Promise<StatusSnapshot> {
  const [uptime, network, chain, peers, consensus, masternodes] = await Promise.all([
    call("uptime"),
    call("getnetworkinfo"),
    call("getblockchaininfo"),
    call("getpeerinfo"),
    call("getconsensusinfo"),
    call("masternodelist"),
  ]);
  return {
    at: now(),
    uptimeSeconds: uptime as number,
    network: network as StatusSnapshot["network"],
    chain: chain as StatusSnapshot["chain"],
    peers: peers as StatusSnapshot["peers"],
    consensus: consensus as StatusSnapshot["consensus"],
    masternodes: masternodes as StatusSnapshot["masternodes"],
  };
}

/** The status screen: one labelled line per topic, warnings last. */
export function renderStatus(s: StatusSnapshot): string[] {
  const c = s.chain;
  const age = c.height > 0 ? `last block ${seconds(s.at - c.bestTime)} ago` : "no block yet";
  const inbound = s.peers.filter((p) => p.direction === "inbound").length;
  const heights = s.peers.map((p) => p.bestHeight).sort((a, b) => b - a);
  const shownHeights = heights.slice(0, 8).join(", ") + (heights.length > 8 ? ", …" : "");
  const k = s.consensus;
  const warnings = statusWarnings(s);
  return [
    `network     ${s.network.network}, genesis ${c.genesisHash.slice(0, 12)}…, node ` +
    `${s.network.nodeId.slice(0, 12)}… (timenode ${s.network.version}, up ${
      duration(s.uptimeSeconds)
    })`,
    `chain       height ${c.height}, ${age} (block interval ${seconds(c.blockIntervalMs)})`,
    `sync        ${c.syncState}` +
    (c.syncState === "syncing"
      ? `, ${(c.progress * 100).toFixed(1)}% towards ${c.targetHeight}`
      : ""),
    `peers       ${s.peers.length} (${inbound} in, ${s.peers.length - inbound} out)` +
    (heights.length ? `, heights ${shownHeights}` : ""),
    `consensus   height ${k.height}, round ${k.round}, step ${k.step}` +
    (k.proposer ? `, proposer ${k.proposer.slice(0, 12)}…` : ""),
    `masternode  ${masternodeLine(s)}`,
    ...(warnings.length === 0
      ? ["warnings    none"]
      : warnings.map((w, i) => `${i === 0 ? "warnings" : "        "}    ${w}`)),
  ];
}

function masternodeLine(s: StatusSnapshot): string {
  const id = s.consensus.nodeId;
  const me = s.masternodes.find((m) => m.nodeId === id);
  const height = s.chain.height;
  if (!me) return "not a masternode";
  if (me.leavingFrom !== null) {
    return `leaving the validator set at height ${me.leavingFrom}`;
  }
  if (me.activeFrom > height) return `registered, validating from height ${me.activeFrom}`;
  const signing = s.consensus.isValidator ? "validator" : "member (not signing at this height)";
  return `${signing}, power ${me.power} of ${s.consensus.totalPower}`;
}

/** What needs the operator's attention, in words; empty when nothing does. */
export function statusWarnings(s: StatusSnapshot): string[] {
  const out: string[] = [];
  const c = s.chain;
  if (s.peers.length === 0) out.push("no peers: check --peer, the firewall and the other nodes");
  if (c.stall.stalled) {
    out.push(
      `chain stalled: no block for ${c.stall.quietSeconds} s while connected (threshold ${c.stall.thresholdSeconds} s, --stall-blocks); are more than 2/3 of the validators online?`,
    );
  }
  // A block's time is its proposer's clock; one from our future means a clock is off.
  const ahead = Math.max(
    c.bestTime - s.at,
    s.consensus.lastCommit && s.consensus.lastCommit.height === c.height
      ? c.bestTime - s.consensus.lastCommit.at
      : 0,
  );
  if (ahead > CLOCK_SKEW_WARN_MS) {
    out.push(
      `clock skew: the last block is stamped ${
        seconds(ahead)
      } ahead of this machine's clock; check NTP here and on the proposer`,
    );
  }
  if (s.consensus.round > ROUNDS_WARN) {
    out.push(
      `consensus at round ${s.consensus.round} of height ${s.consensus.height}: ` +
        "validators cannot agree or reach each other",
    );
  }
  return out;
}

function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 10 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}

function duration(totalSeconds: number): string {
  const d = Math.floor(totalSeconds / 86_400);
  const h = Math.floor((totalSeconds % 86_400) / 3_600);
  const m = Math.floor((totalSeconds % 3_600) / 60);
  const s = totalSeconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}
