/**
 * Edges of the state machine (state/state.ts) that the first Stryker run of the module found
 * unpinned (docs/testing.md, fifth pass): a stored set with an unknown tier, the genesis set in
 * node id order whatever the genesis file's order, a code-built genesis whose alloc misses
 * collateral, the exact refusal of a transfer with a bad signature, a verified cache without
 * `add`, the u128 bound on the recipient (and not on oneself), a corrupt account met while
 * applying a transfer, a new member not counted for downtime before it is active, the reasons a
 * tombstoned node's records are refused, a free registrant's missing owner, and the refusals of
 * malformed and future evidence.
 */
import assert from "node:assert/strict";
import { InvalidBlockError } from "../../../chain/api.ts";
import type { Genesis } from "../../../chain/genesis.ts";
import { accountKey, encodeAccount } from "../../../state/accounts.ts";
import { MAX_AMOUNT } from "../../../state/amount.ts";
import { evidenceRecord } from "../../../state/evidence.ts";
import { RecordType, signDeregistration } from "../../../state/records.ts";
import { createStateMachine } from "../../../state/state.ts";
import { transactionIdHex } from "../../../state/transaction.ts";
import { addr, idOf, key, StakeChain, stakeGenesis } from "./stake_support.ts";

const liveKey = (name: string) => `mn/live/${idOf(name)}`;
const short = (name: string) => idOf(name).slice(0, 12);

Deno.test("state edges: a stored set with a tier index past the last tier is corrupt", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // the set of 4 is stored: g0, g1, g2
  const dataKey = [...c.entries.keys()].find((k) => k.startsWith("vs/set/"))!;
  const bytes = c.entries.get(dataKey)!.slice();
  // The list count (u32), then the first member: its 32-byte node id, then its tier byte.
  const tierAt = 4 + 32;
  assert.equal(bytes[tierAt], 1, "bronze is tier 1");
  bytes[tierAt] = 4; // free, bronze, silver, gold are 0..3
  c.entries.set(dataKey, bytes);
  const fresh = createStateMachine(c.genesis); // no cached sets
  assert.throws(
    () => fresh.validatorSetFor(c.view, c.tip, 4),
    /^Error: consensus state is corrupt \(vs\/set\/[0-9a-f]{64}\): unknown tier 4$/,
  );
  bytes[tierAt] = 3; // gold: a known tier decodes
  assert.equal(
    createStateMachine(c.genesis).validatorSetFor(c.view, c.tip, 4)!.validators.length,
    3,
  );
});

Deno.test("state edges: the genesis set is in node id order whatever the genesis lists first", () => {
  const c = new StakeChain();
  // stakeGenesis lists g0..g3, which is not their node id order.
  const listed = c.genesis.masternodes.map((m) => m.nodeId);
  assert.notDeepEqual(listed, [...listed].sort(), "the fixture is out of order");
  c.apply();
  // A newcomer joins and leaves in one block: the set of height 4 is the genesis set again, so
  // no snapshot is written, only the newcomer's record nonce.
  const joinAndLeave = [
    c.freeReg("n1"),
    signDeregistration(key("n1"), { genesisHash: c.chainId, nonce: 1, expiresAt: c.tip + 100 }),
  ];
  const keys = c.writtenKeys({ records: joinAndLeave });
  assert.ok(keys.includes(`mn/nonce/${idOf("n1")}`), keys.join());
  assert.equal(keys.some((k) => k.startsWith("vs/")), false, keys.join());
});

Deno.test("state edges: block 1 of a code-built genesis whose alloc misses collateral is a bug", () => {
  // parseGenesis refuses this genesis; one built in code reaches the state machine.
  const g = stakeGenesis();
  const genesis: Genesis = { ...g, alloc: { ...g.alloc, [addr("own-g1")]: "9" } };
  const c = new StakeChain(genesis);
  assert.throws(
    () => c.apply(),
    (e: unknown) =>
      e instanceof Error && !(e instanceof InvalidBlockError) &&
      e.message === `genesis alloc of ${addr("own-g1")} does not cover its members' collateral`,
  );
});

Deno.test("state edges: a transfer with a bad signature is refused naming its index and id", () => {
  const c = new StakeChain();
  c.apply();
  const good = c.transfer("alice", "bob", 5n);
  const forged = good.slice();
  forged[forged.length - 1] ^= 1; // the signature is the last 64 bytes
  const id = transactionIdHex(forged);
  assert.equal(
    c.refusal({ transactions: [forged] }),
    `transaction 0 ${id.slice(0, 16)}: bad-signature: the signature does not verify`,
  );
});

Deno.test("state edges: a verified cache without add is only asked, never told", () => {
  const asked: string[] = [];
  const c = new StakeChain();
  const sm = createStateMachine(c.genesis, {
    verified: { has: (id) => (asked.push(id), false) },
  });
  c.apply();
  const tx = c.transfer("alice", "bob", 5n);
  const writes = sm.apply(c.view, c.block({ transactions: [tx] }));
  assert.deepEqual(asked, [transactionIdHex(tx)]);
  assert.ok(writes.has(accountKey(addr("bob"))), "the transfer applied");
});

Deno.test("state edges: the recipient's balance stays within u128; sending to oneself is exempt", () => {
  const c = new StakeChain();
  c.apply();
  c.entries.set(accountKey(addr("alice")), encodeAccount({ balance: MAX_AMOUNT - 50n, nonce: 0 }));
  // Alice to herself: her balance plus the amount passes 2^128, but she only pays the fee.
  assert.equal(c.refusal({ transactions: [c.transfer("alice", "alice", 100n)] }), "accepted");
  c.apply({ transactions: [c.transfer("alice", "alice", 100n)] });
  assert.equal(c.account("alice").balance, MAX_AMOUNT - 50n - 10_000n);
  // Bob to alice: one unit more than her room below 2^128 - 1.
  assert.match(
    c.refusal({
      transactions: [c.transfer("bob", "alice", MAX_AMOUNT - c.account("alice").balance + 1n)],
    }),
    /^transaction 0 [0-9a-f]{16}: amount-overflow: amount \d+ \+ fee overflows u128$/,
  );
  assert.equal(
    c.refusal({
      transactions: [c.transfer("bob", "alice", MAX_AMOUNT - c.account("alice").balance)],
    }),
    "accepted",
    "up to exactly 2^128 - 1 is fine",
  );
});

Deno.test("state edges: a corrupt account met while applying a transfer stops the node", () => {
  const c = new StakeChain();
  c.apply();
  c.entries.set(accountKey(addr("alice")), new Uint8Array(3));
  assert.throws(
    () => c.sm.apply(c.view, c.block({ transactions: [c.transfer("alice", "bob", 5n)] })),
    (e: unknown) =>
      e instanceof Error && !(e instanceof InvalidBlockError) &&
      e.message.startsWith(`consensus state is corrupt (acct/${addr("alice")}): `),
  );
});

Deno.test("state edges: a new member is not counted for downtime before it is active", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.bond("n1", "alice")] }); // block 2: n1 certifies from 4
  assert.equal(c.power("n1", 4), 1);
  c.apply(); // block 3: its lastCommit is height 2's, which n1 was not asked to sign
  c.apply(); // block 4: height 3's, likewise
  assert.equal(c.info("n1")!.missedBlocks, 0);
  assert.equal(c.entries.has(liveKey("n1")), false);
  c.apply(); // block 5: height 4's lastCommit carries n1's signature (every voting member)
  assert.equal(c.info("n1")!.missedBlocks, 0);
  c.apply({ signers: ["g0", "g1", "g2", "g3"] }); // block 6: n1 missed height 5
  assert.equal(c.info("n1")!.missedBlocks, 1, "counted from its first height");
});

Deno.test("state edges: a tombstoned node's deregistration and unjail say it is not a member", () => {
  const c = new StakeChain();
  c.run(2);
  c.apply({ records: [evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2))] }); // block 3
  assert.equal(c.info("g3")!.status, "tombstoned");
  assert.equal(
    c.refusal({ records: [c.dereg("g3")] }),
    `record 0: deregistration of ${short("g3")}: not a member`,
  );
  assert.equal(
    c.refusal({ records: [c.unjail("g3")] }),
    `record 0: unjail of ${short("g3")}: not jailed`,
  );
  // Only a registration is refused for the tombstone itself.
  assert.equal(
    c.refusal({ records: [c.freeReg("g3")] }),
    `record 0: registration of ${short("g3")}: tombstoned for double signing`,
  );
});

Deno.test("state edges: a free registrant has no owner and locks nothing", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.freeReg("n1")] });
  const n1 = c.info("n1")!;
  assert.equal(n1.tier, "free");
  assert.equal(n1.owner, null);
  assert.equal(n1.collateralUnits, "0");
});

Deno.test("state edges: malformed evidence is a bad record with the decoder's reason", () => {
  const c = new StakeChain();
  c.run(2);
  for (
    const [data, why] of [
      [new Uint8Array([9]), "unknown evidence kind 9"],
      [new Uint8Array(0), "truncated"],
    ] as const
  ) {
    let error: unknown;
    try {
      c.sm.apply(c.view, c.block({ records: [{ type: RecordType.Evidence, data }] }));
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof InvalidBlockError, String(error));
    assert.equal(error.reason, "bad-records");
    assert.ok(error.message.startsWith(`record 0: evidence: ${why}`), error.message);
  }
});

Deno.test("state edges: evidence of a future height names the validator and the height", () => {
  const c = new StakeChain();
  c.run(3); // the next block is 4
  const evidence = evidenceRecord(c.vote("g2", 9, 1), c.vote("g2", 9, 2));
  assert.equal(
    c.refusal({ records: [evidence] }),
    `record 0: evidence against ${short("g2")} at height 9: a future height`,
  );
});
