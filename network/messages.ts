/**
 * Every wire message: its type id, its fields, its bounds and its canonical payload encoding.
 *
 * Owns: the message table (one place to read the whole protocol, mirrored in docs/protocol.md).
 * Must never: do I/O, or decode more than a message's bound allows. Decoding is strict and
 * throws `DecodeError`; the caller decides the misbehavior score.
 */
import { ByteReader, ByteWriter, DecodeError, writeList } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../crypto/ed25519.ts";
import {
  type BlockRecord,
  CHAIN_LIMITS,
  type Proposal,
  readProposal,
  readVote,
  type Vote,
  VoteType,
  writeProposal,
  writeVote,
} from "../chain/block.ts";

/**
 * Wire protocol version. Bumped only when the wire format changes, never per build (docs/lessons.md#7). Peers below `MIN_PROTOCOL_VERSION` are refused at the handshake.
 */
export const PROTOCOL_VERSION = 2;
/**
 * 2: blocks are version 3 (they carry the previous height's commit) and the record table gained
 * types 4–6. A version-1 peer could finish the handshake and then fail to decode every block and
 * record we send, so it is refused at the handshake with `old-version` instead.
 */
export const MIN_PROTOCOL_VERSION = 2;

export const MESSAGE_LIMITS = {
  /** Announced listen address, "host:port"; the longest IPv6 form fits in 64. */
  maxAddressBytes: 64,
  maxUserAgentBytes: 128,
  maxGoodbyeReasonBytes: 128,
  /** Addresses per `addresses` message, as in Bitcoin's addr (1000). */
  maxAddresses: 1_000,
  /** Blocks per `get-blocks`/`blocks`: big batches amortise round trips during sync. */
  maxBlocksPerBatch: 500,
  /** One encoded committed block inside `blocks`. */
  maxEncodedBlockBytes: 4 * 1024 * 1024 + 128 * 1024,
  /**
   * Transaction ids per `txAnnounce`/`getTxs` and transactions per `txs`: a block interval's
   * worth at the 1,000/s target in one message, and at most ~420 KB of transactions.
   */
  maxTxsPerMessage: 1_000,
} as const;

export const HANDSHAKE_NONCE_LENGTH = 32;

/** One bit per voter of the largest validator set a block may carry. */
export const MAX_HAVE_VOTES_BITMAP_BYTES = Math.ceil(CHAIN_LIMITS.maxValidators / 8);

/** Numeric ids on the wire. Never reuse a retired id. */
export const MessageId = {
  hello: 1,
  helloAck: 2,
  ping: 3,
  pong: 4,
  getAddresses: 5,
  addresses: 6,
  goodbye: 7,
  getBlocks: 16,
  blocks: 17,
  blockAnnounce: 18,
  proposal: 32,
  vote: 33,
  record: 34,
  txAnnounce: 35,
  getTxs: 36,
  txs: 37,
  haveVotes: 38,
  voterLinks: 39,
} as const;
export type MessageKind = keyof typeof MessageId;

const KIND_BY_ID = new Map<number, MessageKind>(
  Object.entries(MessageId).map(([k, v]) => [v, k as MessageKind]),
);

export function kindOf(id: number): MessageKind | undefined {
  return KIND_BY_ID.get(id);
}

export interface Hello {
  kind: "hello";
  protocolVersion: number;
  magic: number;
  genesisHash: Uint8Array;
  nodeId: Uint8Array;
  /** "host:port" the sender accepts connections on; "" when it does not listen. */
  listenAddress: string;
  bestHeight: number;
  bestHash: Uint8Array;
  userAgent: string;
  /** Random challenge; the other side signs it in `helloAck` to prove it holds its node key. */
  nonce: Uint8Array;
}

export interface HelloAck {
  kind: "helloAck";
  /** Signature by the sender's node key over `handshakeSignBytes(peer's nonce, ...)`. */
  signature: Uint8Array;
}

export interface Ping {
  kind: "ping";
  nonce: bigint;
  bestHeight: number;
  bestHash: Uint8Array;
}

export interface Pong {
  kind: "pong";
  /** Echo of the ping's nonce. */
  nonce: bigint;
  bestHeight: number;
  bestHash: Uint8Array;
}

export interface GetAddresses {
  kind: "getAddresses";
}

export interface AddressEntry {
  address: string;
  /** Milliseconds since the epoch when the sender last saw the address working. */
  lastSeen: number;
}

export interface Addresses {
  kind: "addresses";
  entries: AddressEntry[];
}

export interface Goodbye {
  kind: "goodbye";
  reason: string;
}

export interface GetBlocks {
  kind: "getBlocks";
  fromHeight: number;
  count: number;
}

export interface Blocks {
  kind: "blocks";
  fromHeight: number;
  /** Encoded `CommittedBlock`s at fromHeight, fromHeight+1, ... (decoded by sync, off the loop). */
  blocks: Uint8Array[];
}

export interface BlockAnnounce {
  kind: "blockAnnounce";
  height: number;
  hash: Uint8Array;
}

export interface ProposalMessage {
  kind: "proposal";
  proposal: Proposal;
}

export interface VoteMessage {
  kind: "vote";
  vote: Vote;
}

/**
 * Which votes of one (height, round, type) the sender has: bit i (LSB first) is the i-th member
 * of the height's voting set, in set order (consensus/vote_gossip.ts). Peers use it to relay
 * each vote only to nodes that lack it.
 */
export interface HaveVotesMessage {
  kind: "haveVotes";
  height: number;
  round: number;
  type: VoteType;
  bitmap: Uint8Array;
}

/**
 * Which voters of the voting set with hash `setHash` the sender has a live connection to: bit i
 * (LSB first) is the i-th member of that set, in set order (consensus/vote_gossip.ts). Peers
 * never relay a vote to a node connected to its signer.
 */
export interface VoterLinksMessage {
  kind: "voterLinks";
  setHash: Uint8Array;
  bitmap: Uint8Array;
}

/** A record (e.g. a masternode registration) offered for inclusion in a block. */
export interface RecordMessage {
  kind: "record";
  record: BlockRecord;
}

/** Ids of transactions the sender has in its mempool and offers to relay. */
export interface TxAnnounce {
  kind: "txAnnounce";
  ids: Uint8Array[];
}

/** Ids of announced transactions the sender wants. */
export interface GetTxs {
  kind: "getTxs";
  ids: Uint8Array[];
}

/** Encoded transactions (state/transaction.ts), the answer to `getTxs`. */
export interface Txs {
  kind: "txs";
  txs: Uint8Array[];
}

export type Message =
  | Hello
  | HelloAck
  | Ping
  | Pong
  | GetAddresses
  | Addresses
  | Goodbye
  | GetBlocks
  | Blocks
  | BlockAnnounce
  | ProposalMessage
  | VoteMessage
  | HaveVotesMessage
  | VoterLinksMessage
  | RecordMessage
  | TxAnnounce
  | GetTxs
  | Txs;

export type MessageOf<K extends MessageKind> = Extract<Message, { kind: K }>;

/**
 * Control messages jump the writer queue ahead of bulk data, so a large block batch can never
 * delay a pong into a timeout or a vote past its round (docs/lessons.md#5).
 */
export function isControl(kind: MessageKind): boolean {
  return kind !== "blocks" && kind !== "addresses" && kind !== "record" &&
    kind !== "txAnnounce" && kind !== "getTxs" && kind !== "txs";
}

/** Largest payload each type may carry, checked against the frame header before reading it. */
export const MAX_PAYLOAD_BYTES: Record<MessageKind, number> = {
  hello: 512,
  helloAck: SIGNATURE_LENGTH,
  ping: 48,
  pong: 48,
  getAddresses: 0,
  addresses: 4 + MESSAGE_LIMITS.maxAddresses * (4 + MESSAGE_LIMITS.maxAddressBytes + 8),
  goodbye: 4 + MESSAGE_LIMITS.maxGoodbyeReasonBytes,
  getBlocks: 12,
  blocks: 8 * 1024 * 1024,
  blockAnnounce: 8 + HASH_LENGTH,
  proposal: 8 * 1024 * 1024,
  vote: 1 + 8 + 4 + HASH_LENGTH + PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH,
  haveVotes: 8 + 4 + 1 + 4 + MAX_HAVE_VOTES_BITMAP_BYTES,
  voterLinks: HASH_LENGTH + 4 + MAX_HAVE_VOTES_BITMAP_BYTES,
  record: 1 + 4 + CHAIN_LIMITS.maxRecordBytes,
  txAnnounce: 4 + MESSAGE_LIMITS.maxTxsPerMessage * HASH_LENGTH,
  getTxs: 4 + MESSAGE_LIMITS.maxTxsPerMessage * HASH_LENGTH,
  txs: 4 + MESSAGE_LIMITS.maxTxsPerMessage * (4 + CHAIN_LIMITS.maxTransactionBytes),
};

export function writePayload(w: ByteWriter, m: Message): void {
  switch (m.kind) {
    case "hello":
      w.u32(m.protocolVersion).u32(m.magic).fixed(m.genesisHash, HASH_LENGTH)
        .fixed(m.nodeId, PUBLIC_KEY_LENGTH).string(m.listenAddress).u64(m.bestHeight)
        .fixed(m.bestHash, HASH_LENGTH).string(m.userAgent)
        .fixed(m.nonce, HANDSHAKE_NONCE_LENGTH);
      return;
    case "helloAck":
      w.fixed(m.signature, SIGNATURE_LENGTH);
      return;
    case "ping":
    case "pong":
      w.u64big(m.nonce).u64(m.bestHeight).fixed(m.bestHash, HASH_LENGTH);
      return;
    case "getAddresses":
      return;
    case "addresses":
      writeList(w, m.entries, (w, e) => w.string(e.address).u64(e.lastSeen));
      return;
    case "goodbye":
      w.string(m.reason);
      return;
    case "getBlocks":
      w.u64(m.fromHeight).u32(m.count);
      return;
    case "blocks":
      w.u64(m.fromHeight);
      writeList(w, m.blocks, (w, b) => w.bytes(b));
      return;
    case "blockAnnounce":
      w.u64(m.height).fixed(m.hash, HASH_LENGTH);
      return;
    case "proposal":
      writeProposal(w, m.proposal);
      return;
    case "vote":
      writeVote(w, m.vote);
      return;
    case "haveVotes":
      w.u64(m.height).u32(m.round).u8(m.type).bytes(m.bitmap);
      return;
    case "voterLinks":
      w.fixed(m.setHash, HASH_LENGTH).bytes(m.bitmap);
      return;
    case "record":
      w.u8(m.record.type).bytes(m.record.data);
      return;
    case "txAnnounce":
    case "getTxs":
      writeList(w, m.ids, (w, id) => w.fixed(id, HASH_LENGTH));
      return;
    case "txs":
      writeList(w, m.txs, (w, tx) => w.bytes(tx));
      return;
  }
}

function readPayload(kind: MessageKind, r: ByteReader): Message {
  switch (kind) {
    case "hello": {
      const protocolVersion = r.u32();
      const magic = r.u32();
      const genesisHash = r.fixed(HASH_LENGTH).slice();
      const nodeId = r.fixed(PUBLIC_KEY_LENGTH).slice();
      const listenAddress = r.string(MESSAGE_LIMITS.maxAddressBytes);
      const bestHeight = r.u64();
      const bestHash = r.fixed(HASH_LENGTH).slice();
      const userAgent = r.string(MESSAGE_LIMITS.maxUserAgentBytes);
      const nonce = r.fixed(HANDSHAKE_NONCE_LENGTH).slice();
      return {
        kind,
        protocolVersion,
        magic,
        genesisHash,
        nodeId,
        listenAddress,
        bestHeight,
        bestHash,
        userAgent,
        nonce,
      };
    }
    case "helloAck":
      return { kind, signature: r.fixed(SIGNATURE_LENGTH).slice() };
    case "ping":
    case "pong":
      return {
        kind,
        nonce: r.u64big(),
        bestHeight: r.u64(),
        bestHash: r.fixed(HASH_LENGTH).slice(),
      };
    case "getAddresses":
      return { kind };
    case "addresses":
      return {
        kind,
        entries: r.list(MESSAGE_LIMITS.maxAddresses, (r) => ({
          address: r.string(MESSAGE_LIMITS.maxAddressBytes),
          lastSeen: r.u64(),
        })),
      };
    case "goodbye":
      return { kind, reason: r.string(MESSAGE_LIMITS.maxGoodbyeReasonBytes) };
    case "getBlocks": {
      const fromHeight = r.u64();
      const count = r.u32();
      if (count > MESSAGE_LIMITS.maxBlocksPerBatch) {
        throw new DecodeError(`getBlocks count ${count} too large`);
      }
      return { kind, fromHeight, count };
    }
    case "blocks": {
      const fromHeight = r.u64();
      const blocks = r.list(
        MESSAGE_LIMITS.maxBlocksPerBatch,
        (r) => r.bytes(MESSAGE_LIMITS.maxEncodedBlockBytes).slice(),
      );
      return { kind, fromHeight, blocks };
    }
    case "blockAnnounce":
      return { kind, height: r.u64(), hash: r.fixed(HASH_LENGTH).slice() };
    case "proposal":
      return { kind, proposal: readProposal(r) };
    case "vote":
      return { kind, vote: readVote(r) };
    case "haveVotes": {
      const height = r.u64();
      const round = r.u32();
      const type = r.u8();
      if (type !== VoteType.Prevote && type !== VoteType.Precommit) {
        throw new DecodeError(`unknown vote type ${type}`);
      }
      return { kind, height, round, type, bitmap: r.bytes(MAX_HAVE_VOTES_BITMAP_BYTES).slice() };
    }
    case "voterLinks":
      return {
        kind,
        setHash: r.fixed(HASH_LENGTH).slice(),
        bitmap: r.bytes(MAX_HAVE_VOTES_BITMAP_BYTES).slice(),
      };
    case "record":
      return { kind, record: { type: r.u8(), data: r.bytes(CHAIN_LIMITS.maxRecordBytes).slice() } };
    case "txAnnounce":
    case "getTxs":
      return {
        kind,
        ids: r.list(MESSAGE_LIMITS.maxTxsPerMessage, (r) => r.fixed(HASH_LENGTH).slice()),
      };
    case "txs":
      return {
        kind,
        txs: r.list(
          MESSAGE_LIMITS.maxTxsPerMessage,
          (r) => r.bytes(CHAIN_LIMITS.maxTransactionBytes).slice(),
        ),
      };
  }
}

/** Payload bytes of `m` (no frame header). */
export function encodePayload(m: Message): Uint8Array {
  const w = new ByteWriter(64);
  writePayload(w, m);
  return w.finish();
}

/**
 * Decodes the payload of a frame whose type id is known. Throws `DecodeError` on anything
 * malformed, including trailing bytes. Unknown ids are the frame layer's business.
 */
export function decodePayload(kind: MessageKind, payload: Uint8Array): Message {
  if (payload.length > MAX_PAYLOAD_BYTES[kind]) {
    throw new DecodeError(
      `${kind} payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES[kind]}`,
    );
  }
  const r = new ByteReader(payload);
  const m = readPayload(kind, r);
  r.end();
  return m;
}
