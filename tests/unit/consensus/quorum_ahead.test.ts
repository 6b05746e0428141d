/**
 * A quorum certificate for height + 1 among the engine's buffered messages: the evidence of
 * being behind that consensus hands to sync (docs/security.md, fake heights).
 */
import assert from "node:assert/strict";
import { hasQuorumAhead } from "../../../consensus/quorum_ahead.ts";
import {
  harness,
  HEIGHT,
  makeBlock,
  precommit,
  prevote,
  SET,
} from "../../support/consensus_sim.ts";

const NEXT = HEIGHT + 1;
// Any block stands for the next height's: only its hash is signed in a precommit.
const BLOCK = makeBlock(0, 7);
const OTHER = makeBlock(0, 8);

Deno.test("precommits of 3 of 4 equal members for one next-height block are a quorum ahead", () => {
  const h = harness({ me: null });
  h.vote(precommit(0, 0, BLOCK, NEXT));
  h.vote(precommit(1, 0, BLOCK, NEXT));
  assert.equal(hasQuorumAhead(SET, h.engine.nextHeightMessages), false, "2 of 4 is no quorum");
  h.vote(precommit(2, 0, BLOCK, NEXT));
  assert.equal(hasQuorumAhead(SET, h.engine.nextHeightMessages), true);
  assert.equal(h.engine.nextHeightMessages.length, 3, "looking leaves the buffer as it was");
});

Deno.test("prevotes, nil precommits, split blocks or rounds and repeated signers are no quorum", () => {
  const h = harness({ me: null });
  for (let i = 0; i < 4; i++) h.vote(prevote(i, 0, BLOCK, NEXT));
  h.vote(precommit(0, 0, null, NEXT));
  h.vote(precommit(1, 0, null, NEXT));
  h.vote(precommit(2, 0, null, NEXT));
  h.vote(precommit(3, 0, BLOCK, NEXT));
  h.vote(precommit(0, 1, OTHER, NEXT));
  h.vote(precommit(1, 1, BLOCK, NEXT));
  h.vote(precommit(3, 1, BLOCK, NEXT));
  // One member's precommits in several rounds still count once per (round, block).
  h.vote(precommit(3, 2, BLOCK, NEXT));
  h.vote(precommit(3, 3, BLOCK, NEXT));
  assert.equal(hasQuorumAhead(SET, h.engine.nextHeightMessages), false);
  h.vote(precommit(2, 1, BLOCK, NEXT));
  assert.equal(hasQuorumAhead(SET, h.engine.nextHeightMessages), true, "1, 2, 3 in round 1");
});

Deno.test("precommits for the engine's own height are not evidence of being behind", () => {
  const h = harness({ me: null });
  for (let i = 0; i < 4; i++) h.vote(precommit(i, 0, BLOCK));
  assert.equal(hasQuorumAhead(SET, h.engine.nextHeightMessages), false);
});
