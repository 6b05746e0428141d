import assert from "node:assert/strict";
import { SaveThrottle } from "../../../network/save_throttle.ts";

Deno.test("save throttle: a burst of requests is one write, the last request is never lost", async () => {
  let writes = 0;
  let release: () => void = () => {};
  let started: () => void = () => {};
  let firstStarted = new Promise<void>((r) => (started = r));
  const throttle = new SaveThrottle(
    () => {
      writes++;
      started();
      return new Promise<void>((r) => (release = r));
    },
    60_000,
    (e) => {
      throw e;
    },
  );
  for (let i = 0; i < 1_000; i++) throttle.request();
  await firstStarted;
  assert.equal(writes, 1, "a thousand bans in a burst: one write");
  // Requests while writing wait for the interval (a minute here): no second write yet.
  firstStarted = new Promise<void>((r) => (started = r));
  throttle.request();
  release();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(writes, 1);
  // Shutdown writes what is pending, once, and leaves no timer behind.
  const flushing = throttle.flush();
  await firstStarted;
  release();
  await flushing;
  assert.equal(writes, 2);
});
