/**
 * The canonical encoding (encoding/binary.ts): every writer and reader round trips at its
 * edges, every malformed input is a `DecodeError` (never a RangeError, a huge allocation or a
 * silently wrong value), and writers refuse values they could not encode exactly.
 * (The encoding has no varints: every integer is fixed width, little-endian.)
 */
import assert from "node:assert/strict";
import {
  ByteReader,
  bytesEqual,
  ByteWriter,
  compareBytes,
  DecodeError,
  fromHex,
  toHex,
  writeList,
} from "../../../encoding/binary.ts";

const hex = (w: ByteWriter) => toHex(w.finish());

function decodeError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof DecodeError, `expected DecodeError, got ${e}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

Deno.test("integers are little-endian and round trip at their edges", () => {
  assert.equal(hex(new ByteWriter().u16(0x1234)), "3412");
  assert.equal(hex(new ByteWriter().u32(0x01020304)), "04030201");
  assert.equal(hex(new ByteWriter().i32(-1)), "ffffffff");
  assert.equal(hex(new ByteWriter().u64(1)), "0100000000000000");
  const w = new ByteWriter(1) // tiny capacity: every write grows the buffer
    .u8(0).u8(255).bool(false).bool(true)
    .u16(0).u16(0xffff)
    .u32(0).u32(0xffffffff)
    .i32(-0x80000000).i32(0x7fffffff).i32(-1)
    .u64(0).u64(Number.MAX_SAFE_INTEGER)
    .u64big(0n).u64big(0xffffffffffffffffn);
  const r = new ByteReader(w.finish());
  assert.deepEqual(
    [r.u8(), r.u8(), r.bool(), r.bool(), r.u16(), r.u16(), r.u32(), r.u32()],
    [0, 255, false, true, 0, 0xffff, 0, 0xffffffff],
  );
  assert.deepEqual([r.i32(), r.i32(), r.i32()], [-0x80000000, 0x7fffffff, -1]);
  assert.deepEqual([r.u64(), r.u64()], [0, Number.MAX_SAFE_INTEGER]);
  assert.deepEqual([r.u64big(), r.u64big()], [0n, 0xffffffffffffffffn]);
  r.end();
});

Deno.test("writers refuse values they cannot encode exactly", () => {
  const w = new ByteWriter();
  for (const v of [-1, 256, 1.5, NaN]) assert.throws(() => w.u8(v), RangeError);
  for (const v of [-1, 0x10000]) assert.throws(() => w.u16(v), RangeError);
  for (const v of [-1, 0x100000000]) assert.throws(() => w.u32(v), RangeError);
  for (const v of [-0x80000001, 0x80000000]) assert.throws(() => w.i32(v), RangeError);
  for (const v of [-1, Number.MAX_SAFE_INTEGER + 1, 0.5]) assert.throws(() => w.u64(v), RangeError);
  for (const v of [-1n, 0x10000000000000000n]) assert.throws(() => w.u64big(v), RangeError);
  assert.throws(() => w.fixed(new Uint8Array(31), 32), /expected 32 bytes, got 31/);
  assert.equal(w.length, 0, "a refused value writes nothing");
});

Deno.test("u64 above 2^53 - 1 is a DecodeError as a number, exact as a bigint", () => {
  const big = new ByteWriter().u64big(2n ** 53n).finish();
  decodeError(() => new ByteReader(big).u64(), /u64 too large/);
  assert.equal(new ByteReader(big).u64big(), 2n ** 53n);
  const max = new ByteWriter().u64big(2n ** 53n - 1n).finish();
  assert.equal(new ByteReader(max).u64(), Number.MAX_SAFE_INTEGER);
});

Deno.test("bool is canonical: only 0 and 1", () => {
  assert.equal(new ByteReader(Uint8Array.of(1)).bool(), true);
  decodeError(() => new ByteReader(Uint8Array.of(2)).bool(), /non-canonical bool 2/);
  decodeError(() => new ByteReader(Uint8Array.of(0xff)).bool(), /non-canonical bool/);
});

Deno.test("every fixed-width read of truncated input is a DecodeError naming what", () => {
  const reads: [string, (r: ByteReader) => unknown, number][] = [
    ["u8", (r) => r.u8(), 1],
    ["u16", (r) => r.u16(), 2],
    ["u32", (r) => r.u32(), 4],
    ["i32", (r) => r.i32(), 4],
    ["u64", (r) => r.u64(), 8],
    ["u64", (r) => r.u64big(), 8],
    ["32-byte field", (r) => r.fixed(32), 32],
  ];
  for (const [what, read, size] of reads) {
    const short = new ByteReader(new Uint8Array(size - 1));
    decodeError(() => read(short), new RegExp(`truncated ${what}: need ${size} bytes, have`));
    assert.equal(short.position, 0, `a failed ${what} read consumes nothing`);
  }
});

Deno.test("length-prefixed bytes and strings: bound, truncation, UTF-8", () => {
  const w = new ByteWriter().bytes(Uint8Array.of(1, 2, 3)).string("héllo ✓").bytes(
    new Uint8Array(),
  );
  const r = new ByteReader(w.finish());
  assert.deepEqual(r.bytes(3), Uint8Array.of(1, 2, 3));
  assert.equal(r.string(100), "héllo ✓");
  assert.deepEqual(r.bytes(0), new Uint8Array());
  r.end();

  // Exactly at the bound passes; one above is refused before anything is sliced.
  const four = new ByteWriter().bytes(new Uint8Array(4)).finish();
  assert.equal(new ByteReader(four).bytes(4).length, 4);
  decodeError(() => new ByteReader(four).bytes(3), /length 4 exceeds bound 3/);
  // A length claiming more than the input (even within the bound) is truncation, not a
  // 4 GiB allocation.
  const lying = new ByteWriter().u32(0xffffffff).finish();
  decodeError(() => new ByteReader(lying).bytes(0xffffffff), /truncated 4294967295-byte field/);
  // Strings: the bound is in bytes, not characters; invalid UTF-8 is refused.
  const euro = new ByteWriter().string("€").finish(); // 3 bytes
  decodeError(() => new ByteReader(euro).string(2), /exceeds bound 2/);
  const bad = new ByteWriter().bytes(Uint8Array.of(0xc3, 0x28)).finish();
  decodeError(() => new ByteReader(bad).string(10), /invalid UTF-8/);
  // A byte-order mark is content, not something to strip.
  const bom = new ByteWriter().bytes(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41)).finish();
  assert.equal(new ByteReader(bom).string(10), "\ufeffA");
});

Deno.test("lists: count bound, count beyond the input, and writeList round trip", () => {
  const w = new ByteWriter();
  writeList(w, [7, 8, 9], (x, v) => x.u16(v));
  const r = new ByteReader(w.finish());
  assert.deepEqual(r.list(3, (x) => x.u16()), [7, 8, 9]);
  r.end();
  const encoded = w.finish();
  decodeError(() => new ByteReader(encoded).list(2, (x) => x.u16()), /count 3 exceeds bound 2/);
  // Each item takes at least one byte: a count above the remaining bytes is garbage at once.
  const huge = new ByteWriter().u32(1_000).u8(0).finish();
  decodeError(
    () => new ByteReader(huge).list(10_000, (x) => x.u8()),
    /count 1000 exceeds remaining input/,
  );
  // An empty list is fine with any bound, including 0.
  assert.deepEqual(new ByteReader(new ByteWriter().u32(0).finish()).list(0, (x) => x.u8()), []);
});

Deno.test("end() refuses trailing bytes; a reader over a subarray sees only its window", () => {
  const r = new ByteReader(Uint8Array.of(1, 2, 3));
  r.u8();
  decodeError(() => r.end(), /2 trailing bytes/);
  assert.equal(r.remaining, 2);
  r.u8();
  decodeError(() => r.end(), /1 trailing bytes/);
  r.u8();
  r.end();
  const backing = Uint8Array.of(0xaa, 0x01, 0x00, 0xbb);
  const window = new ByteReader(backing.subarray(1, 3));
  assert.equal(window.u16(), 1);
  window.end();
});

Deno.test("writer: reset reuses the buffer; view is a window, finish a copy", () => {
  const w = new ByteWriter(2).u32(1);
  const copy = w.finish();
  const view = w.view();
  w.reset().u32(2);
  assert.equal(w.length, 4);
  assert.deepEqual(copy, Uint8Array.of(1, 0, 0, 0), "finish() is not affected by later writes");
  assert.deepEqual(view, Uint8Array.of(2, 0, 0, 0), "view() aliases the buffer");
  assert.deepEqual(new ByteWriter().raw(Uint8Array.of(5, 6)).finish(), Uint8Array.of(5, 6));
});

Deno.test("hex: round trip, strict parsing", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(fromHex(toHex(all)), all);
  assert.equal(toHex(Uint8Array.of(0, 0x0f, 0xff)), "000fff");
  assert.deepEqual(fromHex("ABcd"), Uint8Array.of(0xab, 0xcd));
  for (
    const bad of ["0", "zz", "0x00", "00 ", "g0", "0G", "/0", ":0", "é0", "0\u0130", "\u01300"]
  ) {
    decodeError(() => fromHex(bad), /invalid hex/);
  }
});

Deno.test("bytesEqual and compareBytes", () => {
  assert.ok(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 0)));
  assert.ok(compareBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)) < 0);
  assert.ok(compareBytes(Uint8Array.of(2), Uint8Array.of(1, 255)) > 0);
  assert.ok(compareBytes(Uint8Array.of(1), Uint8Array.of(1, 0)) < 0, "a prefix sorts first");
  assert.equal(compareBytes(Uint8Array.of(), Uint8Array.of()), 0);
});
