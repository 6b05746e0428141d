/**
 * Handshake rules, pure. Both sides send `hello` first, whoever dialed; each answers the
 * other's hello with `helloAck`, a signature over the other's nonce proving it holds the key
 * of the node id it claims. Nothing else may pass in either direction until both are done
 * (docs/lessons.md#8).
 *
 * Owns: the checks on a peer's hello (version, magic, genesis, self-connection) and on its
 * ack (signature), and the bytes signed.
 * Must never: accept any other message before the handshake completes.
 */
import { bytesEqual, ByteWriter } from "../encoding/binary.ts";
import { HASH_LENGTH } from "../crypto/hash.ts";
import { type KeyPair, signBytes, verifySignature } from "../crypto/ed25519.ts";
import { type Hello, type HelloAck, MIN_PROTOCOL_VERSION } from "./messages.ts";

const HANDSHAKE_DOMAIN = new TextEncoder().encode("timenode/handshake/v1");

/** Why a handshake failed; each is a `timenode_peer_disconnects_total` reason. */
export type HandshakeFailure =
  | "wrong-magic"
  | "wrong-genesis"
  | "old-version"
  | "self-connection"
  | "bad-signature"
  | "bad-hello"
  | "message-before-handshake"
  | "handshake-timeout";

export interface LocalIdentity {
  key: KeyPair;
  magic: number;
  genesisHash: Uint8Array;
}

/** What the signer proves: it holds `signerNodeId`'s key and answers `challenge` on this chain. */
export function handshakeSignBytes(
  genesisHash: Uint8Array,
  challenge: Uint8Array,
  signerNodeId: Uint8Array,
): Uint8Array {
  return new ByteWriter(128).raw(HANDSHAKE_DOMAIN).fixed(genesisHash, HASH_LENGTH).raw(challenge)
    .fixed(signerNodeId, 32).finish();
}

export function checkHello(local: LocalIdentity, hello: Hello): HandshakeFailure | null {
  if (hello.magic !== local.magic) return "wrong-magic";
  if (!bytesEqual(hello.genesisHash, local.genesisHash)) return "wrong-genesis";
  if (hello.protocolVersion < MIN_PROTOCOL_VERSION) return "old-version";
  if (bytesEqual(hello.nodeId, local.key.publicKey)) return "self-connection";
  return null;
}

export function makeAck(local: LocalIdentity, peerHello: Hello): HelloAck {
  return {
    kind: "helloAck",
    signature: signBytes(
      local.key,
      handshakeSignBytes(local.genesisHash, peerHello.nonce, local.key.publicKey),
    ),
  };
}

export function checkAck(
  local: LocalIdentity,
  ourNonce: Uint8Array,
  peerHello: Hello,
  ack: HelloAck,
): boolean {
  return verifySignature(
    peerHello.nodeId,
    handshakeSignBytes(local.genesisHash, ourNonce, peerHello.nodeId),
    ack.signature,
  );
}
