/**
 * Test fixtures for sync: a seeded random source, a deterministic signed chain, and a
 * `ChainApi` fake that validates like the real chain (height, link, timestamp, payload root,
 * validator set, certificate quorum and, unless told they were checked, signatures).
 *
 * Must never: be imported by production code.
 */
import {
  blockHash,
  type CommittedBlock,
  decodeCommittedBlock,
  encodeCommittedBlock,
  payloadRoot,
  voteSignBytes,
  VoteType,
} from "../../../chain/block.ts";
import {
  type ChainApi,
  type ChainTip,
  InvalidBlockError,
  type StateView,
} from "../../../chain/api.ts";
import { checkCertificateQuorum, verifyCertificateSignatures } from "../../../chain/certificate.ts";
import {
  DEFAULT_REWARDS,
  DEFAULT_TIER_POWER,
  type Genesis,
  genesisHash,
} from "../../../chain/genesis.ts";
import { makeValidatorSet, type ValidatorSet } from "../../../chain/validators.ts";
import { type KeyPair, keyPairFromSeed, signBytes } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { bytesEqual, toHex } from "../../../encoding/binary.ts";

/** Mulberry32: a tiny, fast, seedable PRNG; plenty for choosing test scenarios. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChainFixture {
  genesis: Genesis;
  genesisHash: Uint8Array;
  keys: KeyPair[];
  validatorSet: ValidatorSet;
  /** encoded[h - 1] is block h. */
  encoded: Uint8Array[];
  hashes: Uint8Array[];
}

const GENESIS_TIME = Date.UTC(2026, 0, 1);
const BODY_BYTES = 1000;

const fixtures = new Map<string, ChainFixture>();

/**
 * A chain of `length` blocks certified by 4 validators, with ~1 KB bodies. Deterministic and
 * cached per (length, seed); extend with `extendChain`.
 */
export function chainFixture(length: number, seed = 1): ChainFixture {
  const id = `${length}/${seed}`;
  const cached = fixtures.get(id);
  if (cached) return cached;
  const keys = [0, 1, 2, 3].map((i) =>
    keyPairFromSeed(sha256(new TextEncoder().encode(`sync-test-key/${seed}/${i}`)))
  );
  const genesis: Genesis = {
    network: "devnet",
    magic: 0x54455354,
    genesisTime: GENESIS_TIME,
    blockIntervalMs: 1000,
    tierPower: DEFAULT_TIER_POWER,
    rewards: DEFAULT_REWARDS,
    masternodes: keys.map((k, i) => ({
      nodeId: toHex(k.publicKey),
      tier: "bronze" as const,
      rewardAddress: `reward-${i}`,
      address: `127.0.0.1:${30000 + i}`,
    })),
  };
  const validatorSet = makeValidatorSet(keys.map((k, i) => ({
    nodeId: k.publicKey,
    tier: "bronze" as const,
    power: DEFAULT_TIER_POWER.bronze,
    rewardAddress: `reward-${i}`,
    address: `127.0.0.1:${30000 + i}`,
  })));
  const f: ChainFixture = {
    genesis,
    genesisHash: genesisHash(genesis),
    keys,
    validatorSet,
    encoded: [],
    hashes: [],
  };
  extendChain(f, length);
  fixtures.set(id, f);
  return f;
}

/** Appends `more` blocks to the fixture (mutates it; use a fresh seed to avoid sharing). */
export function extendChain(f: ChainFixture, more: number): void {
  for (let i = 0; i < more; i++) {
    const height = f.encoded.length + 1;
    const prevHash = height === 1 ? f.genesisHash : f.hashes[height - 2];
    const body = new Uint8Array(BODY_BYTES);
    new DataView(body.buffer).setUint32(0, height, true);
    const records = [{ type: 1, data: body }];
    const header = {
      version: 1,
      chainId: f.genesisHash,
      height,
      prevHash,
      timestamp: GENESIS_TIME + height * 1000,
      proposer: f.keys[height % 4].publicKey,
      round: 0,
      payloadRoot: payloadRoot(records),
      validatorSetHash: f.validatorSet.hash,
    };
    const hash = blockHash(header);
    const message = voteSignBytes(f.genesisHash, VoteType.Precommit, height, 0, hash);
    const cb: CommittedBlock = {
      block: { header, records },
      certificate: {
        height,
        round: 0,
        blockHash: hash,
        signatures: f.keys.map((k) => ({
          validator: k.publicKey,
          signature: signBytes(k, message),
        })),
      },
    };
    f.encoded.push(encodeCommittedBlock(cb));
    f.hashes.push(hash);
  }
}

/** Ways to spoil a block for negative tests. */
export type Corruption = "signature" | "payload" | "garbage" | "link" | "timestamp";

/**
 * Block `height` of the fixture, spoiled in the given way. "link" and "timestamp" are re-signed
 * by the validators, so only the chain's in-order checks can catch them; "payload" changes the
 * body, which the signatures do not cover; "signature" and "garbage" fail in the worker.
 */
export function corrupt(f: ChainFixture, height: number, how: Corruption): Uint8Array {
  const encoded = f.encoded[height - 1];
  if (how === "garbage") return encoded.slice(0, Math.floor(encoded.length / 2));
  const cb = decodeCommittedBlock(encoded);
  const header = cb.block.header;
  switch (how) {
    case "signature":
      cb.certificate.signatures[0].signature[0] ^= 0xff;
      return encodeCommittedBlock(cb);
    case "payload":
      cb.block.records[0].data[10] ^= 0xff;
      return encodeCommittedBlock(cb);
    case "link":
      header.prevHash = new Uint8Array(32).fill(7);
      break;
    case "timestamp":
      header.timestamp = f.genesis.genesisTime - 1;
      break;
  }
  const hash = blockHash(header);
  const message = voteSignBytes(f.genesisHash, VoteType.Precommit, height, 0, hash);
  cb.certificate.blockHash = hash;
  cb.certificate.signatures = f.keys.map((k) => ({
    validator: k.publicKey,
    signature: signBytes(k, message),
  }));
  return encodeCommittedBlock(cb);
}

/** A `ChainApi` over memory that validates like the real one. */
export class FakeChain implements ChainApi {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  readonly #set: ValidatorSet;
  readonly #blocks: { encoded: Uint8Array; hash: Uint8Array; timestamp: number }[] = [];
  readonly #handlers: ((cb: CommittedBlock, hash: Uint8Array) => void)[] = [];
  /** How many applyBlocks calls claimed verified signatures (the pool's work was used). */
  verifiedApplies = 0;
  applyCalls = 0;

  constructor(f: ChainFixture, initialHeight = 0) {
    this.genesis = f.genesis;
    this.genesisHash = f.genesisHash;
    this.#set = f.validatorSet;
    for (let h = 1; h <= initialHeight; h++) {
      const cb = decodeCommittedBlock(f.encoded[h - 1]);
      this.#blocks.push({
        encoded: f.encoded[h - 1],
        hash: f.hashes[h - 1],
        timestamp: cb.block.header.timestamp,
      });
    }
  }

  tip(): ChainTip {
    const last = this.#blocks[this.#blocks.length - 1];
    if (!last) {
      return { height: 0, hash: this.genesisHash, timestamp: this.genesis.genesisTime };
    }
    return { height: this.#blocks.length, hash: last.hash, timestamp: last.timestamp };
  }

  getBlock(height: number): CommittedBlock | undefined {
    const b = this.#blocks[height - 1];
    return b ? decodeCommittedBlock(b.encoded) : undefined;
  }

  getHeightOfHash(hash: Uint8Array): number | undefined {
    const i = this.#blocks.findIndex((b) => bytesEqual(b.hash, hash));
    return i < 0 ? undefined : i + 1;
  }

  getEncodedBlocks(from: number, count: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    for (let h = Math.max(1, from); h < from + count && h <= this.#blocks.length; h++) {
      const e = this.#blocks[h - 1].encoded;
      if (out.length > 0 && bytes + e.length > maxBytes) break;
      out.push(e);
      bytes += e.length;
    }
    return out;
  }

  validatorSetFor(_height: number): ValidatorSet | undefined {
    return this.#set;
  }

  stateView(): StateView {
    return { get: () => undefined };
  }

  applyBlock(cb: CommittedBlock, encoded?: Uint8Array, opts?: { signaturesVerified?: boolean }) {
    const tip = this.tip();
    const h = cb.block.header;
    const fail = (reason: ConstructorParameters<typeof InvalidBlockError>[0], m: string) => {
      throw new InvalidBlockError(reason, m);
    };
    if (h.height !== tip.height + 1) fail("bad-height", `height ${h.height}, tip ${tip.height}`);
    if (!bytesEqual(h.chainId, this.genesisHash)) fail("wrong-chain", "chain id");
    if (!bytesEqual(h.prevHash, tip.hash)) fail("bad-link", "prevHash");
    if (h.timestamp <= tip.timestamp) fail("bad-timestamp", "timestamp");
    if (!bytesEqual(h.payloadRoot, payloadRoot(cb.block.records))) {
      fail("bad-payload-root", "payload root");
    }
    if (!bytesEqual(h.validatorSetHash, this.#set.hash)) fail("bad-validator-set", "set");
    const hash = blockHash(h);
    const q = checkCertificateQuorum(cb.certificate, h.height, hash, this.#set);
    if (!q.ok) fail("bad-certificate", q.why);
    if (
      !opts?.signaturesVerified && !verifyCertificateSignatures(this.genesisHash, cb.certificate)
    ) {
      fail("bad-signature", "signature");
    }
    this.#blocks.push({
      encoded: encoded ?? encodeCommittedBlock(cb),
      hash,
      timestamp: h.timestamp,
    });
    for (const handler of this.#handlers) handler(cb, hash);
  }

  applyBlocks(
    items: readonly { cb: CommittedBlock; encoded: Uint8Array }[],
    opts?: { signaturesVerified?: boolean },
  ): { applied: number; error?: InvalidBlockError } {
    this.applyCalls++;
    if (opts?.signaturesVerified) this.verifiedApplies++;
    let applied = 0;
    for (const item of items) {
      try {
        this.applyBlock(item.cb, item.encoded, opts);
      } catch (e) {
        if (e instanceof InvalidBlockError) return { applied, error: e };
        throw e;
      }
      applied++;
    }
    return { applied };
  }

  /** Test helper: applies fixture blocks up to `height` as consensus would. */
  applyFromFixture(f: ChainFixture, height: number): void {
    for (let h = this.tip().height + 1; h <= height; h++) {
      this.applyBlock(decodeCommittedBlock(f.encoded[h - 1]), f.encoded[h - 1]);
    }
  }

  onBlockApplied(handler: (cb: CommittedBlock, hash: Uint8Array) => void): void {
    this.#handlers.push(handler);
  }

  /** Resolves once the tip reaches `height` (no polling, no sleeps). */
  reached(height: number): Promise<void> {
    if (this.tip().height >= height) return Promise.resolve();
    return new Promise((resolve) => {
      this.onBlockApplied(() => {
        if (this.tip().height >= height) resolve();
      });
    });
  }

  close(): void {}
}

/**
 * Races `p` against a deadline so a broken sync fails the test instead of hanging it; the
 * timer is always cleared.
 */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
