/**
 * The validator set as consensus state (chain/validators.ts): its hash is a fixed encoding every
 * node must agree on, members are looked up by id, and the two power thresholds (> 2/3 for a
 * quorum, > 1/3 for the f+1 round skip) are strict at their exact boundaries.
 */
import assert from "node:assert/strict";
import { sha256 } from "../../../crypto/hash.ts";
import { ByteWriter, toHex } from "../../../encoding/binary.ts";
import {
  hasOneThird,
  hasQuorum,
  makeValidatorSet,
  type Validator,
} from "../../../chain/validators.ts";

function member(idByte: number, power: number): Validator {
  return {
    nodeId: new Uint8Array(32).fill(idByte),
    tier: "gold",
    power,
    rewardAddress: `addr-${idByte}`,
    address: `127.0.0.1:${24000 + idByte}`,
  };
}

Deno.test("validator set: the hash covers domain, count, then each id and power in id order", () => {
  const set = makeValidatorSet([member(0x22, 5), member(0x11, 7)]);
  const expected = new ByteWriter()
    .raw(new TextEncoder().encode("timenode/validator-set/v1"))
    .u32(2)
    .fixed(new Uint8Array(32).fill(0x11), 32).u64(7)
    .fixed(new Uint8Array(32).fill(0x22), 32).u64(5)
    .finish();
  assert.deepEqual(set.hash, sha256(expected));
  assert.deepEqual(set.validators.map((v) => v.nodeId[0]), [0x11, 0x22]);
  assert.equal(set.totalPower, 12);
});

Deno.test("validator set: a member appearing twice is refused", () => {
  assert.throws(
    () => makeValidatorSet([member(1, 1), member(2, 1), member(1, 3)]),
    /duplicate validator in set/,
  );
});

Deno.test("validator set: members are found by hex id; strangers have no power", () => {
  const a = member(0xa1, 3);
  const set = makeValidatorSet([a, member(0xb2, 4)]);
  assert.equal(set.get(toHex(a.nodeId)), a);
  assert.equal(set.powerOf(toHex(a.nodeId)), 3);
  assert.equal(set.get("00".repeat(32)), undefined);
  assert.equal(set.powerOf("00".repeat(32)), 0);
});

Deno.test("quorum: strictly more than 2/3 of the power, exactly 2/3 is not enough", () => {
  assert.equal(hasQuorum(2, 3), false);
  assert.equal(hasQuorum(3, 3), true);
  assert.equal(hasQuorum(4, 6), false);
  assert.equal(hasQuorum(5, 6), true);
  assert.equal(hasQuorum(66, 100), false);
  assert.equal(hasQuorum(67, 100), true);
});

Deno.test("f+1: strictly more than 1/3 of the power, exactly 1/3 is not enough", () => {
  assert.equal(hasOneThird(1, 3), false);
  assert.equal(hasOneThird(2, 3), true);
  assert.equal(hasOneThird(2, 6), false);
  assert.equal(hasOneThird(3, 6), true);
  assert.equal(hasOneThird(33, 100), false);
  assert.equal(hasOneThird(34, 100), true);
});

Deno.test("validator set: only members with power vote; a free member is listed but not voting", () => {
  // Free-tier registrations are members with power 0: they are listed (the set's hash covers
  // them) but never counted as voters, so they cannot lengthen a certificate or a proposer turn.
  const set = makeValidatorSet([member(0x33, 0), member(0x11, 2), member(0x22, 1)]);
  assert.deepEqual(set.validators.map((v) => v.nodeId[0]), [0x11, 0x22, 0x33]);
  assert.deepEqual(set.voting.map((v) => v.nodeId[0]), [0x11, 0x22]);
  assert.equal(set.totalPower, 3);
  assert.equal(set.powerOf(toHex(new Uint8Array(32).fill(0x33))), 0);
});
