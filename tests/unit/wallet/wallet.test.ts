import assert from "node:assert/strict";
import { fromHex, toHex } from "../../../encoding/binary.ts";
import { UsageError } from "../../../node/cli.ts";
import { createWallet, loadWallet, WalletError } from "../../../wallet/file.ts";
import { parseWalletArgs, runWalletCommand, WALLET_TX_TTL_BLOCKS } from "../../../wallet/cli.ts";
import type { WalletRpc } from "../../../wallet/rpc.ts";
import { addressOf } from "../../../state/address.ts";
import { checkTxStateless, decodeTransaction } from "../../../state/transaction.ts";
import { GENESIS_HASH } from "../state/ledger_support.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("wallet file: mode 0600, never overwritten, address checked on load", () =>
  withDir(async (dir) => {
    const path = `${dir}/sub/wallet.json`;
    const w = await createWallet(path, "devnet");
    assert.match(w.address, /^ttime1/);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    await assert.rejects(() => createWallet(path, "devnet"), WalletError, "refusing to overwrite");
    assert.equal((await loadWallet(path)).address, w.address);
    const json = JSON.parse(await Deno.readTextFile(path));
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ ...json, address: "ttime1x" }));
    await assert.rejects(() => loadWallet(`${dir}/bad.json`), WalletError, "does not match");
    await assert.rejects(() => loadWallet(`${dir}/none.json`), WalletError, "wallet new");
  }));

Deno.test("wallet args: defaults per network, usage errors name the flag", () => {
  const c = parseWalletArgs(["send", "--to", "x", "--amount", "1", "--network", "devnet"], "/h");
  assert.equal(c.walletFile, "/h/.timenode/devnet/wallet.json");
  assert.equal(c.rpcUrl, "http://127.0.0.1:24301");
  const d = parseWalletArgs(["balance", "ttime1abc", "--rpc", "[::1]:9", "--wallet", "w"], "/h");
  assert.equal(d.address, "ttime1abc");
  assert.equal(d.rpcUrl, "http://[::1]:9");
  assert.equal(d.walletFile, "w");
  assert.throws(() => parseWalletArgs(["send", "--amount", "1"], "/h"), UsageError, "--to");
  assert.throws(() => parseWalletArgs(["send", "--to", "x"], "/h"), UsageError, "--amount");
  assert.throws(() => parseWalletArgs(["address", "--memo", "m"], "/h"), UsageError, "--memo");
  assert.throws(() => parseWalletArgs(["steal"], "/h"), UsageError, "unknown command");
  assert.throws(() => parseWalletArgs(["new", "--network", "x"], "/h"), UsageError, "--network");
});

Deno.test("wallet send: signs locally with the node's chain, nonce and fee; only the transaction leaves", () =>
  withDir(async (dir) => {
    const w = await createWallet(`${dir}/w.json`, "devnet");
    const to = addressOf("devnet", new Uint8Array(32).fill(5));
    const calls: [string, unknown][] = [];
    const rpc: WalletRpc = {
      call(method, params) {
        calls.push([method, params]);
        switch (method) {
          case "getblockchaininfo":
            return Promise.resolve({
              network: "devnet",
              genesisHash: toHex(GENESIS_HASH),
              height: 7,
            });
          case "estimatefee":
            return Promise.resolve({ feeUnits: "2000" });
          case "getaccount":
            return Promise.resolve({ nextNonce: 4 });
          case "sendrawtransaction":
            return Promise.resolve({ id: "ab".repeat(32), status: "added" });
          case "gettransaction":
            return Promise.resolve({ status: "confirmed", height: 9 });
        }
        return Promise.reject(new Error(method));
      },
    };
    const printed: unknown[] = [];
    const cmd = parseWalletArgs(
      [
        "send",
        "--wallet",
        `${dir}/w.json`,
        "--to",
        to,
        "--amount",
        "12.5",
        "--memo",
        "hi",
        "--wait",
      ],
      "/h",
    );
    assert.equal(await runWalletCommand(cmd, rpc, (o) => printed.push(o)), 0);
    const hex = calls.find(([m]) => m === "sendrawtransaction")![1] as string[];
    const tx = checkTxStateless({ genesisHash: GENESIS_HASH, minFeePerByte: 10n }, fromHex(hex[0]));
    assert.equal(tx.nonce, 4);
    assert.equal(tx.amount, 1_250_000_000n);
    assert.equal(tx.fee, 2_000n);
    assert.equal(tx.expiresAt, 7 + WALLET_TX_TTL_BLOCKS);
    assert.equal(new TextDecoder().decode(decodeTransaction(fromHex(hex[0])).memo), "hi");
    assert.deepEqual(printed[1], { id: "ab".repeat(32), height: 9 });
    // Nothing sent anywhere contains the secret key.
    const secret = JSON.parse(await Deno.readTextFile(`${dir}/w.json`)).secretKey;
    assert.ok(!JSON.stringify(calls).includes(secret));
    assert.equal(w.address, addressOf("devnet", decodeTransaction(fromHex(hex[0])).sender));
    // A typo in --to never reaches the node.
    const typo = to.slice(0, -1) + (to.endsWith("q") ? "p" : "q");
    const bad = parseWalletArgs([
      "send",
      "--wallet",
      `${dir}/w.json`,
      "--to",
      typo,
      "--amount",
      "1",
    ], "/h");
    const before = calls.length;
    assert.equal(await runWalletCommand(bad, rpc, () => {}), 1);
    assert.ok(!calls.slice(before).some(([m]) => m === "sendrawtransaction"));
  }));
