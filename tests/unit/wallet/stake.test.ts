/**
 * `timenode wallet register | deregister | unjail` against a fake node RPC: the record the
 * wallet builds verifies with both keys, the balance check names what is missing, and the node
 * key can sign through the node's RPC instead of a file.
 */
import assert from "node:assert/strict";
import { fromHex, toHex } from "../../../encoding/binary.ts";
import { generateKeyPair, signBytes } from "../../../crypto/ed25519.ts";
import { encodeKeyFile } from "../../../crypto/node_key.ts";
import { UsageError } from "../../../node/cli.ts";
import { createWallet } from "../../../wallet/file.ts";
import { parseWalletArgs, runWalletCommand } from "../../../wallet/cli.ts";
import type { WalletRpc } from "../../../wallet/rpc.ts";
import { addressOf } from "../../../state/address.ts";
import {
  collateralRegistrationSignBytes,
  decodeRecord,
  RecordType,
  verifyOwnerSignature,
  verifyRecordSignature,
} from "../../../state/records.ts";
import { GENESIS_HASH } from "../state/ledger_support.ts";

const TIME = 100_000_000n;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A node RPC with `spendable` base units on every account; records land in `sent`. */
function fakeNode(spendable: bigint, extra: Record<string, (p: unknown) => unknown> = {}) {
  const sent: { type: number; data: Uint8Array }[] = [];
  const calls: [string, unknown][] = [];
  const rpc: WalletRpc = {
    call(method, params) {
      calls.push([method, params]);
      const handlers: Record<string, (p: unknown) => unknown> = {
        getblockchaininfo: () => ({
          network: "devnet",
          genesisHash: toHex(GENESIS_HASH),
          height: 7,
        }),
        getstakeparams: () => ({ tierCollateral: { bronze: "10", silver: "100", gold: "1000" } }),
        getaccount: () => ({ balanceUnits: spendable.toString() }),
        getrecordnonce: () => ({ nonce: 3, expiresAt: 107 }),
        getnetworkinfo: () => ({ nodeId: "00".repeat(32), listen: "127.0.0.1:9" }),
        sendrawrecord: (p) => {
          const [type, hex] = p as [number, string];
          sent.push({ type, data: fromHex(hex) });
          return { id: "cd".repeat(32), status: "added" };
        },
        ...extra,
      };
      const h = handlers[method];
      return h ? Promise.resolve(h(params)) : Promise.reject(new Error(`unexpected ${method}`));
    },
  };
  return { rpc, sent, calls };
}

Deno.test("wallet stake args: register needs a paid tier and a reward address", () => {
  const r = parseWalletArgs(
    ["register", "--tier", "bronze", "--reward-address", "a", "--node-key", "k", "--wait"],
    "/h",
  );
  assert.equal(r.tier, "bronze");
  assert.equal(r.nodeKeyFile, "k");
  assert.equal(r.wait, true);
  assert.throws(
    () => parseWalletArgs(["register", "--reward-address", "a"], "/h"),
    UsageError,
    "--tier",
  );
  assert.throws(
    () => parseWalletArgs(["register", "--tier", "free", "--reward-address", "a"], "/h"),
    UsageError,
    "--tier",
  );
  assert.throws(
    () => parseWalletArgs(["register", "--tier", "gold"], "/h"),
    UsageError,
    "--reward-address",
  );
  assert.throws(() => parseWalletArgs(["unjail", "--tier", "gold"], "/h"), UsageError, "--tier");
  assert.throws(
    () => parseWalletArgs(["balance", "--node-key", "k"], "/h"),
    UsageError,
    "--node-key",
  );
});

Deno.test("wallet register --node-key: one record signed by the node key and the wallet as owner", () =>
  withDir(async (dir) => {
    const w = await createWallet(`${dir}/w.json`, "devnet");
    const nodeKey = generateKeyPair();
    await Deno.writeTextFile(`${dir}/node_key.json`, encodeKeyFile(nodeKey));
    const node = fakeNode(25n * TIME);
    const reward = addressOf("devnet", generateKeyPair().publicKey);
    const cmd = parseWalletArgs([
      "register",
      "--wallet",
      `${dir}/w.json`,
      "--node-key",
      `${dir}/node_key.json`,
      "--tier",
      "bronze",
      "--reward-address",
      reward,
      "--address",
      "127.0.0.1:4000",
    ], "/h");
    const printed: unknown[] = [];
    assert.equal(await runWalletCommand(cmd, node.rpc, (o) => printed.push(o)), 0);
    assert.equal(node.sent.length, 1);
    assert.equal(node.sent[0].type, RecordType.CollateralRegistration);
    const rec = decodeRecord(node.sent[0]);
    assert.equal(rec.type, RecordType.CollateralRegistration);
    if (rec.type !== RecordType.CollateralRegistration) return;
    assert.ok(verifyRecordSignature(GENESIS_HASH, rec));
    assert.ok(verifyOwnerSignature(GENESIS_HASH, rec));
    assert.deepEqual(rec.nodeId, nodeKey.publicKey);
    assert.equal(rec.owner, w.address);
    assert.equal(rec.rewardAddress, reward);
    assert.equal(rec.address, "127.0.0.1:4000");
    assert.equal(rec.nonce, 3);
    assert.equal(rec.expiresAt, 107);
    // Neither secret key ever leaves.
    const secrets = [
      JSON.parse(await Deno.readTextFile(`${dir}/w.json`)).secretKey,
      toHex(nodeKey.secretKey),
    ];
    for (const s of secrets) assert.ok(!JSON.stringify(node.calls).includes(s));
  }));

Deno.test("wallet register without --node-key: the node signs its half through its RPC", () =>
  withDir(async (dir) => {
    const w = await createWallet(`${dir}/w.json`, "devnet");
    const nodeKey = generateKeyPair();
    const reward = addressOf("devnet", generateKeyPair().publicKey);
    const node = fakeNode(10n * TIME, {
      signcollateralregistration: (p) => {
        const q = p as { tier: "bronze"; rewardAddress: string; ownerKey: string };
        const params = {
          genesisHash: GENESIS_HASH,
          nonce: 0,
          expiresAt: 100,
          tier: q.tier,
          rewardAddress: q.rewardAddress,
          address: "127.0.0.1:5000",
          owner: addressOf("devnet", fromHex(q.ownerKey)),
          ownerKey: fromHex(q.ownerKey),
          nodeId: nodeKey.publicKey,
        };
        return {
          nodeId: toHex(nodeKey.publicKey),
          nonce: 0,
          expiresAt: 100,
          address: "127.0.0.1:5000",
          nodeSignature: toHex(signBytes(nodeKey, collateralRegistrationSignBytes(params))),
        };
      },
    });
    const cmd = parseWalletArgs(
      ["register", "--wallet", `${dir}/w.json`, "--tier", "bronze", "--reward-address", reward],
      "/h",
    );
    // Exactly the collateral is enough.
    assert.equal(await runWalletCommand(cmd, node.rpc, () => {}), 0);
    const rec = decodeRecord(node.sent[0]);
    if (rec.type !== RecordType.CollateralRegistration) throw new Error("wrong type");
    assert.ok(verifyRecordSignature(GENESIS_HASH, rec));
    assert.ok(verifyOwnerSignature(GENESIS_HASH, rec));
    assert.equal(rec.owner, w.address);
  }));

Deno.test("wallet register: too little spendable balance says how much is missing, sends nothing", () =>
  withDir(async (dir) => {
    await createWallet(`${dir}/w.json`, "devnet");
    const node = fakeNode(4n * TIME);
    const errors: string[] = [];
    const original = console.error;
    console.error = (m: string) => errors.push(m);
    try {
      const cmd = parseWalletArgs([
        "register",
        "--wallet",
        `${dir}/w.json`,
        "--tier",
        "bronze",
        "--reward-address",
        addressOf("devnet", generateKeyPair().publicKey),
      ], "/h");
      assert.equal(await runWalletCommand(cmd, node.rpc, () => {}), 1);
    } finally {
      console.error = original;
    }
    assert.match(
      errors.join("\n"),
      /insufficient spendable balance: a bronze registration locks 10 TIME/,
    );
    assert.match(errors.join("\n"), /has 4 spendable \(6 TIME missing\)/);
    assert.equal(node.sent.length, 0);
  }));

Deno.test("wallet unjail and deregister --node-key: records signed by the node key", () =>
  withDir(async (dir) => {
    const nodeKey = generateKeyPair();
    await Deno.writeTextFile(`${dir}/node_key.json`, encodeKeyFile(nodeKey));
    for (
      const [sub, type] of [["unjail", RecordType.Unjail], [
        "deregister",
        RecordType.Deregistration,
      ]] as const
    ) {
      const node = fakeNode(0n);
      const cmd = parseWalletArgs([sub, "--node-key", `${dir}/node_key.json`], "/h");
      assert.equal(await runWalletCommand(cmd, node.rpc, () => {}), 0);
      const rec = decodeRecord(node.sent[0]);
      assert.equal(rec.type, type);
      assert.ok(verifyRecordSignature(GENESIS_HASH, rec));
      assert.equal(rec.nonce, 3);
    }
  }));

Deno.test("wallet unjail without --node-key: the node at --rpc signs for itself", async () => {
  const node = fakeNode(0n, { unjailmasternode: () => ({ id: "ef".repeat(32), status: "added" }) });
  const printed: unknown[] = [];
  const cmd = parseWalletArgs(["unjail"], "/h");
  assert.equal(await runWalletCommand(cmd, node.rpc, (o) => printed.push(o)), 0);
  assert.deepEqual(printed[0], {
    id: "ef".repeat(32),
    status: "added",
    nodeId: "00".repeat(32),
    record: "unjail",
  });
});
