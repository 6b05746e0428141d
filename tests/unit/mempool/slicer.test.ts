import assert from "node:assert/strict";
import { Slicer } from "../../../mempool/slicer.ts";

/** One turn of the event loop after the timers queued so far. */
const nextTurn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("slicer: jobs never run inside push, and each slice stops at its budget", async () => {
  let clock = 0;
  const slicer = new Slicer(5, () => clock);
  const ran: number[] = [];
  for (let i = 0; i < 10; i++) {
    slicer.push(() => {
      ran.push(i);
      clock += 2; // each job costs 2 ms of the budget
    });
  }
  assert.deepEqual(ran, []);
  assert.equal(slicer.pending, 10);
  await nextTurn();
  // 2 + 2 < 5, the third reaches it: three jobs, then the loop gets a turn.
  assert.deepEqual(ran, [0, 1, 2]);
  await nextTurn();
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5]);
  slicer.drain();
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(slicer.pending, 0);
});

Deno.test("slicer: a failing job does not stop the queue", async () => {
  const slicer = new Slicer();
  const ran: string[] = [];
  slicer.push(() => {
    throw new Error("boom");
  });
  slicer.push(() => ran.push("after"));
  await nextTurn();
  assert.deepEqual(ran, ["after"]);
  slicer.drain();
});
