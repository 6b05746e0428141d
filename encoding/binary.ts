/**
 * Canonical binary encoding: the one way timenode turns values into bytes.
 *
 * Owns: little-endian fixed-width integers, length-prefixed bytes and strings, bounded lists.
 * Everything that is hashed, signed or sent on the wire goes through `ByteWriter` and comes
 * back through `ByteReader`, so a producer and a validator can never encode the same value two
 * ways (docs/lessons.md#15).
 *
 * Must never: allocate from an unchecked length. Every length read from input is checked
 * against both the caller's bound and the bytes actually remaining before anything is sliced.
 * Decoding is strict: trailing bytes, out-of-range values and non-canonical booleans throw
 * `DecodeError`, which callers turn into a misbehavior score, never a crash.
 */

/** Thrown for any malformed input. Carries no stack-worthy information: it is expected. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Growable output buffer. Reused across encodes on hot paths via `reset()`. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(initialCapacity);
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#len;
  }

  reset(): this {
    this.#len = 0;
    return this;
  }

  #reserve(n: number): void {
    const need = this.#len + n;
    if (need <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.#reserve(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw new RangeError(`u16 out of range: ${v}`);
    }
    this.#reserve(2);
    this.#view.setUint16(this.#len, v, true);
    this.#len += 2;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(`u32 out of range: ${v}`);
    }
    this.#reserve(4);
    this.#view.setUint32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  /** Signed 32-bit; used for "no round" (-1) markers. */
  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      throw new RangeError(`i32 out of range: ${v}`);
    }
    this.#reserve(4);
    this.#view.setInt32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  /** Unsigned 64-bit from a JS number; callers only use this for values below 2^53. */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 out of range: ${v}`);
    this.#reserve(8);
    this.#view.setBigUint64(this.#len, BigInt(v), true);
    this.#len += 8;
    return this;
  }

  /** Full-range unsigned 64-bit, for nonces. */
  u64big(v: bigint): this {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${v}`);
    this.#reserve(8);
    this.#view.setBigUint64(this.#len, v, true);
    this.#len += 8;
    return this;
  }

  /** Raw bytes of a length both sides know (hashes, keys, signatures). */
  fixed(bytes: Uint8Array, expectedLength: number): this {
    if (bytes.length !== expectedLength) {
      throw new RangeError(`expected ${expectedLength} bytes, got ${bytes.length}`);
    }
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /** Raw bytes with no length prefix (the caller frames them). */
  raw(bytes: Uint8Array): this {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /** u32 length prefix, then the bytes. */
  bytes(bytes: Uint8Array): this {
    this.u32(bytes.length);
    return this.raw(bytes);
  }

  /** UTF-8 string with a u32 byte-length prefix. */
  string(s: string): this {
    return this.bytes(textEncoder.encode(s));
  }

  /** A copy of what has been written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  /** A view of what has been written; valid only until the next write or reset. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

/** Strict reader over one complete value. */
export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  get position(): number {
    return this.#pos;
  }

  #need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new DecodeError(`truncated ${what}: need ${n} bytes, have ${this.remaining}`);
    }
  }

  u8(): number {
    this.#need(1, "u8");
    return this.#buf[this.#pos++];
  }

  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new DecodeError(`non-canonical bool ${v}`);
    return v === 1;
  }

  u16(): number {
    this.#need(2, "u16");
    const v = this.#view.getUint16(this.#pos, true);
    this.#pos += 2;
    return v;
  }

  u32(): number {
    this.#need(4, "u32");
    const v = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return v;
  }

  i32(): number {
    this.#need(4, "i32");
    const v = this.#view.getInt32(this.#pos, true);
    this.#pos += 4;
    return v;
  }

  u64(): number {
    this.#need(8, "u64");
    const v = this.#view.getBigUint64(this.#pos, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError(`u64 too large: ${v}`);
    this.#pos += 8;
    return Number(v);
  }

  u64big(): bigint {
    this.#need(8, "u64");
    const v = this.#view.getBigUint64(this.#pos, true);
    this.#pos += 8;
    return v;
  }

  /** Fixed-length bytes, returned as a view into the input (copy if you keep it long). */
  fixed(n: number): Uint8Array {
    this.#need(n, `${n}-byte field`);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** u32-prefixed bytes, at most `maxLength`. */
  bytes(maxLength: number): Uint8Array {
    const n = this.u32();
    if (n > maxLength) throw new DecodeError(`length ${n} exceeds bound ${maxLength}`);
    return this.fixed(n);
  }

  string(maxBytes: number): string {
    const b = this.bytes(maxBytes);
    try {
      return textDecoder.decode(b);
    } catch {
      throw new DecodeError("invalid UTF-8");
    }
  }

  /** u32 count prefix bounded by `maxCount`, then `maxCount` items via `item`. */
  list<T>(maxCount: number, item: (r: ByteReader) => T): T[] {
    const n = this.u32();
    if (n > maxCount) throw new DecodeError(`count ${n} exceeds bound ${maxCount}`);
    // Each item needs at least one byte, so a count larger than the input is garbage.
    if (n > this.remaining) throw new DecodeError(`count ${n} exceeds remaining input`);
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = item(this);
    return out;
  }

  /** Strict decoders call this last: a canonical value has no trailing bytes. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes`);
  }
}

/** Writes a u32 count then each item. The mirror of `ByteReader.list`. */
export function writeList<T>(
  w: ByteWriter,
  items: readonly T[],
  item: (w: ByteWriter, v: T) => void,
) {
  w.u32(items.length);
  for (const v of items) item(w, v);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic comparison; used wherever both sides must agree on an order. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX_BYTE[b[i]];
  return s;
}

/** Char code → nibble value, -1 for anything that is not a hex digit. */
const HEX_NIBBLE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 16; i++) {
    t["0123456789abcdef".charCodeAt(i)] = i;
    t["0123456789ABCDEF".charCodeAt(i)] = i;
  }
  return t;
})();

/**
 * Hex to bytes, refusing odd lengths and non-hex characters. A table lookup per character: RPC
 * submissions of a thousand transfers pass through here (parseInt per byte cost ~30 µs each).
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new DecodeError("invalid hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const a = hex.charCodeAt(2 * i);
    const b = hex.charCodeAt(2 * i + 1);
    const hi = a < 128 ? HEX_NIBBLE[a] : -1;
    const lo = b < 128 ? HEX_NIBBLE[b] : -1;
    if (hi < 0 || lo < 0) throw new DecodeError("invalid hex");
    out[i] = (hi << 4) | lo;
  }
  return out;
}
