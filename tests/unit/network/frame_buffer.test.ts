/**
 * The frame decoder's memory (network/frame.ts, `bufferedCapacity`): it starts at 4 KiB, grows
 * to the next power of two that fits what arrived, moves buffered bytes to the front instead of
 * growing when that frees at least half of the buffer, keeps a buffer of up to 1 MiB for a
 * streaming peer and gives a larger one back once nothing is buffered. The sizes are literals,
 * the decoder's documented policy; every case also checks the frames come out whole and in
 * order, so a buffer that moved bytes wrongly fails too.
 */
import assert from "node:assert/strict";
import { encodeRawFrame, FrameDecoder } from "../../../network/frame.ts";

const MAGIC = 0x54494d44;
/** No message has this id, so its payload cap is the frame cap (8 MiB). */
const UNKNOWN_TYPE = 999;
const HEADER = 14;

/** A frame of exactly `total` bytes (header included) whose payload bytes count up from `tag`. */
function frameOf(total: number, tag: number): Uint8Array {
  const payload = new Uint8Array(total - HEADER);
  for (let i = 0; i < payload.length; i++) payload[i] = (tag + i) & 0xff;
  return encodeRawFrame(MAGIC, UNKNOWN_TYPE, payload);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Pushes `chunk` and returns the payloads it completed, copied (frames are buffer views). */
function push(d: FrameDecoder, chunk: Uint8Array): Uint8Array[] {
  return d.push(chunk).map((f) => f.payload.slice());
}

function payloadOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(HEADER);
}

Deno.test("frame buffer: a new decoder holds 4 KiB", () => {
  assert.equal(new FrameDecoder(MAGIC).bufferedCapacity, 4096);
});

Deno.test("frame buffer: a chunk that exactly fills the buffer is appended in place", () => {
  const d = new FrameDecoder(MAGIC);
  const f = frameOf(4096, 1);
  assert.deepEqual(push(d, f.subarray(0, 3000)), []);
  assert.deepEqual(push(d, f.subarray(3000)), [payloadOf(f)]);
  assert.equal(d.bufferedCapacity, 4096, "4,096 bytes in a 4,096-byte buffer: no growth");
});

Deno.test("frame buffer: it grows to the exact power of two that fits, and keeps 64 KiB", () => {
  const d = new FrameDecoder(MAGIC);
  const f = frameOf(65_536, 2);
  assert.deepEqual(push(d, f), [payloadOf(f)]);
  assert.equal(d.bufferedCapacity, 65_536, "65,536 bytes fit in 65,536");
  assert.equal(d.buffered, 0);
  // A streaming peer keeps its buffer: small frames after it reuse it.
  const small = frameOf(100, 3);
  assert.deepEqual(push(d, small), [payloadOf(small)]);
  assert.equal(d.bufferedCapacity, 65_536);
});

Deno.test("frame buffer: a buffer of exactly 1 MiB is kept once empty", () => {
  const d = new FrameDecoder(MAGIC);
  const f = frameOf(1_048_576, 4);
  assert.deepEqual(push(d, f), [payloadOf(f)]);
  assert.equal(d.bufferedCapacity, 1_048_576);
});

Deno.test("frame buffer: above 1 MiB the buffer is given back once empty, not before", () => {
  const d = new FrameDecoder(MAGIC);
  const big = frameOf(1_048_577, 5);
  const next = frameOf(200, 6);
  // The big frame and the first bytes of the next one: something is still buffered.
  assert.deepEqual(push(d, concat(big, next.subarray(0, 10))), [payloadOf(big)]);
  assert.equal(d.bufferedCapacity, 2_097_152, "1,048,577 bytes took the next power of two");
  assert.equal(d.buffered, 10);
  // The rest of the next frame: now empty, the 2 MiB go back and 4 KiB remain.
  assert.deepEqual(push(d, next.subarray(10)), [payloadOf(next)]);
  assert.equal(d.bufferedCapacity, 4096);
  const after = frameOf(300, 7);
  assert.deepEqual(push(d, after), [payloadOf(after)]);
});

/**
 * Leaves a 4 KiB decoder with frame `a` (1,000 bytes) consumed and the first `held` bytes of
 * `b` buffered behind it, then pushes the rest of `b`; returns what that completed.
 */
function afterConsumedFrame(d: FrameDecoder, held: number, b: Uint8Array): Uint8Array[] {
  const a = frameOf(1000, 8);
  assert.deepEqual(push(d, concat(a, b.subarray(0, held))), [payloadOf(a)]);
  assert.equal(d.buffered, held);
  assert.equal(d.bufferedCapacity, 4096);
  return push(d, b.subarray(held));
}

Deno.test("frame buffer: bytes move to the front when they and the chunk exactly fit", () => {
  const d = new FrameDecoder(MAGIC);
  const b = frameOf(4096, 9);
  // 1,048 held + 3,048 arriving = 4,096: compacted, not grown.
  assert.deepEqual(afterConsumedFrame(d, 1048, b), [payloadOf(b)]);
  assert.equal(d.bufferedCapacity, 4096);
});

Deno.test("frame buffer: bytes move to the front when they fill exactly half the buffer", () => {
  const d = new FrameDecoder(MAGIC);
  const b = frameOf(3148, 10);
  // 2,048 held (half of 4,096) + 1,100 arriving past the end: compacted, not grown.
  assert.deepEqual(afterConsumedFrame(d, 2048, b), [payloadOf(b)]);
  assert.equal(d.bufferedCapacity, 4096);
});

Deno.test("frame buffer: it grows instead when more than half the buffer would move", () => {
  const d = new FrameDecoder(MAGIC);
  const b = frameOf(3500, 11);
  // 3,000 held + 500 arriving would fit after moving, but moving 3,000 of 4,096 bytes costs
  // more than growing: the buffer doubles.
  assert.deepEqual(afterConsumedFrame(d, 3000, b), [payloadOf(b)]);
  assert.equal(d.bufferedCapacity, 8192);
});

Deno.test("frame buffer: held bytes and the chunk past the buffer's size grow it", () => {
  const d = new FrameDecoder(MAGIC);
  const b = frameOf(5000, 12);
  // 1,048 held + 3,952 arriving = 5,000 > 4,096: even after moving it would not fit.
  assert.deepEqual(afterConsumedFrame(d, 1048, b), [payloadOf(b)]);
  assert.equal(d.bufferedCapacity, 8192);
});
