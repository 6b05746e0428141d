/**
 * The limits the docs promise, asserted with the LITERAL numbers the docs print, at the limit
 * and one past it. Every other test derives its sizes from the code's constants, so a changed
 * constant moves the test with it; these fail instead, and whoever changes a limit updates the
 * doc named next to each test in the same change.
 *
 * Mutations caught: any change of the constants behind these limits (e.g. the RPC body bound
 * 1 MiB → 2 MiB, the frame cap 8 MiB → 16 MiB, the send queue 16 MiB → 32 MiB, the batch of
 * 500 → 1,000), and `>` → `>=` at each bound.
 */
import assert from "node:assert/strict";
import { Authenticator } from "../../rpc/auth.ts";
import { ByteWriter, DecodeError } from "../../encoding/binary.ts";
import { FrameDecoder, FrameError } from "../../network/frame.ts";
import {
  decodePayload,
  encodePayload,
  MessageId,
  type MessageKind,
} from "../../network/messages.ts";
import { SendQueue } from "../../network/send_queue.ts";
import { DEFAULT_SEND_QUEUE_BYTES } from "../../network/constants.ts";
import { RecordPool } from "../../state/record_pool.ts";
import { ServeLimiter } from "../../sync/serve_limiter.ts";
import { startRpcServer } from "../../rpc/server.ts";

const MAGIC = 0x54494d44;

/** A frame header alone: magic, type, declared length, checksum (not checked before the body). */
function header(typeId: number, length: number): Uint8Array {
  const h = new Uint8Array(14);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint16(4, typeId, true);
  dv.setUint32(6, length, true);
  return h;
}

function declares(typeId: number, length: number, handshakeFrames = 0): "waits" | string {
  try {
    const frames = new FrameDecoder(MAGIC, { handshakeFrames }).push(header(typeId, length));
    assert.equal(frames.length, 0);
    return "waits";
  } catch (e) {
    assert.ok(e instanceof FrameError, String(e));
    return e.reason;
  }
}

// docs/protocol.md §2: "length is at most 8 MiB (8,388,608) and at most the bound of its type"
const TYPE_BOUNDS: [MessageKind | "unknown", number][] = [
  ["hello", 512],
  ["addresses", 76_004],
  ["goodbye", 132],
  ["getBlocks", 12],
  ["blocks", 8_388_608],
  ["proposal", 8_388_608],
  ["vote", 141],
  ["record", 65_541],
  ["unknown", 8_388_608],
];

for (const [kind, bound] of TYPE_BOUNDS) {
  Deno.test(`protocol.md: a ${kind} frame may declare ${bound} bytes, not ${bound + 1}`, () => {
    const typeId = kind === "unknown" ? 999 : MessageId[kind];
    assert.equal(declares(typeId, bound), "waits");
    assert.equal(declares(typeId, bound + 1), "oversized-frame");
  });
}

Deno.test("protocol.md: the first two frames may declare 512 bytes whatever their type", () => {
  assert.equal(declares(MessageId.blocks, 512, 2), "waits");
  assert.equal(declares(MessageId.blocks, 513, 2), "oversized-frame");
  assert.equal(declares(MessageId.blocks, 513, 0), "waits", "later frames get their type's bound");
});

function refused(kind: MessageKind, payload: Uint8Array): void {
  assert.throws(() => decodePayload(kind, payload), DecodeError);
}

Deno.test("protocol.md: getBlocks asks for at most 500 blocks", () => {
  const getBlocks = (count: number) => new ByteWriter().u64(1).u32(count).finish();
  assert.deepEqual(decodePayload("getBlocks", getBlocks(500)), {
    kind: "getBlocks",
    fromHeight: 1,
    count: 500,
  });
  refused("getBlocks", getBlocks(501));
});

Deno.test("protocol.md: a blocks answer holds at most 500 blocks", () => {
  const blocks = (n: number) =>
    encodePayload({
      kind: "blocks",
      fromHeight: 1,
      blocks: Array.from({ length: n }, () => Uint8Array.of(1)),
    });
  assert.equal((decodePayload("blocks", blocks(500)) as { blocks: unknown[] }).blocks.length, 500);
  refused("blocks", blocks(501));
});

Deno.test("protocol.md: addresses hold at most 1,000 entries of at most 64-byte addresses", () => {
  const addresses = (n: number, address = "127.0.0.1:1") =>
    encodePayload({
      kind: "addresses",
      entries: Array.from({ length: n }, () => ({ address, lastSeen: 1 })),
    });
  assert.doesNotThrow(() => decodePayload("addresses", addresses(1_000)));
  refused("addresses", addresses(1_001));
  assert.doesNotThrow(() => decodePayload("addresses", addresses(1, "a".repeat(64))));
  refused("addresses", addresses(1, "a".repeat(65)));
});

Deno.test("protocol.md: a goodbye reason is at most 128 bytes; a record's data at most 64 KiB", () => {
  assert.doesNotThrow(() =>
    decodePayload("goodbye", encodePayload({ kind: "goodbye", reason: "r".repeat(128) }))
  );
  refused("goodbye", new ByteWriter().string("r".repeat(129)).finish());
  const record = (bytes: number) => new ByteWriter().u8(3).bytes(new Uint8Array(bytes)).finish();
  assert.doesNotThrow(() => decodePayload("record", record(65_536)));
  refused("record", record(65_537));
});

Deno.test("protocol.md §4: the send queue is bounded at 16 MiB (16,777,216 bytes)", () => {
  const queue = new SendQueue(DEFAULT_SEND_QUEUE_BYTES);
  assert.equal(queue.push(new Uint8Array(16_777_215), false), true);
  assert.equal(queue.push(new Uint8Array(1), true), true);
  assert.equal(queue.bytes, 16_777_216);
  assert.equal(queue.push(new Uint8Array(1), true), false, "one byte past 16 MiB is refused");
});

Deno.test("protocol.md: the record pool holds at most 1,000 records and 4 MiB of data", () => {
  const accept = () => {};
  const byCount = new RecordPool();
  for (let i = 0; i < 1_000; i++) {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, i, true);
    assert.equal(byCount.add({ type: 3, data }, accept), "added");
  }
  assert.equal(byCount.add({ type: 3, data: Uint8Array.of(1, 2, 3, 4, 5) }, accept), "full");

  const byBytes = new RecordPool();
  // 64 records of 64 KiB are exactly 4 MiB (4,194,304 bytes).
  for (let i = 0; i < 64; i++) {
    const data = new Uint8Array(65_536);
    new DataView(data.buffer).setUint32(0, i, true);
    assert.equal(byBytes.add({ type: 3, data }, accept), "added");
  }
  assert.equal(byBytes.bytes, 4_194_304);
  assert.equal(byBytes.add({ type: 3, data: Uint8Array.of(9) }, accept), "full");
  assert.deepEqual(new RecordPool().add({ type: 3, data: new Uint8Array(65_537) }, accept), {
    invalid: "record too large",
  });
});

Deno.test("protocol.md: each peer may ask 50,000 blocks/s, bursts of 100,000, then 32 wait", () => {
  const limiter = new ServeLimiter();
  const ask = (now = 0) => limiter.admit("peer", { fromHeight: 1, count: 500 }, now);
  // The burst: 100,000 blocks, i.e. 200 requests of 500, at one instant.
  for (let i = 0; i < 200; i++) assert.equal(ask(), "serve", `request ${i + 1}`);
  for (let i = 0; i < 32; i++) assert.equal(ask(), "deferred", `deferred ${i + 1}`);
  assert.equal(ask(), "refused", "the 33rd waiting request is refused");
  // One second refills 50,000 blocks: exactly the 32 waiting ones (16,000) and then more.
  const due = limiter.due(1_000);
  assert.equal(due.length, 32);
});

Deno.test("rpc.md: a request body of 1,048,576 bytes is read; 1,048,577 is a 413", async () => {
  const server = startRpcServer({
    hostname: "127.0.0.1",
    port: 0,
    methods: {},
    metrics: () => "",
    health: () => ({ ok: true }),
    auth: new Authenticator({ cookieSecret: "limits-test", entries: [] }),
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  const authorization = `Basic ${btoa("__cookie__:limits-test")}`;
  const post = (bytes: number) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: " ".repeat(bytes - 1) + "x",
    });
  try {
    const at = await post(1_048_576);
    assert.equal(at.status, 200);
    assert.equal((await at.json()).error.code, -32700, "read and parsed (padding is not JSON)");
    const over = await post(1_048_577);
    assert.equal(over.status, 413);
    assert.equal((await over.json()).error.code, -32600);
  } finally {
    await server.shutdown();
  }
});
