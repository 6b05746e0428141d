import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import {
  builtinGenesis,
  GenesisError,
  genesisHash,
  LEDGER_DEFAULTS,
  ledgerOf,
  NETWORKS,
  parseGenesis,
  STAKE_DEFAULTS,
  stakeOf,
} from "../../../chain/genesis.ts";
import {
  DEVNET_STAKE,
  devnetMagic,
  genesisToJson,
  makeDevnetGenesis,
} from "../../../chain/genesis_tool.ts";
import { addressOf } from "../../../state/address.ts";
import { testValidatorKey } from "../../support/chain_builder.ts";

const nodes = [0, 1, 2].map((i) => ({
  publicKey: testValidatorKey(i).publicKey,
  address: `127.0.0.1:${40_000 + i}`,
}));
const T = Date.UTC(2026, 5, 1, 12, 0, 0);

Deno.test("genesis tool: the same inputs give the same genesis hash", () => {
  const a = makeDevnetGenesis({
    network: "devnet-a",
    nodes,
    blockIntervalMs: 1_000,
    genesisTime: T,
  });
  const b = makeDevnetGenesis({
    network: "devnet-a",
    nodes,
    blockIntervalMs: 1_000,
    genesisTime: T,
  });
  assert.deepEqual(genesisHash(a), genesisHash(b));
  assert.equal(a.masternodes.length, 3);
  assert.equal(a.masternodes[1].nodeId, toHex(nodes[1].publicKey));
  assert.equal(a.masternodes[1].address, "127.0.0.1:40001");
  // Paid by default: free-tier members carry no voting power.
  assert.equal(a.masternodes[1].tier, "bronze");
  assert.equal(a.genesisTime, T);
});

Deno.test("genesis tool: the magic differs by network name and by genesis time", () => {
  const m = devnetMagic("devnet-a", T);
  assert.equal(m, devnetMagic("devnet-a", T));
  assert.notEqual(m, devnetMagic("devnet-b", T));
  assert.notEqual(m, devnetMagic("devnet-a", T + 1_000));
  const builtin = new Set(NETWORKS.map((n) => builtinGenesis(n).magic));
  for (let i = 0; i < 200; i++) {
    const x = devnetMagic(`net-${i}`, T);
    assert.ok(x > 0 && x <= 0xffffffff && !builtin.has(x));
  }
});

Deno.test("genesis tool: the JSON file parses back to the same genesis", () => {
  const g = makeDevnetGenesis({
    network: "devnet-json",
    nodes: [{ ...nodes[0], tier: "gold", rewardAddress: ALICE }, nodes[1]],
    blockIntervalMs: 2_000,
    genesisTime: T,
  });
  const back = parseGenesis(JSON.parse(genesisToJson(g)));
  assert.deepEqual(back, g);
  assert.deepEqual(genesisHash(back), genesisHash(g));
  assert.equal(back.masternodes[0].tier, "gold");
  assert.equal(back.masternodes[0].rewardAddress, ALICE);
});

const ALICE = addressOf("devnet-json", new Uint8Array(32).fill(0xa1));

Deno.test("genesis: a reward address that is not one of the network's is refused with why", () => {
  const make = (rewardAddress: string) => () =>
    makeDevnetGenesis({
      network: "devnet-json",
      nodes: [{ ...nodes[0], rewardAddress }],
      blockIntervalMs: 1_000,
      genesisTime: T,
    });
  make(ALICE)();
  assert.throws(make("alice"), GenesisError, "rewardAddress");
  const typo = ALICE.slice(0, -3) + (ALICE.at(-3) === "q" ? "p" : "q") + ALICE.slice(-2);
  assert.throws(make(typo), GenesisError, "typo");
  assert.throws(make(addressOf("mainnet", new Uint8Array(32))), GenesisError, "prefix");
  assert.throws(make(ALICE.toUpperCase()), GenesisError, "lower case");
});

Deno.test("genesis: ledger fields default, round-trip, and change the hash", () => {
  const base = {
    network: "devnet-json",
    nodes: [nodes[0]],
    blockIntervalMs: 1_000,
    genesisTime: T,
  };
  const plain = makeDevnetGenesis(base);
  assert.equal(plain.minFeePerByte, LEDGER_DEFAULTS.minFeePerByte);
  assert.equal(plain.maxBlockBytes, LEDGER_DEFAULTS.maxBlockBytes);
  // The only allocation is the bronze member's collateral, for its owner (its reward address).
  const owner = addressOf("devnet-json", nodes[0].publicKey);
  assert.equal(plain.masternodes[0].owner, owner);
  assert.deepEqual(plain.alloc, { [owner]: DEVNET_STAKE.tierCollateral.bronze });
  const funded = makeDevnetGenesis({ ...base, alloc: { [ALICE]: "12.50" } });
  assert.deepEqual(funded.alloc, { [ALICE]: "12.5", [owner]: "10" });
  assert.deepEqual(
    ledgerOf(funded).alloc.find((a) => a.address === ALICE),
    { address: ALICE, units: 1_250_000_000n },
  );
  assert.notDeepEqual(genesisHash(funded), genesisHash(plain));
  const back = parseGenesis(JSON.parse(genesisToJson(funded)));
  assert.deepEqual(genesisHash(back), genesisHash(funded));
  const json = JSON.parse(genesisToJson(plain));
  assert.throws(() => parseGenesis({ ...json, alloc: { alice: "1" } }), GenesisError, "alloc");
  assert.throws(() => parseGenesis({ ...json, alloc: { [ALICE]: "1.123456789" } }), GenesisError);
  assert.throws(() => parseGenesis({ ...json, alloc: { [ALICE]: "0" } }), GenesisError);
  assert.throws(() => parseGenesis({ ...json, maxBlockBytes: 1000 }), GenesisError);
  // A genesis written before the ledger fields parses with the defaults.
  delete json.minFeePerByte;
  delete json.maxBlockBytes;
  assert.deepEqual(genesisHash(parseGenesis(json)), genesisHash(plain));
});

Deno.test("genesis tool: the default genesis time is a whole second", () => {
  const g = makeDevnetGenesis({ network: "devnet-now", nodes, blockIntervalMs: 1_000 });
  assert.equal(g.genesisTime % 1_000, 0);
  assert.ok(Math.abs(g.genesisTime - Date.now()) < 60_000);
});

Deno.test("genesis tool: bad input fails with the genesis validator's message", () => {
  assert.throws(
    () => makeDevnetGenesis({ network: "Bad Name", nodes, blockIntervalMs: 1_000, genesisTime: T }),
    GenesisError,
  );
  assert.throws(
    () =>
      makeDevnetGenesis({
        network: "dup",
        nodes: [nodes[0], nodes[0]],
        blockIntervalMs: 1_000,
        genesisTime: T,
      }),
    /duplicate masternode/,
  );
  assert.throws(
    () => makeDevnetGenesis({ network: "x", nodes: [], blockIntervalMs: 1_000, genesisTime: T }),
    /at least one masternode/,
  );
  assert.throws(
    () =>
      makeDevnetGenesis({
        network: "x",
        nodes: [{ publicKey: new Uint8Array(31), address: "127.0.0.1:1" }],
        blockIntervalMs: 1_000,
        genesisTime: T,
      }),
    /32 bytes/,
  );
});

Deno.test("genesis: free-tier power must be 0, and some member must hold a paid tier", () => {
  const g = makeDevnetGenesis({ network: "devnet-free", nodes, blockIntervalMs: 1_000 });
  const json = JSON.parse(genesisToJson(g));
  assert.equal(json.tierPower.free, 0);
  assert.throws(
    () => parseGenesis({ ...json, tierPower: { ...json.tierPower, free: 1 } }),
    /tierPower.free must be 0/,
  );
  const allFree = json.masternodes.map((m: object) => ({ ...m, tier: "free", owner: undefined }));
  assert.throws(() => parseGenesis({ ...json, masternodes: allFree }), /paid tier/);
});

Deno.test("genesis: the built-in networks' members hold voting power", () => {
  for (const network of NETWORKS) {
    const g = builtinGenesis(network);
    assert.ok(g.masternodes.every((m) => m.tier !== "free"), network);
    assert.deepEqual(parseGenesis(JSON.parse(genesisToJson(g))), g);
  }
});

Deno.test("genesis: paid members need an owner whose allocation covers their collateral", () => {
  const g = makeDevnetGenesis({
    network: "devnet-own",
    nodes: [{ ...nodes[0], tier: "silver" }, { ...nodes[1], tier: "free" }],
    blockIntervalMs: 1_000,
    genesisTime: T,
  });
  const owner = g.masternodes[0].owner!;
  assert.equal(g.alloc![owner], "100");
  assert.equal(g.masternodes[1].owner, undefined);
  const json = JSON.parse(genesisToJson(g));
  const withMember = (i: number, m: object) =>
    json.masternodes.map((x: object, j: number) => (j === i ? { ...x, ...m } : x));
  assert.throws(
    () => parseGenesis({ ...json, masternodes: withMember(0, { owner: undefined }) }),
    /masternodes\[0\]\.owner must be a string/,
  );
  assert.throws(
    () => parseGenesis({ ...json, masternodes: withMember(0, { owner: "nobody" }) }),
    /masternodes\[0\]\.owner "nobody"/,
  );
  assert.throws(
    () => parseGenesis({ ...json, masternodes: withMember(1, { owner }) }),
    /a free member locks nothing/,
  );
  assert.throws(
    () => parseGenesis({ ...json, alloc: { [owner]: "99.99999999" } }),
    new RegExp(`alloc\\[${owner}\\] is 99.99999999 TIME but its genesis masternodes lock 100 TIME`),
  );
  // Two members of one owner need the sum.
  const both = withMember(1, { tier: "bronze", owner });
  assert.throws(() => parseGenesis({ ...json, masternodes: both }), /lock 110 TIME/);
  assert.ok(parseGenesis({ ...json, masternodes: both, alloc: { [owner]: "110" } }));
});

Deno.test("genesis: stake fields default to TIME Coin's, are bounded, and change the hash", () => {
  const g = makeDevnetGenesis({ network: "devnet-stake", nodes, blockIntervalMs: 1_000 });
  const json = JSON.parse(genesisToJson(g));
  assert.deepEqual(stakeOf(g).tierCollateral, {
    free: 0n,
    bronze: 1_000_000_000n,
    silver: 10_000_000_000n,
    gold: 100_000_000_000n,
  });
  for (
    const [field, bad] of [
      ["tierCollateral", { ...json.tierCollateral, free: "1" }],
      ["tierCollateral", { ...json.tierCollateral, gold: "0" }],
      ["tierRewardWeight", { ...json.tierRewardWeight, gold: -1 }],
      ["signedBlocksWindow", 10_001],
      ["missedBlocksMax", json.signedBlocksWindow],
      ["slashPercent", 101],
      ["evidenceMaxAge", json.unbondingBlocks + 1],
      ["jailBlocks", 0],
    ] as const
  ) {
    assert.throws(() => parseGenesis({ ...json, [field]: bad }), GenesisError, field);
  }
  for (
    const [field, other] of [
      ["slashPercent", 6],
      ["jailBlocks", 11],
      ["unbondingBlocks", 21],
      ["signedBlocksWindow", 21],
      ["missedBlocksMax", 9],
      ["evidenceMaxAge", 19],
      ["tierRewardWeight", { ...json.tierRewardWeight, free: 1 }],
    ] as const
  ) {
    const changed = parseGenesis({ ...json, [field]: other });
    assert.notDeepEqual(genesisHash(changed), genesisHash(g), field);
  }
  const moved = parseGenesis({
    ...json,
    masternodes: json.masternodes.map((m: object, i: number) =>
      i === 0 ? { ...m, owner: ALICE_STAKE } : m
    ),
    alloc: { ...json.alloc, [ALICE_STAKE]: "10" },
  });
  assert.notDeepEqual(
    genesisHash(moved),
    genesisHash(parseGenesis({
      ...json,
      alloc: { ...json.alloc, [ALICE_STAKE]: "10" },
    })),
  );
  // Absent fields take the defaults.
  const bare = { ...json };
  for (const f of ["unbondingBlocks", "jailBlocks", "slashPercent"]) delete bare[f];
  const parsed = parseGenesis(bare);
  assert.equal(parsed.unbondingBlocks, STAKE_DEFAULTS.unbondingBlocks);
  assert.equal(parsed.slashPercent, STAKE_DEFAULTS.slashPercent);
});

const ALICE_STAKE = addressOf("devnet-stake", new Uint8Array(32).fill(0xa2));

Deno.test("genesis: the built-in networks lock TIME Coin's collateral of their members", () => {
  const g = builtinGenesis("mainnet");
  assert.equal(g.tierPower.bronze, 1);
  assert.equal(g.tierPower.gold, 100);
  for (const m of g.masternodes) assert.equal(g.alloc![m.owner!], "1000");
});

Deno.test("genesis tool: mainnet and testnet get TIME Coin's stake values, other networks small ones", () => {
  const make = (network: string) =>
    makeDevnetGenesis({ network, nodes, blockIntervalMs: 1_000, genesisTime: T });
  for (const network of ["mainnet", "testnet"]) {
    const g = make(network);
    assert.equal(g.tierCollateral!.bronze, "1000", network);
    assert.equal(g.signedBlocksWindow, STAKE_DEFAULTS.signedBlocksWindow, network);
    assert.equal(g.alloc![g.masternodes[0].owner!], "1000", network);
  }
  const dev = make("devnet");
  assert.equal(dev.tierCollateral!.bronze, DEVNET_STAKE.tierCollateral.bronze);
  assert.equal(dev.signedBlocksWindow, DEVNET_STAKE.signedBlocksWindow);
});
