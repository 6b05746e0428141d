/**
 * Attack scripts from docs/security.md run against a real network, for the hostile integration
 * tests and `deno task bench --only hostile`: fake heights, certificate floods, next-height vote
 * floods and ban traps by a peer with a valid handshake (a real `NetworkService`, its own key,
 * production handshake and framing, dialing from loopback), and idle sockets from hosts with
 * IPs of their own (network namespaces).
 *
 * Owns: the attackers' behaviour and what they count. Must never: be imported by production
 * code, or outlive `stop()` (every service, timer and pending reconnect ends there).
 */
import {
  blockHash,
  CHAIN_LIMITS,
  type CommittedBlock,
  decodeCommittedBlock,
  encodeCommittedBlock,
  voteSignBytes,
  VoteType,
} from "../../chain/block.ts";
import { type Genesis, genesisHash } from "../../chain/genesis.ts";
import { generateKeyPair, type KeyPair, signBytes } from "../../crypto/ed25519.ts";
import { createNodeMetrics } from "../../metrics/definitions.ts";
import { MAX_PAYLOAD_BYTES, MESSAGE_LIMITS } from "../../network/messages.ts";
import { NetworkService } from "../../network/service.ts";
import { signRegistration } from "../../state/records.ts";
import { addressOf } from "../../state/address.ts";
import { type IdleSockets, openIdleSockets } from "./idle_sockets.ts";
import type { TestHost } from "./netns.ts";

/** The claim of the fake-heights and certificate-flood attackers (the figure). */
export const FAKE_HEIGHT = 10_000_000;
/** Hostile blocks the certificate flooder keeps encoded (about 100 KB each). */
const MAX_CACHED_BLOCKS = 1_000;
/**
 * The certificate flooder's answers: about the 1.9 MB (20 blocks of 1,000-entry
 * certificates). Larger answers mostly fill its own send queue when the target asks several
 * ranges at once on a loaded machine; the worst case (8 MiB) is the CPU bench's.
 */
const FLOOD_ANSWER_BYTES = 2 * 1024 * 1024;
/** The certificate flooder's pause between a ban and its next key. */
const RECONNECT_AFTER_BAN_MS = 500;

export interface AttackTarget {
  genesis: Genesis;
  /** The target's p2p address, "127.0.0.1:port". */
  address: string;
  /** The network's current tip height (an RPC call). */
  tip(): Promise<number>;
}

export interface Attack {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** What the attacker did so far, for the log line of a test or a bench note. */
  summary(): string;
}

/** An attack by one peer that must stay connected: it does nothing that is its fault. */
export interface BlamelessAttack extends Attack {
  /** Handshaken connections the attacker holds now. */
  readonly peers: number;
}

/** A peer that dials only `target`, claims `height`, and accepts nobody. */
async function attackerPeer(
  target: AttackTarget,
  key: KeyPair,
  height: number,
): Promise<NetworkService> {
  const gHash = genesisHash(target.genesis);
  const service = new NetworkService({
    key,
    magic: target.genesis.magic,
    genesisHash: gHash,
    dataDir: null,
    listen: null,
    peers: [target.address],
    maxInbound: 0,
    maxOutbound: 0,
    pingIntervalMs: 1_000,
    pongTimeoutMs: 30_000,
    metrics: createNodeMetrics(),
    localTip: () => ({ height, hash: new Uint8Array(32).fill(7) }),
    // Room for a few maximum-size answers: the attacker's own queue must not be the limit.
    maxSendQueueBytes: 4 * MAX_PAYLOAD_BYTES.blocks,
  });
  await service.start();
  return service;
}

/** Resolves once `service` has a handshaken peer (the target). */
function connected(service: NetworkService): Promise<string> {
  const now = service.peers()[0];
  if (now) return Promise.resolve(now.key);
  return new Promise((resolve) => service.onPeerReady((p) => resolve(p.key)));
}

/**
 * Fake heights: claims height 10,000,000, never answers `getBlocks`, and reconnects with the
 * same key every `reconnectMs`, before any request to it can time out.
 */
export function fakeHeights(
  target: AttackTarget,
  reconnectMs = 3_000,
): Attack & { holdStill(): Promise<void> } {
  const key = generateKeyPair();
  let service: NetworkService | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let cycling = Promise.resolve();
  let connects = 0;
  const reconnect = async () => {
    await service?.stop();
    service = await attackerPeer(target, key, FAKE_HEIGHT);
    connects++;
  };
  return {
    name: "fake heights",
    async start() {
      await reconnect();
      timer = setInterval(() => cycling = cycling.then(reconnect), reconnectMs);
    },
    async stop() {
      clearInterval(timer);
      await cycling.catch(() => {});
      await service?.stop();
    },
    /** Stops reconnecting and stays connected: its unbacked claims fall due. */
    async holdStill() {
      clearInterval(timer);
      await cycling.catch(() => {});
    },
    summary: () => `${connects} connections claiming ${FAKE_HEIGHT}`,
  };
}

/**
 * Certificate flood: claims height 10,000,000 and answers every `getBlocks` with about 2 MB of
 * blocks, each carrying a 1,000-entry certificate of copies of one member's
 * signature (the 1.9 MB answer that cost 1.5 s of CPU before the cheap checks came first). The
 * blocks are a real block of the chain re-labelled for the heights asked, so they pass every
 * check before the certificate's. Banned for it, it comes back with a fresh key.
 */
export function certificateFlood(target: AttackTarget): Attack {
  let service: NetworkService | null = null;
  let template: Promise<CommittedBlock> | null = null;
  let stopped = false;
  let answers = 0;
  let keys = 0;
  let running = Promise.resolve();
  let resolveTemplate: ((cb: CommittedBlock) => void) | null = null;
  let templateAsked = false;
  // Encoded hostile blocks by height: the ranges asked repeat, and the attacker's own CPU (in
  // the test process, on the same cores) should not be what slows the network down.
  const built = new Map<number, Uint8Array>();
  const hostileBlock = (real: CommittedBlock, height: number) => {
    const cached = built.get(height);
    if (cached) return cached;
    const header = { ...real.block.header, height };
    const copies = Array.from(
      { length: CHAIN_LIMITS.maxValidators },
      () => real.certificate.signatures[0],
    );
    const encoded = encodeCommittedBlock({
      block: { ...real.block, header },
      certificate: { height, round: 0, blockHash: blockHash(header), signatures: copies },
    });
    if (built.size >= MAX_CACHED_BLOCKS) built.clear();
    built.set(height, encoded);
    return encoded;
  };
  const answer = async (s: NetworkService, from: string, fromHeight: number, count: number) => {
    const real = await template!;
    const blocks: Uint8Array[] = [];
    let bytes = 64;
    for (let h = fromHeight; h < fromHeight + count; h++) {
      const encoded = hostileBlock(real, h);
      if (bytes + encoded.length + 4 > FLOOD_ANSWER_BYTES) break;
      bytes += encoded.length + 4;
      blocks.push(encoded);
    }
    if (s.send(from, { kind: "blocks", fromHeight, blocks })) answers++;
  };
  const connect = async () => {
    if (stopped) return;
    const s = service = await attackerPeer(target, generateKeyPair(), FAKE_HEIGHT);
    keys++;
    s.onMessage("getBlocks", (from, m) => {
      answer(s, from, m.fromHeight, Math.min(m.count, MESSAGE_LIMITS.maxBlocksPerBatch));
    });
    s.onMessage("blocks", (_from, m) => {
      if (m.blocks.length > 0) resolveTemplate?.(decodeCommittedBlock(m.blocks[0]));
    });
    // Banned (the connection closes): come back as somebody else, a moment later.
    s.onPeerGone(() => {
      running = running.then(async () => {
        await s.stop();
        await new Promise((r) => setTimeout(r, RECONNECT_AFTER_BAN_MS));
        await connect();
      });
    });
    const peer = await connected(s);
    if (!templateAsked) {
      templateAsked = true;
      s.send(peer, { kind: "getBlocks", fromHeight: Math.max(1, await target.tip()), count: 1 });
    }
  };
  return {
    name: "certificate flood",
    async start() {
      template = new Promise((resolve) => resolveTemplate = resolve);
      await connect();
    },
    async stop() {
      stopped = true;
      await running.catch(() => {});
      await service?.stop();
    },
    summary: () => `${answers} hostile blocks answers from ${keys} keys`,
  };
}

/**
 * Next-height flood: every `intervalMs`, votes for the height after the one being decided, signed
 * by 20 strangers and, when `member` is given, by one member of that height's set in far rounds
 * (a byzantine validator past its per-signer cap). Nothing in it is the sender's fault: it must
 * never be penalised, and none of it may be buffered beyond the caps.
 */
export function nextHeightFlood(
  target: AttackTarget,
  member: KeyPair | null,
  intervalMs = 250,
): BlamelessAttack {
  const strangers = Array.from({ length: 20 }, () => generateKeyPair());
  const gHash = genesisHash(target.genesis);
  const nil = new Uint8Array(32);
  let service: NetworkService | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let sending = Promise.resolve();
  let sent = 0;
  const vote = (key: KeyPair, height: number, round: number) => ({
    kind: "vote" as const,
    vote: {
      type: VoteType.Prevote,
      height,
      round,
      blockHash: nil,
      validator: key.publicKey,
      signature: signBytes(key, voteSignBytes(gHash, VoteType.Prevote, height, round, nil)),
    },
  });
  const burst = async (s: NetworkService, peer: string) => {
    // The target decides tip + 1; its next height is tip + 2.
    const height = (await target.tip()) + 2;
    for (const k of strangers) if (s.send(peer, vote(k, height, 0))) sent++;
    // Far rounds: never reached, so they conflict with nothing the member really signs.
    for (let r = 0; r < 20 && member; r++) if (s.send(peer, vote(member, height, 100 + r))) sent++;
  };
  return {
    name: "next-height flood",
    async start() {
      const s = service = await attackerPeer(target, generateKeyPair(), 0);
      const peer = await connected(s);
      timer = setInterval(() => sending = sending.then(() => burst(s, peer)), intervalMs);
    },
    async stop() {
      clearInterval(timer);
      await sending.catch(() => {});
      await service?.stop();
    },
    summary: () => `${sent} next-height votes`,
    get peers() {
      return service?.peers().length ?? 0;
    },
  };
}

/**
 * Ban trap: a lagging node's view relayed in good faith: `count` correctly signed registrations
 * that expired at height 1. At the old 2 points each they got the relayer banned.
 */
export function banTrap(target: AttackTarget, count = 60): BlamelessAttack {
  const gHash = genesisHash(target.genesis);
  let service: NetworkService | null = null;
  return {
    name: "ban trap",
    async start() {
      const s = service = await attackerPeer(target, generateKeyPair(), 1);
      const peer = await connected(s);
      for (let i = 0; i < count; i++) {
        const key = generateKeyPair();
        const record = signRegistration(key, {
          genesisHash: gHash,
          nonce: 0,
          expiresAt: 1,
          rewardAddress: addressOf(target.genesis.network, key.publicKey),
          address: `203.0.113.${(i % 250) + 1}:24100`,
        });
        s.send(peer, { kind: "record", record });
      }
    },
    async stop() {
      await service?.stop();
    },
    summary: () => `${count} stale records`,
    get peers() {
      return service?.peers().length ?? 0;
    },
  };
}

/**
 * Idle sockets: every host keeps `perHost` TCP connections to `host:port` open and silent,
 * reopening any the node closes (tests/support/idle_sockets.ts).
 */
export function idleSockets(
  hosts: readonly TestHost[],
  host: string,
  port: number,
  perHost = 40,
): Attack {
  const held: IdleSockets[] = [];
  return {
    name: `idle sockets from ${hosts.length} IPs`,
    async start() {
      for (const h of hosts) held.push(await openIdleSockets(h.netns, host, port, perHost));
    },
    async stop() {
      for (const a of held.splice(0)) await a.stop();
    },
    summary: () =>
      `${held.reduce((n, a) => n + a.opened, 0)} of ${hosts.length * perHost} sockets opened`,
  };
}
