/**
 * The engine's timers and its stall escape at their edges (consensus/engine.ts `#onTimeout`,
 * `#stalled`), and what it says about a forged message for the next height. Mutation testing
 * found these unpinned (docs/testing.md, third pass). Everything goes through the public API:
 * events in, actions and getters out. Same fixture as engine.test.ts: four validators of power
 * 1 at height 1; quorum 3, f+1 = 2.
 */
import assert from "node:assert/strict";
import { type EngineAction } from "../../../consensus/engine.ts";
import { MAX_ROUND, STALL_RESENDS } from "../../../consensus/constants.ts";
import {
  harness,
  HEIGHT,
  KEYS,
  makeBlock,
  precommit,
  prevote,
  proposal,
  proposerIndex,
  sentVotes,
  signProposal,
} from "../../support/consensus_sim.ts";

/** Validator 3 proposes round 3 only, so rounds 0 to 2 wait for someone else's proposal. */
const ME = proposerIndex(3);
const OTHERS = [0, 1, 2, 3].filter((i) => i !== ME);

/** Enough quiet resend intervals for the stall escape to fire twice over. */
const MANY_RESENDS = 3 * STALL_RESENDS;

function rejected(actions: EngineAction[]): { reason: string; detail: string }[] {
  return actions.flatMap((a) =>
    a.kind === "rejected" ? [{ reason: a.reason, detail: a.detail }] : []
  );
}

Deno.test("engine timeouts: a timeout of another height changes nothing", () => {
  for (const height of [HEIGHT - 1, HEIGHT + 1]) {
    const h = harness({ me: ME });
    for (const step of ["propose", "prevote", "precommit"] as const) {
      const out = h.engine.handle({ kind: "timeout", step, height, round: 0 });
      assert.deepEqual(sentVotes(out), [], `no vote on a ${step} timeout of height ${height}`);
    }
    assert.equal(h.engine.round, 0);
    assert.equal(h.engine.step, "propose");
  }
});

Deno.test("engine timeouts: a timeout of another round changes nothing", () => {
  const h = harness({ me: ME });
  assert.deepEqual(sentVotes(h.timeout("propose", 1)), []);
  assert.equal(h.engine.step, "propose");
  h.timeout("precommit", 1);
  assert.equal(h.engine.round, 0);
});

Deno.test("engine timeouts: after the decision no timeout starts a round or signs", () => {
  const h = harness({ me: ME });
  const a = makeBlock(0);
  h.propose(proposal(0, -1, a));
  for (const i of OTHERS) h.vote(precommit(i, 0, a));
  assert.ok(h.engine.decision, "decided");
  for (const step of ["propose", "prevote", "precommit"] as const) {
    assert.deepEqual(sentVotes(h.timeout(step, 0)), [], `${step} timeout after the decision`);
  }
  assert.equal(h.engine.round, 0, "no round after the decision");
});

Deno.test("engine timeouts: a late propose timeout neither re-votes nor steps back", () => {
  const h = harness({ me: ME });
  h.timeout("propose", 0); // prevote nil
  h.timeout("prevote", 0); // precommit nil
  assert.equal(h.engine.step, "precommit");
  assert.deepEqual(sentVotes(h.timeout("propose", 0)), []);
  assert.equal(h.engine.step, "precommit", "the step never goes back to prevote");
  assert.deepEqual(sentVotes(h.timeout("prevote", 0)), [], "so no second precommit either");
});

Deno.test("engine timeouts: a late prevote timeout in the precommit step does nothing", () => {
  const h = harness({ me: ME });
  h.timeout("propose", 0);
  h.timeout("prevote", 0);
  assert.deepEqual(sentVotes(h.timeout("prevote", 0)), []);
  assert.equal(h.engine.step, "precommit");
});

Deno.test("engine stall escape: never in the propose step, which has its own timer", () => {
  const h = harness({ me: ME });
  for (let i = 0; i < MANY_RESENDS; i++) {
    assert.deepEqual(sentVotes(h.timeout("resend", 0)), []);
  }
  assert.equal(h.engine.round, 0);
  assert.equal(h.engine.step, "propose");
});

Deno.test("engine stall escape: not in the precommit step once timeoutPrecommit is armed", () => {
  const h = harness({ me: ME });
  h.timeout("propose", 0); // prevote nil: no prevote quorum, so timeoutPrevote is never armed
  h.timeout("prevote", 0); // precommit nil
  h.vote(precommit(OTHERS[0], 0, null));
  h.vote(precommit(OTHERS[1], 0, makeBlock(0)));
  // 2f+1 precommits of any kind (ours among them): timeoutPrecommit is armed and will move us.
  for (let i = 0; i < MANY_RESENDS; i++) h.timeout("resend", 0);
  assert.equal(h.engine.round, 0, "the armed timer, not the stall escape, ends the round");
  h.timeout("precommit", 0);
  assert.equal(h.engine.round, 1);
});

Deno.test("engine stall escape: at MAX_ROUND a stalled precommit step stays in it", () => {
  const h = harness({ me: null });
  // f+1 validators in round MAX_ROUND make us join it.
  h.vote(prevote(0, MAX_ROUND, null));
  h.vote(prevote(1, MAX_ROUND, null));
  assert.equal(h.engine.round, MAX_ROUND);
  h.timeout("propose", MAX_ROUND);
  h.timeout("prevote", MAX_ROUND);
  assert.equal(h.engine.step, "precommit");
  for (let i = 0; i < MANY_RESENDS; i++) h.timeout("resend", MAX_ROUND);
  assert.equal(h.engine.round, MAX_ROUND, "no round after the last one");
  assert.equal(h.engine.step, "precommit");
});

Deno.test("engine stall escape: one round below MAX_ROUND it still moves to MAX_ROUND", () => {
  const h = harness({ me: null });
  h.vote(prevote(0, MAX_ROUND - 1, null));
  h.vote(prevote(1, MAX_ROUND - 1, null));
  h.timeout("propose", MAX_ROUND - 1);
  h.timeout("prevote", MAX_ROUND - 1);
  for (let i = 0; i < STALL_RESENDS; i++) h.timeout("resend", MAX_ROUND - 1);
  assert.equal(h.engine.round, MAX_ROUND);
});

Deno.test("engine next height: a forged vote is rejected as a bad signature, naming the height", () => {
  const h = harness({ me: null });
  const forged = { ...prevote(0, 0, null, HEIGHT + 1), signature: new Uint8Array(64) };
  assert.deepEqual(rejected(h.vote(forged, "liar")), [
    { reason: "bad-signature", detail: `vote for height ${HEIGHT + 1}` },
  ]);
});

Deno.test("engine next height: a forged proposal is rejected as a bad signature, naming the height", () => {
  const h = harness({ me: null });
  const block = makeBlock(0);
  // Only the signature is wrong (the buffer names the signer from the next set itself).
  const p = signProposal(KEYS[0], HEIGHT + 1, 0, -1, block);
  const forged = { ...p, signature: new Uint8Array(64) };
  assert.deepEqual(rejected(h.propose(forged, "liar")), [
    { reason: "bad-signature", detail: `proposal for height ${HEIGHT + 1}` },
  ]);
  assert.equal(h.engine.nextHeightMessages.length, 0);
});
