/**
 * Codec tests for every wire message: round trips through the payload codec and through
 * framing, canonical re-encoding, bounds, and strict rejection of malformed payloads.
 * Every kind in `MessageId` must have samples here (checked at compile time and at run time),
 * so adding a message without a codec test fails the suite (docs/lessons.md#12).
 */
import assert from "node:assert/strict";
import { ByteReader, ByteWriter, DecodeError } from "../../../encoding/binary.ts";
import { sha256, ZERO_HASH } from "../../../crypto/hash.ts";
import { signBytes } from "../../../crypto/ed25519.ts";
import {
  type Block,
  BLOCK_VERSION,
  blockHash,
  CHAIN_LIMITS,
  type CommittedBlock,
  decodeCommittedBlock,
  encodeCommittedBlock,
  payloadRoot,
  proposalSignBytes,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../../../chain/block.ts";
import { builtinGenesis, genesisHash, wellKnownKey } from "../../../chain/genesis.ts";
import {
  decodePayload,
  encodePayload,
  kindOf,
  MAX_HAVE_VOTES_BITMAP_BYTES,
  MAX_PAYLOAD_BYTES,
  type Message,
  MESSAGE_LIMITS,
  MessageId,
  type MessageKind,
  type MessageOf,
  PROTOCOL_VERSION,
  writePayload,
} from "../../../network/messages.ts";
import { encodeFrame, FrameDecoder } from "../../../network/frame.ts";
import { SeededRandom } from "../../../network/random.ts";

const random = new SeededRandom("messages-test");
const utf8 = new TextEncoder();
const GENESIS = builtinGenesis("devnet");
const GH = genesisHash(GENESIS);
const MAGIC = GENESIS.magic;
const KEYS = [0, 1, 2].map((i) => wellKnownKey("devnet", i));

function makeBlock(height: number, round: number, records: Block["records"]): Block {
  return {
    header: {
      version: BLOCK_VERSION,
      chainId: GH,
      height,
      prevHash: sha256(utf8.encode(`block-${height - 1}`)),
      timestamp: GENESIS.genesisTime + height * GENESIS.blockIntervalMs,
      proposer: KEYS[height % 3].publicKey,
      round,
      payloadRoot: payloadRoot(records),
      validatorSetHash: sha256(utf8.encode("validator-set-1")),
    },
    records,
  };
}

const RECORDS: Block["records"] = [
  {
    type: 1,
    data: utf8.encode(JSON.stringify({ register: KEYS[2].publicKey.length, tier: "free" })),
  },
  { type: 2, data: random.bytes(300) },
  { type: 255, data: new Uint8Array(0) },
];

function makeVote(type: VoteType, height: number, round: number, hash: Uint8Array, i: number) {
  const vote: Vote = {
    type,
    height,
    round,
    blockHash: hash,
    validator: KEYS[i].publicKey,
    signature: signBytes(KEYS[i], voteSignBytes(GH, type, height, round, hash)),
  };
  return vote;
}

function makeCommitted(height: number, records: Block["records"]): CommittedBlock {
  const block = makeBlock(height, 0, records);
  const hash = blockHash(block.header);
  return {
    block,
    certificate: {
      height,
      round: 0,
      blockHash: hash,
      signatures: [0, 1, 2].map((i) => {
        const v = makeVote(VoteType.Precommit, height, 0, hash, i);
        return { validator: v.validator, signature: v.signature };
      }),
    },
  };
}

function makeProposal(height: number, round: number, validRound: number, block: Block) {
  const hash = blockHash(block.header);
  const signature = signBytes(
    KEYS[height % 3],
    proposalSignBytes(GH, height, round, validRound, hash),
  );
  return { height, round, validRound, block, signature };
}

const BLOCK_7 = makeBlock(7, 1, RECORDS);
const HASH_7 = blockHash(BLOCK_7.header);
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Realistic samples of every kind. The mapped type makes a missing kind a compile error. */
const SAMPLES: { [K in MessageKind]: MessageOf<K>[] } = {
  hello: [
    {
      kind: "hello",
      protocolVersion: PROTOCOL_VERSION,
      magic: MAGIC,
      genesisHash: GH,
      nodeId: KEYS[0].publicKey,
      listenAddress: "127.0.0.1:24300",
      bestHeight: 7,
      bestHash: HASH_7,
      userAgent: "timenode/0.1.0 (deno 2.9.6)",
      nonce: random.bytes(32),
    },
    {
      kind: "hello",
      protocolVersion: 0xffff_ffff,
      magic: 0,
      genesisHash: GH,
      nodeId: KEYS[1].publicKey,
      listenAddress: "", // a node that does not listen
      bestHeight: 0,
      bestHash: GH,
      userAgent: "",
      nonce: new Uint8Array(32),
    },
    {
      kind: "hello",
      protocolVersion: PROTOCOL_VERSION,
      magic: MAGIC,
      genesisHash: GH,
      nodeId: KEYS[2].publicKey,
      listenAddress: "[2001:db8::1]:24100",
      bestHeight: Number.MAX_SAFE_INTEGER,
      bestHash: random.bytes(32),
      userAgent: "tïmenode/ünïcode 🚀",
      nonce: random.bytes(32),
    },
  ],
  helloAck: [{ kind: "helloAck", signature: signBytes(KEYS[0], random.bytes(32)) }],
  ping: [
    { kind: "ping", nonce: 0n, bestHeight: 0, bestHash: GH },
    { kind: "ping", nonce: U64_MAX, bestHeight: 7, bestHash: HASH_7 },
    { kind: "ping", nonce: random.u64(), bestHeight: 123_456_789, bestHash: random.bytes(32) },
  ],
  pong: [
    { kind: "pong", nonce: U64_MAX, bestHeight: 7, bestHash: HASH_7 },
    { kind: "pong", nonce: random.u64(), bestHeight: Number.MAX_SAFE_INTEGER, bestHash: GH },
  ],
  getAddresses: [{ kind: "getAddresses" }],
  addresses: [
    { kind: "addresses", entries: [] },
    {
      kind: "addresses",
      entries: [
        { address: "127.0.0.1:24310", lastSeen: GENESIS.genesisTime + 1_000 },
        { address: "[2001:db8::7]:24100", lastSeen: 0 },
        { address: "seed.example.com:24100", lastSeen: Number.MAX_SAFE_INTEGER },
      ],
    },
  ],
  goodbye: [
    { kind: "goodbye", reason: "shutting down" },
    { kind: "goodbye", reason: "" },
    { kind: "goodbye", reason: "génesis mismatch ✗" },
  ],
  getBlocks: [
    { kind: "getBlocks", fromHeight: 1, count: MESSAGE_LIMITS.maxBlocksPerBatch },
    { kind: "getBlocks", fromHeight: Number.MAX_SAFE_INTEGER, count: 0 },
  ],
  blocks: [
    { kind: "blocks", fromHeight: 8, blocks: [] },
    {
      kind: "blocks",
      fromHeight: 7,
      blocks: [
        encodeCommittedBlock(makeCommitted(7, RECORDS)),
        encodeCommittedBlock(makeCommitted(8, [])),
      ],
    },
  ],
  blockAnnounce: [{ kind: "blockAnnounce", height: 7, hash: HASH_7 }],
  proposal: [
    { kind: "proposal", proposal: makeProposal(7, 1, -1, BLOCK_7) },
    { kind: "proposal", proposal: makeProposal(8, 3, 2, makeBlock(8, 3, [])) },
  ],
  vote: [
    { kind: "vote", vote: makeVote(VoteType.Prevote, 7, 1, HASH_7, 0) },
    { kind: "vote", vote: makeVote(VoteType.Precommit, 7, 1, HASH_7, 1) },
    { kind: "vote", vote: makeVote(VoteType.Prevote, 7, 2, ZERO_HASH, 2) }, // nil vote
  ],
  haveVotes: [
    { kind: "haveVotes", height: 7, round: 0, type: VoteType.Prevote, bitmap: Uint8Array.of(5) },
    {
      kind: "haveVotes",
      height: 2 ** 40,
      round: 3,
      type: VoteType.Precommit,
      bitmap: new Uint8Array(MAX_HAVE_VOTES_BITMAP_BYTES).fill(0xff),
    },
    { kind: "haveVotes", height: 1, round: 0, type: VoteType.Prevote, bitmap: new Uint8Array(0) },
  ],
  voterLinks: [
    { kind: "voterLinks", setHash: HASH_7, bitmap: Uint8Array.of(0b1011) },
    {
      kind: "voterLinks",
      setHash: ZERO_HASH,
      bitmap: new Uint8Array(MAX_HAVE_VOTES_BITMAP_BYTES).fill(0xff),
    },
    { kind: "voterLinks", setHash: HASH_7, bitmap: new Uint8Array(0) },
  ],
  record: [
    { kind: "record", record: { type: 1, data: new Uint8Array([1, 2, 3, 4]) } },
    { kind: "record", record: { type: 3, data: new Uint8Array(0) } },
  ],
  txAnnounce: [
    { kind: "txAnnounce", ids: [] },
    { kind: "txAnnounce", ids: [HASH_7, random.bytes(32), GH] },
  ],
  getTxs: [
    { kind: "getTxs", ids: [HASH_7] },
    { kind: "getTxs", ids: Array.from({ length: MESSAGE_LIMITS.maxTxsPerMessage }, () => GH) },
  ],
  txs: [
    { kind: "txs", txs: [] },
    { kind: "txs", txs: [random.bytes(165), random.bytes(CHAIN_LIMITS.maxTransactionBytes)] },
  ],
};

const ALL_KINDS = Object.keys(MessageId) as MessageKind[];

function allSamples(): Message[] {
  return ALL_KINDS.flatMap((k) => SAMPLES[k] as Message[]);
}

/** Builds a payload by hand, for encodings the typed writer refuses to produce. */
function raw(build: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter();
  build(w);
  return w.finish();
}

function rejects(kind: MessageKind, payload: Uint8Array, what: string): void {
  assert.throws(() => decodePayload(kind, payload), DecodeError, `${kind}: ${what}`);
}

Deno.test("messages: every MessageId kind has samples, and ids are unique", () => {
  for (const kind of ALL_KINDS) {
    const samples = (SAMPLES as Record<string, Message[] | undefined>)[kind];
    assert.ok(samples && samples.length > 0, `no codec samples for message kind "${kind}"`);
    for (const m of samples) assert.equal(m.kind, kind);
    assert.equal(kindOf(MessageId[kind]), kind);
  }
  assert.deepEqual(Object.keys(SAMPLES).sort(), [...ALL_KINDS].sort());
  assert.equal(new Set(Object.values(MessageId)).size, ALL_KINDS.length);
  assert.equal(kindOf(0), undefined);
  assert.equal(kindOf(0xffff), undefined);
});

Deno.test("messages: encodePayload -> decodePayload round-trips every sample", () => {
  for (const m of allSamples()) {
    const payload = encodePayload(m);
    assert.ok(payload.length <= MAX_PAYLOAD_BYTES[m.kind], `${m.kind} within its bound`);
    const decoded = decodePayload(m.kind, payload);
    assert.deepStrictEqual(decoded, m, m.kind);
    // Canonical: re-encoding the decoded message gives the same bytes.
    assert.deepStrictEqual(encodePayload(decoded), payload, m.kind);
  }
});

Deno.test("messages: decoded messages do not alias the input buffer", () => {
  for (const m of allSamples()) {
    const payload = encodePayload(m);
    const decoded = decodePayload(m.kind, payload);
    payload.fill(0xaa);
    assert.deepStrictEqual(decoded, m, `${m.kind} survives reuse of its input buffer`);
  }
});

Deno.test("messages: encodeFrame -> FrameDecoder -> decodePayload round-trips every sample", () => {
  const writer = new ByteWriter(16);
  for (const m of allSamples()) {
    for (const frame of [encodeFrame(MAGIC, m), encodeFrame(MAGIC, m, writer).slice()]) {
      const decoder = new FrameDecoder(MAGIC);
      const frames = decoder.push(frame);
      assert.equal(frames.length, 1, m.kind);
      assert.equal(frames[0].typeId, MessageId[m.kind]);
      const kind = kindOf(frames[0].typeId)!;
      assert.deepStrictEqual(decodePayload(kind, frames[0].payload), m, m.kind);
      assert.equal(decoder.buffered, 0);
    }
  }
});

Deno.test("messages: a stream of every sample decodes in order, whole or byte by byte", () => {
  const messages = allSamples();
  const frames = messages.map((m) => encodeFrame(MAGIC, m));
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let off = 0;
  for (const f of frames) {
    stream.set(f, off);
    off += f.length;
  }
  const whole = new FrameDecoder(MAGIC);
  const decodedWhole = whole.push(stream).map((f) => decodePayload(kindOf(f.typeId)!, f.payload));
  assert.deepStrictEqual(decodedWhole, messages);

  const trickle = new FrameDecoder(MAGIC);
  const decodedTrickle: Message[] = [];
  for (let i = 0; i < stream.length; i++) {
    for (const f of trickle.push(stream.subarray(i, i + 1))) {
      decodedTrickle.push(decodePayload(kindOf(f.typeId)!, f.payload));
    }
  }
  assert.deepStrictEqual(decodedTrickle, messages);
});

Deno.test("messages: blocks carry committed blocks that decode back", () => {
  const m = decodePayload("blocks", encodePayload(SAMPLES.blocks[1])) as MessageOf<"blocks">;
  const cb = decodeCommittedBlock(m.blocks[0]);
  assert.deepStrictEqual(cb, makeCommitted(7, RECORDS));
  assert.equal(cb.certificate.signatures.length, 3);
});

Deno.test("messages: largest legal values fit their bounds and round-trip", () => {
  const maxAddress = "a".repeat(MESSAGE_LIMITS.maxAddressBytes - 6) + ":24100";
  assert.equal(utf8.encode(maxAddress).length, MESSAGE_LIMITS.maxAddressBytes);
  const largest: Message[] = [
    {
      ...SAMPLES.hello[0],
      listenAddress: maxAddress,
      userAgent: "u".repeat(MESSAGE_LIMITS.maxUserAgentBytes),
    },
    {
      kind: "addresses",
      entries: Array.from(
        { length: MESSAGE_LIMITS.maxAddresses },
        () => ({ address: maxAddress, lastSeen: Number.MAX_SAFE_INTEGER }),
      ),
    },
    // Multi-byte characters count in bytes: 42 × 3 bytes = 126 ≤ 128.
    { kind: "goodbye", reason: "✗".repeat(42) + "ab" },
  ];
  for (const m of largest) {
    const payload = encodePayload(m);
    assert.ok(payload.length <= MAX_PAYLOAD_BYTES[m.kind], `${m.kind}: ${payload.length}`);
    assert.deepStrictEqual(decodePayload(m.kind, payload), m);
  }
  // The addresses bound is exactly the largest legal addresses message.
  assert.equal(encodePayload(largest[1]).length, MAX_PAYLOAD_BYTES.addresses);
  // Fixed-size messages are exactly their bound.
  for (const kind of ["helloAck", "ping", "pong", "blockAnnounce", "vote", "getBlocks"] as const) {
    assert.equal(encodePayload(SAMPLES[kind][0]).length, MAX_PAYLOAD_BYTES[kind], kind);
  }
  assert.equal(encodePayload(SAMPLES.getAddresses[0]).length, 0);
});

Deno.test("messages: trailing bytes are rejected for every kind", () => {
  for (const m of allSamples()) {
    const payload = encodePayload(m);
    for (const extra of [[0], [1, 2, 3]]) {
      const longer = new Uint8Array([...payload, ...extra]);
      rejects(m.kind, longer, `${extra.length} trailing bytes`);
    }
  }
});

Deno.test("messages: every truncation is rejected for every kind", () => {
  for (const m of allSamples()) {
    const payload = encodePayload(m);
    // Every strict prefix; for long payloads every prefix near the start and a stride after.
    const step = payload.length > 2_000 ? 7 : 1;
    for (let n = 0; n < payload.length; n += n < 300 ? 1 : step) {
      rejects(m.kind, payload.subarray(0, n), `prefix of ${n}/${payload.length}`);
    }
  }
});

Deno.test("messages: payloads over a kind's size bound are rejected before parsing", () => {
  for (const kind of ALL_KINDS) {
    const bound = MAX_PAYLOAD_BYTES[kind];
    if (bound > 64 * 1024) continue; // the 8 MiB kinds are covered by the list bounds below
    rejects(kind, new Uint8Array(bound + 1), "one byte over the bound");
  }
  rejects("getAddresses", new Uint8Array([0]), "a byte where none belong");
});

Deno.test("messages: oversize lists are rejected", () => {
  const addressesOver = raw((w) => {
    w.u32(MESSAGE_LIMITS.maxAddresses + 1);
    for (let i = 0; i <= MESSAGE_LIMITS.maxAddresses; i++) w.string("1.2.3.4:5").u64(0);
  });
  rejects("addresses", addressesOver, "1,001 addresses");
  rejects("addresses", raw((w) => w.u32(0xffff_ffff)), "a 4-billion count with no items");

  const blocksOver = raw((w) => {
    w.u64(1).u32(MESSAGE_LIMITS.maxBlocksPerBatch + 1);
    for (let i = 0; i <= MESSAGE_LIMITS.maxBlocksPerBatch; i++) w.bytes(new Uint8Array(1));
  });
  rejects("blocks", blocksOver, "501 blocks");
  rejects(
    "blocks",
    raw((w) => w.u64(1).u32(1).u32(MESSAGE_LIMITS.maxEncodedBlockBytes + 1)),
    "one block over maxEncodedBlockBytes",
  );
  rejects(
    "getBlocks",
    raw((w) => w.u64(1).u32(MESSAGE_LIMITS.maxBlocksPerBatch + 1)),
    "asking for 501 blocks",
  );
  // A proposal whose block claims more records than CHAIN_LIMITS allows.
  const proposal = encodePayload(SAMPLES.proposal[1]);
  const recordCountAt = 8 + 4 + 4 + 4 + 32 + 8 + 32 + 8 + 32 + 4 + 32 + 32;
  const tooMany = proposal.slice();
  new DataView(tooMany.buffer).setUint32(recordCountAt, 10_001, true);
  assert.equal(new DataView(proposal.buffer).getUint32(recordCountAt, true), 0, "offset check");
  rejects("proposal", tooMany, "10,001 records");
});

Deno.test("messages: transaction messages are bounded in count and size", () => {
  const fullTxs: Message = {
    kind: "txs",
    txs: Array.from(
      { length: MESSAGE_LIMITS.maxTxsPerMessage },
      () => new Uint8Array(CHAIN_LIMITS.maxTransactionBytes),
    ),
  };
  assert.equal(encodePayload(fullTxs).length, MAX_PAYLOAD_BYTES.txs);
  assert.deepStrictEqual(decodePayload("txs", encodePayload(fullTxs)), fullTxs);
  const fullIds: Message = {
    kind: "txAnnounce",
    ids: Array.from({ length: MESSAGE_LIMITS.maxTxsPerMessage }, () => HASH_7),
  };
  assert.equal(encodePayload(fullIds).length, MAX_PAYLOAD_BYTES.txAnnounce);
  for (const kind of ["txAnnounce", "getTxs"] as const) {
    rejects(
      kind,
      raw((w) => {
        w.u32(MESSAGE_LIMITS.maxTxsPerMessage + 1);
        for (let i = 0; i <= MESSAGE_LIMITS.maxTxsPerMessage; i++) w.fixed(HASH_7, 32);
      }),
      "1,001 ids",
    );
    rejects(kind, raw((w) => w.u32(1).fixed(new Uint8Array(31), 31)), "a short id");
  }
  rejects(
    "txs",
    raw((w) => w.u32(1).bytes(new Uint8Array(CHAIN_LIMITS.maxTransactionBytes + 1))),
    "one transaction over its bound",
  );
});

Deno.test("messages: strings over their byte bound are rejected", () => {
  const over = (n: number) => "x".repeat(n + 1);
  const hello = SAMPLES.hello[0];
  rejects(
    "hello",
    encodePayload({ ...hello, listenAddress: over(MESSAGE_LIMITS.maxAddressBytes) }),
    "listenAddress",
  );
  rejects(
    "hello",
    encodePayload({ ...hello, userAgent: over(MESSAGE_LIMITS.maxUserAgentBytes) }),
    "userAgent",
  );
  rejects(
    "goodbye",
    encodePayload({ kind: "goodbye", reason: over(MESSAGE_LIMITS.maxGoodbyeReasonBytes) }),
    "reason",
  );
  rejects(
    "addresses",
    encodePayload({
      kind: "addresses",
      entries: [{ address: over(MESSAGE_LIMITS.maxAddressBytes), lastSeen: 0 }],
    }),
    "address",
  );
  // The bound is in bytes, not characters: 43 three-byte characters are 129 bytes.
  rejects("goodbye", encodePayload({ kind: "goodbye", reason: "✗".repeat(43) }), "multi-byte");
});

Deno.test("messages: invalid UTF-8 is rejected in every string field", () => {
  const invalid: [string, number[]][] = [
    ["stray continuation byte", [0x80]],
    ["0xff", [0x41, 0xff]],
    ["overlong NUL", [0xc0, 0x80]],
    ["overlong slash", [0xe0, 0x80, 0xaf]],
    ["UTF-16 surrogate", [0xed, 0xa0, 0x80]],
    ["truncated sequence", [0xe2, 0x82]],
    ["above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ];
  const hello = SAMPLES.hello[0];
  for (const [what, bytes] of invalid) {
    const s = new Uint8Array(bytes);
    rejects("goodbye", raw((w) => w.bytes(s)), what);
    rejects("addresses", raw((w) => w.u32(1).bytes(s).u64(0)), what);
    rejects(
      "hello",
      raw((w) =>
        w.u32(hello.protocolVersion).u32(hello.magic).fixed(hello.genesisHash, 32)
          .fixed(hello.nodeId, 32).bytes(s).u64(hello.bestHeight).fixed(hello.bestHash, 32)
          .string(hello.userAgent).fixed(hello.nonce, 32)
      ),
      `listenAddress: ${what}`,
    );
    rejects(
      "hello",
      raw((w) =>
        w.u32(hello.protocolVersion).u32(hello.magic).fixed(hello.genesisHash, 32)
          .fixed(hello.nodeId, 32).string(hello.listenAddress).u64(hello.bestHeight)
          .fixed(hello.bestHash, 32).bytes(s).fixed(hello.nonce, 32)
      ),
      `userAgent: ${what}`,
    );
  }
});

Deno.test("messages: non-canonical booleans and out-of-range numbers are rejected", () => {
  // No message carries a bool today; the codec's bool still refuses anything but 0 and 1, so a
  // future bool field cannot be encoded two ways.
  for (const v of [2, 0x80, 0xff]) {
    assert.throws(() => new ByteReader(new Uint8Array([v])).bool(), DecodeError);
  }
  assert.equal(new ByteReader(new Uint8Array([1])).bool(), true);
  assert.equal(new ByteReader(new Uint8Array([0])).bool(), false);

  // u64 heights above 2^53 cannot be represented exactly and are refused.
  const ping = encodePayload(SAMPLES.ping[1]);
  const bigHeight = ping.slice();
  new DataView(bigHeight.buffer).setBigUint64(8, 2n ** 53n, true);
  rejects("ping", bigHeight, "height 2^53");
  rejects("getBlocks", raw((w) => w.u64big(U64_MAX).u32(1)), "fromHeight 2^64-1");

  // Vote types other than prevote (1) and precommit (2).
  for (const type of [0, 3, 255]) {
    const vote = encodePayload(SAMPLES.vote[0]);
    vote[0] = type;
    rejects("vote", vote, `vote type ${type}`);
    const have = encodePayload(SAMPLES.haveVotes[0]);
    have[12] = type;
    rejects("haveVotes", have, `haveVotes vote type ${type}`);
  }
  rejects(
    "haveVotes",
    raw((w) => w.u64(1).u32(0).u8(1).bytes(new Uint8Array(MAX_HAVE_VOTES_BITMAP_BYTES + 1))),
    "a bitmap longer than the largest set",
  );
  rejects(
    "voterLinks",
    raw((w) => w.fixed(HASH_7, 32).bytes(new Uint8Array(MAX_HAVE_VOTES_BITMAP_BYTES + 1))),
    "a links bitmap longer than the largest set",
  );
  rejects("voterLinks", HASH_7.slice(0, 31), "a links message cut inside its set hash");
  // validRound below -1.
  const proposal = encodePayload(SAMPLES.proposal[0]);
  new DataView(proposal.buffer).setInt32(12, -2, true);
  rejects("proposal", proposal, "validRound -2");
});

Deno.test("messages: the typed writer refuses values it cannot encode canonically", () => {
  const w = new ByteWriter();
  const bad: Message[] = [
    { ...SAMPLES.ping[0], bestHeight: -1 },
    { ...SAMPLES.ping[0], bestHeight: 1.5 },
    { ...SAMPLES.ping[0], nonce: U64_MAX + 1n },
    { ...SAMPLES.ping[0], bestHash: new Uint8Array(31) },
    { kind: "getBlocks", fromHeight: 0, count: 2 ** 32 },
    { kind: "helloAck", signature: new Uint8Array(63) },
  ];
  for (const m of bad) assert.throws(() => writePayload(w.reset(), m), RangeError, m.kind);
});
