/**
 * The record codec's exact edges (state/records.ts): the signed bytes as a fixed layout every
 * node must agree on, the tier table's last index, the control-character range at both ends,
 * and the reasons a record is refused.
 */
import assert from "node:assert/strict";
import { keyPairFromSeed } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { ByteWriter, DecodeError } from "../../../encoding/binary.ts";
import {
  decodeRecord,
  encodeRecord,
  RECORD_LIMITS,
  recordSignBytes,
  RecordType,
  recordTypeName,
  type Registration,
  signRegistration,
} from "../../../state/records.ts";

const text = new TextEncoder();
const key = keyPairFromSeed(sha256(text.encode("record-codec-rules/key")));
const chain = sha256(text.encode("record-codec-rules/chain"));

function raw(tierIndex: number, rewardAddress: string, address: string): Uint8Array {
  return new ByteWriter().fixed(key.publicKey, 32).u64(5).u64(77).u8(tierIndex)
    .string(rewardAddress).string(address).fixed(new Uint8Array(64), 64).finish();
}

function decodeRegistration(data: Uint8Array): Registration {
  return decodeRecord({ type: RecordType.Registration, data }) as Registration;
}

Deno.test("records: the signed bytes are domain, chain id, type, then the body", () => {
  const unsigned = {
    type: RecordType.Registration,
    nodeId: key.publicKey,
    nonce: 5,
    expiresAt: 77,
    tier: "gold",
    rewardAddress: "r",
    address: "a:1",
  } as const;
  const expected = new ByteWriter()
    .raw(text.encode("timenode/record/v1"))
    .fixed(chain, 32)
    .u8(1)
    .fixed(key.publicKey, 32).u64(5).u64(77).u8(3).string("r").string("a:1")
    .finish();
  assert.deepEqual(recordSignBytes(chain, unsigned), expected);
  const dereg = { type: RecordType.Deregistration, nodeId: key.publicKey, nonce: 2, expiresAt: 9 };
  assert.deepEqual(
    recordSignBytes(chain, dereg),
    new ByteWriter().raw(text.encode("timenode/record/v1")).fixed(chain, 32).u8(2)
      .fixed(key.publicKey, 32).u64(2).u64(9).finish(),
  );
});

Deno.test("records: the block form is the body followed by the signature", () => {
  const rec = signRegistration(key, {
    genesisHash: chain,
    nonce: 5,
    expiresAt: 77,
    rewardAddress: "r",
    address: "a:1",
    tier: "bronze",
  });
  const decoded = decodeRegistration(rec.data);
  assert.equal(decoded.tier, "bronze");
  const body = new ByteWriter().fixed(key.publicKey, 32).u64(5).u64(77).u8(1).string("r")
    .string("a:1").finish();
  assert.deepEqual(rec.data, new Uint8Array([...body, ...decoded.signature]));
  assert.deepEqual(encodeRecord(decoded), rec);
});

Deno.test("records: the tier table ends at gold (index 3)", () => {
  assert.equal(decodeRegistration(raw(0, "r", "a")).tier, "free");
  assert.equal(decodeRegistration(raw(3, "r", "a")).tier, "gold");
  assert.throws(
    () => decodeRegistration(raw(4, "r", "a")),
    /^DecodeError: unknown tier 4$|unknown tier 4/,
  );
});

Deno.test("records: control characters are refused at both ends of their range", () => {
  for (const c of ["\u0000", "\u001f", "\u007f"]) {
    assert.throws(
      () => decodeRegistration(raw(0, `r${c}`, "a")),
      /control character in reward address/,
    );
    assert.throws(() => decodeRegistration(raw(0, "r", `a${c}`)), /control character in address/);
  }
  // Printable neighbours are fine.
  const ok = decodeRegistration(raw(0, "r ~", "a\u0080"));
  assert.equal(ok.rewardAddress, "r ~");
  assert.equal(ok.address, "a\u0080");
});

Deno.test("records: empty fields are refused, naming the field", () => {
  assert.throws(() => decodeRegistration(raw(0, "", "a")), /empty reward address/);
  assert.throws(() => decodeRegistration(raw(0, "r", "")), /empty address/);
});

Deno.test("records: address bounds are 128 and 64 bytes exactly", () => {
  assert.equal(RECORD_LIMITS.maxRewardAddressBytes, 128);
  assert.equal(RECORD_LIMITS.maxAddressBytes, 64);
  const longest = decodeRegistration(raw(0, "r".repeat(128), "a".repeat(64)));
  assert.equal(longest.rewardAddress.length, 128);
  assert.equal(longest.address.length, 64);
});

Deno.test("records: unknown types and the refusal of the signer name what went wrong", () => {
  assert.throws(
    () => decodeRecord({ type: RecordType.Data, data: new Uint8Array(0) }),
    (e: unknown) => e instanceof DecodeError && e.message === "unknown record type 3",
  );
  assert.equal(recordTypeName(RecordType.Data), "data");
  assert.equal(recordTypeName(RecordType.Registration), "registration");
  assert.equal(recordTypeName(0), "unknown(0)");
  assert.throws(
    () =>
      signRegistration(key, {
        genesisHash: chain,
        nonce: 0,
        expiresAt: 1,
        rewardAddress: "r",
        address: "",
      }),
    (e: unknown) =>
      e instanceof RangeError && e.message === "unencodable registration: empty address",
  );
});

/** A collateral registration's body (type 4) with a zero signature and owner signature. */
function rawCollateral(
  tierIndex: number,
  fields: { reward?: string; address?: string; owner?: string } = {},
): Uint8Array {
  return new ByteWriter().fixed(key.publicKey, 32).u64(5).u64(77).u8(tierIndex)
    .string(fields.reward ?? "r").string(fields.address ?? "a").string(fields.owner ?? "o")
    .fixed(new Uint8Array(32).fill(7), 32).fixed(new Uint8Array(64), 64)
    .fixed(new Uint8Array(64), 64).finish();
}

Deno.test("records: a collateral registration takes the paid tiers 1 to 3 only; its fields are named when refused", () => {
  const decode = (data: Uint8Array) =>
    decodeRecord({ type: RecordType.CollateralRegistration, data });
  assert.equal(recordTypeName(RecordType.CollateralRegistration), "collateral registration");
  assert.equal((decode(rawCollateral(3)) as { tier: string }).tier, "gold");
  for (const tier of [0, 4, 255]) {
    assert.throws(() => decode(rawCollateral(tier)), new RegExp(`tier ${tier} is not a paid tier`));
  }
  assert.throws(() => decode(rawCollateral(1, { reward: "" })), /empty reward address/);
  assert.throws(() => decode(rawCollateral(1, { address: "" })), /empty address/);
  assert.throws(() => decode(rawCollateral(1, { owner: "" })), /empty owner/);
});
