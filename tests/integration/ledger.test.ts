/**
 * The ledger between real node processes: a wallet transfer seen by every node, a flood of
 * transfers from many senders through different nodes (with a kill -9 in the middle), and a
 * peer flooding forged signatures.
 */
import assert from "node:assert/strict";
import { fromHex, toHex } from "../../encoding/binary.ts";
import { generateKeyPair, type KeyPair } from "../../crypto/ed25519.ts";
import { genesisHash, ledgerOf, loadGenesisFile, stakeOf } from "../../chain/genesis.ts";
import { addressHash, addressOf } from "../../state/address.ts";
import { signTransfer, transactionIdHex } from "../../state/transaction.ts";
import { loadWallet } from "../../wallet/file.ts";
import { NetworkService } from "../../network/service.ts";
import { createNodeMetrics } from "../../metrics/definitions.ts";
import { metricValue, pollUntil, withTimeout } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { rpcBatch } from "../support/rpc_batch.ts";
import { accounts, submitAll, target, TIME } from "../support/ledger_calls.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
Deno.test("wallet send: the new balance shows on every node within 3 blocks", async () => {
  const devnet = await startDevnet(3, 1_000);
  try {
    await waitAllAtHeight(devnet.nodes, 2, 60_000);
    const m = devnet.manifest;
    const to = addressOf("devnet", generateKeyPair().publicKey);
    const before = await heightOf(devnet.nodes[0]);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "wallet",
        "send",
        "--network",
        "devnet",
        "--data-dir",
        m.nodes[0].dataDir,
        "--rpc",
        m.nodes[0].rpc.replace("http://", ""),
        "--to",
        to,
        "--amount",
        "12.5",
        "--memo",
        "integration",
        "--wait",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
    const { id } = lines[0];
    const { height } = lines[1];
    assert.equal(lines[1].id, id);
    assert.ok(height <= before + 3, `included at ${height}, submitted at ${before}`);
    for (const n of devnet.nodes) {
      await n.waitFor(
        async () => {
          const [a] = await accounts(n, [to]);
          return a.balanceUnits === (125n * TIME / 10n).toString();
        },
        "the new balance",
        30_000,
      );
      const t = await n.rpc<{ status: string; height: number; memo: string }>("gettransaction", [
        id,
      ]);
      assert.equal(t.status, "confirmed");
      assert.equal(t.height, height, "the same block everywhere");
      assert.equal(t.memo, "integration");
    }
  } finally {
    await devnet.stop();
  }
});

Deno.test("2,000 transfers from 20 senders via 3 nodes, one killed -9 midway: each included once, supply adds up", async () => {
  const devnet = await startDevnet(3, 1_000);
  const nodes = devnet.nodes;
  try {
    await waitAllAtHeight(nodes, 2, 60_000);
    const m = devnet.manifest;
    const genesis = await loadGenesisFile(m.genesis);
    const gHash = genesisHash(genesis);
    const wallets = await Promise.all(m.nodes.map((n) => loadWallet(n.wallet!)));
    const senders: KeyPair[] = Array.from({ length: 20 }, () => generateKeyPair());
    const senderAddr = senders.map((k) => addressOf("devnet", k.publicKey));
    const recipientKeys = Array.from({ length: 5 }, () => generateKeyPair());
    const recipientAddrs = recipientKeys.map((k) => addressOf("devnet", k.publicKey));
    const tip = await heightOf(nodes[0]);
    const FEE = 2_000n;
    const sign = (key: KeyPair, nonce: number, recipient: Uint8Array, amount: bigint) =>
      signTransfer(key, {
        genesisHash: gHash,
        nonce,
        recipient,
        amount,
        fee: FEE,
        expiresAt: tip + 10_000,
      });

    // Fund the 20 senders from the three node wallets (1,000 TIME each).
    const funding: Uint8Array[][] = [[], [], []];
    const nonces = [0, 0, 0];
    senders.forEach((k, i) => {
      const w = i % 3;
      funding[w].push(sign(wallets[w].key, nonces[w]++, addressHash(k.publicKey), 1_000n * TIME));
    });
    for (let w = 0; w < 3; w++) await submitAll(nodes[w], funding[w]);
    await nodes[0].waitFor(
      async () => {
        const a = await accounts(nodes[0], senderAddr);
        return a.every((x) => BigInt(x.balanceUnits) === 1_000n * TIME);
      },
      "senders funded",
      60_000,
    );

    // 100 transfers per sender, each sender through "its" node, at most 60 ahead of the chain.
    const PER_SENDER = 100;
    const all: Uint8Array[][] = senders.map((k, i) =>
      Array.from(
        { length: PER_SENDER },
        (_, n) => sign(k, n, addressHash(recipientKeys[(i + n) % 5].publicKey), TIME + BigInt(n)),
      )
    );
    const submitted = senders.map(() => 0);
    let killed = false;
    const live = () => nodes.filter((n) => n.running);
    const nodeFor = (i: number) => nodes[i % 3].running ? nodes[i % 3] : nodes[0];
    while (submitted.some((s) => s < PER_SENDER)) {
      for (let i = 0; i < senders.length; i++) {
        if (submitted[i] >= PER_SENDER) continue;
        const node = nodeFor(i);
        const [a] = await accounts(node, [senderAddr[i]]);
        const upTo = Math.min(PER_SENDER, a.nonce + 60);
        if (upTo > submitted[i]) {
          await submitAll(node, all[i].slice(submitted[i], upTo));
          submitted[i] = upTo;
        }
      }
      const total = submitted.reduce((s, x) => s + x, 0);
      if (!killed && total >= 1_000) {
        killed = true;
        await nodes[2].kill9();
        nodes[2] = devnet.processFor(2);
        nodes[2].start();
        // The flood resumes once it answers again; what the others pooled keeps flowing.
        const restarted = nodes[2];
        await restarted.waitFor(async () => (await heightOf(restarted)) >= 0, "restart", 60_000);
      }
      // Senders may run at most 60 ahead of the chain: the next block makes room.
      const h = await heightOf(nodes[0]);
      await nodes[0].waitFor(async () => (await heightOf(nodes[0])) > h, "the next block", 30_000);
    }
    assert.ok(killed);
    // Every node, the restarted one included, ends with every sender at nonce 100.
    for (const n of live()) {
      await n.waitFor(
        async () => {
          const a = await accounts(n, senderAddr);
          return a.every((x) => x.nonce === PER_SENDER);
        },
        "all transfers included",
        180_000,
      );
    }

    // Each transfer is in exactly one block.
    const tipNow = await heightOf(nodes[0]);
    const seen = new Map<string, number>();
    for (let h = 1; h <= tipNow; h += 50) {
      const blocks = await rpcBatch<{ transactions: { id: string }[] }>(
        target(nodes[0]),
        Array.from({ length: Math.min(50, tipNow - h + 1) }, (_, k) => ["getblock", [h + k]]),
      );
      for (const b of blocks) {
        for (const t of b.transactions) seen.set(t.id, (seen.get(t.id) ?? 0) + 1);
      }
    }
    const expected = [...funding.flat(), ...all.flat()].map(transactionIdHex);
    for (const id of expected) assert.equal(seen.get(id), 1, `transaction ${id} included once`);
    assert.equal(seen.size, expected.length);

    // The restarted node lost nothing: it knows every transfer at the same height.
    const sample = expected.filter((_, i) => i % 7 === 0);
    for (let i = 0; i < sample.length; i += 100) {
      const calls = sample.slice(i, i + 100).map((id) =>
        ["gettransaction", [id]] as [string, unknown[]]
      );
      const [a, b] = await Promise.all([
        rpcBatch<{ height: number }>(target(nodes[0]), calls),
        rpcBatch<{ height: number }>(target(nodes[2]), calls),
      ]);
      assert.deepEqual(b.map((t) => t.height), a.map((t) => t.height));
    }

    // Balances agree on every node, and the supply is genesis + rewards.
    const everyone = [...m.nodes.map((n) => n.address!), ...senderAddr, ...recipientAddrs];
    const settled = [...senderAddr, ...recipientAddrs]; // no longer change
    const reference = await accounts(nodes[0], settled);
    for (const n of live()) {
      assert.deepEqual(
        (await accounts(n, settled)).map((a) => a.balanceUnits),
        reference.map((a) => a.balanceUnits),
      );
    }
    const ledger = ledgerOf(genesis);
    // Block 1 locks each member's collateral out of its owner's allocation: not spendable.
    const collateral = stakeOf(genesis).tierCollateral;
    const locked = genesis.masternodes.reduce(
      (s, mn) => s + (mn.owner ? collateral[mn.tier] : 0n),
      0n,
    );
    const allocated = ledger.alloc.reduce((s, a) => s + a.units, 0n) - locked;
    await pollUntil(async () => {
      const snapshot = await accounts(nodes[0], everyone);
      const height = snapshot[0].height;
      if (snapshot.some((a) => a.height !== height)) return false;
      const supply = snapshot.reduce((s, a) => s + BigInt(a.balanceUnits), 0n);
      assert.equal(supply, allocated + BigInt(height) * BigInt(genesis.rewards.blockReward));
      return true;
    }, "a consistent balance snapshot");
  } finally {
    await devnet.stop();
  }
});

Deno.test("a peer flooding forged signatures is banned after a bounded amount of work", async () => {
  const devnet = await startDevnet(1, 1_000);
  const hostile: NetworkService[] = [];
  try {
    const node = devnet.nodes[0];
    await waitAllAtHeight([node], 1, 60_000);
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    const gHash = genesisHash(genesis);
    const key = generateKeyPair();
    const forged = Array.from({ length: 5_000 }, (_, n) => {
      const t = signTransfer(key, {
        genesisHash: gHash,
        nonce: n,
        recipient: new Uint8Array(20),
        amount: 1n,
        fee: 10_000n,
        expiresAt: 1_000_000,
      });
      t[t.length - 1] ^= 1;
      return t;
    });
    const byId = new Map(forged.map((t) => [transactionIdHex(t), t]));
    const net = new NetworkService({
      key: generateKeyPair(),
      magic: genesis.magic,
      genesisHash: gHash,
      dataDir: null,
      listen: null,
      peers: [devnet.manifest.nodes[0].p2p],
      maxInbound: 0,
      maxOutbound: 0,
      pingIntervalMs: 30_000,
      pongTimeoutMs: 90_000,
      metrics: createNodeMetrics(),
      localTip: () => ({ height: 0, hash: gHash }),
    });
    hostile.push(net);
    const gone = new Promise<string>((resolve) => net.onPeerGone((_k, reason) => resolve(reason)));
    net.onPeerReady((p) => {
      const ids = [...byId.keys()].map(fromHex);
      for (let i = 0; i < ids.length; i += 1_000) {
        net.send(p.key, { kind: "txAnnounce", ids: ids.slice(i, i + 1_000) });
      }
    });
    net.onMessage("getTxs", (from, msg) => {
      const txs = msg.ids.map((id) => byId.get(toHex(id))).filter((t) => t !== undefined);
      for (let i = 0; i < txs.length; i += 1_000) {
        net.send(from, { kind: "txs", txs: txs.slice(i, i + 1_000) });
      }
    });
    await net.start();
    await withTimeout(gone, 60_000, "the node to drop the flooder");
    const metrics = await node.metrics();
    assert.ok(metricValue(metrics, "timenode_bans_total") >= 1, "banned");
    const checked = metricValue(metrics, "timenode_transactions_rejected_total", {
      reason: "bad-signature",
    });
    // Ten forged signatures earn the ban; what was already queued in worker batches (at most
    // two of 512) is all the work the other 4,990 get.
    assert.ok(checked >= 10, `${checked} checked`);
    assert.ok(checked <= 2 * 512 + 10, `${checked} forged signatures were checked`);
    // The node is still healthy and producing blocks.
    const h = await heightOf(node);
    await waitAllAtHeight([node], h + 2, 30_000);
  } finally {
    for (const n of hostile) await n.stop();
    await devnet.stop();
  }
});
