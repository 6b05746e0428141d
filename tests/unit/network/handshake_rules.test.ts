/**
 * The handshake's checks (network/handshake.ts) one at a time, on the pure functions: each
 * hello field that must match, the version floor at its exact boundary, and what the ack's
 * signature binds (our nonce, the chain, the signer's node id).
 */
import assert from "node:assert/strict";
import { keyPairFromSeed } from "../../../crypto/ed25519.ts";
import {
  checkAck,
  checkHello,
  handshakeSignBytes,
  type LocalIdentity,
  makeAck,
} from "../../../network/handshake.ts";
import { type Hello, MIN_PROTOCOL_VERSION } from "../../../network/messages.ts";

const MAGIC = 0x7e57_0001;
const GENESIS = new Uint8Array(32).fill(0x11);
const OTHER_GENESIS = new Uint8Array(32).fill(0x12);
const alice: LocalIdentity = {
  key: keyPairFromSeed(new Uint8Array(32).fill(1)),
  magic: MAGIC,
  genesisHash: GENESIS,
};
const bob: LocalIdentity = {
  key: keyPairFromSeed(new Uint8Array(32).fill(2)),
  magic: MAGIC,
  genesisHash: GENESIS,
};
const mallory = keyPairFromSeed(new Uint8Array(32).fill(3));

function helloFrom(who: LocalIdentity, overrides: Partial<Hello> = {}): Hello {
  return {
    kind: "hello",
    protocolVersion: MIN_PROTOCOL_VERSION,
    magic: who.magic,
    genesisHash: who.genesisHash,
    nodeId: who.key.publicKey,
    listenAddress: "127.0.0.1:24100",
    bestHeight: 0,
    bestHash: who.genesisHash,
    userAgent: "test",
    nonce: new Uint8Array(32).fill(0x5a),
    ...overrides,
  };
}

Deno.test("handshake: a matching hello at the minimum version is accepted", () => {
  assert.equal(checkHello(alice, helloFrom(bob)), null);
  assert.equal(
    checkHello(alice, helloFrom(bob, { protocolVersion: MIN_PROTOCOL_VERSION + 1 })),
    null,
  );
});

Deno.test("handshake: each mismatching hello field has its own failure", () => {
  assert.equal(checkHello(alice, helloFrom(bob, { magic: MAGIC + 1 })), "wrong-magic");
  assert.equal(checkHello(alice, helloFrom(bob, { genesisHash: OTHER_GENESIS })), "wrong-genesis");
  assert.equal(
    checkHello(alice, helloFrom(bob, { protocolVersion: MIN_PROTOCOL_VERSION - 1 })),
    "old-version",
  );
  assert.equal(checkHello(alice, helloFrom(alice)), "self-connection");
});

Deno.test("handshake: failures are reported in order magic, genesis, version, self", () => {
  const allWrong = helloFrom(alice, {
    magic: MAGIC + 1,
    genesisHash: OTHER_GENESIS,
    protocolVersion: MIN_PROTOCOL_VERSION - 1,
  });
  assert.equal(checkHello(alice, allWrong), "wrong-magic");
  assert.equal(checkHello(alice, { ...allWrong, magic: MAGIC }), "wrong-genesis");
  assert.equal(
    checkHello(alice, { ...allWrong, magic: MAGIC, genesisHash: GENESIS }),
    "old-version",
  );
});

Deno.test("handshake: an honest ack over our nonce verifies", () => {
  const ourHello = helloFrom(alice, { nonce: new Uint8Array(32).fill(0x77) });
  const bobHello = helloFrom(bob);
  const ack = makeAck(bob, ourHello);
  assert.equal(ack.kind, "helloAck");
  assert.equal(checkAck(alice, ourHello.nonce, bobHello, ack), true);
});

Deno.test("handshake: an ack is refused for another nonce, chain or claimed node id", () => {
  const ourHello = helloFrom(alice, { nonce: new Uint8Array(32).fill(0x77) });
  const bobHello = helloFrom(bob);
  const ack = makeAck(bob, ourHello);
  // Replayed from a session with another challenge.
  assert.equal(checkAck(alice, new Uint8Array(32).fill(0x78), bobHello, ack), false);
  // Signed for another chain.
  const otherChainAck = makeAck({ ...bob, genesisHash: OTHER_GENESIS }, ourHello);
  assert.equal(checkAck(alice, ourHello.nonce, bobHello, otherChainAck), false);
  // Mallory claims bob's node id but holds only her own key.
  const forged = makeAck({ ...bob, key: mallory }, ourHello);
  assert.equal(checkAck(alice, ourHello.nonce, bobHello, forged), false);
  // Mallory's own valid ack does not prove bob's identity either.
  assert.equal(
    checkAck(alice, ourHello.nonce, { ...bobHello, nodeId: mallory.publicKey }, forged),
    true,
  );
  assert.equal(
    checkAck(alice, ourHello.nonce, bobHello, { ...ack, signature: forged.signature }),
    false,
  );
});

Deno.test("handshake: the signed bytes bind domain, genesis, challenge and signer", () => {
  const challenge = new Uint8Array(32).fill(0x33);
  const signer = new Uint8Array(32).fill(0x44);
  const bytes = handshakeSignBytes(GENESIS, challenge, signer);
  const domain = new TextEncoder().encode("timenode/handshake/v1");
  assert.deepEqual(bytes, new Uint8Array([...domain, ...GENESIS, ...challenge, ...signer]));
});
