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
  /** A bronze, silver or gold registration that locks the owner's collateral; two signatures. */
  CollateralRegistration: 4,
  /** A jailed member asks for its power back (node key). */
  Unjail: 5,
  /** Two conflicting signatures of one member (state/evidence.ts); not signed by a submitter. */
  Evidence: 6,
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

/**
 * A paid-tier registration: the node key signs it (`signature`) and so does the owner's wallet
 * key (`ownerSignature`), over the same bytes; `ownerKey` must hash to `owner`.
 */
export interface CollateralRegistration extends SignedRecordFields {
  type: typeof RecordType.CollateralRegistration;
  tier: Exclude<Tier, "free">;
  rewardAddress: string;
  address: string;
  /** The address whose spendable balance the collateral is locked from. */
  owner: string;
  /** The owner's wallet public key. */
  ownerKey: Uint8Array;
  ownerSignature: Uint8Array;
}

export interface Unjail extends SignedRecordFields {
  type: typeof RecordType.Unjail;
}

export type MasternodeRecord = Registration | Deregistration | CollateralRegistration | Unjail;

/** A record without its signatures: what the keys sign. */
export type Unsigned<R> = Omit<R, "signature" | "ownerSignature">;

/** One entry of the type table: the body layout of one record type (everything but the signatures). */
interface RecordCodec<R extends MasternodeRecord> {
  readonly name: string;
  writeBody(w: ByteWriter, r: Unsigned<R>): void;
  readBody(r: ByteReader): Unsigned<R>;
}

/** Record types signed by the owner key as well as the node key. */
function hasOwnerSignature(type: number): boolean {
  return type === RecordType.CollateralRegistration;
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

const collateralRegistrationCodec: RecordCodec<CollateralRegistration> = {
  name: "collateral registration",
  writeBody(w, r) {
    writeAuth(w, r);
    w.u8(TIERS.indexOf(r.tier)).string(r.rewardAddress).string(r.address).string(r.owner)
      .fixed(r.ownerKey, PUBLIC_KEY_LENGTH);
  },
  readBody(r) {
    const auth = readAuth(r);
    const tierIndex = r.u8();
    // A free node registers with type 1: collateral of 0 would be a registration by another name.
    if (tierIndex === 0 || tierIndex >= TIERS.length) {
      throw new DecodeError(`tier ${tierIndex} is not a paid tier`);
    }
    return {
      type: RecordType.CollateralRegistration,
      ...auth,
      tier: TIERS[tierIndex] as Exclude<Tier, "free">,
      rewardAddress: readText(r, RECORD_LIMITS.maxRewardAddressBytes, "reward address"),
      address: readText(r, RECORD_LIMITS.maxAddressBytes, "address"),
      owner: readText(r, RECORD_LIMITS.maxRewardAddressBytes, "owner"),
      ownerKey: r.fixed(PUBLIC_KEY_LENGTH).slice(),
    };
  },
};

const unjailCodec: RecordCodec<Unjail> = {
  name: "unjail",
  writeBody: writeAuth,
  readBody(r) {
    return { type: RecordType.Unjail, ...readAuth(r) };
  },
};

/** Record types that carry a signed masternode record (everything but opaque data). */
type MasternodeRecordType = MasternodeRecord["type"];

const CODECS: {
  readonly [K in MasternodeRecordType]: RecordCodec<Extract<MasternodeRecord, { type: K }>>;
} = {
  [RecordType.Registration]: registrationCodec,
  [RecordType.Deregistration]: deregistrationCodec,
  [RecordType.CollateralRegistration]: collateralRegistrationCodec,
  [RecordType.Unjail]: unjailCodec,
};

function codecFor(type: number): RecordCodec<MasternodeRecord> | undefined {
  return Object.hasOwn(CODECS, type)
    ? CODECS[type as MasternodeRecordType] as RecordCodec<MasternodeRecord>
    : undefined;
}

/** Human name of a record type, for logs and error messages. */
export function recordTypeName(type: number): string {
  if (type === RecordType.Data) return "data";
  if (type === RecordType.Evidence) return "evidence";
  return codecFor(type)?.name ?? `unknown(${type})`;
}

// Domain tag: a record signature can never pass as a vote, a proposal or anything else.
const RECORD_DOMAIN = new TextEncoder().encode("timenode/record/v1");

function bodyBytes(record: Unsigned<MasternodeRecord>): Uint8Array {
  const w = new ByteWriter(384);
  (codecFor(record.type) as RecordCodec<MasternodeRecord>).writeBody(w, record);
  return w.finish();
}

/** The bytes a masternode signs: domain, chain id (genesis hash), type, then the body. */
export function recordSignBytes(
  genesisHash: Uint8Array,
  record: Unsigned<MasternodeRecord>,
): Uint8Array {
  return new ByteWriter(448)
    .raw(RECORD_DOMAIN)
    .fixed(genesisHash, HASH_LENGTH)
    .u8(record.type)
    .raw(bodyBytes(record))
    .finish();
}

/** The block-body form of a record: `data` is the body followed by the signature. */
export function encodeRecord(record: MasternodeRecord): BlockRecord {
  const w = new ByteWriter(512);
  (codecFor(record.type) as RecordCodec<MasternodeRecord>).writeBody(w, record);
  w.fixed(record.signature, SIGNATURE_LENGTH);
  if (record.type === RecordType.CollateralRegistration) {
    w.fixed(record.ownerSignature, SIGNATURE_LENGTH);
  }
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
  const ownerSignature = hasOwnerSignature(record.type)
    ? { ownerSignature: r.fixed(SIGNATURE_LENGTH).slice() }
    : {};
  r.end();
  return { ...body, signature, ...ownerSignature } as MasternodeRecord;
}

/** True when the record is signed by the node it names, for this chain. */
export function verifyRecordSignature(genesisHash: Uint8Array, record: MasternodeRecord): boolean {
  return verifySignature(record.nodeId, recordSignBytes(genesisHash, record), record.signature);
}

/** True when a collateral registration is signed by the owner key it carries, for this chain. */
export function verifyOwnerSignature(
  genesisHash: Uint8Array,
  record: CollateralRegistration,
): boolean {
  return verifySignature(
    record.ownerKey,
    recordSignBytes(genesisHash, record),
    record.ownerSignature,
  );
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

/** A unjail record of `key`'s node (same fields as a deregistration). */
export function signUnjail(key: KeyPair, p: DeregistrationParams): BlockRecord {
  return sign<Unjail>(key, p.genesisHash, {
    type: RecordType.Unjail,
    nodeId: key.publicKey,
    nonce: p.nonce,
    expiresAt: p.expiresAt,
  });
}

/** What a collateral registration needs besides the keys. */
export interface CollateralRegistrationParams {
  genesisHash: Uint8Array;
  /** The node's record count on the chain so far (`recordNonceOf`). */
  nonce: number;
  expiresAt: number;
  tier: Exclude<Tier, "free">;
  rewardAddress: string;
  address: string;
  /** The owner's address: `addressOf(network, ownerKey)`. */
  owner: string;
  /** The owner's wallet public key. */
  ownerKey: Uint8Array;
  /** The node id (public key) of the node being registered. */
  nodeId: Uint8Array;
}

function unsignedCollateralRegistration(
  p: CollateralRegistrationParams,
): Unsigned<CollateralRegistration> {
  return {
    type: RecordType.CollateralRegistration,
    nodeId: p.nodeId,
    nonce: p.nonce,
    expiresAt: p.expiresAt,
    tier: p.tier,
    rewardAddress: p.rewardAddress,
    address: p.address,
    owner: p.owner,
    ownerKey: p.ownerKey,
  };
}

/**
 * The bytes both keys sign for a collateral registration. Step one of the two-step form: the
 * wallet signs them with the owner key, the node signs them with its node key (possibly through
 * its own RPC), and `assembleCollateralRegistration` joins the two signatures.
 */
export function collateralRegistrationSignBytes(p: CollateralRegistrationParams): Uint8Array {
  return recordSignBytes(p.genesisHash, unsignedCollateralRegistration(p));
}

/** Step two: the block record from the parameters and the two signatures. */
export function assembleCollateralRegistration(
  p: CollateralRegistrationParams,
  nodeSignature: Uint8Array,
  ownerSignature: Uint8Array,
): BlockRecord {
  return encodeRecord({
    ...unsignedCollateralRegistration(p),
    signature: nodeSignature,
    ownerSignature,
  });
}

/** A collateral registration signed by both keys in one step. */
export function signCollateralRegistration(
  nodeKey: KeyPair,
  ownerKey: KeyPair,
  p: Omit<CollateralRegistrationParams, "nodeId" | "ownerKey">,
): BlockRecord {
  const params = { ...p, nodeId: nodeKey.publicKey, ownerKey: ownerKey.publicKey };
  const bytes = collateralRegistrationSignBytes(params);
  return assembleCollateralRegistration(
    params,
    signBytes(nodeKey, bytes),
    signBytes(ownerKey, bytes),
  );
}
