/**
 * The state machine's edges (state/state.ts): the exact refusal of each bad record and block,
 * what a block of only data records writes, balances past 2^64, and the refusals that protect
 * against a damaged or doubly applied state.
 */
import assert from "node:assert/strict";
import { keyPairFromSeed } from "../../../crypto/ed25519.ts";
import { sha256 } from "../../../crypto/hash.ts";
import { toHex } from "../../../encoding/binary.ts";
import { type Block, BLOCK_VERSION, type BlockRecord, payloadRoot } from "../../../chain/block.ts";
import { DEFAULT_TIER_POWER, type Genesis } from "../../../chain/genesis.ts";
import { InvalidBlockError, type StateWrites } from "../../../chain/api.ts";
import { balanceOf, createStateMachine, recordNonceOf } from "../../../state/state.ts";
import { addressOf } from "../../../state/address.ts";
import { accountKey, decodeAccount, encodeAccount } from "../../../state/accounts.ts";
import { RecordType, signDeregistration, signRegistration } from "../../../state/records.ts";

const text = new TextEncoder();
const keyOf = (name: string) => keyPairFromSeed(sha256(text.encode(`state-rules/${name}`)));
const g0 = keyOf("g0");
const g1 = keyOf("g1");
const joiner = keyOf("joiner");
const NETWORK = "staterules";
// Reward addresses are bech32m addresses of the network (state/address.ts).
const rewardOf = (key: { publicKey: Uint8Array }) => addressOf(NETWORK, key.publicKey);
const REWARD_0 = rewardOf(g0);
const REWARD_1 = rewardOf(g1);

const GENESIS: Genesis = {
  network: NETWORK,
  magic: 0x5e7e,
  genesisTime: 1_000_000,
  blockIntervalMs: 1_000,
  tierPower: DEFAULT_TIER_POWER,
  rewards: { blockReward: 1_000, proposerSharePercent: 10 },
  // Free members carry no voting power (docs/consensus.md): g0 is the paid member that proposes
  // and certifies, g1 a listed free member.
  masternodes: [g0, g1].map((k, i) => ({
    nodeId: toHex(k.publicKey),
    tier: i === 0 ? "bronze" as const : "free" as const,
    rewardAddress: rewardOf(k),
    address: `127.0.0.1:${21_000 + i}`,
  })),
};

/** A state map, the machine, and blocks built on its tip. */
function setup(genesis = GENESIS) {
  const state = new Map<string, Uint8Array>();
  const view = { get: (k: string) => state.get(k) };
  const sm = createStateMachine(genesis);
  let tip = 0;
  const block = (records: BlockRecord[], height = tip + 1, proposer = g0.publicKey): Block => ({
    header: {
      version: BLOCK_VERSION,
      chainId: sm.genesisHash,
      height,
      prevHash: new Uint8Array(32),
      timestamp: genesis.genesisTime + height * 1_000,
      proposer,
      round: 0,
      payloadRoot: payloadRoot(records),
      validatorSetHash: new Uint8Array(32),
    },
    records,
  });
  const commit = (writes: StateWrites) => {
    for (const [k, v] of writes) v === null ? state.delete(k) : state.set(k, v);
    tip++;
  };
  const apply = (records: BlockRecord[] = []) => {
    const writes = sm.apply(view, block(records));
    commit(writes);
    return writes;
  };
  const refusal = (records: BlockRecord[]): InvalidBlockError => {
    let error: InvalidBlockError | undefined;
    assert.throws(() => sm.apply(view, block(records)), (e: unknown) => {
      assert.ok(e instanceof InvalidBlockError, String(e));
      error = e;
      return true;
    });
    return error!;
  };
  const reg = (key = joiner, over: { nonce?: number; expiresAt?: number; tier?: "bronze" } = {}) =>
    signRegistration(key, {
      genesisHash: sm.genesisHash,
      nonce: over.nonce ?? recordNonceOf(view, key.publicKey),
      expiresAt: over.expiresAt ?? tip + 10,
      rewardAddress: rewardOf(joiner),
      address: "10.0.0.9:1",
      tier: over.tier,
    });
  const dereg = (key = joiner) =>
    signDeregistration(key, {
      genesisHash: sm.genesisHash,
      nonce: recordNonceOf(view, key.publicKey),
      expiresAt: tip + 10,
    });
  return { state, view, sm, block, apply, refusal, reg, dereg, tip: () => tip };
}

const short = (key: { publicKey: Uint8Array }) => toHex(key.publicKey).slice(0, 12);

Deno.test("state rules: each bad record is refused with its exact reason", () => {
  const s = setup();
  s.apply();
  s.apply();
  const cases: [BlockRecord[], string][] = [
    [
      [s.reg(joiner, { expiresAt: 2 })],
      `record 0: registration of ${short(joiner)} expired at height 2`,
    ],
    [
      [s.reg(joiner, { nonce: 1 })],
      `record 0: registration of ${short(joiner)} has nonce 1, expected 0`,
    ],
    [
      [s.reg(joiner, { tier: "bronze" })],
      `record 0: registration of ${
        short(joiner)
      }: bronze tier needs a collateral registration (type 4)`,
    ],
    [[s.reg(g1)], `record 0: registration of ${short(g1)}: already a member`],
    [[s.dereg(joiner)], `record 0: deregistration of ${short(joiner)}: not a member`],
    [
      [{ type: RecordType.Deregistration, data: new Uint8Array(3) }],
      "record 0: deregistration: truncated 32-byte field: need 32 bytes, have 3",
    ],
  ];
  for (const [records, message] of cases) {
    const e = s.refusal(records);
    assert.equal(e.reason, "bad-records");
    assert.equal(e.message, message);
  }
});

Deno.test("state rules: the last member may not leave; a record at its expiry height is fine", () => {
  const solo = setup({ ...GENESIS, masternodes: GENESIS.masternodes.slice(0, 1) });
  assert.equal(
    solo.refusal([solo.dereg(g0)]).message,
    `record 0: deregistration of ${short(g0)}: would leave the set without voting power`,
  );
  const s = setup();
  s.apply([s.reg(joiner, { expiresAt: 1 })]);
  assert.equal(recordNonceOf(s.view, joiner.publicKey), 1);
});

Deno.test("state rules: block height and proposer are checked first", () => {
  const s = setup();
  for (const height of [0, -1, 1.5]) {
    assert.throws(
      () => s.sm.apply(s.view, s.block([], height)),
      (e: unknown) =>
        e instanceof InvalidBlockError && e.reason === "bad-height" &&
        e.message === `block height ${height} cannot be applied`,
    );
  }
  assert.throws(
    () => s.sm.apply(s.view, s.block([], 1, joiner.publicKey)),
    (e: unknown) =>
      e instanceof InvalidBlockError && e.reason === "bad-proposer" &&
      e.message === `proposer ${short(joiner)} has no voting power in the set of height 1`,
  );
  // A listed free member has no voting power either, so it may not propose.
  assert.throws(
    () => s.sm.apply(s.view, s.block([], 1, g1.publicKey)),
    (e: unknown) =>
      e instanceof InvalidBlockError && e.reason === "bad-proposer" &&
      e.message === `proposer ${short(g1)} has no voting power in the set of height 1`,
  );
});

Deno.test("state rules: more than 10,000 records is refused before any is read", () => {
  const s = setup();
  const data = { type: RecordType.Data, data: new Uint8Array(0) };
  // The payload root is the chain's check, not the state machine's: left as for no records.
  const withRecords = (n: number) => ({ ...s.block([]), records: new Array(n).fill(data) });
  assert.throws(
    () => s.sm.apply(s.view, withRecords(10_001)),
    (e: unknown) =>
      e instanceof InvalidBlockError && e.reason === "bad-records" &&
      e.message === "10001 records exceed bound",
  );
  // The free member earns nothing (state/rewards.ts): the proposer's account is the one write.
  assert.deepEqual([...s.sm.apply(s.view, withRecords(10_000)).keys()], [accountKey(REWARD_0)]);
});

Deno.test("state rules: a block of only data records writes the rewards and nothing else", () => {
  const s = setup();
  const writes = s.apply([{ type: RecordType.Data, data: new Uint8Array([1, 2]) }]);
  // Only the voting member is credited; the free member's account is not touched.
  assert.deepEqual([...writes.keys()], [accountKey(REWARD_0)]);
  assert.equal(balanceOf(s.view, REWARD_1), 0n);
  // A data record beside a registration is skipped, the registration applies.
  const mixed = s.apply([{ type: RecordType.Data, data: new Uint8Array(0) }, s.reg()]);
  assert.ok(mixed.has(`mn/nonce/${toHex(joiner.publicKey)}`));
  assert.ok(mixed.has("vs/head"));
});

Deno.test("state rules: a set change is written as data, pointer and head at h + 2", () => {
  const s = setup();
  s.apply();
  const writes = s.apply([s.reg()]);
  const keys = [...writes.keys()].filter((k) => k.startsWith("vs/")).sort();
  assert.equal(keys.length, 3);
  assert.equal(keys[0], "vs/at/4");
  assert.equal(keys[1], "vs/head");
  assert.match(keys[2], /^vs\/set\/[0-9a-f]{64}$/);
  assert.deepEqual(writes.get("vs/head"), new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(s.sm.validatorSetFor(s.view, 2, 4)?.validators.length, 3);
  assert.equal(s.sm.validatorSetFor(s.view, 2, 3)?.validators.length, 2);
  assert.equal(s.sm.validatorSetFor(s.view, 2, 5)?.validators.length, undefined);
  const back = s.apply([s.dereg()]);
  assert.ok(back.has("vs/at/5"));
  assert.equal(s.sm.validatorSetFor(s.view, 3, 5)?.validators.length, 2);
  assert.equal(s.sm.validatorSetFor(s.view, 3, 4)?.validators.length, 3);
});

Deno.test("state rules: a set change applied twice is a bug, not a bad block", () => {
  const s = setup();
  const block = s.block([s.reg()]);
  // Keep the set writes but not the nonce, as a store that lost part of a commit would.
  for (const [k, v] of s.sm.apply(s.view, block)) if (v && k.startsWith("vs/")) s.state.set(k, v);
  assert.throws(
    () => s.sm.apply(s.view, block),
    (e: unknown) =>
      e instanceof Error && !(e instanceof InvalidBlockError) &&
      e.message === "state head 3 is already at or past 3: applied twice?",
  );
});

Deno.test("state rules: balances above 2^64 keep their high half", () => {
  const s = setup();
  s.state.set(accountKey(REWARD_0), encodeAccount({ balance: 2n ** 64n - 1n, nonce: 3 }));
  s.apply();
  // The whole reward of 1,000 goes to the only voting member, which also proposed.
  assert.equal(balanceOf(s.view, REWARD_0), 2n ** 64n - 1n + 1_000n);
  assert.deepEqual(decodeAccount(s.state.get(accountKey(REWARD_0))!), {
    balance: 2n ** 64n + 999n,
    nonce: 3,
    locked: 0n,
    unbonding: [],
  });
  assert.equal(balanceOf(s.view, "nobody"), 0n);
});

Deno.test("state rules: a damaged state value stops the node with the key named", () => {
  const s = setup();
  s.state.set(accountKey(REWARD_0), new Uint8Array(3));
  assert.throws(
    () => balanceOf(s.view, REWARD_0),
    new RegExp(`^Error: consensus state is corrupt \\(acct/${REWARD_0}\\): `),
  );
  s.state.set("vs/head", new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0]));
  assert.throws(
    () => s.sm.validatorSetFor(s.view, 8, 9),
    /consensus state is corrupt \(vs\/at\/9\): missing set pointer/,
  );
  // A pointer that does not go back would loop forever; it is refused.
  const pointer = new Uint8Array(40);
  pointer[0] = 9;
  s.state.set("vs/at/9", pointer);
  assert.throws(
    () => s.sm.validatorSetFor(s.view, 8, 9),
    /consensus state is corrupt \(vs\/at\/9\): pointer does not go back/,
  );
  pointer[0] = 0;
  s.state.set("vs/at/9", pointer);
  assert.throws(() => s.sm.validatorSetFor(s.view, 8, 9), /vs\/set\/0{64}\): missing set data/);
});

Deno.test("state rules: masternodeList refuses a tip that is not a height", () => {
  const s = setup();
  for (const tip of [-1, 0.5]) {
    assert.throws(() => s.sm.masternodeList(s.view, tip), new RegExp(`invalid tip height ${tip}`));
  }
  assert.equal(s.sm.masternodeList(s.view, 0).length, 2);
});
