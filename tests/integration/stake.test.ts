/**
 * Stake between real node processes (docs/state.md#stake, docs/operations.md#stake): a funded
 * wallet bonds a new bronze node that votes from h + 2 and earns rewards, then leaves, and its
 * collateral is spendable only from the release height; and 100 free registrations change no
 * voting power. Devnet stake values: bronze collateral 10 TIME, unbonding 20 blocks.
 */
import assert from "node:assert/strict";
import { fromHex, toHex } from "../../encoding/binary.ts";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { genesisHash, loadGenesisFile } from "../../chain/genesis.ts";
import { addressOf } from "../../state/address.ts";
import { signTransfer } from "../../state/transaction.ts";
import { signRegistration } from "../../state/records.ts";
import { createWallet } from "../../wallet/file.ts";
import { tempDir } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { accountOf, entryOf, extraNode, nodeIdOf, runWallet, signersOf } from "../support/stake.ts";

const TIME = 100_000_000n;
/** Short enough to see unbonding (20 blocks) in seconds, long enough for 4 processes on 2 cores. */
const INTERVAL_MS = 250;

Deno.test("stake: a funded wallet bonds a bronze node that votes from h + 2, earns, leaves and unbonds", async () => {
  const devnet = await startDevnet(3, INTERVAL_MS);
  const mn0 = devnet.nodes[0];
  const newcomer = await extraNode(devnet, "bonded");
  const walletDir = await tempDir("owner");
  try {
    await waitAllAtHeight(devnet.nodes, 2);
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    // The owner: a fresh wallet funded with 15 TIME by mn0's genesis wallet.
    const owner = await createWallet(`${walletDir}/owner.json`, "devnet");
    const sent = await runWallet(mn0, [
      "send",
      "--to",
      owner.address,
      "--amount",
      "15",
      "--wait",
    ]);
    assert.equal(sent.code, 0, sent.err);
    const reward = addressOf("devnet", generateKeyPair().publicKey);

    newcomer.start();
    await newcomer.waitFor(
      async () => (await heightOf(newcomer)) >= await heightOf(mn0),
      "synced",
    );
    const nodeId = await nodeIdOf(newcomer.opts.dataDir);

    // Too little: the wallet says how much is missing and sends nothing.
    const poor = await createWallet(`${walletDir}/poor.json`, "devnet");
    const refused = await runWallet(newcomer, [
      "register",
      "--wallet",
      `${walletDir}/poor.json`,
      "--tier",
      "bronze",
      "--reward-address",
      poor.address,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /insufficient spendable balance: .* \(10 TIME missing\)/);

    // Bond: the node at --rpc signs its half through its own RPC.
    const reg = await runWallet(newcomer, [
      "register",
      "--wallet",
      `${walletDir}/owner.json`,
      "--tier",
      "bronze",
      "--reward-address",
      reward,
      "--wait",
    ]);
    assert.equal(reg.code, 0, reg.err);
    assert.equal(reg.out[0].nodeId, nodeId);
    const listed = await entryOf(mn0, nodeId);
    assert.ok(listed, "listed on mn0");
    assert.equal(listed.tier, "bronze");
    assert.equal(listed.owner, owner.address);
    assert.equal(listed.collateral, "10");
    const activeFrom = listed.activeFrom;
    const locked = await accountOf(mn0, owner.address);
    assert.equal(locked.lockedUnits, (10n * TIME).toString());
    // 15 TIME received, 10 locked: 5 left to spend.
    assert.equal(locked.balanceUnits, (5n * TIME).toString());

    // It votes from activeFrom (= inclusion + 2) on, and never before.
    await waitAllAtHeight([mn0], activeFrom + 4);
    assert.ok(!(await signersOf(mn0, activeFrom - 1)).includes(nodeId));
    let signed = 0;
    for (let h = activeFrom; h <= activeFrom + 2; h++) {
      if ((await signersOf(mn0, h)).includes(nodeId)) signed++;
    }
    // At 250 ms blocks a member's precommit counts only if it reaches the next proposer within
    // that proposer's 250 ms collection window; a member just bonded, on a loaded machine, can
    // miss some (CI saw 1 of 3). Its votes from activeFrom on, not before, are what this checks.
    assert.ok(signed >= 1, `signed ${signed} of the 3 heights from activeFrom`);
    const earned = await mn0.waitFor(async () => {
      const a = await accountOf(mn0, reward);
      return BigInt(a.balanceUnits) > 0n && a;
    }, "rewards at the reward address");
    assert.ok(BigInt(earned.balanceUnits) > 0n);
    const info = await newcomer.rpc<{ self: { status: string; power: number } }>(
      "getconsensusinfo",
    );
    assert.equal(info.self.status, "active");
    assert.equal(info.self.power, 1);

    // Leave: the collateral unbonds and is spendable only from its release height.
    const dereg = await runWallet(newcomer, ["deregister", "--wait"]);
    assert.equal(dereg.code, 0, dereg.err);
    const unbonding = await mn0.waitFor(async () => {
      const a = await accountOf(mn0, owner.address);
      return a.unbonding.length === 1 && a;
    }, "an unbonding entry");
    assert.equal(unbonding.lockedUnits, "0");
    assert.equal(unbonding.unbonding[0].amount, "10");
    const release = unbonding.unbonding[0].releaseHeight;
    const spendable = BigInt(unbonding.balanceUnits);
    // A transfer that needs the collateral: refused while it unbonds.
    const gHash = genesisHash(genesis);
    const transfer = signTransfer(owner.key, {
      genesisHash: gHash,
      nonce: 0,
      recipient: fromHex(toHex(new Uint8Array(20).fill(7))),
      amount: spendable + 5n * TIME,
      fee: 10_000n,
      expiresAt: release + 100,
      memo: new Uint8Array(),
    });
    assert.ok((await heightOf(mn0)) < release - 1, "tested before the release height");
    await assert.rejects(
      mn0.rpc("sendrawtransaction", [toHex(transfer)]),
      /insufficient-balance/,
    );
    await waitAllAtHeight([mn0], release);
    const after = await accountOf(mn0, owner.address);
    assert.equal(after.unbonding.length, 0);
    assert.equal(BigInt(after.balanceUnits), spendable + 10n * TIME);
    const ok = await mn0.rpc<{ status: string }>("sendrawtransaction", [toHex(transfer)]);
    assert.equal(ok.status, "added");
  } finally {
    await newcomer.stop();
    await devnet.stop();
    await Deno.remove(newcomer.opts.dataDir, { recursive: true }).catch(() => {});
    await Deno.remove(walletDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("stake: 100 free registrations are listed and change no voting power", async () => {
  const devnet = await startDevnet(3, INTERVAL_MS);
  const mn0 = devnet.nodes[0];
  try {
    await waitAllAtHeight(devnet.nodes, 2);
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    const gHash = genesisHash(genesis);
    const before = await mn0.rpc<{ totalPower: number }>("getconsensusinfo");
    const tip = await heightOf(mn0);
    const keys = Array.from({ length: 100 }, () => generateKeyPair());
    for (const [i, key] of keys.entries()) {
      const r = signRegistration(key, {
        genesisHash: gHash,
        nonce: 0,
        expiresAt: tip + 200,
        rewardAddress: addressOf("devnet", key.publicKey),
        address: `127.0.0.1:${10_000 + i}`,
      });
      await mn0.rpc("sendrawrecord", [r.type, toHex(r.data)]);
    }
    const ids = new Set(keys.map((k) => toHex(k.publicKey)));
    const list = await mn0.waitFor(
      async () => {
        const l = await mn0.rpc<{ nodeId: string; power: number; status: string }[]>(
          "masternodelist",
        );
        const free = l.filter((m) => ids.has(m.nodeId) && m.status === "active");
        return free.length === 100 && l;
      },
      "100 free members active",
      60_000,
    );
    assert.ok(list.filter((m) => ids.has(m.nodeId)).every((m) => m.power === 0));
    const tipNow = await heightOf(mn0);
    await waitAllAtHeight(devnet.nodes, tipNow + 3);
    const after = await mn0.rpc<{ totalPower: number; validators: { power: number }[] }>(
      "getconsensusinfo",
    );
    assert.equal(after.totalPower, before.totalPower);
    const metrics = await mn0.metrics();
    assert.match(
      metrics,
      new RegExp(`timenode_stake_set_power\\{kind="active"\\} ${before.totalPower}\\b`),
    );
  } finally {
    await devnet.stop();
  }
});
