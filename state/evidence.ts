/**
 * Double-sign evidence: the record (type 6) that proves one member signed two conflicting
 * votes or proposals for one height and round (docs/state.md#double-signing).
 *
 * Owns: the evidence byte layout (one canonical encoding per offence: halves in ascending block
 * hash order), the builders the consensus service calls, and the signature check of both
 * halves against the signer's key for this chain. Whether the signer was a member, how old the
 * evidence may be and what it costs belong to state/state.ts.
 * Must never: accept two halves with the same block hash (no conflict), a non-canonical order,
 * trailing bytes, or verify anything but the exact bytes a validator signs
 * (`voteSignBytes`/`proposalSignBytes` of chain/block.ts).
 */
import { ByteReader, ByteWriter, compareBytes, DecodeError } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, verifySignature } from "../crypto/ed25519.ts";
import {
  type BlockRecord,
  proposalSignBytes,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../chain/block.ts";
import { RecordType } from "./records.ts";

/** What was signed twice. */
export const EvidenceKind = { Votes: 1, Proposals: 2 } as const;
export type EvidenceKind = typeof EvidenceKind[keyof typeof EvidenceKind];

/** One signed half: a block hash, its signature and (proposals only) the valid round. */
export interface SignedHalf {
  blockHash: Uint8Array;
  signature: Uint8Array;
  /** Proposals only; -1 when the proposal had no valid value from an earlier round. */
  validRound?: number;
}

export interface Evidence {
  kind: EvidenceKind;
  /** The node id that signed both halves. */
  validator: Uint8Array;
  height: number;
  round: number;
  /** Votes only. */
  voteType?: VoteType;
  /** The halves in ascending block hash order. */
  a: SignedHalf;
  b: SignedHalf;
}

/** Valid rounds are i32 on the wire; a proposal's is -1 or an earlier round. */
const MIN_VALID_ROUND = -1;

function writeHalf(w: ByteWriter, kind: EvidenceKind, h: SignedHalf): void {
  if (kind === EvidenceKind.Proposals) w.i32(h.validRound ?? MIN_VALID_ROUND);
  w.fixed(h.blockHash, HASH_LENGTH).fixed(h.signature, SIGNATURE_LENGTH);
}

function readHalf(r: ByteReader, kind: EvidenceKind): SignedHalf {
  const validRound = kind === EvidenceKind.Proposals ? r.i32() : undefined;
  if (validRound !== undefined && validRound < MIN_VALID_ROUND) {
    throw new DecodeError(`valid round ${validRound} below -1`);
  }
  return {
    ...(validRound === undefined ? {} : { validRound }),
    blockHash: r.fixed(HASH_LENGTH).slice(),
    signature: r.fixed(SIGNATURE_LENGTH).slice(),
  };
}

/** The block record of `e`; the halves are put in canonical order whatever order they came in. */
export function encodeEvidence(e: Evidence): BlockRecord {
  const [a, b] = compareBytes(e.a.blockHash, e.b.blockHash) <= 0 ? [e.a, e.b] : [e.b, e.a];
  const w = new ByteWriter(320).u8(e.kind).fixed(e.validator, PUBLIC_KEY_LENGTH).u64(e.height)
    .u32(e.round);
  if (e.kind === EvidenceKind.Votes) w.u8(e.voteType ?? 0);
  writeHalf(w, e.kind, a);
  writeHalf(w, e.kind, b);
  const record = { type: RecordType.Evidence, data: w.finish() };
  // Refuse to produce what every node would refuse to decode (no conflict, bad vote type).
  try {
    decodeEvidence(record);
  } catch (err) {
    throw new RangeError(`unencodable evidence: ${(err as Error).message}`);
  }
  return record;
}

/** Strict decode. Throws `DecodeError` for anything not canonical. */
export function decodeEvidence(record: BlockRecord): Evidence {
  if (record.type !== RecordType.Evidence) {
    throw new DecodeError(`record type ${record.type} is not evidence`);
  }
  const r = new ByteReader(record.data);
  const kind = r.u8();
  if (kind !== EvidenceKind.Votes && kind !== EvidenceKind.Proposals) {
    throw new DecodeError(`unknown evidence kind ${kind}`);
  }
  const validator = r.fixed(PUBLIC_KEY_LENGTH).slice();
  const height = r.u64();
  const round = r.u32();
  let voteType: VoteType | undefined;
  if (kind === EvidenceKind.Votes) {
    const t = r.u8();
    if (t !== VoteType.Prevote && t !== VoteType.Precommit) {
      throw new DecodeError(`unknown vote type ${t}`);
    }
    voteType = t;
  }
  const a = readHalf(r, kind);
  const b = readHalf(r, kind);
  r.end();
  const order = compareBytes(a.blockHash, b.blockHash);
  if (order === 0) throw new DecodeError("both halves sign the same block hash: no conflict");
  if (order > 0) throw new DecodeError("halves not in ascending block hash order");
  if (height < 1) throw new DecodeError("evidence of height 0");
  return { kind, validator, height, round, ...(voteType ? { voteType } : {}), a, b };
}

function signBytesOf(genesisHash: Uint8Array, e: Evidence, h: SignedHalf): Uint8Array {
  return e.kind === EvidenceKind.Votes
    ? voteSignBytes(genesisHash, e.voteType!, e.height, e.round, h.blockHash)
    : proposalSignBytes(genesisHash, e.height, e.round, h.validRound!, h.blockHash);
}

/** True when both halves are signed by `validator` for this chain. */
export function verifyEvidenceSignatures(genesisHash: Uint8Array, e: Evidence): boolean {
  return verifySignature(e.validator, signBytesOf(genesisHash, e, e.a), e.a.signature) &&
    verifySignature(e.validator, signBytesOf(genesisHash, e, e.b), e.b.signature);
}

/**
 * Evidence from two votes the consensus service saw. Throws `RangeError` when they are no
 * double sign (other signer, height, round or type, or the same block hash).
 */
export function evidenceRecord(voteA: Vote, voteB: Vote): BlockRecord {
  if (
    compareBytes(voteA.validator, voteB.validator) !== 0 || voteA.height !== voteB.height ||
    voteA.round !== voteB.round || voteA.type !== voteB.type
  ) {
    throw new RangeError("votes of different signers, heights, rounds or types do not conflict");
  }
  return encodeEvidence({
    kind: EvidenceKind.Votes,
    validator: voteA.validator,
    height: voteA.height,
    round: voteA.round,
    voteType: voteA.type,
    a: { blockHash: voteA.blockHash, signature: voteA.signature },
    b: { blockHash: voteB.blockHash, signature: voteB.signature },
  });
}

/** One proposal as the evidence needs it: what `proposalSignBytes` covers plus the signature. */
export interface SignedProposalHeader {
  height: number;
  round: number;
  validRound: number;
  blockHash: Uint8Array;
  signature: Uint8Array;
}

/** Evidence from two proposals of `proposer` for one height and round. */
export function proposalEvidenceRecord(
  proposer: Uint8Array,
  a: SignedProposalHeader,
  b: SignedProposalHeader,
): BlockRecord {
  if (a.height !== b.height || a.round !== b.round) {
    throw new RangeError("proposals of different heights or rounds do not conflict");
  }
  return encodeEvidence({
    kind: EvidenceKind.Proposals,
    validator: proposer,
    height: a.height,
    round: a.round,
    a: { blockHash: a.blockHash, signature: a.signature, validRound: a.validRound },
    b: { blockHash: b.blockHash, signature: b.signature, validRound: b.validRound },
  });
}
