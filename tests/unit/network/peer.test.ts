import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { encodeFrame } from "../../../network/frame.ts";
import { FRAME_HEADER_BYTES } from "../../../network/frame.ts";
import {
  type Hello,
  type Message,
  MessageId,
  type MessageKind,
  PROTOCOL_VERSION,
} from "../../../network/messages.ts";
import { type PeerAction, PeerState } from "../../../network/peer.ts";
import type { Direction } from "../../../network/api.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../../../network/constants.ts";
import { makeAck } from "../../../network/handshake.ts";
import { type Block, VoteType } from "../../../chain/block.ts";

const MAGIC = 0x11223344;
const GENESIS = sha256(new TextEncoder().encode("test genesis"));
const ZERO32 = new Uint8Array(32);

function hello(key: KeyPair, over: Partial<Hello> = {}): Hello {
  return {
    kind: "hello",
    protocolVersion: PROTOCOL_VERSION,
    magic: MAGIC,
    genesisHash: GENESIS,
    nodeId: key.publicKey,
    listenAddress: "127.0.0.1:1",
    bestHeight: 5,
    bestHash: ZERO32,
    userAgent: "test",
    nonce: crypto.getRandomValues(new Uint8Array(32)),
    ...over,
  };
}

function makePeer(key: KeyPair, direction: Direction, h: Hello = hello(key)) {
  return new PeerState({
    direction,
    local: { key, magic: MAGIC, genesisHash: GENESIS },
    hello: h,
    pingIntervalMs: 1000,
    pongTimeoutMs: 3000,
    localTip: () => ({ height: 7, hash: ZERO32 }),
    nonce: (() => {
      let n = 100n;
      return () => ++n;
    })(),
  });
}

/** Feeds a message to `to` exactly as the shell would: through the frame encoding. */
function deliver(to: PeerState, m: Message, now: number): PeerAction[] {
  const out: PeerAction[] = [];
  const frame = encodeFrame(MAGIC, m);
  to.onFrame(MessageId[m.kind], frame.subarray(FRAME_HEADER_BYTES), now, out);
  return out;
}

const sends = (actions: PeerAction[]) =>
  actions.filter((a): a is Extract<PeerAction, { kind: "send" }> => a.kind === "send").map((a) =>
    a.message
  );

/** Runs a full handshake between an outbound and an inbound peer; returns both. */
function connectedPair() {
  const ka = generateKeyPair(), kb = generateKeyPair();
  const a = makePeer(ka, "outbound"), b = makePeer(kb, "inbound");
  const outA: PeerAction[] = [], outB: PeerAction[] = [];
  a.start(0, outA);
  b.start(0, outB);
  // Pump messages until both are quiet.
  let queueA = sends(outA), queueB = sends(outB);
  const all: PeerAction[] = [];
  for (let i = 0; i < 10 && (queueA.length || queueB.length); i++) {
    const nextA: Message[] = [], nextB: Message[] = [];
    for (const m of queueA) {
      const r = deliver(b, m, 1);
      all.push(...r);
      nextB.push(...sends(r));
    }
    for (const m of queueB) {
      const r = deliver(a, m, 1);
      all.push(...r);
      nextA.push(...sends(r));
    }
    queueA = nextA;
    queueB = nextB;
  }
  return { a, b, ka, kb, all };
}

Deno.test("handshake completes in both directions with the same code", () => {
  const { a, b, ka, kb, all } = connectedPair();
  assert.equal(a.phase, "ready");
  assert.equal(b.phase, "ready");
  assert.deepEqual(a.peerHello!.nodeId, kb.publicKey);
  assert.deepEqual(b.peerHello!.nodeId, ka.publicKey);
  assert.equal(all.filter((x) => x.kind === "ready").length, 2);
  // Each side pings right after the handshake.
  assert.ok(a.ping!.pingsSent === 1 && b.ping!.pingsSent === 1);
});

function sampleBlock(): Block {
  return {
    header: {
      version: 1,
      chainId: GENESIS,
      height: 1,
      prevHash: GENESIS,
      timestamp: 1,
      proposer: ZERO32,
      round: 0,
      payloadRoot: ZERO32,
      validatorSetHash: ZERO32,
    },
    records: [{ type: 1, data: new Uint8Array([1, 2, 3]) }],
  };
}

const samples: Record<MessageKind, Message> = {
  record: { kind: "record", record: { type: 1, data: new Uint8Array([7]) } },
  haveVotes: { kind: "haveVotes", height: 1, round: 0, type: VoteType.Precommit, bitmap: ZERO32 },
  voterLinks: { kind: "voterLinks", setHash: ZERO32, bitmap: ZERO32 },
  txAnnounce: { kind: "txAnnounce", ids: [ZERO32] },
  getTxs: { kind: "getTxs", ids: [ZERO32] },
  txs: { kind: "txs", txs: [new Uint8Array([1, 2, 3])] },
  hello: hello(generateKeyPair()),
  helloAck: { kind: "helloAck", signature: new Uint8Array(64) },
  ping: { kind: "ping", nonce: 5n, bestHeight: 9, bestHash: ZERO32 },
  pong: { kind: "pong", nonce: 101n, bestHeight: 9, bestHash: ZERO32 },
  getAddresses: { kind: "getAddresses" },
  addresses: { kind: "addresses", entries: [{ address: "10.0.0.1:24100", lastSeen: 5 }] },
  goodbye: { kind: "goodbye", reason: "bye" },
  getBlocks: { kind: "getBlocks", fromHeight: 1, count: 10 },
  blocks: { kind: "blocks", fromHeight: 1, blocks: [new Uint8Array([1, 2])] },
  blockAnnounce: { kind: "blockAnnounce", height: 12, hash: ZERO32 },
  proposal: {
    kind: "proposal",
    proposal: {
      height: 1,
      round: 0,
      validRound: -1,
      block: sampleBlock(),
      signature: new Uint8Array(64),
    },
  },
  vote: {
    kind: "vote",
    vote: {
      type: VoteType.Prevote,
      height: 1,
      round: 0,
      blockHash: ZERO32,
      validator: ZERO32,
      signature: new Uint8Array(64),
    },
  },
};

for (const receiver of ["inbound", "outbound"] as const) {
  Deno.test(`every message type is handled on ${receiver} connections`, () => {
    for (const kind of Object.keys(MessageId) as MessageKind[]) {
      const { a, b } = connectedPair();
      const peer = receiver === "outbound" ? a : b;
      assert.equal(peer.direction, receiver);
      let message = samples[kind];
      if (kind === "pong") {
        // Answer the ping the peer sends at its next interval.
        const t: PeerAction[] = [];
        peer.tick(1001, t);
        const ping = sends(t)[0] as { kind: "ping"; nonce: bigint };
        assert.equal(ping.kind, "ping");
        message = { ...samples.pong, nonce: ping.nonce } as Message;
      }
      const r = deliver(peer, message, 1010);
      const types = r.map((x) => x.kind);
      switch (kind) {
        case "ping": {
          const pong = sends(r)[0];
          assert.equal(pong.kind, "pong");
          assert.equal((pong as { nonce: bigint }).nonce, 5n);
          assert.ok(types.includes("tip"));
          break;
        }
        case "pong":
          assert.deepEqual(types, ["pong", "tip"], `pong on ${receiver}`);
          assert.equal(peer.ping!.pongsReceived, 2);
          assert.equal(peer.ping!.lastRttMs, 9);
          break;
        case "hello":
        case "helloAck":
          assert.deepEqual(types, ["penalize"]);
          break;
        case "goodbye":
          assert.deepEqual(types, ["close"]);
          break;
        case "blockAnnounce":
          assert.deepEqual(types, ["tip", "deliver"]);
          break;
        default:
          assert.deepEqual(types, ["deliver"], `${kind} on ${receiver}`);
          assert.equal((r[0] as { message: Message }).message.kind, kind);
      }
    }
  });
}

Deno.test("handshake rejects wrong genesis, old version, self-connection and bad signatures", () => {
  const k = generateKeyPair();
  const cases: [Hello, string][] = [
    [hello(generateKeyPair(), { genesisHash: new Uint8Array(32).fill(9) }), "wrong-genesis"],
    [hello(generateKeyPair(), { protocolVersion: 0 }), "old-version"],
    [hello(k), "self-connection"],
    [hello(generateKeyPair(), { magic: 1 }), "wrong-magic"],
  ];
  for (const [h, reason] of cases) {
    const p = makePeer(k, "inbound");
    p.start(0, []);
    const r = deliver(p, h, 1);
    assert.deepEqual(r.map((x) => x.kind === "close" && x.reason), [reason]);
    assert.equal(p.phase, "closed");
  }
  // An ack signed by a key other than the announced node id.
  const p = makePeer(k, "outbound");
  p.start(0, []);
  deliver(p, hello(generateKeyPair()), 1);
  const r = deliver(p, { kind: "helloAck", signature: new Uint8Array(64).fill(1) }, 2);
  assert.deepEqual(r.map((x) => x.kind === "close" && x.reason), ["bad-signature"]);
});

Deno.test("nothing passes before the handshake, in either direction", () => {
  for (const direction of ["inbound", "outbound"] as const) {
    for (const kind of ["ping", "getBlocks", "vote", "helloAck"] as MessageKind[]) {
      const p = makePeer(generateKeyPair(), direction);
      p.start(0, []);
      const r = deliver(p, samples[kind], 1);
      assert.deepEqual(
        r.map((x) => x.kind === "close" && x.reason),
        ["message-before-handshake"],
        `${kind}`,
      );
    }
    const p = makePeer(generateKeyPair(), direction);
    p.start(0, []);
    const out: PeerAction[] = [];
    p.onFrame(999, new Uint8Array(0), 1, out);
    assert.deepEqual(out.map((x) => x.kind === "close" && x.reason), ["message-before-handshake"]);
  }
});

Deno.test("handshake times out after 10 s", () => {
  const p = makePeer(generateKeyPair(), "inbound");
  p.start(0, []);
  const early: PeerAction[] = [];
  p.tick(HANDSHAKE_TIMEOUT_MS - 1, early);
  assert.equal(early.length, 0);
  const late: PeerAction[] = [];
  p.tick(HANDSHAKE_TIMEOUT_MS, late);
  assert.deepEqual(late.map((x) => x.kind === "close" && x.reason), ["handshake-timeout"]);
});

Deno.test("after the handshake, unknown types are ignored and malformed ones penalised, not fatal", () => {
  const { a } = connectedPair();
  const out: PeerAction[] = [];
  a.onFrame(4242, new Uint8Array(10), 5, out);
  assert.deepEqual(out.map((x) => x.kind), ["unknown-message"]);
  const bad: PeerAction[] = [];
  a.onFrame(MessageId.getBlocks, new Uint8Array(3), 5, bad);
  assert.deepEqual(bad.map((x) => x.kind), ["penalize"]);
  assert.equal(a.phase, "ready");
});

Deno.test("a silent peer is dropped by the pong timeout, not before", () => {
  const { a } = connectedPair();
  // The first ping was answered during the handshake pump; the next one, at 1001, never is.
  const sent: PeerAction[] = [];
  a.tick(1001, sent);
  assert.equal(sends(sent)[0].kind, "ping");
  const before: PeerAction[] = [];
  a.tick(2001, before);
  a.tick(4000, before);
  assert.ok(!before.some((x) => x.kind === "close" || x.kind === "send"));
  const after: PeerAction[] = [];
  a.tick(4001, after);
  assert.deepEqual(after.map((x) => x.kind === "close" && x.reason), ["pong-timeout"]);
});

Deno.test("the peer's tip: the hello's at ready, then a tip action only when it changes", () => {
  const { a, b } = connectedPair();
  // The hellos announced height 5; the pings of the handshake pump then said 7.
  assert.deepEqual(b.peerHello!.bestHeight, 5);
  assert.deepEqual(a.tip, { height: 7, hash: ZERO32 });
  const hashB = new Uint8Array(32).fill(0xbb);
  const ping = (height: number, hash: Uint8Array, nonce: bigint): Message => ({
    kind: "ping",
    nonce,
    bestHeight: height,
    bestHash: hash,
  });
  const tipsOf = (r: PeerAction[]) =>
    r.flatMap((x) => x.kind === "tip" ? [{ height: x.height, hash: x.hash }] : []);
  // The same tip again is no event.
  assert.deepEqual(tipsOf(deliver(a, ping(7, ZERO32, 1n), 10)), []);
  // A new height is.
  assert.deepEqual(tipsOf(deliver(a, ping(8, ZERO32, 2n), 11)), [{ height: 8, hash: ZERO32 }]);
  // The same height with another hash is a change too.
  assert.deepEqual(tipsOf(deliver(a, ping(8, hashB, 3n), 12)), [{ height: 8, hash: hashB }]);
  // An announcement of the tip it already reported is no change; a lower one is.
  const announce = (height: number): Message => ({ kind: "blockAnnounce", height, hash: hashB });
  assert.deepEqual(tipsOf(deliver(a, announce(8), 13)), []);
  assert.deepEqual(tipsOf(deliver(a, announce(4), 14)), [{ height: 4, hash: hashB }]);
  assert.deepEqual(a.tip, { height: 4, hash: hashB });
});

Deno.test("at ready the tip is the hello's, without a tip action", () => {
  const ka = generateKeyPair(), kb = generateKeyPair();
  const helloA = hello(ka);
  const a = makePeer(ka, "outbound", helloA);
  a.start(0, []);
  const tipHash = new Uint8Array(32).fill(4);
  deliver(a, hello(kb, { bestHeight: 42, bestHash: tipHash }), 1);
  const r = deliver(a, makeAck({ key: kb, magic: MAGIC, genesisHash: GENESIS }, helloA), 2);
  assert.ok(r.some((x) => x.kind === "ready"));
  assert.ok(!r.some((x) => x.kind === "tip"));
  assert.deepEqual(a.tip, { height: 42, hash: tipHash });
});

Deno.test("before the handshake the tip is height 0 and nothing reports it", () => {
  const p = makePeer(generateKeyPair(), "inbound");
  const out: PeerAction[] = [];
  p.start(0, out);
  assert.deepEqual(p.tip, { height: 0, hash: ZERO32 });
  assert.ok(!out.some((x) => x.kind === "tip"));
});
