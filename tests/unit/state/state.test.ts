import { addressOf } from "../../../state/address.ts";
import assert from "node:assert/strict";
import { type KeyPair, keyPairFromSeed } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { fromHex, toHex } from "../../../encoding/binary.ts";
import { type Block, type BlockRecord, payloadRoot } from "../../../chain/block.ts";
import {
  DEFAULT_TIER_POWER,
  type Genesis,
  genesisHash,
  STAKE_DEFAULTS,
  type Tier,
} from "../../../chain/genesis.ts";
import { InvalidBlockError, type StateView, type StateWrites } from "../../../chain/api.ts";
import { hasQuorum, makeValidatorSet } from "../../../chain/validators.ts";
import { proposerAt } from "../../../consensus/proposer.ts";
import {
  ACTIVATION_DELAY,
  balanceOf,
  createStateMachine,
  masternodeList,
  type MasternodeStateMachine,
  recordNonceOf,
} from "../../../state/state.ts";
import { signDeregistration, signRegistration } from "../../../state/records.ts";
import { splitBlockReward as splitByWeight } from "../../../state/rewards.ts";
import type { ValidatorSet } from "../../../chain/validators.ts";

/** The reward split of a block without lastCommit: every member of `set` by its tier's weight. */
function splitBlockReward(set: ValidatorSet, proposer: Uint8Array, rewards: Genesis["rewards"]) {
  const earners = set.validators.map((v) => ({
    rewardAddress: v.rewardAddress,
    weight: STAKE_DEFAULTS.tierRewardWeight[v.tier],
  }));
  return splitByWeight(earners, set.get(toHex(proposer))!.rewardAddress, rewards);
}

const text = new TextEncoder();
const keys = new Map<string, KeyPair>();
function key(name: string): KeyPair {
  let k = keys.get(name);
  if (!k) {
    k = keyPairFromSeed(sha256(text.encode(`state-test/${name}`)));
    keys.set(name, k);
  }
  return k;
}
const idOf = (name: string) => toHex(key(name).publicKey);
/** Each test masternode's reward address: the address of its key on the test network. */
const rewardOf = (name: string) => addressOf("statetest", key(name).publicKey);

function makeGenesis(members: [string, Tier][], blockReward = 1_000_000): Genesis {
  return {
    network: "statetest",
    magic: 0x7e57,
    genesisTime: 1_000_000,
    blockIntervalMs: 1_000,
    tierPower: DEFAULT_TIER_POWER,
    rewards: { blockReward, proposerSharePercent: 10 },
    masternodes: members.map(([name, tier]) => ({
      nodeId: idOf(name),
      tier,
      rewardAddress: rewardOf(name),
      address: `127.0.0.1:${20000 + name.length}`,
    })),
  };
}

const GENESIS = makeGenesis([["g0", "bronze"], ["g1", "silver"], ["g2", "gold"]]);

class MemoryState implements StateView {
  readonly entries = new Map<string, Uint8Array>();
  get(k: string): Uint8Array | undefined {
    return this.entries.get(k);
  }
  commit(writes: StateWrites): void {
    for (const [k, v] of writes) {
      if (v === null) this.entries.delete(k);
      else this.entries.set(k, v);
    }
  }
  /** Canonical dump of all state, to compare two nodes byte for byte. */
  dump(): string {
    return [...this.entries].sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${toHex(v)}`).join("\n");
  }
}

/** A chain of directly built blocks over an in-memory state. */
class TestChain {
  readonly state = new MemoryState();
  readonly sm: MasternodeStateMachine;
  readonly chainId: Uint8Array;
  tip = 0;
  readonly writesLog: StateWrites[] = [];

  constructor(readonly genesis: Genesis = GENESIS, sm?: MasternodeStateMachine) {
    this.sm = sm ?? createStateMachine(genesis);
    this.chainId = genesisHash(genesis);
  }

  block(records: BlockRecord[], proposer = "g0"): Block {
    const height = this.tip + 1;
    return {
      header: {
        version: 1,
        chainId: this.chainId,
        height,
        prevHash: new Uint8Array(32),
        timestamp: this.genesis.genesisTime + height * 1000,
        proposer: key(proposer).publicKey,
        round: 0,
        payloadRoot: payloadRoot(records),
        validatorSetHash: this.sm.validatorSetFor(this.state, this.tip, height)!.hash,
      },
      records,
    };
  }

  apply(records: BlockRecord[] = [], proposer = "g0"): StateWrites {
    const writes = this.sm.apply(this.state, this.block(records, proposer));
    this.state.commit(writes);
    this.writesLog.push(writes);
    this.tip++;
    return writes;
  }

  /** Sorted hex ids of the set for `height`, or undefined when it is not determined yet. */
  ids(height: number): string[] | undefined {
    const set = this.sm.validatorSetFor(this.state, this.tip, height);
    return set?.validators.map((v) => toHex(v.nodeId));
  }

  reg(name: string, opts: { nonce?: number; expiresAt?: number; tier?: Tier } = {}) {
    return signRegistration(key(name), {
      genesisHash: this.chainId,
      nonce: opts.nonce ?? recordNonceOf(this.state, key(name).publicKey),
      expiresAt: opts.expiresAt ?? this.tip + 100,
      rewardAddress: rewardOf(name),
      address: `10.0.0.1:${name.length}`,
      tier: opts.tier,
    });
  }

  dereg(name: string, opts: { nonce?: number; expiresAt?: number } = {}) {
    return signDeregistration(key(name), {
      genesisHash: this.chainId,
      nonce: opts.nonce ?? recordNonceOf(this.state, key(name).publicKey),
      expiresAt: opts.expiresAt ?? this.tip + 100,
    });
  }
}

const sorted = (names: string[]) => names.map(idOf).sort();

Deno.test("at genesis the set comes from genesis, for heights 1..ACTIVATION_DELAY only", () => {
  const chain = new TestChain();
  assert.equal(ACTIVATION_DELAY, 2);
  assert.equal(chain.state.entries.size, 0);
  const set = chain.sm.validatorSetFor(chain.state, 0, 1)!;
  const expected = makeValidatorSet(GENESIS.masternodes.map((m) => ({
    nodeId: fromHex(m.nodeId),
    tier: m.tier,
    power: DEFAULT_TIER_POWER[m.tier],
    rewardAddress: m.rewardAddress,
    address: m.address,
  })));
  assert.deepEqual(set.hash, expected.hash);
  assert.equal(set.totalPower, 1 + 10 + 100);
  assert.equal(set.powerOf(idOf("g1")), 10);
  assert.equal(set.get(idOf("g2"))?.rewardAddress, rewardOf("g2"));
  assert.deepEqual(chain.ids(2), sorted(["g0", "g1", "g2"]));
  assert.equal(chain.ids(3), undefined);
  assert.equal(chain.ids(0), undefined);
  assert.equal(chain.sm.validatorSetFor(chain.state, 0, 1.5), undefined);
  assert.equal(chain.sm.validatorSetFor(chain.state, -1, 1), undefined);
});

Deno.test("a registration in block h changes the set exactly from h + 2", () => {
  const chain = new TestChain();
  chain.apply();
  chain.apply();
  chain.apply([chain.reg("a")]); // block 3
  assert.deepEqual(chain.ids(4), sorted(["g0", "g1", "g2"]));
  assert.deepEqual(chain.ids(5), sorted(["g0", "g1", "g2", "a"]));
  assert.equal(chain.ids(6), undefined);
  // Listed, but a free-tier member has no vote.
  assert.equal(chain.sm.validatorSetFor(chain.state, 3, 5)!.powerOf(idOf("a")), 0);
  assert.equal(chain.sm.validatorSetFor(chain.state, 3, 5)!.totalPower, 111);
  for (let i = 0; i < 5; i++) chain.apply();
  // History stays answerable after the tip moved on.
  for (let h = 1; h <= 4; h++) assert.deepEqual(chain.ids(h), sorted(["g0", "g1", "g2"]), `h=${h}`);
  for (let h = 5; h <= chain.tip + 2; h++) {
    assert.deepEqual(chain.ids(h), sorted(["g0", "g1", "g2", "a"]), `h=${h}`);
  }
});

type Event = { height: number; op: "reg" | "dereg"; who: string };

/** The set for every height, computed the naive way from the event list. */
function modelSet(events: Event[], height: number): string[] {
  const members = new Set(["g0", "g1", "g2"]);
  for (const e of events) {
    if (e.height + ACTIVATION_DELAY > height) continue;
    if (e.op === "reg") members.add(e.who);
    else members.delete(e.who);
  }
  return sorted([...members]);
}

const EVENTS: Event[] = [
  { height: 2, op: "reg", who: "a" },
  { height: 3, op: "reg", who: "b" },
  { height: 4, op: "dereg", who: "g1" },
  { height: 5, op: "dereg", who: "a" },
  { height: 5, op: "reg", who: "c" },
  { height: 8, op: "reg", who: "a" },
  { height: 9, op: "dereg", who: "b" },
  { height: 9, op: "reg", who: "d" },
  { height: 10, op: "dereg", who: "c" },
  { height: 10, op: "reg", who: "c" },
  { height: 12, op: "reg", who: "g1" },
  { height: 13, op: "dereg", who: "g0" },
];
const CHAIN_LENGTH = 16;

function runEvents(chain: TestChain, check?: () => void): void {
  while (chain.tip < CHAIN_LENGTH) {
    const height = chain.tip + 1;
    const records: BlockRecord[] = [];
    // Nonces advance inside the block too, so compute them from the records already placed.
    const nonceBias = new Map<string, number>();
    for (const e of EVENTS.filter((e) => e.height === height)) {
      const nonce = recordNonceOf(chain.state, key(e.who).publicKey) + (nonceBias.get(e.who) ?? 0);
      nonceBias.set(e.who, (nonceBias.get(e.who) ?? 0) + 1);
      records.push(e.op === "reg" ? chain.reg(e.who, { nonce }) : chain.dereg(e.who, { nonce }));
    }
    // Rotate proposers among members that are present at that height (g0 leaves at 15).
    const proposer = height % 2 === 0 || height >= 15 ? "g2" : "g0";
    chain.apply(records, proposer);
    check?.();
  }
}

Deno.test("set derivation over a chain of registrations and deregistrations matches the model", () => {
  const chain = new TestChain();
  runEvents(chain, () => {
    for (let h = 1; h <= chain.tip + ACTIVATION_DELAY; h++) {
      assert.deepEqual(chain.ids(h), modelSet(EVENTS, h), `tip ${chain.tip}, height ${h}`);
    }
    assert.equal(chain.ids(chain.tip + ACTIVATION_DELAY + 1), undefined);
  });
  // g1 came back as a free-tier member: its power follows the new tier (none) from its return.
  assert.equal(chain.sm.validatorSetFor(chain.state, chain.tip, 5)!.powerOf(idOf("g1")), 10);
  assert.equal(chain.sm.validatorSetFor(chain.state, chain.tip, 6)!.powerOf(idOf("g1")), 0);
  assert.equal(chain.sm.validatorSetFor(chain.state, chain.tip, 14)!.powerOf(idOf("g1")), 0);
  // Every accepted record advanced its node's nonce.
  assert.equal(recordNonceOf(chain.state, key("a").publicKey), 3);
  assert.equal(recordNonceOf(chain.state, key("c").publicKey), 3);
  assert.equal(recordNonceOf(chain.state, key("g2").publicKey), 0);
});

Deno.test("same blocks give the same writes and the same state bytes on every node", () => {
  const one = new TestChain();
  const two = new TestChain();
  runEvents(one);
  runEvents(two);
  assert.ok(one.state.entries.size > 0);
  assert.equal(one.state.dump(), two.state.dump());
  assert.equal(one.writesLog.length, two.writesLog.length);
  for (let i = 0; i < one.writesLog.length; i++) {
    assert.deepEqual([...one.writesLog[i]], [...two.writesLog[i]], `block ${i + 1}`);
  }
});

Deno.test("one state machine serving two different histories never mixes their sets", () => {
  const sm = createStateMachine(GENESIS);
  const left = new TestChain(GENESIS, sm);
  const right = new TestChain(GENESIS, sm);
  left.apply([left.reg("a")]);
  right.apply([right.reg("b")]);
  left.apply();
  right.apply();
  assert.deepEqual(left.ids(3), sorted(["g0", "g1", "g2", "a"]));
  assert.deepEqual(right.ids(3), sorted(["g0", "g1", "g2", "b"]));
  // Applying a candidate block without committing it leaves no trace.
  const before = left.state.dump();
  sm.apply(left.state, left.block([left.reg("x")]));
  assert.equal(left.state.dump(), before);
  assert.deepEqual(left.ids(4), sorted(["g0", "g1", "g2", "a"]));
});

function assertBadRecords(chain: TestChain, records: BlockRecord[], why: RegExp): void {
  const before = chain.state.dump();
  const tip = chain.tip;
  assert.throws(
    () => chain.apply(records),
    (e: unknown) => {
      assert.ok(e instanceof InvalidBlockError, `not an InvalidBlockError: ${e}`);
      assert.equal(e.reason, "bad-records");
      assert.match(e.message, why);
      return true;
    },
  );
  assert.equal(chain.tip, tip);
  assert.equal(chain.state.dump(), before);
}

Deno.test("invalid records make the whole block invalid", async (t) => {
  await t.step("re-registration of a member (genesis or pending)", () => {
    const chain = new TestChain();
    assertBadRecords(chain, [chain.reg("g0")], /already a member/);
    chain.apply([chain.reg("a")]);
    // Not active until height 3, but already registered: a second registration is refused.
    assertBadRecords(chain, [chain.reg("a")], /already a member/);
  });
  await t.step("deregistration of a non-member, or of one already leaving", () => {
    const chain = new TestChain();
    assertBadRecords(chain, [chain.dereg("stranger")], /not a member/);
    chain.apply([chain.dereg("g1")]);
    assertBadRecords(chain, [chain.dereg("g1")], /not a member/);
  });
  await t.step("a paid tier registration", () => {
    const chain = new TestChain();
    for (const tier of ["bronze", "silver", "gold"] as const) {
      assertBadRecords(chain, [chain.reg("a", { tier })], /collateral/);
    }
  });
  await t.step("a bad signature, or one made for another chain", () => {
    const chain = new TestChain();
    const rec = chain.reg("a");
    const data = rec.data.slice();
    data[data.length - 1] ^= 1;
    assertBadRecords(chain, [{ type: rec.type, data }], /bad signature/);
    const foreign = signRegistration(key("a"), {
      genesisHash: sha256(text.encode("another chain")),
      nonce: 0,
      expiresAt: 100,
      rewardAddress: "r",
      address: "a",
    });
    assertBadRecords(chain, [foreign], /bad signature/);
  });
  await t.step("a replayed registration after the node left", () => {
    const chain = new TestChain();
    const registration = chain.reg("a");
    chain.apply([registration]);
    chain.apply([chain.dereg("a")]);
    chain.apply();
    assert.deepEqual(chain.ids(chain.tip + 1), sorted(["g0", "g1", "g2"]));
    assertBadRecords(chain, [registration], /nonce 0, expected 2/);
  });
  await t.step("the same record twice in one block", () => {
    const chain = new TestChain();
    const registration = chain.reg("a");
    assertBadRecords(chain, [registration, registration], /record 1: .*nonce/);
  });
  await t.step("an expired record", () => {
    const chain = new TestChain();
    chain.apply();
    chain.apply();
    assertBadRecords(chain, [chain.reg("a", { expiresAt: 2 })], /expired/);
    chain.apply([chain.reg("a", { expiresAt: 3 })]); // the last height it may enter
  });
  await t.step("one bad record among good ones", () => {
    const chain = new TestChain();
    assertBadRecords(chain, [chain.reg("a"), chain.reg("b"), chain.dereg("nobody")], /record 2/);
    assert.equal(recordNonceOf(chain.state, key("a").publicKey), 0);
  });
  await t.step("malformed data and unknown types", () => {
    const chain = new TestChain();
    const rec = chain.reg("a");
    assertBadRecords(chain, [{ type: 77, data: rec.data }], /unknown record type 77/);
    assertBadRecords(chain, [{ type: rec.type, data: rec.data.subarray(1) }], /registration/);
    const long = new Uint8Array(rec.data.length + 1);
    long.set(rec.data);
    assertBadRecords(chain, [{ type: rec.type, data: long }], /trailing/);
  });
});

Deno.test("a deregistration that would leave the set without voting power is refused", () => {
  const solo = new TestChain(makeGenesis([["g0", "bronze"]]));
  assertBadRecords(solo, [solo.dereg("g0")], /without voting power/);

  const pair = new TestChain(makeGenesis([["g0", "bronze"], ["g1", "gold"]]));
  assertBadRecords(pair, [pair.dereg("g0"), pair.dereg("g1")], /record 1: .*without voting/);
  // Also across blocks: the first departure is pending, the second would empty the set.
  pair.apply([pair.dereg("g1")]);
  assertBadRecords(pair, [pair.dereg("g0")], /without voting power/);
  // Free members do not count: with only them left, nobody could certify a block.
  pair.apply([pair.reg("a")]);
  assertBadRecords(pair, [pair.dereg("g0")], /without voting power/);
  for (let i = 0; i < 2; i++) pair.apply();
  assert.deepEqual(pair.ids(pair.tip + 1), sorted(["g0", "a"]));
});

Deno.test("leaving and rejoining in one block renews the membership", () => {
  const chain = new TestChain();
  chain.apply([chain.reg("a")]);
  chain.apply();
  chain.apply();
  const nonce = recordNonceOf(chain.state, key("a").publicKey);
  chain.apply([chain.dereg("a", { nonce }), chain.reg("a", { nonce: nonce + 1 })]); // block 4
  const list = chain.sm.masternodeList(chain.state, chain.tip);
  assert.equal(list.find((m) => m.nodeId === idOf("a"))?.activeFrom, 6);
  assert.deepEqual(chain.ids(6), sorted(["g0", "g1", "g2", "a"]));
});

Deno.test("the set never grows past the certificate limit", () => {
  const genesis = makeGenesis([["g0", "bronze"]], 0);
  const chain = new TestChain(genesis);
  const records = Array.from({ length: 999 }, (_, i) => chain.reg(`n${i}`));
  chain.apply(records);
  assertBadRecords(chain, [chain.reg("one-too-many")], /full/);
  chain.apply();
  assert.equal(chain.ids(chain.tip + 1)?.length, 1000);
});

Deno.test("a block from a proposer outside the set is refused", () => {
  const chain = new TestChain();
  assert.throws(
    () => chain.apply([], "stranger"),
    (e: unknown) => e instanceof InvalidBlockError && e.reason === "bad-proposer",
  );
  chain.apply([chain.reg("a")]);
  // Registered in block 1, a member from height 3, but as a free-tier member it has no vote
  // and so may never propose.
  const noVote = (e: unknown) => e instanceof InvalidBlockError && e.reason === "bad-proposer";
  assert.throws(() => chain.apply([], "a"), noVote);
  chain.apply();
  assert.deepEqual(chain.ids(3), sorted(["g0", "g1", "g2", "a"]));
  assert.throws(() => chain.apply([], "a"), noVote);
  chain.apply([], "g1");
});

Deno.test("every block credits exactly the block reward, split as the reward rule says", () => {
  const chain = new TestChain();
  const expected = new Map<string, bigint>();
  const proposers = ["g0", "g1", "g2", "g2", "g0", "g1", "g2", "g0"];
  for (let i = 0; i < proposers.length; i++) {
    const height = chain.tip + 1;
    const set = chain.sm.validatorSetFor(chain.state, chain.tip, height)!;
    for (const c of splitBlockReward(set, key(proposers[i]).publicKey, GENESIS.rewards)) {
      expected.set(c.rewardAddress, (expected.get(c.rewardAddress) ?? 0n) + c.amount);
    }
    const before = [...expected.keys()].reduce((s, a) => s + balanceOf(chain.state, a), 0n);
    chain.apply(i === 1 ? [chain.reg("a")] : [], proposers[i]);
    const after = [...expected.keys()].reduce((s, a) => s + balanceOf(chain.state, a), 0n);
    assert.equal(after - before, BigInt(GENESIS.rewards.blockReward), `block ${height}`);
  }
  for (const [address, amount] of expected) {
    assert.equal(balanceOf(chain.state, address), amount, address);
    assert.equal(chain.sm.balanceOf(chain.state, address), amount);
  }
  // "a" is a member from height 4 on, but a free-tier member earns no reward.
  assert.equal(balanceOf(chain.state, rewardOf("a")), 0n);
  assert.equal(balanceOf(chain.state, "nobody"), 0n);
  // Block 1 by g0 at the genesis set (powers 10, 100, 1000): pool 900,000 over power 1,110.
  const first = new TestChain();
  first.apply([], "g0");
  assert.equal(balanceOf(first.state, rewardOf("g1")), 81_081n); // floor(900000 * 100 / 1110)
  assert.equal(balanceOf(first.state, rewardOf("g2")), 810_810n); // floor(900000 * 1000 / 1110)
  assert.equal(balanceOf(first.state, rewardOf("g0")), 1_000_000n - 81_081n - 810_810n);
});

Deno.test("masternodeList shows members, powers, pending joins and pending departures", () => {
  const chain = new TestChain();
  const initial = masternodeList(chain.state, 0, GENESIS);
  assert.deepEqual(initial.map((m) => m.nodeId), sorted(["g0", "g1", "g2"]));
  const g1 = initial.find((m) => m.nodeId === idOf("g1"))!;
  assert.deepEqual(g1, {
    nodeId: idOf("g1"),
    tier: "silver",
    power: 10,
    rewardAddress: rewardOf("g1"),
    address: GENESIS.masternodes[1].address,
    activeFrom: 1,
    leavingFrom: null,
    // This code-built genesis names no owners, so nothing is locked.
    owner: null,
    collateral: "0",
    collateralUnits: "0",
    rewardWeight: 100,
    status: "active",
    missedBlocks: 0,
    jailedUntil: null,
  });
  chain.apply();
  chain.apply([chain.reg("a"), chain.dereg("g1")]); // block 2: both take effect at 4
  const list = chain.sm.masternodeList(chain.state, chain.tip);
  assert.deepEqual(list.map((m) => m.nodeId), sorted(["g0", "g1", "g2", "a"]));
  const a = list.find((m) => m.nodeId === idOf("a"))!;
  assert.equal(a.activeFrom, 4);
  assert.equal(a.tier, "free");
  assert.equal(a.power, 0);
  assert.equal(a.rewardAddress, rewardOf("a"));
  assert.equal(list.find((m) => m.nodeId === idOf("g1"))!.leavingFrom, 4);
  chain.apply();
  chain.apply();
  const later = chain.sm.masternodeList(chain.state, chain.tip);
  assert.deepEqual(later.map((m) => m.nodeId), sorted(["g0", "g2", "a"]));
  assert.ok(later.every((m) => m.leavingFrom === null));
});

Deno.test("20 free registrations change neither the total power, the proposers nor the rewards", () => {
  const chain = new TestChain();
  const before = chain.sm.validatorSetFor(chain.state, 0, 1)!;
  const names = Array.from({ length: 20 }, (_, i) => `free-${i}`);
  chain.apply(names.map((n) => chain.reg(n)));
  chain.apply();
  const after = chain.sm.validatorSetFor(chain.state, chain.tip, chain.tip + 1)!;
  assert.equal(after.validators.length, 3 + 20);
  assert.equal(after.totalPower, before.totalPower);
  assert.deepEqual(after.voting.map((v) => toHex(v.nodeId)), sorted(["g0", "g1", "g2"]));
  for (const n of names) assert.equal(after.powerOf(idOf(n)), 0);
  // The proposer sequence over a whole cycle of the total power never picks a free member.
  const voting = new Set(after.voting.map((v) => toHex(v.nodeId)));
  for (let h = 1; h <= after.totalPower; h++) {
    assert.ok(voting.has(toHex(proposerAt(after, h, 0).nodeId)), `height ${h}`);
  }
  // A quorum of the paid members alone still certifies: the free ones never need to sign.
  assert.ok(hasQuorum(100 + 1000, after.totalPower));
  const credits = splitBlockReward(after, key("g2").publicKey, GENESIS.rewards);
  assert.ok(credits.every((c) => !c.rewardAddress.startsWith("reward-free-")));
});
