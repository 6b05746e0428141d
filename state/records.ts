/**
 * Masternode records: the typed block-body entries that change the validator set.
 *
 * Owns: the record type table, the byte layout of each record's `data`, the bytes its key
 * signs, and the helpers that create signed records. A record's meaning (who may join, when it
 * takes effect) belongs to state/state.ts; this module only turns bytes into typed values
 * and back.
 * Must never: accept trailing bytes, an unknown type, an out-of-range tier or an unbounded
 * string; lay out record bytes with anything but `ByteWriter`/`ByteReader`; or sign bytes that
 * omit the chain id, the type, the nonce or the expiry (those four are what stop a record from
 * being replayed on another chain, as another type, twice, or years later).
 */
import { ByteReader, ByteWriter, DecodeError } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import {
  type KeyPair,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  signBytes,
  verifySignature,
} from "../crypto/ed25519.ts";
import type { BlockRecord } from "../chain/block.ts";
import { type Tier, TIERS } from "../chain/genesis.ts";

export const RECORD_LIMITS = {
  /** Same bound as a genesis reward address, so every address fits the same RPC and keys. */
  maxRewardAddressBytes: 128,
  /** Same bound as a genesis p2p address ("host:port" with room for a long hostname). */
  maxAddressBytes: 64,
} as const;

/**
 * The record type table (`BlockRecord.type`). Codes are permanent: a new kind of record takes
 * a new code and a new entry in `CODECS`; a retired code is never reused.
 */
export const RecordType = {
  Registration: 1,
  Deregistration: 2,
  /**
   * Opaque application data: committed and replicated, with no effect on consensus state.
   * It is what carries payload until transactions get their own record types.
   */
  Data: 3,
} as const;
export type RecordType = typeof RecordType[keyof typeof RecordType];

/** Fields every record carries: who signed it and what stops it being replayed. */
interface SignedRecordFields {
  /** The masternode's node id (Ed25519 public key); the record is signed by this key. */
  nodeId: Uint8Array;
  /** Must equal the number of records of this node already on the chain. */
  nonce: number;
  /** Last block height that may include the record. */
  expiresAt: number;
  signature: Uint8Array;
}

export interface Registration extends SignedRecordFields {
  type: typeof RecordType.Registration;
  tier: Tier;
  rewardAddress: string;
  /** Announced p2p address, "host:port". */
  address: string;
}

export interface Deregistration extends SignedRecordFields {
  type: typeof RecordType.Deregistration;
}

export type MasternodeRecord = Registration | Deregistration;

type Unsigned<R> = Omit<R, "signature">;

/** One entry of the type table: the body layout of one record type (everything but the signature). */
interface RecordCodec<R extends MasternodeRecord> {
  readonly name: string;
  writeBody(w: ByteWriter, r: Unsigned<R>): void;
  readBody(r: ByteReader): Unsigned<R>;
}

// Reward addresses and p2p addresses are shown by RPC and written to logs; control characters in
// them could forge log lines, and no legitimate address needs one.
// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function readText(r: ByteReader, maxBytes: number, what: string): string {
  const s = r.string(maxBytes);
  if (s.length === 0) throw new DecodeError(`empty ${what}`);
  if (CONTROL_CHARS.test(s)) throw new DecodeError(`control character in ${what}`);
  return s;
}

function writeAuth(w: ByteWriter, r: Unsigned<SignedRecordFields>): void {
  w.fixed(r.nodeId, PUBLIC_KEY_LENGTH).u64(r.nonce).u64(r.expiresAt);
}

function readAuth(r: ByteReader): Unsigned<SignedRecordFields> {
  return { nodeId: r.fixed(PUBLIC_KEY_LENGTH).slice(), nonce: r.u64(), expiresAt: r.u64() };
}

const registrationCodec: RecordCodec<Registration> = {
  name: "registration",
  writeBody(w, r) {
    writeAuth(w, r);
    w.u8(TIERS.indexOf(r.tier)).string(r.rewardAddress).string(r.address);
  },
  readBody(r) {
    const auth = readAuth(r);
    const tierIndex = r.u8();
    if (tierIndex >= TIERS.length) throw new DecodeError(`unknown tier ${tierIndex}`);
    return {
      type: RecordType.Registration,
      ...auth,
      tier: TIERS[tierIndex],
      rewardAddress: readText(r, RECORD_LIMITS.maxRewardAddressBytes, "reward address"),
      address: readText(r, RECORD_LIMITS.maxAddressBytes, "address"),
    };
  },
};

const deregistrationCodec: RecordCodec<Deregistration> = {
  name: "deregistration",
  writeBody: writeAuth,
  readBody(r) {
    return { type: RecordType.Deregistration, ...readAuth(r) };
  },
};

/** Record types that carry a signed masternode record (everything but opaque data). */
type MasternodeRecordType = MasternodeRecord["type"];

const CODECS: {
  readonly [K in MasternodeRecordType]: RecordCodec<Extract<MasternodeRecord, { type: K }>>;
} = {
  [RecordType.Registration]: registrationCodec,
  [RecordType.Deregistration]: deregistrationCodec,
};

function codecFor(type: number): RecordCodec<MasternodeRecord> | undefined {
  return Object.hasOwn(CODECS, type)
    ? CODECS[type as MasternodeRecordType] as RecordCodec<MasternodeRecord>
    : undefined;
}

/** Human name of a record type, for logs and error messages. */
export function recordTypeName(type: number): string {
  if (type === RecordType.Data) return "data";
  return codecFor(type)?.name ?? `unknown(${type})`;
}

// Domain tag: a record signature can never pass as a vote, a proposal or anything else.
const RECORD_DOMAIN = new TextEncoder().encode("timenode/record/v1");

function bodyBytes(record: Unsigned<MasternodeRecord>): Uint8Array {
  const w = new ByteWriter(256);
  (codecFor(record.type) as RecordCodec<MasternodeRecord>).writeBody(w, record);
  return w.finish();
}

/** The bytes a masternode signs: domain, chain id (genesis hash), type, then the body. */
export function recordSignBytes(
  genesisHash: Uint8Array,
  record: Unsigned<MasternodeRecord>,
): Uint8Array {
  return new ByteWriter(320)
    .raw(RECORD_DOMAIN)
    .fixed(genesisHash, HASH_LENGTH)
    .u8(record.type)
    .raw(bodyBytes(record))
    .finish();
}

/** The block-body form of a record: `data` is the body followed by the signature. */
export function encodeRecord(record: MasternodeRecord): BlockRecord {
  const w = new ByteWriter(320);
  (codecFor(record.type) as RecordCodec<MasternodeRecord>).writeBody(w, record);
  w.fixed(record.signature, SIGNATURE_LENGTH);
  const encoded = { type: record.type, data: w.finish() };
  // Refuse to produce what every node would refuse to decode (an empty or oversized address):
  // the mistake surfaces at the signer, not as a rejected block.
  try {
    decodeRecord(encoded);
  } catch (e) {
    throw new RangeError(`unencodable ${recordTypeName(record.type)}: ${(e as Error).message}`);
  }
  return encoded;
}

/** Strict decode of a block record. Throws `DecodeError` for anything not canonical. */
export function decodeRecord(record: BlockRecord): MasternodeRecord {
  const codec = codecFor(record.type);
  if (!codec) throw new DecodeError(`unknown record type ${record.type}`);
  const r = new ByteReader(record.data);
  const body = codec.readBody(r);
  const signature = r.fixed(SIGNATURE_LENGTH).slice();
  r.end();
  return { ...body, signature } as MasternodeRecord;
}

/** True when the record is signed by the node it names, for this chain. */
export function verifyRecordSignature(genesisHash: Uint8Array, record: MasternodeRecord): boolean {
  return verifySignature(record.nodeId, recordSignBytes(genesisHash, record), record.signature);
}

/** What a registration needs besides the key; `tier` defaults to "free". */
export interface RegistrationParams {
  genesisHash: Uint8Array;
  /** The node's record count on the chain so far (see `recordNonceOf` in state/state.ts). */
  nonce: number;
  expiresAt: number;
  rewardAddress: string;
  address: string;
  tier?: Tier;
}

export interface DeregistrationParams {
  genesisHash: Uint8Array;
  nonce: number;
  expiresAt: number;
}

function sign<R extends MasternodeRecord>(
  key: KeyPair,
  genesisHash: Uint8Array,
  unsigned: Unsigned<R>,
): BlockRecord {
  const signature = signBytes(key, recordSignBytes(genesisHash, unsigned));
  return encodeRecord({ ...unsigned, signature } as R);
}

/** A registration of `key`'s node, signed by it, ready to go into a block. */
export function signRegistration(key: KeyPair, p: RegistrationParams): BlockRecord {
  return sign<Registration>(key, p.genesisHash, {
    type: RecordType.Registration,
    nodeId: key.publicKey,
    nonce: p.nonce,
    expiresAt: p.expiresAt,
    tier: p.tier ?? "free",
    rewardAddress: p.rewardAddress,
    address: p.address,
  });
}

/** A deregistration of `key`'s node, signed by it, ready to go into a block. */
export function signDeregistration(key: KeyPair, p: DeregistrationParams): BlockRecord {
  return sign<Deregistration>(key, p.genesisHash, {
    type: RecordType.Deregistration,
    nodeId: key.publicKey,
    nonce: p.nonce,
    expiresAt: p.expiresAt,
  });
}
