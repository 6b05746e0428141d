import assert from "node:assert/strict";
import { VotePresence } from "../../../consensus/vote_presence.ts";

const SET = ["a", "b", "c", "self"];

Deno.test("vote presence: members not heard in this round or the last are missing", () => {
  const p = new VotePresence();
  p.startHeight(7);
  assert.deepEqual(p.missing(0, SET, "self"), ["a", "b", "c"], "nobody heard yet");
  p.note(7, 0, "a");
  p.note(7, 0, "b");
  assert.deepEqual(p.missing(0, SET, "self"), ["c"]);
  assert.deepEqual(p.missing(1, SET, "self"), ["c"], "round 0 still counts in round 1");
  assert.deepEqual(p.missing(2, SET, "self"), ["a", "b", "c"], "gone since round 0");
  p.note(7, 2, "b");
  assert.deepEqual(p.missing(3, SET, "self"), ["a", "c"]);
});

Deno.test("vote presence: other heights are ignored, a new height starts afresh", () => {
  const p = new VotePresence();
  p.startHeight(7);
  p.note(8, 0, "a");
  p.note(6, 0, "b");
  assert.deepEqual(p.missing(0, SET, "self"), ["a", "b", "c"]);
  p.note(7, 0, "c");
  p.startHeight(8);
  assert.deepEqual(p.missing(0, SET, "self"), ["a", "b", "c"]);
  p.startHeight(8);
  p.note(8, 0, "a");
  p.startHeight(8);
  assert.deepEqual(p.missing(0, SET, "self"), ["b", "c"], "the same height again keeps its votes");
});
