/**
 * The engine's quorum decisions at their boundaries, on sets other than the 4 equal validators
 * of engine.test.ts: 3 equal, 6 equal, and weighted sets whose subsets land exactly on 2/3 (or
 * 1/3). Each rule is checked at exactly the boundary (nothing happens) and one validator past
 * it (the rule fires):
 *  - line 49: precommits for a block decide the height (commit);
 *  - line 36: prevotes for the proposed block lock it and make us precommit;
 *  - line 47: precommits for anything arm timeoutPrecommit;
 *  - line 55: messages from more than 1/3 of the power in a later round make us jump there;
 *  - line 28: a re-proposal needs prevotes of more than 2/3 from its validRound (a POL).
 *
 * Mutations caught: `>` → `>=` in `hasQuorum` (lines 49, 36, 47, 28 rows; line 28 also when
 * inlined into consensus/engine.ts) and in `hasOneThird`
 * (line 55 rows), in chain/validators.ts or inlined into consensus/vote_set.ts (`VoteSet.add`,
 * `hasQuorumAny`, `HeightVotes.skipTarget`).
 */
import assert from "node:assert/strict";
import { type Block, blockHash, VoteType } from "../../../chain/block.ts";
import type { ValidatorSet } from "../../../chain/validators.ts";
import { ZERO_HASH } from "../../../crypto/hash.ts";
import type { KeyPair } from "../../../crypto/ed25519.ts";
import { toHex } from "../../../encoding/binary.ts";
import { ConsensusEngine, type EngineAction } from "../../../consensus/engine.ts";
import { proposerAt } from "../../../consensus/proposer.ts";
import {
  buildBlock,
  guardedSigner,
  makeTestValidators,
  MemorySignGuard,
  sentVotes,
  signProposal,
  signVote,
  TEST_GENESIS_HASH,
  TEST_GENESIS_TIME,
  timeoutsOf,
} from "../../support/consensus_sim.ts";

const HEIGHT = 1;
const PREVIOUS = { hash: TEST_GENESIS_HASH, timestamp: TEST_GENESIS_TIME };

interface Fixture {
  set: ValidatorSet;
  keys: KeyPair[];
  engine: ConsensusEngine;
  block: Block;
  feed(event: Parameters<ConsensusEngine["handle"]>[0]): EngineAction[];
}

/**
 * An engine at height 1 on a set of the given powers. `me` is the set index of our own key
 * (null: a non-validator that only watches). The proposer's proposal of round 0 is delivered.
 */
function fixture(powers: number[], label: string, me: number | null): Fixture {
  const { set, keys } = makeTestValidators(powers, label);
  const engine = new ConsensusEngine({
    height: HEIGHT,
    validators: set,
    nextValidators: set,
    previous: PREVIOUS,
    genesisHash: TEST_GENESIS_HASH,
    signer: me === null ? null : guardedSigner(keys[me], new MemorySignGuard()),
    getValue: (_h, round) => buildBlock({ set, height: HEIGHT, previous: PREVIOUS, round }),
    isValid: () => true,
  });
  engine.start();
  const block = buildBlock({ set, height: HEIGHT, previous: PREVIOUS, round: 0 });
  const proposerIndex = set.validators.indexOf(proposerAt(set, HEIGHT, 0));
  const feed = (event: Parameters<ConsensusEngine["handle"]>[0]) => engine.handle(event);
  feed({
    kind: "proposal",
    proposal: signProposal(keys[proposerIndex], HEIGHT, 0, -1, block),
    from: "peer",
  });
  return { set, keys, engine, block, feed };
}

/**
 * Set indexes (excluding `exclude`) whose powers sum exactly to `target`, heaviest first; fails
 * the test if the case does not sit where it claims to.
 */
function subsetWithPower(set: ValidatorSet, target: number, exclude: number[] = []): number[] {
  const order = set.validators.map((v, i) => ({ i, p: v.power }))
    .filter(({ i }) => !exclude.includes(i))
    .sort((a, b) => b.p - a.p);
  const picked: number[] = [];
  let sum = 0;
  for (const { i, p } of order) {
    if (sum + p <= target) {
      picked.push(i);
      sum += p;
    }
  }
  assert.equal(sum, target, `no subset of ${set.validators.map((v) => v.power)} sums to ${target}`);
  return picked;
}

/** The lightest validator not in `taken` (and not `exclude`): "one validator more". */
function oneMore(set: ValidatorSet, taken: number[], exclude: number[] = []): number {
  const rest = set.validators.map((v, i) => ({ i, p: v.power }))
    .filter(({ i }) => !taken.includes(i) && !exclude.includes(i))
    .sort((a, b) => a.p - b.p);
  assert.ok(rest.length > 0);
  return rest[0].i;
}

const hashOf = (f: Fixture) => blockHash(f.block.header);

function vote(f: Fixture, i: number, type: VoteType, round: number, hash: Uint8Array) {
  return f.feed({ kind: "vote", vote: signVote(f.keys[i], type, HEIGHT, round, hash), from: "p" });
}

interface PowerCase {
  name: string;
  powers: number[];
}

/** Sets where 2/3 (and 1/3) of the total is reachable exactly. */
const SETS: PowerCase[] = [
  { name: "3 equal", powers: [1, 1, 1] },
  { name: "6 equal", powers: [1, 1, 1, 1, 1, 1] },
  { name: "bronze + 5 free (15)", powers: [10, 1, 1, 1, 1, 1] },
  { name: "3 bronze + 3 free (33)", powers: [10, 10, 10, 1, 1, 1] },
];

for (const c of SETS) {
  Deno.test(`line 49 (${c.name}): precommits of exactly 2/3 do not decide, one more does`, () => {
    const f = fixture(c.powers, `l49-${c.name}`, null);
    const exact = subsetWithPower(f.set, f.set.totalPower * 2 / 3);
    for (const i of exact) {
      const actions = vote(f, i, VoteType.Precommit, 0, hashOf(f));
      assert.ok(!actions.some((a) => a.kind === "commit"), "exactly 2/3 must not commit");
    }
    assert.equal(f.engine.decision, null);
    const done = vote(f, oneMore(f.set, exact), VoteType.Precommit, 0, hashOf(f));
    assert.ok(done.some((a) => a.kind === "commit"), "more than 2/3 commits");
  });

  Deno.test(`line 36 (${c.name}): prevotes of exactly 2/3 do not lock, one more does`, () => {
    // We are the heaviest validator; our own prevote (sent on the proposal) counts too.
    const { set } = makeTestValidators(c.powers, `l36-${c.name}`);
    const me = set.validators.reduce(
      (best, v, i) => v.power > set.validators[best].power ? i : best,
      0,
    );
    const f = fixture(c.powers, `l36-${c.name}`, me);
    const others = subsetWithPower(f.set, f.set.totalPower * 2 / 3 - f.set.validators[me].power, [
      me,
    ]);
    for (const i of others) {
      const actions = vote(f, i, VoteType.Prevote, 0, hashOf(f));
      assert.deepEqual(sentVotes(actions, VoteType.Precommit), [], "exactly 2/3 must not lock");
    }
    assert.equal(f.engine.lockedRound, -1);
    const locked = vote(f, oneMore(f.set, others, [me]), VoteType.Prevote, 0, hashOf(f));
    const [pc] = sentVotes(locked, VoteType.Precommit);
    assert.ok(pc, "more than 2/3 of prevotes: precommit");
    assert.equal(toHex(pc.blockHash), toHex(hashOf(f)));
    assert.equal(f.engine.lockedRound, 0);
  });

  Deno.test(`line 47 (${c.name}): precommits for anything, exactly 2/3, arm no timeout`, () => {
    const f = fixture(c.powers, `l47-${c.name}`, null);
    const exact = subsetWithPower(f.set, f.set.totalPower * 2 / 3);
    // Split between nil and the block so no single value reaches a quorum either way.
    for (const [k, i] of exact.entries()) {
      const actions = vote(f, i, VoteType.Precommit, 0, k % 2 === 0 ? ZERO_HASH : hashOf(f));
      assert.deepEqual(timeoutsOf(actions, "precommit"), [], "exactly 2/3 arms nothing");
    }
    const armed = vote(f, oneMore(f.set, exact), VoteType.Precommit, 0, ZERO_HASH);
    assert.equal(timeoutsOf(armed, "precommit").length, 1, "more than 2/3 arms it");
  });

  Deno.test(`line 55 (${c.name}): exactly 1/3 in a later round is no reason to jump`, () => {
    const f = fixture(c.powers, `l55-${c.name}`, null);
    const exact = subsetWithPower(f.set, f.set.totalPower / 3);
    for (const i of exact) {
      // Two messages each: the power is counted per validator, not per message.
      vote(f, i, VoteType.Prevote, 5, ZERO_HASH);
      vote(f, i, VoteType.Precommit, 5, ZERO_HASH);
    }
    assert.equal(f.engine.round, 0, "exactly 1/3 must not move us");
    vote(f, oneMore(f.set, exact), VoteType.Prevote, 5, ZERO_HASH);
    assert.equal(f.engine.round, 5, "more than 1/3 does");
  });
}

for (const c of SETS) {
  Deno.test(`line 28 (${c.name}): a POL of exactly 2/3 does not justify a re-proposal`, () => {
    const f = fixture(c.powers, `l28-${c.name}`, null);
    // Jump to round 1 on nil prevotes there from the heaviest validators until they hold more
    // than 1/3 (line 55), but not 2/3: a nil quorum would move round 1 past its prevote step.
    const skip: number[] = [];
    const byPower = f.set.validators.map((v, i) => ({ i, p: v.power })).sort((a, b) => b.p - a.p);
    for (let power = 0; power * 3 <= f.set.totalPower;) {
      const next = byPower[skip.length];
      skip.push(next.i);
      power += next.p;
    }
    for (const i of skip) vote(f, i, VoteType.Prevote, 1, ZERO_HASH);
    assert.equal(f.engine.round, 1);
    assert.equal(f.engine.step, "propose");
    // Round 1's proposer re-proposes round 0's block with validRound 0.
    const proposer = f.set.validators.indexOf(proposerAt(f.set, HEIGHT, 1));
    f.feed({
      kind: "proposal",
      proposal: signProposal(f.keys[proposer], HEIGHT, 1, 0, f.block),
      from: "p",
    });
    assert.equal(f.engine.step, "propose", "no POL yet");
    const exact = subsetWithPower(f.set, f.set.totalPower * 2 / 3);
    for (const i of exact) vote(f, i, VoteType.Prevote, 0, hashOf(f));
    assert.equal(f.engine.step, "propose", "exactly 2/3 of round-0 prevotes is no POL");
    vote(f, oneMore(f.set, exact), VoteType.Prevote, 0, hashOf(f));
    assert.equal(f.engine.step, "prevote", "more than 2/3 is: line 28 prevotes");
  });
}
