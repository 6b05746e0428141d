/**
 * The consensus simulation with validator-set changes driven by stake records: the real state
 * machine (state/state.ts) applies a scripted history of blocks (a collateral registration
 * joins a node, a member stops signing and is jailed by the downtime rule, it unjails, a member
 * deregisters, double-sign evidence tombstones another), and the set of every height it
 * derives drives the simulated validators (tests/support/consensus_sim.ts) over 1,000 seeds,
 * with nodes crashed across the h + 2 switches and lossy links before GST: no fork, every
 * certificate of its height's set, and every node at the target height within a bound after GST.
 *
 * Runs use virtual time only.
 */
import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { type Crash, runSimulation, type SimOptions } from "../../support/consensus_sim.ts";
import { TestRandom } from "../../support/random.ts";
import { parseGenesis } from "../../../chain/genesis.ts";
import { genesisToJson } from "../../../chain/genesis_tool.ts";
import { idOf, STAKE, StakeChain, stakeGenesis } from "../state/stake_support.ts";

const SEEDS = 1_000;
/** How long after GST every node may take to reach the target height. */
const LIVENESS_BOUND_MS = 120_000;
/** Sim node i is the member NAMES[i] of the stake chain. */
const NAMES = ["g0", "g1", "g2", "g3", "n4"];

type Powers = (number | null)[];

/**
 * The stake test genesis with the downtime rule at its shortest (one miss jails, the jail lasts
 * one block), so the whole history fits in a dozen heights and 1,000 seeds stay affordable.
 */
function quickGenesis() {
  const g = JSON.parse(genesisToJson(stakeGenesis()));
  return parseGenesis({ ...g, ...STAKE, missedBlocksMax: 0, jailBlocks: 1 });
}

/**
 * Applies the scripted record history with the real stake rules and returns the powers of every
 * height 1..`last` (null: not a member; 0: listed without power, i.e. jailed).
 */
function recordDrivenSets(): { powers: Powers[]; events: Map<string, number> } {
  const c = new StakeChain(quickGenesis());
  const down = new Set<string>();
  const events = new Map<string, number>();
  const powersAt = (h: number): Powers => {
    const set = c.set(h);
    return NAMES.map((n) => {
      const member = set.validators.find((v) => toHex(v.nodeId) === idOf(n));
      return member ? member.power : null;
    });
  };
  const signers = () =>
    c.set(c.tip).voting.map((v) => NAMES.find((n) => idOf(n) === toHex(v.nodeId))!)
      .filter((n) => !down.has(n));
  let jailedAt = Infinity;
  let unjailAt = Infinity;
  let last = Infinity;
  while (c.tip < last) {
    const h = c.tip + 1;
    const records = [];
    if (h === 3) records.push(c.bond("n4", "alice")), events.set("join", h);
    // g3 stops signing (n4 votes from 5); once jailed it comes back, and unjails as soon as
    // the rule allows; meanwhile g1 leaves, and after the unjail n4 double-signs.
    if (h === 6) down.add("g3");
    if (h === jailedAt + 1) records.push(c.dereg("g1")), events.set("leave", h);
    if (h === unjailAt) records.push(c.unjail("g3")), events.set("unjail", h);
    if (h === unjailAt + 1) {
      records.push(evidenceRecord(c.vote("n4", h - 1, 1), c.vote("n4", h - 1, 2)));
      events.set("tombstone", h);
      last = h + 3;
    }
    c.apply({ records, signers: h >= 2 ? signers() : undefined });
    const g3 = c.info("g3");
    if (!events.has("jail") && g3?.status === "jailed") {
      events.set("jail", h);
      jailedAt = h;
      unjailAt = Math.max(g3.jailedUntil!, h + 2);
      down.delete("g3");
    }
    assert.ok(c.tip < 100, "the scripted history ends");
  }
  const powers: Powers[] = [];
  for (let h = 1; h <= last; h++) powers.push(powersAt(h));
  return { powers, events };
}

const HISTORY = recordDrivenSets();

/** The sim's schedule: an entry at every height whose set differs from the one before. */
function schedule(powers: Powers[]): NonNullable<SimOptions["setSchedule"]> {
  const out: NonNullable<SimOptions["setSchedule"]> = [];
  powers.forEach((p, i) => {
    if (i === 0 || JSON.stringify(p) !== JSON.stringify(powers[i - 1])) {
      out.push({ fromHeight: i + 1, powers: p });
    }
  });
  return out;
}

Deno.test("stake sim: the record history changes the set the way the stake rules say", () => {
  const { powers, events } = HISTORY;
  const at = (h: number) => powers[h - 1];
  assert.deepEqual([...events.keys()].sort(), ["jail", "join", "leave", "tombstone", "unjail"]);
  // Join at h + 2 with bronze power.
  const join = events.get("join")!;
  assert.equal(at(join + 1)[4], null);
  assert.equal(at(join + 2)[4], 1);
  // Jailed: listed, power 0, from two heights after the block that jailed it.
  const jail = events.get("jail")!;
  assert.equal(at(jail + 1)[3], 1);
  assert.equal(at(jail + 2)[3], 0);
  const unjail = events.get("unjail")!;
  assert.equal(at(unjail + 1)[3], 0);
  assert.equal(at(unjail + 2)[3], 1);
  const leave = events.get("leave")!;
  assert.equal(at(leave + 1)[1], 1);
  assert.equal(at(leave + 2)[1], null);
  const tomb = events.get("tombstone")!;
  assert.equal(at(tomb + 1)[4], 1);
  assert.equal(at(tomb + 2)[4], null);
  assert.ok(schedule(powers).length >= 6);
});

function stakeScenario(seed: number): SimOptions & { expectLive: number[] } {
  const rnd = new TestRandom(seed * 6_151 + 29);
  const setSchedule = schedule(HISTORY.powers);
  const gstMs = rnd.int(1_000, 6_000);
  // One or two nodes fall behind: down across some of the switches, back before GST.
  const crashes: Crash[] = [];
  const behind = rnd.int(1, 2);
  for (let k = 0; k < behind; k++) {
    const at = rnd.int(0, gstMs);
    crashes.push({
      node: rnd.int(0, NAMES.length - 1),
      atMs: at,
      restartAtMs: rnd.int(at, gstMs),
      wipeChain: false,
    });
  }
  return {
    seed,
    powers: HISTORY.powers[0].map((p) => p ?? 0),
    setSchedule,
    crashes,
    gstMs,
    relay: rnd.chance(0.5),
    preGst: { dropRate: rnd.next() * 0.2, minDelayMs: 1, maxDelayMs: rnd.int(50, 1_000) },
    targetHeight: HISTORY.powers.length,
    maxTimeMs: gstMs + LIVENESS_BOUND_MS,
    expectLive: NAMES.map((_, i) => i),
  };
}

Deno.test(`stake sim: record-driven joins, jail, unjail, leave and tombstone on ${SEEDS} seeds: no fork, live after GST`, () => {
  let restarts = 0;
  for (let seed = 0; seed < SEEDS; seed++) {
    const s = stakeScenario(seed);
    const r = runSimulation(s);
    const why = () => `seed ${seed}: heights ${r.heights}\n  ${r.finalStates.join("\n  ")}`;
    assert.deepEqual(r.forks, [], `fork: ${why()}`);
    assert.equal(r.badCertificates, 0, `bad certificate: ${why()}`);
    assert.equal(r.badLastCommits, 0, `bad last commit: ${why()}`);
    assert.equal(r.wrongSetBlocks, 0, `a block names another height's set: ${why()}`);
    for (const i of s.expectLive) {
      assert.ok(r.heights[i] >= s.targetHeight, `node ${i} not live: ${why()}`);
    }
    restarts += s.crashes!.length;
  }
  assert.ok(restarts >= SEEDS, "nodes fell behind on every seed");
});
