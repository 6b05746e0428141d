import assert from "node:assert/strict";
import { signBytes } from "../../../crypto/ed25519.ts";
import { VoteType } from "../../../chain/block.ts";
import { InvalidBlockError } from "../../../chain/api.ts";
import {
  assembleCollateralRegistration,
  collateralRegistrationSignBytes,
  signRegistration,
} from "../../../state/records.ts";
import { evidenceRecord, proposalEvidenceRecord } from "../../../state/evidence.ts";
import { accountKey, accountOf, encodeAccount } from "../../../state/accounts.ts";
import { addr, idOf, key, StakeChain, stakeGenesis, TIME } from "./stake_support.ts";

const FEE = 10_000n;

/** Every coin on the chain: spendable, locked and unbonding, over all accounts. */
function supply(c: StakeChain): bigint {
  let total = 0n;
  for (const k of c.entries.keys()) {
    if (!k.startsWith("acct/")) continue;
    const a = accountOf(c.view, k.slice("acct/".length));
    total += a.balance + a.locked + a.unbonding.reduce((s, e) => s + e.amount, 0n);
  }
  return total;
}

Deno.test("stake: genesis collateral is locked by block 1 and cannot be spent", () => {
  const c = new StakeChain();
  c.apply();
  assert.deepEqual(c.account("own-g0"), {
    balance: 0n,
    nonce: 0,
    locked: 10n * TIME,
    unbonding: [],
  });
  assert.match(
    c.refusal({ transactions: [c.transfer("own-g0", "carol", TIME)] }),
    /insufficient-balance/,
  );
  const g0 = c.info("g0")!;
  assert.equal(g0.owner, addr("own-g0"));
  assert.equal(g0.collateral, "10");
  assert.equal(g0.collateralUnits, String(10n * TIME));
  assert.equal(g0.status, "active");
  assert.equal(g0.power, 1);
  assert.equal(g0.rewardWeight, 10);
});

Deno.test("stake: a collateral registration locks the owner's coins at once and votes from h + 2", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.bond("n1", "alice", { tier: "silver" })] }); // block 2
  assert.equal(c.account("alice").balance, 4_900n * TIME);
  assert.equal(c.account("alice").locked, 100n * TIME);
  assert.equal(c.set(3).get(idOf("n1")), undefined);
  assert.equal(c.power("n1", 4), 10);
  assert.equal(c.info("n1")!.status, "pending");
  assert.equal(c.info("n1")!.owner, addr("alice"));
  c.apply();
  assert.equal(c.info("n1")!.status, "active");
  // The new member proposes and is counted like any other.
  c.apply({ proposer: "n1" });
});

Deno.test("stake: each bad collateral registration is refused with its own reason", () => {
  const c = new StakeChain();
  c.apply();
  const params = {
    genesisHash: c.chainId,
    nonce: 0,
    expiresAt: 100,
    tier: "bronze" as const,
    rewardAddress: addr("reward-n1"),
    address: "10.0.0.1:1",
    owner: addr("alice"),
    ownerKey: key("alice").publicKey,
    nodeId: key("n1").publicKey,
  };
  const bytes = collateralRegistrationSignBytes(params);
  const assembled = (nodeSigner: string, ownerSigner: string) =>
    assembleCollateralRegistration(
      params,
      signBytes(key(nodeSigner), bytes),
      signBytes(key(ownerSigner), bytes),
    );
  const short = idOf("n1").slice(0, 12);
  const cases: [string, ReturnType<StakeChain["bond"]>, string][] = [
    [
      "insufficient spendable",
      c.bond("n1", "bob"),
      `record 0: collateral registration of ${short}: insufficient spendable balance: ${
        addr("bob")
      } has 5 TIME, bronze collateral is 10 TIME`,
    ],
    [
      "bad owner signature",
      assembled("n1", "mallory"),
      `record 0: collateral registration of ${short}: bad owner signature`,
    ],
    [
      "owner key not matching the owner address",
      c.bond("n1", "alice", { ownerKey: key("mallory") }),
      `record 0: collateral registration of ${short}: owner key does not match owner address ${
        addr("alice")
      }`,
    ],
    [
      "bad node signature",
      assembled("mallory", "alice"),
      `record 0: collateral registration of ${short} has a bad signature`,
    ],
    [
      "already a member",
      c.bond("g0", "alice"),
      `record 0: collateral registration of ${idOf("g0").slice(0, 12)}: already a member`,
    ],
  ];
  for (const [name, record, message] of cases) {
    assert.equal(c.refusal({ records: [record] }), message, name);
  }
  assert.match(
    c.refusal({ records: [c.bond("n1", "alice", { ownerAddress: "nope" })] }),
    /owner nope: /,
  );
  // A paid tier through a plain registration: collateral is not optional.
  const plain = signRegistration(key("n1"), {
    genesisHash: c.chainId,
    nonce: 0,
    expiresAt: 100,
    rewardAddress: addr("reward-n1"),
    address: "10.0.0.1:1",
    tier: "gold",
  });
  assert.match(c.refusal({ records: [plain] }), /gold tier needs a collateral registration/);
  // Two bonds that each fit but not together: the second sees the first's lock.
  assert.match(
    c.refusal({ records: [c.bond("n1", "alice", { tier: "gold" })] }),
    /^accepted$/,
  );
  c.apply({ records: [c.bond("n1", "alice", { tier: "gold" })] });
  const n2 = c.bond("n2", "alice", { tier: "gold" });
  const n3 = c.bond("n3", "alice", { tier: "gold" });
  c.apply({ records: [n2, n3] }); // 5,000 - 1,000 = 4,000: room for both
  assert.equal(c.account("alice").balance, 2_000n * TIME);
  c.apply({
    records: [c.bond("n4", "alice", { tier: "gold" }), c.bond("n5", "alice", { tier: "gold" })],
  });
  assert.equal(c.account("alice").balance, 0n);
  assert.match(c.refusal({ records: [c.bond("n6", "alice")] }), /insufficient spendable balance/);
});

Deno.test("stake: deregistration unbonds; the coins are spendable at the release height, not before", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // block 2: release at 2 + 6 = 8
  assert.deepEqual(c.account("own-g3"), {
    balance: 0n,
    nonce: 0,
    locked: 0n,
    unbonding: [{ nodeId: idOf("g3"), amount: 10n * TIME, releaseHeight: 8 }],
  });
  assert.equal(c.info("g3")!.status, "unbonding");
  assert.equal(c.info("g3")!.leavingFrom, 4);
  assert.equal(c.set(4).get(idOf("g3")), undefined);
  // One bond per node id at a time.
  assert.match(
    c.refusal({ records: [c.bond("g3", "alice")] }),
    /its collateral is still unbonding until 8/,
  );
  c.run(4); // blocks 3..6
  const spend = c.transfer("own-g3", "carol", TIME);
  assert.match(c.refusal({ transactions: [spend] }), /insufficient-balance/, "height 7 < 8");
  c.apply(); // block 7
  c.apply({ transactions: [spend] }); // block 8: released before its transfers
  assert.deepEqual(c.account("own-g3"), {
    balance: 9n * TIME - FEE,
    nonce: 1,
    locked: 0n,
    unbonding: [],
  });
  assert.ok(![...c.entries.keys()].some((k) => k.startsWith("unbond/") || k.includes("unbond/")));
  // Unbonded, the node may bond again.
  c.apply({ records: [c.bond("g3", "alice")] });
});

Deno.test("stake: a member absent more than missedBlocksMax of the window is jailed from h + 2", () => {
  const c = new StakeChain();
  const online = ["g0", "g1", "g2"];
  c.apply();
  const rewardAfterBlock1 = c.account("reward-g3").balance;
  c.run(3, online); // blocks 2..4 count heights 1..3: three misses, the most allowed
  assert.equal(c.info("g3")!.missedBlocks, 3);
  assert.equal(c.info("g3")!.status, "active");
  c.apply({ signers: online }); // block 5: a fourth miss
  const g3 = c.info("g3")!;
  assert.equal(g3.status, "jailed");
  assert.equal(g3.jailedUntil, 10);
  assert.equal(c.power("g3", 6), 1, "the set of h + 1 was already fixed");
  assert.equal(c.power("g3", 7), 0);
  assert.equal(c.set(7).get(idOf("g3"))!.tier, "bronze", "still listed");
  assert.equal(c.account("own-g3").locked, 10n * TIME, "collateral stays locked");
  // Unjail rules.
  assert.match(c.refusal({ records: [c.unjail("g3")] }), /unjail of [0-9a-f]+: jailed until 10/);
  assert.match(c.refusal({ records: [c.unjail("g0")] }), /unjail of [0-9a-f]+: not jailed/);
  c.run(4, online); // blocks 6..9
  // A member that missed and is jailed earned nothing since it stopped signing.
  assert.equal(c.account("reward-g3").balance, rewardAfterBlock1);
  c.apply({ records: [c.unjail("g3")], signers: online }); // block 10
  assert.equal(c.power("g3", 11), 0);
  assert.equal(c.power("g3", 12), 1);
  assert.equal(c.info("g3")!.missedBlocks, 0, "unjail starts a clean window");
  c.run(2); // blocks 11, 12: everyone signs
  assert.equal(c.info("g3")!.status, "active");
  const before = c.account("reward-g3").balance;
  c.apply();
  assert.ok(c.account("reward-g3").balance > before, "signing again earns again");
});

Deno.test("stake: misses leave the window again, so spread-out misses never jail", () => {
  const c = new StakeChain();
  const online = ["g0", "g1", "g2"];
  c.apply();
  for (let round = 0; round < 5; round++) {
    c.run(3, online); // three misses ...
    c.run(7); // ... then signed until they leave the 10-height window
    assert.equal(c.info("g3")!.status, "active", `round ${round}`);
  }
  assert.equal(c.info("g3")!.missedBlocks, 3, "the last three misses are still in the window");
  c.run(3);
  assert.equal(c.info("g3")!.missedBlocks, 0);
  assert.ok(![...c.entries.keys()].some((k) => k.startsWith("mn/live/")), "no miss, no key");
  // Blocks without a lastCommit count nobody as missing.
  c.run(10, null);
  assert.equal(c.info("g3")!.missedBlocks, 0);
});

Deno.test("stake: jailing never leaves the active set without voting power", () => {
  const c = new StakeChain();
  c.apply();
  c.run(6, []); // nobody's signature arrives in any lastCommit
  const set = c.set(c.tip + 2);
  assert.equal(set.totalPower, 1);
  assert.equal(set.voting.length, 1);
  const jailed = c.sm.masternodeList(c.view, c.tip).filter((m) => m.status === "jailed");
  assert.equal(jailed.length, 3);
  // The chain goes on with the one member left.
  c.run(3, []);
  assert.equal(c.set(c.tip + 2).totalPower, 1);
});

Deno.test("stake: double-sign evidence slashes (burns), tombstones and removes from h + 2", () => {
  const c = new StakeChain();
  c.run(2); // tip 2
  const evidence = evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2));
  const before = supply(c);
  c.apply({ records: [evidence] }); // block 3
  const reward = BigInt(c.genesis.rewards.blockReward);
  assert.equal(supply(c), before + reward - TIME, "10% of 10 TIME is burned");
  assert.deepEqual(c.account("own-g3"), {
    balance: 0n,
    nonce: 0,
    locked: 0n,
    unbonding: [{ nodeId: idOf("g3"), amount: 9n * TIME, releaseHeight: 9 }],
  });
  assert.equal(c.info("g3")!.status, "tombstoned");
  assert.equal(c.power("g3", 4), 1);
  assert.equal(c.set(5).get(idOf("g3")), undefined);
  // Duplicate evidence (another conflicting pair of the same member) is invalid.
  const again = evidenceRecord(c.vote("g3", 3, 3), c.vote("g3", 3, 4, VoteType.Precommit));
  assert.match(c.refusal({ records: [again] }), /duplicate, already tombstoned/);
  assert.match(c.refusal({ records: [evidence] }), /duplicate, already tombstoned/);
  c.apply();
  // Tombstoned: never again, with or without collateral.
  assert.match(c.refusal({ records: [c.freeReg("g3")] }), /tombstoned for double signing/);
  // While its collateral still unbonds, tombstoned is the reason given (it outlasts the other).
  assert.match(c.refusal({ records: [c.bond("g3", "alice")] }), /tombstoned for double signing/);
  c.run(5); // blocks 5..9: block 9 releases the rest
  assert.equal(c.account("own-g3").balance, 9n * TIME);
  assert.match(c.refusal({ records: [c.bond("g3", "alice")] }), /tombstoned for double signing/);
});

Deno.test("stake: each bad evidence is refused with its own reason", () => {
  const c = new StakeChain();
  c.run(7); // tip 7; the next block is 8
  const ev = (node: string, height: number) =>
    evidenceRecord(c.vote(node, height, 1), c.vote(node, height, 2));
  assert.match(c.refusal({ records: [ev("g2", 2)] }), /at height 2: too old \(evidenceMaxAge 5\)/);
  assert.equal(c.refusal({ records: [ev("g2", 3)] }), "accepted", "8 - 3 = 5 is still in time");
  assert.match(c.refusal({ records: [ev("g2", 9)] }), /a future height/);
  assert.match(
    c.refusal({ records: [ev("stranger", 6)] }),
    /not a voting member of that height's set/,
  );
  const forged = { ...c.vote("g2", 6, 2), signature: c.vote("g1", 6, 2).signature };
  assert.match(
    c.refusal({ records: [evidenceRecord(c.vote("g2", 6, 1), forged)] }),
    /at height 6: bad signature/,
  );
  // No conflict, no evidence: the builder refuses it, and so would every decoder.
  assert.throws(() => evidenceRecord(c.vote("g2", 6, 1), c.vote("g2", 6, 1)), RangeError);
  assert.throws(
    () => evidenceRecord(c.vote("g2", 6, 1), c.vote("g2", 6, 2, VoteType.Prevote)),
    RangeError,
  );
  // Two pieces against one member in one block: the second is the duplicate.
  assert.match(
    c.refusal({ records: [ev("g2", 6), ev("g2", 7)] }),
    /record 1: evidence against [0-9a-f]+ at height 7: duplicate/,
  );
});

Deno.test("stake: two proposals of one member are evidence too", () => {
  const c = new StakeChain();
  c.run(2);
  const header = (byte: number) => ({
    height: 2,
    round: 0,
    validRound: -1,
    blockHash: new Uint8Array(32).fill(byte),
    signature: c.proposalSignature("g1", 2, byte),
  });
  c.apply({ records: [proposalEvidenceRecord(key("g1").publicKey, header(7), header(5))] });
  assert.equal(c.info("g1")!.status, "tombstoned");
  assert.equal(c.account("own-g1").unbonding[0].amount, 9n * TIME);
});

Deno.test("stake: a member that already left is still slashed from its unbonding collateral", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // block 2: unbonding 10 TIME until 8
  c.apply({ records: [evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2))] });
  assert.deepEqual(c.account("own-g3").unbonding, [
    { nodeId: idOf("g3"), amount: 9n * TIME, releaseHeight: 8 },
  ]);
  c.run(5); // block 8 releases what is left
  assert.equal(c.account("own-g3").balance, 9n * TIME);
});

Deno.test("stake: rewards go to the signers of the previous height, by reward weight", () => {
  const c = new StakeChain(stakeGenesis(["bronze", "silver", "bronze", "bronze"]));
  c.apply({ proposer: "g0" });
  const balances = () => ["g0", "g1", "g2", "g3"].map((n) => c.account(`reward-${n}`).balance);
  const before = balances();
  c.apply({ proposer: "g0", signers: ["g0", "g1"] });
  const delta = balances().map((b, i) => b - before[i]);
  // 1 TIME: 10% to the proposer, 0.9 TIME by weight 10 : 100 over the two signers.
  const pool = 90_000_000n;
  const g0Share = pool * 10n / 110n;
  const g1Share = pool * 100n / 110n;
  assert.deepEqual(delta, [10_000_000n + g0Share + (pool - g0Share - g1Share), g1Share, 0n, 0n]);
});

Deno.test("stake: the same blocks give the same state bytes on every node", () => {
  const run = () => {
    const c = new StakeChain();
    c.apply();
    c.apply({ records: [c.bond("n1", "alice"), c.dereg("g2")], signers: ["g0", "g1"] });
    c.run(4, ["g0", "g1", "n1"]);
    c.apply({ records: [evidenceRecord(c.vote("g1", 5, 1), c.vote("g1", 5, 2))] });
    c.run(8);
    return [...c.entries].sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${[...v].join(",")}`).join("\n");
  };
  assert.equal(run(), run());
});

Deno.test("stake: an owner with 1,000 unbonding entries cannot bond more until some release", () => {
  const c = new StakeChain();
  c.apply();
  const alice = c.account("alice");
  const entries = Array.from({ length: 1_000 }, (_, i) => ({
    nodeId: i.toString(16).padStart(64, "0"),
    amount: 1n,
    releaseHeight: 50,
  }));
  c.entries.set(accountKey(addr("alice")), encodeAccount({ ...alice, unbonding: entries }));
  assert.match(c.refusal({ records: [c.bond("n1", "alice")] }), /has 1000 unbonding entries/);
  c.entries.set(
    accountKey(addr("alice")),
    encodeAccount({ ...alice, unbonding: entries.slice(1) }),
  );
  assert.equal(c.refusal({ records: [c.bond("n1", "alice")] }), "accepted");
});

Deno.test("stake: a jailed member earns nothing, even when listed as a signer or without lastCommit", () => {
  const c = new StakeChain();
  c.apply();
  c.run(4, ["g0", "g1", "g2"]); // block 5 jails g3 from 7
  c.run(2); // tip 7: g3 is jailed in the set of 7 and 8
  const reward = () => c.account("reward-g3").balance;
  const others = () => c.account("reward-g2").balance;
  let before = [reward(), others()];
  // A lastCommit naming g3 (it has no power at 7, so it was never asked): still nothing.
  c.apply({ signers: ["g0", "g1", "g2", "g3"] });
  assert.equal(reward(), before[0]);
  assert.ok(others() > before[1]);
  // Without a lastCommit, rewards go to the set of the block's height: jailed members excluded.
  before = [reward(), others()];
  c.apply({ signers: null });
  assert.equal(reward(), before[0]);
  assert.ok(others() > before[1]);
});

Deno.test("stake: a leaver back as free tier is still slashed from its unbonding collateral", () => {
  const c = new StakeChain();
  c.apply();
  c.apply({ records: [c.dereg("g3")] }); // block 2: 10 TIME unbonding until 8
  c.apply({ records: [c.freeReg("g3")] }); // block 3: back, free, while unbonding
  c.apply({ records: [evidenceRecord(c.vote("g3", 2, 1), c.vote("g3", 2, 2))] });
  assert.deepEqual(c.account("own-g3").unbonding, [
    { nodeId: idOf("g3"), amount: 9n * TIME, releaseHeight: 8 },
  ]);
  assert.equal(c.info("g3")!.status, "tombstoned");
});

Deno.test("stake: a damaged miss record stops the node with the key named, not the block", () => {
  const c = new StakeChain();
  c.apply();
  c.entries.set(`mn/live/${idOf("g2")}`, new Uint8Array(3));
  assert.throws(
    () => c.apply(),
    (e: Error) =>
      !(e instanceof InvalidBlockError) &&
      e.message.startsWith(`consensus state is corrupt (mn/live/${idOf("g2")})`),
  );
});
