import assert from "node:assert/strict";
import { SendQueue } from "../../../network/send_queue.ts";

const frame = (tag: number, size: number) => new Uint8Array(size).fill(tag);

Deno.test("control frames leave before bulk frames queued earlier", () => {
  const q = new SendQueue(1000);
  q.push(frame(1, 100), false);
  q.push(frame(2, 10), true);
  q.push(frame(3, 100), false);
  q.push(frame(4, 10), true);
  const batch = q.takeBatch(1000);
  assert.deepEqual([batch[0], batch[10], batch[20], batch[120]], [2, 4, 1, 3]);
  assert.equal(q.bytes, 0);
  assert.ok(q.empty);
});

Deno.test("the byte bound refuses frames instead of growing", () => {
  const q = new SendQueue(250);
  assert.ok(q.push(frame(1, 100), false));
  assert.ok(q.push(frame(2, 100), false));
  assert.equal(q.push(frame(3, 100), true), false);
  assert.equal(q.bytes, 200);
});

Deno.test("batches respect the size bound and never split or overtake", () => {
  const q = new SendQueue(10_000);
  q.push(frame(1, 60), true);
  q.push(frame(2, 60), true);
  q.push(frame(3, 10), false);
  const b1 = q.takeBatch(100);
  assert.equal(b1.length, 60);
  const b2 = q.takeBatch(100);
  // The second control frame first, and the small bulk frame may follow it in the same batch.
  assert.equal(b2.length, 70);
  assert.equal(b2[0], 2);
  assert.equal(b2[60], 3);
  // A single frame larger than the batch bound is returned whole.
  q.push(frame(4, 500), false);
  assert.equal(q.takeBatch(100).length, 500);
});
