/**
 * The frame layer's documented numbers as literals (docs/protocol.md): the 14-byte header
 * layout, each cap at its exact value (a cap derived from the constant under test passes
 * whatever the constant says), the handshake cap on the first frames, and the error each
 * broken stream raises.
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../../../encoding/binary.ts";
import {
  encodeFrame,
  encodeRawFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
} from "../../../network/frame.ts";
import type { Message } from "../../../network/messages.ts";

const MAGIC = 0x54494d44;

/** A header alone: magic, type, declared length, checksum 0. */
function header(typeId: number, length: number, magic = MAGIC): Uint8Array {
  const out = new Uint8Array(14);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, magic, true);
  dv.setUint16(4, typeId, true);
  dv.setUint32(6, length, true);
  return out;
}

function oversized(decoder: FrameDecoder, bytes: Uint8Array, message: string): void {
  assert.throws(
    () => decoder.push(bytes),
    (e: unknown) =>
      e instanceof FrameError && e.reason === "oversized-frame" && e.message === message,
  );
}

const ping: Message = { kind: "ping", nonce: 7n, bestHeight: 9, bestHash: new Uint8Array(32) };

Deno.test("frame limits: the header is magic u32, type u16, length u32, crc32 u32, little-endian", () => {
  assert.equal(FRAME_HEADER_BYTES, 14);
  const frame = encodeRawFrame(0x01020304, 0x0506, new Uint8Array([0xaa, 0xbb]));
  assert.deepEqual(
    frame,
    new Uint8Array([4, 3, 2, 1, 6, 5, 2, 0, 0, 0, 0x98, 0x2c, 0x82, 0x49, 0xaa, 0xbb]),
  );
  // encodeFrame writes the same layout: a ping is type 3 with a 48-byte payload.
  const encoded = encodeFrame(MAGIC, ping);
  assert.equal(encoded.length, 14 + 48);
  assert.deepEqual(encoded, encodeRawFrame(MAGIC, 3, encoded.subarray(14)));
});

Deno.test("frame limits: a reused writer gives the same frame as a fresh one", () => {
  const writer = new ByteWriter(8);
  writer.u64(123).u64(456);
  const goodbye: Message = { kind: "goodbye", reason: "bye" };
  const reused = encodeFrame(MAGIC, goodbye, writer).slice();
  assert.deepEqual(reused, encodeFrame(MAGIC, goodbye));
  assert.deepEqual(encodeFrame(MAGIC, ping, writer), encodeFrame(MAGIC, ping));
});

Deno.test("frame limits: encoding refuses a payload over its kind's cap (goodbye: 132 bytes)", () => {
  assert.equal(encodeFrame(MAGIC, { kind: "goodbye", reason: "x".repeat(128) }).length, 14 + 132);
  assert.throws(
    () => encodeFrame(MAGIC, { kind: "goodbye", reason: "x".repeat(129) }),
    (e: unknown) =>
      e instanceof RangeError && e.message === "goodbye payload of 133 bytes exceeds 132",
  );
});

Deno.test("frame limits: each cap holds at its literal value and fails one byte above", () => {
  const cases: [string, number, number][] = [
    ["hello", 1, 512],
    ["helloAck", 2, 64],
    ["ping", 3, 48],
    ["blocks", 17, 8_388_608],
    ["proposal", 32, 8_388_608],
    ["unknown type", 99, 8_388_608],
  ];
  for (const [what, typeId, cap] of cases) {
    const atCap = new FrameDecoder(MAGIC);
    assert.deepEqual(atCap.push(header(typeId, cap)), [], `${what} at ${cap} is waited for`);
    assert.equal(atCap.buffered, 14);
    oversized(
      new FrameDecoder(MAGIC),
      header(typeId, cap + 1),
      `frame type ${typeId} declares ${cap + 1} bytes, limit ${cap}`,
    );
  }
  // getAddresses has no payload: its header alone is the whole frame.
  assert.deepEqual(new FrameDecoder(MAGIC).push(header(5, 0)), [
    { typeId: 5, payload: new Uint8Array(0) },
  ]);
  oversized(new FrameDecoder(MAGIC), header(5, 1), "frame type 5 declares 1 bytes, limit 0");
});

Deno.test("frame limits: the first handshake frames are capped at 512 bytes whatever their type", () => {
  const decoder = new FrameDecoder(MAGIC, { handshakeFrames: 2 });
  oversized(decoder, header(17, 513), "frame type 17 declares 513 bytes, limit 512");
  // A type with a smaller cap keeps it during the handshake.
  oversized(
    new FrameDecoder(MAGIC, { handshakeFrames: 2 }),
    header(3, 49),
    "frame type 3 declares 49 bytes, limit 48",
  );
  // After two frames the type's own cap applies.
  const after = new FrameDecoder(MAGIC, { handshakeFrames: 2 });
  const two = [
    encodeRawFrame(MAGIC, 1, new Uint8Array(3)),
    encodeRawFrame(MAGIC, 2, new Uint8Array(0)),
  ];
  assert.equal(after.push(two[0]).length, 1);
  oversized(
    new FrameDecoder(MAGIC, { handshakeFrames: 2 }),
    new Uint8Array([...two[0], ...header(17, 513)]),
    "frame type 17 declares 513 bytes, limit 512",
  );
  assert.equal(after.push(two[1]).length, 1);
  assert.deepEqual(after.push(header(17, 513)), []);
  assert.equal(after.buffered, 14);
  // Without handshake frames, there is no handshake cap.
  assert.deepEqual(new FrameDecoder(MAGIC).push(header(17, 513)), []);
});

Deno.test("frame limits: broken streams fail with a reason and a message that says why", () => {
  assert.throws(
    () => new FrameDecoder(MAGIC).push(header(3, 0, 0xabcd)),
    (e: unknown) =>
      e instanceof FrameError && e.reason === "bad-magic" && e.message === "bad magic 0x0000abcd" &&
      e.name === "FrameError",
  );
  const frame = encodeRawFrame(MAGIC, 3, new Uint8Array(48));
  frame[20] ^= 1;
  assert.throws(
    () => new FrameDecoder(MAGIC).push(frame),
    (e: unknown) =>
      e instanceof FrameError && e.reason === "bad-checksum" &&
      e.message === "checksum mismatch on frame type 3",
  );
});

Deno.test("frame limits: nothing is decided before 14 header bytes, and partial frames stay buffered", () => {
  const decoder = new FrameDecoder(MAGIC);
  const bad = header(3, 0, 0xabcd);
  assert.deepEqual(decoder.push(bad.subarray(0, 13)), [], "13 bytes are not a header yet");
  assert.equal(decoder.buffered, 13);
  const good = new FrameDecoder(MAGIC);
  const frame = encodeRawFrame(MAGIC, 3, new Uint8Array(48).fill(7));
  assert.deepEqual(good.push(frame.subarray(0, 61)), []);
  assert.equal(good.buffered, 61);
  const [got] = good.push(frame.subarray(61));
  assert.equal(got.typeId, 3);
  assert.deepEqual(got.payload, new Uint8Array(48).fill(7));
  assert.equal(good.buffered, 0);
});

Deno.test("frame limits: a large frame followed by small ones decodes in order", () => {
  // Grows the buffer past 1 MiB, then goes back to small frames on the same decoder.
  const decoder = new FrameDecoder(MAGIC);
  const big = encodeRawFrame(MAGIC, 17, new Uint8Array(1_200_000).fill(3));
  const small = encodeRawFrame(MAGIC, 3, new Uint8Array(48).fill(9));
  assert.equal(decoder.push(big.subarray(0, 600_000)).length, 0);
  const first = decoder.push(big.subarray(600_000));
  assert.equal(first.length, 1);
  assert.equal(first[0].payload.length, 1_200_000);
  assert.equal(first[0].payload[1_199_999], 3);
  for (let i = 0; i < 200; i++) {
    const out = decoder.push(new Uint8Array([...small, ...small.subarray(0, 30)]));
    assert.equal(out.length, 1);
    for (const f of out) assert.deepEqual(f.payload, new Uint8Array(48).fill(9));
    decoder.push(small.subarray(30, 31));
    const rest = decoder.push(small.subarray(31));
    assert.equal(rest.length, 1);
    assert.deepEqual(rest[0].payload, new Uint8Array(48).fill(9));
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("frame limits: a partial frame left by one read moves to the front for the next", () => {
  // 4 KiB initial buffer: three 1,014-byte frames and 500 bytes of a fourth fit; the next read
  // does not fit behind them, so the 500 bytes must move to the front before it is appended.
  const frames = [1, 2, 3, 4, 5].map((i) =>
    encodeRawFrame(MAGIC, 17, new Uint8Array(1_000).fill(i))
  );
  const stream = new Uint8Array(frames.flatMap((f) => [...f]));
  const decoder = new FrameDecoder(MAGIC);
  const first = decoder.push(stream.subarray(0, 3 * 1_014 + 500));
  assert.deepEqual(first.map((f) => f.payload[0]), [1, 2, 3]);
  assert.equal(decoder.buffered, 500);
  const second = decoder.push(stream.subarray(3 * 1_014 + 500, 4 * 1_014 + 700));
  assert.equal(second.length, 1);
  assert.deepEqual(second[0].payload, new Uint8Array(1_000).fill(4));
  assert.equal(decoder.buffered, 700);
  const third = decoder.push(stream.subarray(4 * 1_014 + 700));
  assert.deepEqual(third.map((f) => f.payload), [new Uint8Array(1_000).fill(5)]);
  assert.equal(decoder.buffered, 0);
});
