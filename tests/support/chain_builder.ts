/**
 * Builds valid chains for tests and benchmarks: a genesis of deterministic test validators and
 * committed blocks certified by their precommit signatures, plus precise corruptions of a block.
 *
 * Owns: the test validator keys (`testValidatorKey`) and the recipe of a valid block.
 * Must never: bypass the shared encoders and sign-bytes (chain/block.ts), or make a corruption
 * that breaks more than the one rule it names; each corrupted block is re-certified so that only
 * the intended check fails.
 */
import { RecordType } from "../../state/records.ts";
import { toHex } from "../../encoding/binary.ts";
import { sha256 } from "../../crypto/hash.ts";
import { type KeyPair, keyPairFromSeed, signBytes } from "../../crypto/ed25519.ts";
import {
  BLOCK_VERSION,
  blockHash,
  type BlockHeader,
  type BlockRecord,
  type Certificate,
  CHAIN_LIMITS,
  type CommittedBlock,
  encodeCommittedBlock,
  payloadRoot,
  sortedCommit,
  voteSignBytes,
  VoteType,
} from "../../chain/block.ts";
import { type Genesis, genesisHash, type Tier } from "../../chain/genesis.ts";
import { makeDevnetGenesis } from "../../chain/genesis_tool.ts";
import type { ChainTip, RejectReason, StateMachine, StateView } from "../../chain/api.ts";
import { StaticStateMachine } from "./static_state.ts";

/** A fixed past instant: the same options give the same genesis hash on every run. */
export const DEFAULT_TEST_GENESIS_TIME = Date.UTC(2026, 0, 1);
/** Record type of the builder's filler records (opaque to the static state machine). */
export const FILLER_RECORD_TYPE = RecordType.Data;
/** Timestamp used by the "future-timestamp" corruption: beyond any clock drift allowance. */
const FAR_FUTURE_MS = Date.UTC(2200, 0, 1);

const textEncoder = new TextEncoder();

/** Deterministic key of test validator `index`; anyone can re-derive it. */
export function testValidatorKey(index: number): KeyPair {
  return keyPairFromSeed(sha256(textEncoder.encode(`timenode/test-validator/${index}`)));
}

export interface BuiltBlock {
  cb: CommittedBlock;
  encoded: Uint8Array;
  hash: Uint8Array;
}

export interface ChainBuilderOptions {
  /** Number of genesis validators (default 4). */
  validators?: number;
  network?: string;
  /** Default body size of each block, as filler records (default 0: empty blocks). */
  bodyBytes?: number;
  blockIntervalMs?: number;
  genesisTime?: number;
  /** Tier of each validator (default: the genesis tool's paid default, i.e. equal power). */
  tiers?: readonly Tier[];
  /** The state machine whose validator sets certify the blocks (default: the static one). */
  stateMachine?: (genesis: Genesis) => StateMachine;
}

export interface NextOptions {
  records?: BlockRecord[];
  bodyBytes?: number;
  timestamp?: number;
  round?: number;
  /**
   * Who signs the certificate (default: every validator whose key we hold). A number: that many
   * of the set's validators, in set (node id) order. An array: exactly these builder key indexes
   * (`keys[i]`, genesis order, so `tiers[i]` is the power of `signers` entry `i`); quorum
   * boundary tests pick a subset whose power lands exactly on 2/3 this way.
   */
  signers?: number | readonly number[];
  /**
   * The block's `lastCommit`: by default the previous block's certificate (none at height 1);
   * null leaves it out, a certificate replaces it (tests of the last-commit rules).
   */
  lastCommit?: Certificate | null;
}

export const CORRUPTIONS = {
  "bad-link": "bad-link",
  "bad-height": "bad-height",
  "bad-timestamp": "bad-timestamp",
  "future-timestamp": "future-timestamp",
  "bad-payload-root": "bad-payload-root",
  "bad-validator-set": "bad-validator-set",
  "bad-proposer": "bad-proposer",
  "bad-certificate": "bad-certificate",
  "bad-cert-round": "bad-certificate",
  "bad-signature": "bad-signature",
  "bad-records": "bad-records",
  "bad-last-commit": "bad-last-commit",
  "wrong-chain": "wrong-chain",
  "bad-version": "decode",
} as const satisfies Record<string, RejectReason>;
export type Corruption = keyof typeof CORRUPTIONS;

/** The encoding of `item` cut in half: not even a block (refused as "decode"). */
export function truncatedEncoding(item: BuiltBlock): Uint8Array {
  return item.encoded.slice(0, Math.floor(item.encoded.length / 2));
}

export class ChainBuilder {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  readonly keys: readonly KeyPair[];
  readonly stateMachine: StateMachine;
  readonly #keyById: Map<string, KeyPair>;
  readonly #bodyBytes: number;
  readonly #intervalMs: number;
  readonly #state = new Map<string, Uint8Array>();
  readonly #view: StateView = { get: (k) => this.#state.get(k) };
  /** Timestamp by height (index 0 is the genesis time): corruptions need the parent's. */
  readonly #timestamps: number[];
  #tip: ChainTip;
  /** Certificate of the tip block: the next block's default `lastCommit`. */
  #tipCertificate: Certificate | undefined;
  #fillerPool: Uint8Array | undefined;

  private constructor(genesis: Genesis, keys: KeyPair[], opts: ChainBuilderOptions) {
    this.genesis = genesis;
    this.genesisHash = genesisHash(genesis);
    this.keys = keys;
    this.#keyById = new Map(keys.map((k) => [toHex(k.publicKey), k]));
    this.stateMachine = (opts.stateMachine ?? ((g) => new StaticStateMachine(g)))(genesis);
    this.#bodyBytes = opts.bodyBytes ?? 0;
    this.#intervalMs = genesis.blockIntervalMs;
    this.#timestamps = [genesis.genesisTime];
    this.#tip = { height: 0, hash: this.genesisHash, timestamp: genesis.genesisTime };
  }

  static create(opts: ChainBuilderOptions = {}): ChainBuilder {
    const count = opts.validators ?? 4;
    const keys = Array.from({ length: count }, (_, i) => testValidatorKey(i));
    const genesis = makeDevnetGenesis({
      network: opts.network ?? "testchain",
      genesisTime: opts.genesisTime ?? DEFAULT_TEST_GENESIS_TIME,
      blockIntervalMs: opts.blockIntervalMs ?? 1_000,
      nodes: keys.map((k, i) => ({
        publicKey: k.publicKey,
        address: `127.0.0.1:${30_000 + i * 10}`,
        tier: opts.tiers?.[i],
      })),
    });
    return new ChainBuilder(genesis, keys, opts);
  }

  /** The tip of the chain built so far. */
  tip(): ChainTip {
    return this.#tip;
  }

  /** Builds the next valid block on the builder's tip and advances the tip. */
  next(opts: NextOptions = {}): BuiltBlock {
    const height = this.#tip.height + 1;
    const set = this.stateMachine.validatorSetFor(this.#view, this.#tip.height, height);
    if (!set) throw new Error(`state machine has no validator set for height ${height}`);
    const records = opts.records ?? this.#filler(height, opts.bodyBytes ?? this.#bodyBytes);
    const lastCommit = opts.lastCommit === null
      ? undefined
      : opts.lastCommit ?? (this.#tipCertificate && sortedCommit(this.#tipCertificate));
    const voting = set.validators.filter((v) => v.power > 0);
    if (voting.length === 0) throw new Error(`no member with power at height ${height}`);
    const header: BlockHeader = {
      version: BLOCK_VERSION,
      chainId: this.genesisHash,
      height,
      prevHash: this.#tip.hash,
      timestamp: opts.timestamp ?? this.#tip.timestamp + this.#intervalMs,
      // Only members with power propose (free and jailed members have none: a long chain whose
      // certificates leave members out jails them).
      proposer: voting[height % voting.length].nodeId,
      round: opts.round ?? 0,
      payloadRoot: payloadRoot(records, [], lastCommit),
      validatorSetHash: set.hash,
    };
    const signers = typeof opts.signers === "object"
      ? opts.signers.map((i) => this.keys[i])
      : voting
        .map((v) => this.#keyById.get(toHex(v.nodeId)))
        .filter((k): k is KeyPair => k !== undefined)
        .slice(0, opts.signers ?? Infinity);
    const built = this.#certify(
      lastCommit ? { header, records, lastCommit } : { header, records },
      signers,
    );
    for (const [k, v] of this.stateMachine.apply(this.#view, built.cb.block)) {
      if (v === null) this.#state.delete(k);
      else this.#state.set(k, v);
    }
    this.#tip = { height, hash: built.hash, timestamp: header.timestamp };
    this.#tipCertificate = built.cb.certificate;
    this.#timestamps.push(header.timestamp);
    return built;
  }

  build(n: number, opts: NextOptions = {}): BuiltBlock[] {
    const out: BuiltBlock[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next(opts);
    return out;
  }

  /**
   * A copy of `item` that breaks exactly one rule (see `CORRUPTIONS` for the reason a chain
   * must give). The builder's tip is not affected.
   */
  corrupt(item: BuiltBlock, how: Corruption): BuiltBlock {
    const header = { ...item.cb.block.header };
    let records = item.cb.block.records;
    let lastCommit = item.cb.block.lastCommit;
    const signers = item.cb.certificate.signatures.map((s) =>
      this.#keyById.get(toHex(s.validator))!
    );
    let round = header.round;
    const other = (label: string) =>
      sha256(textEncoder.encode(`timenode/test-corruption/${label}`));
    switch (how) {
      case "bad-link":
        header.prevHash = other("prev");
        break;
      case "bad-height":
        header.height += 1;
        break;
      case "bad-timestamp":
        header.timestamp = this.#timestamps[header.height - 1];
        break;
      case "future-timestamp":
        header.timestamp = FAR_FUTURE_MS;
        break;
      case "bad-payload-root":
        header.payloadRoot = other("payload");
        break;
      case "bad-validator-set":
        header.validatorSetHash = other("set");
        break;
      case "bad-proposer":
        header.proposer = testValidatorKey(1_000_000).publicKey;
        break;
      case "bad-certificate":
        // One signer of several equal-power validators is never more than 2/3.
        signers.splice(signers.length > 1 ? 1 : 0);
        break;
      case "bad-cert-round":
        // A block built in round 1 cannot have been committed in round 0.
        header.round += 1;
        round = header.round - 1;
        break;
      case "bad-records":
        records = [{
          type: FILLER_RECORD_TYPE,
          data: new Uint8Array(CHAIN_LIMITS.maxRecordBytes + 1),
        }];
        header.payloadRoot = payloadRoot(records, [], lastCommit);
        break;
      case "bad-last-commit":
        // One signer of several equal-power validators is never more than 2/3.
        if (!lastCommit) throw new Error("block 1 has no last commit to corrupt");
        lastCommit = { ...lastCommit, signatures: lastCommit.signatures.slice(0, 1) };
        header.payloadRoot = payloadRoot(records, [], lastCommit);
        break;
      case "wrong-chain":
        header.chainId = other("chain");
        break;
      case "bad-version":
        header.version = BLOCK_VERSION + 1;
        break;
      case "bad-signature": {
        const certificate: Certificate = {
          ...item.cb.certificate,
          signatures: item.cb.certificate.signatures.map((s, i) => {
            if (i !== 0) return s;
            const signature = s.signature.slice();
            signature[0] ^= 0x01;
            return { validator: s.validator, signature };
          }),
        };
        const cb = { block: item.cb.block, certificate };
        return { cb, encoded: encodeCommittedBlock(cb), hash: item.hash };
      }
    }
    const block = lastCommit ? { header, records, lastCommit } : { header, records };
    return this.#certify(block, signers, round);
  }

  /** Signs a precommit for `block` with each of `signers` and assembles the committed block. */
  #certify(
    block: CommittedBlock["block"],
    signers: readonly KeyPair[],
    certRound = block.header.round,
  ): BuiltBlock {
    const hash = blockHash(block.header);
    const message = voteSignBytes(
      this.genesisHash,
      VoteType.Precommit,
      block.header.height,
      certRound,
      hash,
    );
    const certificate: Certificate = {
      height: block.header.height,
      round: certRound,
      blockHash: hash,
      signatures: signers.map((k) => ({
        validator: k.publicKey,
        signature: signBytes(k, message),
      })),
    };
    const cb = { block, certificate };
    return { cb, encoded: encodeCommittedBlock(cb), hash };
  }

  /** Filler records totalling about `bytes`, different per height, cheap to produce. */
  #filler(height: number, bytes: number): BlockRecord[] {
    if (bytes <= 0) return [];
    if (!this.#fillerPool) {
      this.#fillerPool = new Uint8Array(CHAIN_LIMITS.maxRecordBytes);
      for (let off = 0; off < this.#fillerPool.length; off += 32) {
        this.#fillerPool.set(sha256(textEncoder.encode(`filler/${off}`)), off);
      }
    }
    const records: BlockRecord[] = [];
    for (let left = bytes; left > 0; left -= CHAIN_LIMITS.maxRecordBytes) {
      const data = this.#fillerPool.slice(0, Math.min(left, CHAIN_LIMITS.maxRecordBytes));
      if (data.length >= 4) new DataView(data.buffer).setUint32(0, height, true);
      records.push({ type: FILLER_RECORD_TYPE, data });
    }
    return records;
  }
}
