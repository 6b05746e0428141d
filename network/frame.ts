/**
 * Framing: messages to bytes (`encodeFrame`) and bytes to frames (`FrameDecoder`). Both pure.
 *
 * Frame layout (little-endian), 14-byte header then payload:
 *   magic u32 | type u16 | length u32 | crc32(payload) u32 | payload[length]
 *
 * Owns: the header, the size bound (checked before any allocation), the checksum, and
 * reassembly of frames split or merged across socket reads.
 * Must never: lose sync silently. A bad magic, an oversized length or a checksum mismatch is
 * fatal for the connection (`FrameError`), because after it no later byte can be trusted. It
 * also never drops a partial frame: bytes stay buffered until the rest arrives or the
 * connection closes (docs/lessons.md#6).
 */
import { crc32 } from "node:zlib";
import { ByteWriter } from "../encoding/binary.ts";
import { kindOf, MAX_PAYLOAD_BYTES, type Message, MessageId, writePayload } from "./messages.ts";

export const FRAME_HEADER_BYTES = 14;
/** Largest payload of any frame (8 MiB): one block batch or proposal, never more. */
export const MAX_FRAME_PAYLOAD_BYTES = 8 * 1024 * 1024;

/**
 * Handshakes and pings fit in this, so a thousand idle peers hold 4 KiB each; a peer that
 * streams grows its buffer to fit its reads (64 KiB on Linux loopback) and keeps it.
 */
const INITIAL_BUFFER_BYTES = 4 * 1024;
const SHRINK_ABOVE_BYTES = 1024 * 1024;

/** Why a byte stream can no longer be trusted. */
export type FrameFault = "bad-magic" | "oversized-frame" | "bad-checksum";

export class FrameError extends Error {
  constructor(readonly reason: FrameFault, message: string) {
    super(message);
    this.name = "FrameError";
  }
}

export interface Frame {
  typeId: number;
  /** A view into the decoder's buffer; valid until the next `push`. Decode or copy before then. */
  payload: Uint8Array;
}

function checksum(payload: Uint8Array): number {
  return crc32(payload) >>> 0;
}

/**
 * Encodes `m` as one frame. Pass a reusable `writer` on hot paths; the result is then a view
 * valid only until the writer's next use.
 */
export function encodeFrame(magic: number, m: Message, writer?: ByteWriter): Uint8Array {
  const w = writer ? writer.reset() : new ByteWriter(64);
  w.u32(magic).u16(MessageId[m.kind]).u32(0).u32(0);
  writePayload(w, m);
  const out = writer ? w.view() : w.finish();
  const payloadLength = out.length - FRAME_HEADER_BYTES;
  // Our own peers would drop us for an oversized frame: a bug here must fail loudly, locally.
  if (payloadLength > MAX_PAYLOAD_BYTES[m.kind]) {
    throw new RangeError(
      `${m.kind} payload of ${payloadLength} bytes exceeds ${MAX_PAYLOAD_BYTES[m.kind]}`,
    );
  }
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(6, payloadLength, true);
  dv.setUint32(10, checksum(out.subarray(FRAME_HEADER_BYTES)), true);
  return out;
}

/** Frames one already-encoded payload under an arbitrary type id (tests and fuzzing use this). */
export function encodeRawFrame(magic: number, typeId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, magic, true);
  dv.setUint16(4, typeId, true);
  dv.setUint32(6, payload.length, true);
  dv.setUint32(10, checksum(payload), true);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Incremental frame reassembly. Feed it every chunk the socket yields; it returns every frame
 * completed by that chunk, in order, decoding a whole batch per read.
 */
export class FrameDecoder {
  #buf = new Uint8Array(INITIAL_BUFFER_BYTES);
  #start = 0;
  #end = 0;
  readonly #magic: number;
  readonly #handshakeFrames: number;
  #framesDecoded = 0;

  /**
   * `handshakeFrames`: how many leading frames are handshake frames (hello, helloAck). They are
   * capped at the hello's size whatever type they claim, so a peer that has not proven its
   * identity can never make us buffer megabytes.
   */
  constructor(magic: number, opts: { handshakeFrames?: number } = {}) {
    this.#magic = magic;
    this.#handshakeFrames = opts.handshakeFrames ?? 0;
  }

  /** Bytes held for a frame that has not fully arrived yet. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Bytes of memory the decoder holds for reassembly (its buffer's size, not what is in it).
   * Read-only, for tests and metrics: it is how the bounded-memory policy (start small, grow to
   * fit, give a large buffer back once empty) can be checked from outside.
   */
  get bufferedCapacity(): number {
    return this.#buf.length;
  }

  /** Throws `FrameError` when the stream can no longer be trusted; the caller must close. */
  push(chunk: Uint8Array): Frame[] {
    this.#append(chunk);
    const frames: Frame[] = [];
    const buf = this.#buf;
    const dv = new DataView(buf.buffer);
    while (this.#end - this.#start >= FRAME_HEADER_BYTES) {
      const p = this.#start;
      const magic = dv.getUint32(p, true);
      if (magic !== this.#magic) {
        throw new FrameError("bad-magic", `bad magic 0x${magic.toString(16).padStart(8, "0")}`);
      }
      const typeId = dv.getUint16(p + 4, true);
      const length = dv.getUint32(p + 6, true);
      const kind = kindOf(typeId);
      const typeLimit = kind ? MAX_PAYLOAD_BYTES[kind] : MAX_FRAME_PAYLOAD_BYTES;
      const limit = this.#framesDecoded < this.#handshakeFrames
        ? Math.min(typeLimit, MAX_PAYLOAD_BYTES.hello)
        : typeLimit;
      if (length > limit) {
        throw new FrameError(
          "oversized-frame",
          `frame type ${typeId} declares ${length} bytes, limit ${limit}`,
        );
      }
      // Wait for the rest. The buffer grows only as bytes actually arrive, so a header that
      // declares 8 MiB costs nothing until the peer really sends 8 MiB.
      if (this.#end - p < FRAME_HEADER_BYTES + length) break;
      const payload = buf.subarray(p + FRAME_HEADER_BYTES, p + FRAME_HEADER_BYTES + length);
      if (checksum(payload) !== dv.getUint32(p + 10, true)) {
        throw new FrameError("bad-checksum", `checksum mismatch on frame type ${typeId}`);
      }
      frames.push({ typeId, payload });
      this.#framesDecoded++;
      this.#start = p + FRAME_HEADER_BYTES + length;
    }
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      // Give back the memory of a past large frame once nothing is buffered.
      if (this.#buf.length > SHRINK_ABOVE_BYTES) this.#buf = new Uint8Array(INITIAL_BUFFER_BYTES);
    }
    return frames;
  }

  #append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buf.length) {
      // Frames returned by the previous push are no longer valid once this push starts, so
      // the buffered bytes may move within the buffer. Compact in place when that frees at
      // least half of it (so a steady stream moves each byte O(1) times); else grow.
      const live = this.#end - this.#start;
      if (live + chunk.length <= this.#buf.length && live * 2 <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let cap = this.#buf.length * 2;
        while (cap < live + chunk.length) cap *= 2;
        const next = new Uint8Array(cap);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}
