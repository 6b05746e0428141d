/**
 * Seeded fuzzing of the byte layer: `FrameDecoder` (network/frame.ts) and `decodePayload`
 * (network/messages.ts). Over ten thousand random and mutated inputs, it checks that
 *  - the only exceptions are `FrameError` from `push` and `DecodeError` from `decodePayload`;
 *  - the decoder never holds more than one frame's worth of bytes (`buffered` stays below the
 *    largest frame), whatever lengths the headers declare (3 GB included, docs/lessons.md#6);
 *  - the decoder fed in random chunks agrees exactly with a one-shot reference parser written
 *    here from the frame spec (same frames, same error, same leftover bytes);
 *  - a payload that decodes re-encodes to the same bytes (strict, canonical decoding);
 *  - valid streams split anywhere or merged into one chunk decode to the same messages.
 * The seed is fixed so failures replay; change FUZZ_SEED locally to explore further.
 */
import assert from "node:assert/strict";
import { DecodeError, toHex } from "../../../encoding/binary.ts";
import {
  encodeFrame,
  encodeRawFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
  MAX_FRAME_PAYLOAD_BYTES,
} from "../../../network/frame.ts";
import {
  decodePayload,
  encodePayload,
  kindOf,
  MAX_PAYLOAD_BYTES,
  type Message,
  MESSAGE_LIMITS,
  MessageId,
  type MessageKind,
} from "../../../network/messages.ts";
import { VoteType } from "../../../chain/block.ts";
import { SeededRandom } from "../../../network/random.ts";

const FUZZ_SEED = "frame-fuzz-v1";
const MAGIC = 0x54494d44;
const KINDS = Object.keys(MessageId) as MessageKind[];
const KNOWN_IDS = Object.values(MessageId) as number[];
const UNKNOWN_IDS = [0, 8, 15, 19, 31, 34, 0x7fff, 0xffff];
const MAGIC_BYTES = new Uint8Array(4);
new DataView(MAGIC_BYTES.buffer).setUint32(0, MAGIC, true);

// ---------------------------------------------------------------------------------------------
// Random generation.

type R = SeededRandom;

function int(r: R, maxExclusive: number): number {
  return Math.floor(r.next() * maxExclusive);
}

function pick<T>(r: R, items: readonly T[]): T {
  return items[int(r, items.length)];
}

function chance(r: R, p: number): boolean {
  return r.next() < p;
}

const CHARS = ["a", "Z", "0", ":", ".", "[", "]", " ", "é", "✗", "🚀", "\u0000"];
const utf8 = new TextEncoder();

function randomString(r: R, maxBytes: number): string {
  let s = "";
  const n = int(r, Math.min(maxBytes, 40) + 1);
  for (let i = 0; i < n; i++) s += pick(r, CHARS);
  while (utf8.encode(s).length > maxBytes) s = [...s].slice(0, -1).join("");
  return s;
}

function randomSafeU64(r: R): number {
  switch (int(r, 4)) {
    case 0:
      return 0;
    case 1:
      return int(r, 1_000);
    case 2:
      return Number.MAX_SAFE_INTEGER;
    default:
      return Math.floor(r.next() * Number.MAX_SAFE_INTEGER);
  }
}

function randomU32(r: R): number {
  return pick(r, [0, 1, 0xffff_ffff, int(r, 2 ** 32)]);
}

function randomBlock(r: R) {
  return {
    header: {
      version: randomU32(r),
      chainId: r.bytes(32),
      height: randomSafeU64(r),
      prevHash: r.bytes(32),
      timestamp: randomSafeU64(r),
      proposer: r.bytes(32),
      round: randomU32(r),
      payloadRoot: r.bytes(32),
      validatorSetHash: r.bytes(32),
    },
    records: Array.from({ length: int(r, 4) }, () => ({
      type: int(r, 256),
      data: r.bytes(int(r, 100)),
    })),
  };
}

function randomMessage(r: R, kind: MessageKind): Message {
  switch (kind) {
    case "hello":
      return {
        kind,
        protocolVersion: randomU32(r),
        magic: randomU32(r),
        genesisHash: r.bytes(32),
        nodeId: r.bytes(32),
        listenAddress: randomString(r, MESSAGE_LIMITS.maxAddressBytes),
        bestHeight: randomSafeU64(r),
        bestHash: r.bytes(32),
        userAgent: randomString(r, MESSAGE_LIMITS.maxUserAgentBytes),
        nonce: r.bytes(32),
      };
    case "helloAck":
      return { kind, signature: r.bytes(64) };
    case "ping":
    case "pong":
      return { kind, nonce: r.u64(), bestHeight: randomSafeU64(r), bestHash: r.bytes(32) };
    case "getAddresses":
      return { kind };
    case "addresses":
      return {
        kind,
        entries: Array.from({ length: int(r, 6) }, () => ({
          address: randomString(r, MESSAGE_LIMITS.maxAddressBytes),
          lastSeen: randomSafeU64(r),
        })),
      };
    case "goodbye":
      return { kind, reason: randomString(r, MESSAGE_LIMITS.maxGoodbyeReasonBytes) };
    case "getBlocks":
      return {
        kind,
        fromHeight: randomSafeU64(r),
        count: int(r, MESSAGE_LIMITS.maxBlocksPerBatch + 1),
      };
    case "blocks":
      return {
        kind,
        fromHeight: randomSafeU64(r),
        blocks: Array.from({ length: int(r, 4) }, () => r.bytes(int(r, 200))),
      };
    case "blockAnnounce":
      return { kind, height: randomSafeU64(r), hash: r.bytes(32) };
    case "proposal":
      return {
        kind,
        proposal: {
          height: randomSafeU64(r),
          round: randomU32(r),
          validRound: pick(r, [-1, 0, 1, 0x7fff_ffff]),
          block: randomBlock(r),
          signature: r.bytes(64),
        },
      };
    case "vote":
      return {
        kind,
        vote: {
          type: pick(r, [VoteType.Prevote, VoteType.Precommit]),
          height: randomSafeU64(r),
          round: randomU32(r),
          blockHash: r.bytes(32),
          validator: r.bytes(32),
          signature: r.bytes(64),
        },
      };
    case "haveVotes":
      return {
        kind,
        height: randomSafeU64(r),
        round: randomU32(r),
        type: pick(r, [VoteType.Prevote, VoteType.Precommit]),
        bitmap: r.bytes(int(r, 126)),
      };
    case "voterLinks":
      return { kind, setHash: r.bytes(32), bitmap: r.bytes(int(r, 126)) };
    case "record":
      return { kind, record: { type: int(r, 256), data: r.bytes(int(r, 100)) } };
    case "txAnnounce":
    case "getTxs":
      return { kind, ids: Array.from({ length: int(r, 6) }, () => r.bytes(32)) };
    case "txs":
      return { kind, txs: Array.from({ length: int(r, 4) }, () => r.bytes(int(r, 250))) };
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Splits `bytes` at random points: single bytes, small and large pieces, empty chunks. */
function randomChunks(r: R, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    const style = int(r, 10);
    const n = style === 0 ? 0 : style < 3 ? 1 : style < 7 ? 1 + int(r, 32) : 1 + int(r, 4_096);
    chunks.push(bytes.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

const SPECIAL_U32 = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  500,
  501,
  1_000,
  1_001,
  0xffff,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_ffff,
];

/** One to three structure-blind mutations of `input`. `donor` is another valid payload. */
function mutate(r: R, input: Uint8Array, donor: Uint8Array): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = 1 + int(r, 3);
  for (let round = 0; round < rounds; round++) {
    const at = int(r, b.length + 1);
    switch (int(r, 9)) {
      case 0: // bit flips
        for (let k = 1 + int(r, 4); k > 0 && b.length > 0; k--) {
          b[int(r, b.length)] ^= 1 << int(r, 8);
        }
        break;
      case 1: // a special byte
        if (b.length > 0) b[int(r, b.length)] = pick(r, [0, 1, 2, 0x7f, 0x80, 0xef, 0xff]);
        break;
      case 2: // a special u32, which often lands on a length or count prefix
        if (b.length >= 4) {
          new DataView(b.buffer).setUint32(int(r, b.length - 3), pick(r, SPECIAL_U32), true);
        }
        break;
      case 3: // truncate
        b = b.slice(0, at);
        break;
      case 4: // extend
        b = concat([b, r.bytes(1 + int(r, 20))]);
        break;
      case 5: // splice with another payload, possibly of another kind
        b = concat([b.subarray(0, at), donor.subarray(int(r, donor.length + 1))]);
        break;
      case 6: // insert random bytes
        b = concat([b.subarray(0, at), r.bytes(1 + int(r, 8)), b.subarray(at)]);
        break;
      case 7: { // delete a range
        const end = Math.min(b.length, at + 1 + int(r, 16));
        b = concat([b.subarray(0, at), b.subarray(end)]);
        break;
      }
      default: { // duplicate a range
        const end = Math.min(b.length, at + 1 + int(r, 64));
        b = concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
        break;
      }
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Oracles.

/** CRC-32 (IEEE), written here so the fuzz does not trust the implementation it checks. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function limitOf(typeId: number): number {
  const kind = kindOf(typeId);
  return kind ? MAX_PAYLOAD_BYTES[kind] : MAX_FRAME_PAYLOAD_BYTES;
}

interface ParsedFrame {
  typeId: number;
  payload: Uint8Array;
}

interface ParseOutcome {
  frames: ParsedFrame[];
  error: FrameError["reason"] | null;
  /** Bytes of an incomplete frame left at the end (only meaningful without an error). */
  leftover: number;
}

/** One-shot reference parser, straight from the frame layout in network/frame.ts. */
function referenceParse(stream: Uint8Array): ParseOutcome {
  const dv = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  const frames: ParsedFrame[] = [];
  let pos = 0;
  while (stream.length - pos >= FRAME_HEADER_BYTES) {
    if (dv.getUint32(pos, true) !== MAGIC) return { frames, error: "bad-magic", leftover: 0 };
    const typeId = dv.getUint16(pos + 4, true);
    const length = dv.getUint32(pos + 6, true);
    if (length > limitOf(typeId)) return { frames, error: "oversized-frame", leftover: 0 };
    if (stream.length - pos < FRAME_HEADER_BYTES + length) break;
    const payload = stream.subarray(pos + FRAME_HEADER_BYTES, pos + FRAME_HEADER_BYTES + length);
    if (crc32(payload) !== dv.getUint32(pos + 10, true)) {
      return { frames, error: "bad-checksum", leftover: 0 };
    }
    frames.push({ typeId, payload });
    pos += FRAME_HEADER_BYTES + length;
  }
  return { frames, error: null, leftover: stream.length - pos };
}

interface Stats {
  inputs: number;
  frames: number;
  decoded: number;
  decodeErrors: number;
  unknownKinds: number;
  frameErrors: Record<string, number>;
}

const stats: Stats = {
  inputs: 0,
  frames: 0,
  decoded: 0,
  decodeErrors: 0,
  unknownKinds: 0,
  frameErrors: {},
};

function describe(label: string, stream: Uint8Array): string {
  const hex = toHex(stream.subarray(0, 256));
  return `${label} (${stream.length} bytes): ${hex}${stream.length > 256 ? "..." : ""}`;
}

/**
 * Decodes one frame's payload. Only `DecodeError` may escape decodePayload, and whatever
 * decodes must re-encode to the same bytes. Returns the message, or null if rejected.
 */
function decodeChecked(frame: ParsedFrame, label: string): Message | null {
  const kind = kindOf(frame.typeId);
  if (kind === undefined) {
    stats.unknownKinds++;
    return null;
  }
  let m: Message;
  try {
    m = decodePayload(kind, frame.payload);
  } catch (e) {
    if (e instanceof DecodeError) {
      stats.decodeErrors++;
      return null;
    }
    throw new Error(`decodePayload(${kind}) threw ${e}: ${describe(label, frame.payload)}`, {
      cause: e,
    });
  }
  stats.decoded++;
  assert.deepStrictEqual(
    encodePayload(m),
    frame.payload,
    `non-canonical decode of ${kind}: ${describe(label, frame.payload)}`,
  );
  return m;
}

/**
 * Feeds `stream` to a fresh decoder in the given chunks, checking every invariant, and
 * compares the outcome with the reference parser. Returns the decoded messages.
 */
function run(label: string, stream: Uint8Array, chunks: Uint8Array[]): Message[] {
  stats.inputs++;
  const decoder = new FrameDecoder(MAGIC);
  const frames: ParsedFrame[] = [];
  const messages: Message[] = [];
  let error: FrameError["reason"] | null = null;
  for (const chunk of chunks) {
    let out;
    try {
      out = decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof FrameError)) {
        throw new Error(`push threw ${e}: ${describe(label, stream)}`, { cause: e });
      }
      error = e.reason;
      break; // the stream can no longer be trusted: the caller closes the connection
    }
    assert.ok(
      decoder.buffered < FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES,
      `buffered ${decoder.buffered}: ${describe(label, stream)}`,
    );
    for (const f of out) {
      assert.ok(f.payload.length <= limitOf(f.typeId), describe(label, stream));
      // Payload views are valid until the next push: copy for the comparison, decode now.
      frames.push({ typeId: f.typeId, payload: f.payload.slice() });
      const m = decodeChecked(f, label);
      if (m) messages.push(m);
    }
  }
  stats.frames += frames.length;
  if (error) stats.frameErrors[error] = (stats.frameErrors[error] ?? 0) + 1;

  const want = referenceParse(stream);
  assert.equal(error, want.error, `frame error differs: ${describe(label, stream)}`);
  // A push that throws discards the frames it completed before the bad header, so after an
  // error the decoder may have delivered fewer frames than the reference, never others.
  if (error === null) {
    assert.equal(frames.length, want.frames.length, `frame count: ${describe(label, stream)}`);
  } else {
    assert.ok(frames.length <= want.frames.length, `frame count: ${describe(label, stream)}`);
  }
  for (let i = 0; i < frames.length; i++) {
    assert.equal(frames[i].typeId, want.frames[i].typeId, describe(label, stream));
    assert.deepStrictEqual(frames[i].payload, want.frames[i].payload, describe(label, stream));
  }
  if (error === null) assert.equal(decoder.buffered, want.leftover, describe(label, stream));
  return messages;
}

// ---------------------------------------------------------------------------------------------
// The fuzz.

Deno.test("frame fuzz: 10,000+ random and mutated inputs", () => {
  const r = new SeededRandom(FUZZ_SEED);
  const samplePayloads = () => {
    const kind = pick(r, KINDS);
    return { kind, payload: encodePayload(randomMessage(r, kind)) };
  };

  // 1. Random bytes, half of them behind a valid magic so they reach the header checks.
  for (let i = 0; i < 2_000; i++) {
    const body = r.bytes(int(r, 200));
    const stream = chance(r, 0.5) ? concat([MAGIC_BYTES, body]) : body;
    run(`random#${i}`, stream, randomChunks(r, stream));
  }

  // 2. Valid magic, random type and declared length (including huge ones), random payload.
  for (let i = 0; i < 2_500; i++) {
    const typeId = chance(r, 0.8) ? pick(r, KNOWN_IDS) : pick(r, UNKNOWN_IDS);
    const payload = r.bytes(int(r, 120));
    const limit = limitOf(typeId);
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    const dv = new DataView(header.buffer);
    dv.setUint32(0, MAGIC, true);
    dv.setUint16(4, typeId, true);
    const style = int(r, 20);
    const declared = style < 10 ? payload.length : style < 13 ? int(r, 300) : style < 14
      ? limit // a maximal frame that never completes: buffered must stay bounded
      : style < 16
      ? limit + 1 + int(r, 1_000)
      : pick(r, [
        3_000_000_000,
        0xffff_ffff,
        0x8000_0000,
        100_000_000,
        MAX_FRAME_PAYLOAD_BYTES + 1,
      ]);
    dv.setUint32(6, declared, true);
    dv.setUint32(10, chance(r, 0.7) ? crc32(payload) : int(r, 2 ** 32), true);
    const stream = concat([
      header,
      payload,
      chance(r, 0.3) ? r.bytes(int(r, 40)) : new Uint8Array(),
    ]);
    run(`header#${i}`, stream, randomChunks(r, stream));
  }

  // 3. Valid messages with mutated payloads under a correct checksum: reaches decodePayload.
  for (let i = 0; i < 5_000; i++) {
    const a = samplePayloads();
    const donor = samplePayloads();
    const payload = mutate(r, a.payload, donor.payload);
    const roll = r.next();
    const typeId = roll < 0.8
      ? MessageId[a.kind]
      : roll < 0.95
      ? pick(r, KNOWN_IDS)
      : pick(r, UNKNOWN_IDS);
    if (payload.length > limitOf(typeId)) continue; // the sender's writer would not frame it
    const stream = encodeRawFrame(MAGIC, typeId, payload);
    run(`payload#${i}:${a.kind}`, stream, randomChunks(r, stream));
  }

  // 4. Valid multi-frame streams with raw mutations anywhere, headers included.
  for (let i = 0; i < 2_500; i++) {
    const frames = Array.from(
      { length: 1 + int(r, 5) },
      () => encodeFrame(MAGIC, randomMessage(r, pick(r, KINDS))),
    );
    const clean = concat(frames);
    const stream = mutate(r, clean, encodeFrame(MAGIC, randomMessage(r, pick(r, KINDS))));
    run(`stream#${i}`, stream, randomChunks(r, stream));
  }

  // 5. decodePayload alone on random bytes for every kind (no framing, no checksum).
  for (let i = 0; i < 2_000; i++) {
    const kind = KINDS[i % KINDS.length];
    const payload = r.bytes(int(r, Math.min(MAX_PAYLOAD_BYTES[kind], 400) + 1));
    stats.inputs++;
    decodeChecked({ typeId: MessageId[kind], payload }, `bare#${i}:${kind}`);
  }

  assert.ok(stats.inputs >= 10_000, `only ${stats.inputs} inputs`);
  // The fuzz must actually reach every layer, or it proves nothing.
  assert.ok(stats.decoded > 1_000, `only ${stats.decoded} payloads decoded`);
  assert.ok(stats.decodeErrors > 1_000, `only ${stats.decodeErrors} payloads rejected`);
  assert.ok(stats.unknownKinds > 10, `only ${stats.unknownKinds} unknown type ids`);
  for (const reason of ["bad-magic", "oversized-frame", "bad-checksum"]) {
    assert.ok((stats.frameErrors[reason] ?? 0) > 50, `${reason}: ${JSON.stringify(stats)}`);
  }
});

Deno.test("frame fuzz: huge declared lengths fail at the header, for every type", () => {
  for (const typeId of [...KNOWN_IDS, ...UNKNOWN_IDS]) {
    const limit = limitOf(typeId);
    for (const declared of [limit + 1, MAX_FRAME_PAYLOAD_BYTES + 1, 3_000_000_000, 0xffff_ffff]) {
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      const dv = new DataView(header.buffer);
      dv.setUint32(0, MAGIC, true);
      dv.setUint16(4, typeId, true);
      dv.setUint32(6, declared, true);
      const decoder = new FrameDecoder(MAGIC);
      // Nothing is known until the whole header is in; then it fails at once.
      assert.deepEqual(decoder.push(header.subarray(0, FRAME_HEADER_BYTES - 1)), []);
      assert.throws(
        () => decoder.push(header.subarray(FRAME_HEADER_BYTES - 1)),
        (e: unknown) => e instanceof FrameError && e.reason === "oversized-frame",
        `type ${typeId}, declared ${declared}`,
      );
    }
  }
});

Deno.test("frame fuzz: a frame at the size limit is held until complete, then decoded", () => {
  // An 8 MiB blocks frame arriving in 64 KiB reads: bounded buffering, one frame at the end.
  const blocks: Uint8Array[] = [];
  const r = new SeededRandom(`${FUZZ_SEED}/large`);
  let size = 4 + 8 + 4;
  while (size + 4 + 100_000 < MAX_PAYLOAD_BYTES.blocks) {
    blocks.push(r.bytes(100_000));
    size += 4 + 100_000;
  }
  const m: Message = { kind: "blocks", fromHeight: 1, blocks };
  const frame = encodeFrame(MAGIC, m);
  const decoder = new FrameDecoder(MAGIC);
  let got: Message[] = [];
  for (let off = 0; off < frame.length; off += 65_536) {
    const out = decoder.push(frame.subarray(off, off + 65_536));
    assert.ok(decoder.buffered <= FRAME_HEADER_BYTES + MAX_PAYLOAD_BYTES.blocks);
    got = got.concat(out.map((f) => decodePayload(kindOf(f.typeId)!, f.payload)));
  }
  assert.equal(got.length, 1);
  assert.deepStrictEqual(got[0], m);
  assert.equal(decoder.buffered, 0);
});

Deno.test("frame fuzz: valid streams decode identically however they are split", () => {
  const r = new SeededRandom(`${FUZZ_SEED}/split`);
  for (let i = 0; i < 500; i++) {
    const messages = Array.from({ length: 1 + int(r, 12) }, () => randomMessage(r, pick(r, KINDS)));
    const stream = concat(messages.map((m) => encodeFrame(MAGIC, m)));
    const merged = run(`merged#${i}`, stream, [stream]);
    assert.deepStrictEqual(merged, messages);
    const split = run(`split#${i}`, stream, randomChunks(r, stream));
    assert.deepStrictEqual(split, messages);
    // One decoder across several streams back to back, as on a long-lived connection.
    const twice = run(`twice#${i}`, concat([stream, stream]), [
      ...randomChunks(r, stream),
      ...randomChunks(r, stream),
    ]);
    assert.deepStrictEqual(twice, [...messages, ...messages]);
  }
});
