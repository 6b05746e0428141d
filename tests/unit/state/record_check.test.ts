import assert from "node:assert/strict";
import { signBytes } from "../../../crypto/ed25519.ts";
import { recordFaultAtEveryHeight } from "../../../state/record_check.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { RecordType } from "../../../state/records.ts";
import { addr, key, NETWORK, StakeChain } from "./stake_support.ts";

Deno.test("record check: each record type's signatures, whatever the chain state", () => {
  const c = new StakeChain();
  const fault = (r: { type: number; data: Uint8Array }, network = NETWORK, hash = c.chainId) =>
    recordFaultAtEveryHeight(hash, network, r);
  const other = new Uint8Array(32).fill(7);
  const bond = c.bond("n1", "alice");
  assert.equal(fault(bond), null);
  assert.equal(fault(c.dereg("n1")), null);
  assert.equal(fault(c.unjail("n1")), null);
  assert.equal(fault(c.freeReg("n1")), null);
  assert.equal(fault({ type: RecordType.Data, data: new Uint8Array(3) }), null);
  // A record that is merely not applicable (nobody has funds, n1 is no member) is no fault here.
  assert.equal(fault(c.bond("n1", "nobody-with-funds")), null);
  assert.match(fault(bond, NETWORK, other)!, /record signature does not verify/);
  assert.match(
    fault(c.bond("n1", "alice", { ownerKey: key("mallory") }))!,
    /owner key does not match owner address/,
  );
  // The same key has another address on a network of another prefix.
  assert.equal(fault(bond, "mainnet"), "owner key does not match owner address");
  const ev = evidenceRecord(c.vote("g1", 2, 1), c.vote("g1", 2, 2));
  assert.equal(fault(ev), null);
  assert.match(fault(ev, NETWORK, other)!, /evidence signature does not verify/);
  const forged = { ...c.vote("g1", 2, 2), signature: signBytes(key("g2"), new Uint8Array(1)) };
  assert.match(fault(evidenceRecord(c.vote("g1", 2, 1), forged))!, /evidence signature/);
  assert.match(fault({ type: 6, data: new Uint8Array(5) })!, /^malformed record: /);
  assert.match(fault({ type: 99, data: new Uint8Array(5) })!, /^malformed record: unknown/);
  assert.match(fault({ type: 4, data: bond.data.subarray(0, 100) })!, /^malformed record: /);
  assert.equal(addr("alice").startsWith("ttime"), true);
});
