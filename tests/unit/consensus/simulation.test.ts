/**
 * Deterministic simulations of whole validator networks (tests/support/consensus_sim.ts):
 * safety on every seed (no two different blocks committed at one height, every certificate
 * valid), liveness after GST whenever more than 2/3 of the power is honest, up and connected.
 *
 * Runs use virtual time only; the file takes about 15 s on a 2-core machine.
 */
import assert from "node:assert/strict";
import {
  type Crash,
  type Partition,
  runSimulation,
  type SimOptions,
  type SimResult,
} from "../../support/consensus_sim.ts";
import { TestRandom } from "../../support/random.ts";

/** How long after GST the honest majority may take to commit the target heights. */
const LIVENESS_BOUND_MS = 120_000;
const CHAOS_SEEDS = 1_000;

interface Scenario extends SimOptions {
  /** Nodes expected to reach the target: honest and not crashed for good. */
  expectLive: number[];
}

/**
 * A random scenario from one seed: 4 to 7 validators, equal or weighted power, at most one
 * byzantine double-signer, crashes (some for good, some with a restart and some of those
 * losing their chain as well), partitions and lossy, slow links until GST. The power of the
 * byzantine validator, the validators down for good and those that lose their chain stays
 * below a third, so liveness after GST is expected on every seed. (Restarts that keep the
 * chain do not count: the sign guard and the persisted lock evidence make them harmless.)
 */
function chaosScenario(seed: number): Scenario {
  const rnd = new TestRandom(seed * 7_919 + 13);
  const n = [4, 4, 5, 6, 7][rnd.int(0, 4)];
  const weighted = rnd.chance(0.3);
  const powers = Array.from({ length: n }, () => (weighted ? [1, 1, 2, 5][rnd.int(0, 3)] : 1));
  const total = powers.reduce((a, b) => a + b, 0);

  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rnd.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  let faulty = 0;
  const byzantine: number[] = [];
  const downForGood = new Set<number>();
  for (const i of order) {
    if ((faulty + powers[i]) * 3 >= total) continue;
    if (byzantine.length === 0 && rnd.chance(0.4)) {
      byzantine.push(i);
      faulty += powers[i];
    } else if (rnd.chance(0.25)) {
      downForGood.add(i);
      faulty += powers[i];
    }
  }

  const gstMs = rnd.int(3_000, 25_000);
  const crashes: Crash[] = [...downForGood].map((node) => ({
    node,
    atMs: rnd.int(0, gstMs),
    restartAtMs: null,
  }));
  const transient = rnd.int(0, 4);
  const wiped = new Set<number>();
  for (let k = 0; k < transient; k++) {
    const node = rnd.int(0, n - 1);
    if (downForGood.has(node) || byzantine.includes(node)) continue;
    const at = rnd.int(0, gstMs);
    // Losing the chain can lose the only copy of a certificate (the node may have been the
    // only one to see it), so such a node counts against the fault budget like a dead one.
    let wipeChain = rnd.chance(0.3);
    if (wipeChain && !wiped.has(node)) {
      wipeChain = (faulty + powers[node]) * 3 < total;
      if (wipeChain) {
        wiped.add(node);
        faulty += powers[node];
      }
    }
    crashes.push({ node, atMs: at, restartAtMs: rnd.int(at, gstMs), wipeChain });
  }
  const partitions: Partition[] = [];
  const parts = rnd.int(0, 2);
  for (let k = 0; k < parts; k++) {
    const start = rnd.int(0, gstMs);
    const groups: number[][] = [[], []];
    for (let i = 0; i < n; i++) groups[rnd.int(0, 1)].push(i);
    partitions.push({ startMs: start, endMs: rnd.int(start, gstMs), groups });
  }
  return {
    seed,
    powers,
    byzantine,
    crashes,
    partitions,
    gstMs,
    relay: rnd.chance(0.5),
    preGst: { dropRate: rnd.next() * 0.3, minDelayMs: 1, maxDelayMs: rnd.int(200, 4_000) },
    targetHeight: 4,
    maxTimeMs: gstMs + LIVENESS_BOUND_MS,
    expectLive: order.filter((i) => !byzantine.includes(i) && !downForGood.has(i)).sort(),
  };
}

function describe(s: Scenario, r: SimResult): string {
  const { expectLive: _, ...options } = s;
  return `seed ${s.seed}: heights ${r.heights}\n  ${r.finalStates.join("\n  ")}\n  ` +
    JSON.stringify(options);
}

function assertSafe(s: Scenario, r: SimResult): void {
  assert.deepEqual(r.forks, [], `fork: ${describe(s, r)}`);
  assert.equal(r.badCertificates, 0, `bad certificate: ${describe(s, r)}`);
  assert.equal(r.badLastCommits, 0, `a block without a valid last commit: ${describe(s, r)}`);
  assert.equal(r.wrongSetBlocks, 0, `a block names another height's set: ${describe(s, r)}`);
  assert.equal(r.rejected, 0, `an honest engine refused a valid message: ${describe(s, r)}`);
}

function assertLive(s: Scenario, r: SimResult): void {
  for (const i of s.expectLive) {
    assert.ok(r.heights[i] >= s.targetHeight, `node ${i} not live: ${describe(s, r)}`);
  }
}

function scenario(options: Partial<Scenario> & { powers: number[] }): Scenario {
  return {
    seed: 1,
    gstMs: 0,
    targetHeight: 5,
    maxTimeMs: 120_000,
    expectLive: options.powers.map((_, i) => i).filter((i) =>
      !(options.byzantine ?? []).includes(i) &&
      !(options.crashes ?? []).some((c) => c.node === i && c.restartAtMs === null)
    ),
    ...options,
  };
}

Deno.test("simulation: the same seed gives the same run", () => {
  const s = chaosScenario(5);
  const a = runSimulation(s);
  const b = runSimulation(chaosScenario(5));
  assert.deepEqual(JSON.stringify(b), JSON.stringify(a));
  const other = runSimulation(chaosScenario(6));
  assert.notEqual(JSON.stringify(other), JSON.stringify(a), "seeds matter");
});

Deno.test(`simulation: safety on ${CHAOS_SEEDS} chaos seeds, liveness after GST`, () => {
  const seen = { byzantine: 0, downForGood: 0, restarts: 0, wiped: 0, partitions: 0, relay: 0 };
  let equivocations = 0;
  let refusals = 0;
  let committed = 0;
  for (let seed = 0; seed < CHAOS_SEEDS; seed++) {
    const s = chaosScenario(seed);
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    if (s.byzantine!.length > 0) seen.byzantine++;
    if (s.crashes!.some((c) => c.restartAtMs === null)) seen.downForGood++;
    if (s.crashes!.some((c) => c.restartAtMs !== null)) seen.restarts++;
    if (s.crashes!.some((c) => c.wipeChain)) seen.wiped++;
    if (s.partitions!.length > 0) seen.partitions++;
    if (s.relay) seen.relay++;
    equivocations += r.equivocationsReported;
    refusals += r.signRefusals;
    committed += Math.max(...r.heights);
  }
  // The generator must actually exercise every fault, or the loop above proves little.
  for (const [fault, count] of Object.entries(seen)) {
    assert.ok(count >= CHAOS_SEEDS / 25, `only ${count} runs with ${fault}`);
  }
  assert.ok(equivocations > 0, "byzantine runs produced equivocation evidence");
  assert.ok(refusals > 0, "restarted validators hit the sign guard");
  assert.ok(committed >= CHAOS_SEEDS * 4);
});

Deno.test("simulation: a healthy network commits a block per round trip", () => {
  const s = scenario({ powers: [1, 1, 1, 1], targetHeight: 20 });
  const r = runSimulation(s);
  assertSafe(s, r);
  assertLive(s, r);
  assert.ok(r.endMs < 20_000, `20 heights took ${r.endMs} ms of virtual time`);
  assert.equal(r.equivocationsReported, 0);
});

Deno.test("simulation: up to f crashed validators do not stop the rest", () => {
  for (let seed = 0; seed < 50; seed++) {
    const four = scenario({
      seed,
      powers: [1, 1, 1, 1],
      crashes: [{ node: seed % 4, atMs: 0, restartAtMs: null }],
      gstMs: 5_000,
    });
    const r4 = runSimulation(four);
    assertSafe(four, r4);
    assertLive(four, r4);
    const seven = scenario({
      seed,
      powers: [1, 1, 1, 1, 1, 1, 1],
      crashes: [
        { node: seed % 7, atMs: 0, restartAtMs: null },
        { node: (seed + 3) % 7, atMs: 2_000, restartAtMs: null },
      ],
      gstMs: 5_000,
    });
    const r7 = runSimulation(seven);
    assertSafe(seven, r7);
    assertLive(seven, r7);
  }
});

Deno.test("simulation: more than f down stops progress without a fork; a restart resumes it", () => {
  for (let seed = 0; seed < 30; seed++) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1],
      crashes: [
        { node: seed % 4, atMs: 0, restartAtMs: 30_000 },
        { node: (seed + 1) % 4, atMs: 0, restartAtMs: 30_000, wipeChain: true },
      ],
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    assert.ok(r.firstCommitAt[1] >= 30_000, `committed at ${r.firstCommitAt[1]} with 2 of 4 up`);
  }
});

Deno.test("simulation: a byzantine double-signer cannot fork the chain or stop it", () => {
  let evidence = 0;
  for (let seed = 0; seed < 150; seed++) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1],
      byzantine: [seed % 4],
      relay: seed % 2 === 0,
      gstMs: 10_000,
      preGst: { dropRate: 0.1, minDelayMs: 1, maxDelayMs: 2_000 },
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    evidence += r.equivocationsReported;
  }
  assert.ok(evidence > 150, `only ${evidence} equivocations reported`);
});

Deno.test("simulation: locks hold against byzantine proposers when nobody hands out blocks", () => {
  // Safety-only stress of the consensus rules alone: no catch-up (which would hand a lagging
  // node the decided block first), short timeouts and heavy loss, so that rounds often end
  // with one node decided and the rest locked but undecided, while byzantine proposers offer
  // fresh blocks and vote for them. With the lock checks of lines 23 and 29 removed, these
  // seeds fork; with them, never.
  const fast = {
    proposeMs: 400,
    proposeDeltaMs: 100,
    prevoteMs: 200,
    prevoteDeltaMs: 100,
    precommitMs: 200,
    precommitDeltaMs: 100,
    resendMs: 1_000,
  };
  const seeds = 150;
  let committed = 0;
  for (let seed = 0; seed < seeds; seed++) {
    const four = scenario({
      seed,
      powers: [1, 1, 1, 1],
      byzantine: [seed % 4],
      relay: true,
      catchUp: false,
      gstMs: 40_000,
      preGst: { dropRate: 0.35, minDelayMs: 1, maxDelayMs: 300 },
      timeouts: fast,
      targetHeight: 20,
      maxTimeMs: 40_000,
    });
    const r4 = runSimulation(four);
    assertSafe(four, r4);
    const seven = scenario({
      seed,
      powers: [1, 1, 1, 1, 1, 1, 1],
      byzantine: [seed % 7, (seed + 1) % 7],
      catchUp: false,
      gstMs: 40_000,
      preGst: { dropRate: 0.3, minDelayMs: 1, maxDelayMs: 400 },
      timeouts: fast,
      targetHeight: 20,
      maxTimeMs: 40_000,
    });
    const r7 = runSimulation(seven);
    assertSafe(seven, r7);
    committed += Math.max(...r4.heights) + Math.max(...r7.heights);
  }
  // Without catch-up a node that missed a decision stays behind, so progress is modest; it
  // must still be real, or the runs tested nothing.
  assert.ok(committed > 2 * seeds, `only ${committed} heights committed: the stress did not run`);
});

/** Short timeouts for safety-only stress: many rounds, many locks, many chances to break one. */
const FAST_TIMEOUTS = {
  proposeMs: 400,
  proposeDeltaMs: 100,
  prevoteMs: 200,
  prevoteDeltaMs: 100,
  precommitMs: 200,
  precommitDeltaMs: 100,
  resendMs: 1_000,
};

Deno.test("simulation: a byzantine proposer's fake validRound without a proof of lock unlocks nobody", () => {
  // Byzantine proposers send everyone a fresh block that claims validRound = round − 1 and
  // never show the 2f+1 prevotes that would justify it. Only the line-28 check (a quorum of
  // prevotes for the block in validRound) keeps locked honest nodes from prevoting it. With
  // that check removed (`if (vr < round)` alone in engine.ts #fireOne), the 7-validator runs of
  // seeds 8, 23, 29, 41 and 48 and the 4-validator run of seed 44 fork; with it, none does.
  const sevenSeeds = [8, 23, 29, 41, 48, 0, 1, 2, 3, 4];
  const fourSeeds = [44, 0, 1, 2, 3, 4, 5, 6, 7, 8];
  let committed = 0;
  for (const seed of sevenSeeds) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1, 1, 1, 1],
      byzantine: [seed % 7, (seed + 1) % 7],
      byzantineFakeValidRound: true,
      catchUp: false,
      gstMs: 40_000,
      preGst: { dropRate: 0.35, minDelayMs: 1, maxDelayMs: 400 },
      timeouts: FAST_TIMEOUTS,
      targetHeight: 20,
      maxTimeMs: 40_000,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    committed += Math.max(...r.heights);
  }
  for (const seed of fourSeeds) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1],
      byzantine: [seed % 4],
      byzantineFakeValidRound: true,
      relay: true,
      catchUp: false,
      gstMs: 40_000,
      preGst: { dropRate: 0.35, minDelayMs: 1, maxDelayMs: 400 },
      timeouts: FAST_TIMEOUTS,
      targetHeight: 20,
      maxTimeMs: 40_000,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    committed += Math.max(...r.heights);
  }
  assert.ok(committed > sevenSeeds.length + fourSeeds.length, "the stress did not run");
});

Deno.test("simulation: a crash between the guard write and the send loses nothing and signs nothing twice", () => {
  // Honest nodes crash right after a guard write, before the signed message leaves (8% of
  // signatures), and restart 10 ms to 2 s later. The guard kept the message, so the restarted
  // engine re-sends it and resumes its step: it never has to ask the guard for a position it
  // already signed. Removing the re-send (engine.ts: ignore `restore.lastMessages`) makes every
  // seed here but 18 need guard refusals (seeds 0-17, 19); removing both the proposer's guard
  // check in #propose and the reuse of the restored proposal makes seeds 0-3, 5-10, 12-16 and
  // 18 sign a conflicting proposal, which the simulated guard refuses to record (it throws).
  for (let seed = 0; seed < 20; seed++) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1],
      crashAfterGuardWrite: 0.08,
      gstMs: 10_000,
      preGst: { dropRate: 0.05, minDelayMs: 1, maxDelayMs: 300 },
      targetHeight: 6,
      maxTimeMs: 10_000 + LIVENESS_BOUND_MS,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    assert.equal(r.signRefusals, 0, `a restarted node needed the guard: ${describe(s, r)}`);
  }
});

Deno.test("simulation: a validator whose guard write fails stops at once; the others go on", () => {
  // From its first failed write on, node 0 is stopped (the shell exits, as
  // consensus/service.ts does): it sends nothing it could not save. With 4 equal validators
  // the other three are a quorum, so they stay live and nothing forks. The check this relies
  // on lives in the shell, not the engine: tests/unit/consensus/service.test.ts fails when the
  // shell goes on after a failed write (it then relays the unsaved vote on the next resend).
  for (let seed = 0; seed < 10; seed++) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1],
      failingGuard: { node: 0, atMs: 100 + seed * 50 },
      gstMs: 5_000,
      preGst: { dropRate: 0.05, minDelayMs: 1, maxDelayMs: 300 },
      targetHeight: 8,
      expectLive: [1, 2, 3],
      maxTimeMs: 5_000 + LIVENESS_BOUND_MS,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    assert.ok(r.heights[0] < r.heights[1], `node 0 kept going: ${describe(s, r)}`);
  }
});

Deno.test("simulation: validator-set changes during the run, with a node behind across them", () => {
  // The set changes every two heights from height 3 on (members leave and join, node 5 stays
  // a listed member without power), as records take effect at h + 2. Node 3 crashes early and
  // comes back several changes later, catching up across them; node 0 is byzantine and
  // proposes twins that name the set of the height before. Every commit must name its own
  // height's set and carry a quorum of it. With the engine's validatorSetHash check removed
  // (engine.ts #headerValid), seeds 4, 6, 8 and 9 commit blocks naming a stale set.
  const patterns: (number | null)[][] = [
    [1, 1, 1, null, 1, 0],
    [1, 1, null, 1, 1, 0],
    [1, 1, 1, 1, null, 0],
    [1, null, 1, 1, 1, 0],
  ];
  const setSchedule = Array.from({ length: 20 }, (_, k) => ({
    fromHeight: 3 + 2 * k,
    powers: patterns[k % patterns.length],
  }));
  for (let seed = 0; seed < 10; seed++) {
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1, 0, 0],
      setSchedule,
      byzantine: [0],
      byzantineStaleSet: true,
      crashes: [{ node: 3, atMs: 1_000 + seed * 97, restartAtMs: 8_000 + seed * 131 }],
      relay: seed % 2 === 0,
      gstMs: 10_000,
      preGst: { dropRate: 0.1, minDelayMs: 1, maxDelayMs: 400 },
      targetHeight: 16,
      maxTimeMs: 10_000 + LIVENESS_BOUND_MS,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
  }
});

Deno.test("simulation: crash and restart never makes an honest validator double-sign", () => {
  // The simulator's sign guard throws on a conflicting signature, so every run here would
  // fail loudly if a restarted engine signed against what it signed before its crash.
  let refusals = 0;
  for (let seed = 0; seed < 100; seed++) {
    const rnd = new TestRandom(seed);
    const crashes: Crash[] = [];
    for (let k = 0; k < 8; k++) {
      const at = rnd.int(0, 20_000);
      crashes.push({
        node: rnd.int(0, 3),
        atMs: at,
        restartAtMs: at + rnd.int(10, 3_000),
        wipeChain: rnd.chance(0.3),
      });
    }
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1],
      crashes,
      gstMs: 24_000,
      preGst: { dropRate: 0.05, minDelayMs: 1, maxDelayMs: 500 },
      maxTimeMs: 24_000 + LIVENESS_BOUND_MS,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    refusals += r.signRefusals;
  }
  assert.ok(refusals > 0, "restarts happened mid-round, and the guard refused to re-sign");
});

Deno.test("simulation: with powers 1, 1, 1, 10 the heavy validator alone decides liveness", () => {
  const heavy = 3;
  for (let seed = 0; seed < 20; seed++) {
    // The three light validators (3 of 13) are down for good: the heavy one (10 of 13) goes on.
    const alone = scenario({
      seed,
      powers: [1, 1, 1, 10],
      crashes: [0, 1, 2].map((node) => ({ node, atMs: 0, restartAtMs: null })),
      targetHeight: 10,
    });
    const r = runSimulation(alone);
    assertSafe(alone, r);
    assertLive(alone, r);
    assert.equal(r.heights[heavy], 10);

    // Without it, the three light validators never commit anything.
    const without = scenario({
      seed,
      powers: [1, 1, 1, 10],
      crashes: [{ node: heavy, atMs: 0, restartAtMs: null }],
      maxTimeMs: 60_000,
    });
    const r2 = runSimulation(without);
    assertSafe(without, r2);
    assert.deepEqual(r2.heights, [0, 0, 0, 0], "3 of 13 is no quorum");

    // When it comes back, the chain moves again.
    const back = scenario({
      seed,
      powers: [1, 1, 1, 10],
      crashes: [{ node: heavy, atMs: 0, restartAtMs: 30_000 }],
    });
    const r3 = runSimulation(back);
    assertSafe(back, r3);
    assertLive(back, r3);
    assert.ok(r3.firstCommitAt[1] >= 30_000);
  }
});

Deno.test("simulation: a 3|3 partition of six validators halts without a fork, then heals", () => {
  const halves = [[0, 1, 2], [3, 4, 5]];
  for (let seed = 0; seed < 20; seed++) {
    // Split from the start: nothing is committed until the partition heals at 40 s.
    const s = scenario({
      seed,
      powers: [1, 1, 1, 1, 1, 1],
      partitions: [{ startMs: 0, endMs: 40_000, groups: halves }],
      gstMs: 40_000,
      preGst: { dropRate: 0, minDelayMs: 5, maxDelayMs: 200 },
      maxTimeMs: 40_000 + LIVENESS_BOUND_MS,
    });
    const r = runSimulation(s);
    assertSafe(s, r);
    assertLive(s, r);
    assert.ok(r.firstCommitAt[1] >= 40_000, `height 1 committed at ${r.firstCommitAt[1]}`);

    // Split mid-run: the heights committed before stop, and resume after healing.
    const mid = scenario({
      seed,
      powers: [1, 1, 1, 1, 1, 1],
      partitions: [{ startMs: 3_000, endMs: 45_000, groups: halves }],
      targetHeight: 15,
      maxTimeMs: 45_000 + LIVENESS_BOUND_MS,
    });
    const r2 = runSimulation(mid);
    assertSafe(mid, r2);
    assertLive(mid, r2);
    const during = r2.firstCommitAt.filter((t) => t >= 3_500 && t < 45_000);
    assert.deepEqual(during, [], "no height is committed while split 3|3");
    const before = r2.firstCommitAt.filter((t) => t < 3_000).length;
    assert.ok(before >= 2, `only ${before} heights before the split`);
    assert.ok(r2.firstCommitAt[15] >= 45_000);
  }
});
