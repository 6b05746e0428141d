/**
 * The transfer flood: it must not starve consensus. It runs alone, after the parallel part of the
 * suite (`deno task test`): the flood is meant to saturate both cores, and a neighbouring test
 * file would decide how long heights take, not the node.
 */
import assert from "node:assert/strict";
import { toHex } from "../../encoding/binary.ts";
import { generateKeyPair, type KeyPair } from "../../crypto/ed25519.ts";
import { genesisHash, loadGenesisFile } from "../../chain/genesis.ts";
import { addressHash, addressOf } from "../../state/address.ts";
import { signTransfer } from "../../state/transaction.ts";
import { loadWallet } from "../../wallet/file.ts";
import { withTimeout } from "../support/cluster.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { rpcBatch } from "../support/rpc_batch.ts";
import { accounts, submitAll, target, TIME } from "../support/ledger_calls.ts";

interface FloodBlock {
  height: number;
  certificate: { round: number };
  transactions: unknown[];
}

Deno.test("a transfer flood on every node's RPC does not starve consensus: heights keep committing in their first rounds, full of transfers", async () => {
  const devnet = await startDevnet(3, 1_000);
  const nodes = devnet.nodes;
  try {
    await waitAllAtHeight(nodes, 2, 60_000);
    const m = devnet.manifest;
    const gHash = genesisHash(await loadGenesisFile(m.genesis));
    const wallets = await Promise.all(m.nodes.map((n) => loadWallet(n.wallet!)));
    const tip = await heightOf(nodes[0]);
    const sign = (key: KeyPair, nonce: number, recipient: Uint8Array, amount: bigint) =>
      signTransfer(key, {
        genesisHash: gHash,
        nonce,
        recipient,
        amount,
        fee: 2_000n,
        expiresAt: tip + 10_000,
      });
    // 60 funded senders, so the flood is pooled and relayed to every node, not only refused.
    const SENDERS = 60;
    const senders = Array.from({ length: SENDERS }, () => generateKeyPair());
    const funding: Uint8Array[][] = [[], [], []];
    senders.forEach((k, i) =>
      funding[i % 3].push(
        sign(wallets[i % 3].key, funding[i % 3].length, addressHash(k.publicKey), 100n * TIME),
      )
    );
    for (let w = 0; w < 3; w++) await submitAll(nodes[w], funding[w]);
    const senderAddr = senders.map((k) => addressOf("devnet", k.publicKey));
    await nodes[0].waitFor(
      async () => (await accounts(nodes[0], senderAddr)).every((a) => a.balanceUnits !== "0"),
      "senders funded",
      60_000,
    );
    // 250 transfers per sender, sender s through node s % 3, senders interleaved; re-offered
    // in a loop: what is refused or already included is offered again, as a flooder would.
    const PER_SENDER = 250;
    const sink = addressHash(generateKeyPair().publicKey);
    const plan = senders.map((k) =>
      Array.from({ length: PER_SENDER }, (_, n) => sign(k, n, sink, 1n))
    );
    const byNode = nodes.map((_, w) =>
      plan[0].flatMap((_, n) => plan.filter((_, s) => s % 3 === w).map((p) => toHex(p[n])))
    );

    // Heights committed over a window (a fixed time span is the point here, not a wait).
    const window = async (ms: number) => {
      const from = await heightOf(nodes[0]);
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, ms));
      const to = await heightOf(nodes[0]);
      return { from: from + 1, to, perSec: (to - from) / ((Date.now() - t0) / 1000) };
    };
    const quiet = await window(8_000);

    let flooding = true;
    let offered = 0;
    let busy = 0;
    const flood = nodes.map(async (node, w) => {
      let next = 0;
      // Two calls of 1,000 in flight per node, each sent as soon as the last is answered.
      await Promise.all([0, 1].map(async () => {
        while (flooding) {
          const batch = Array.from({ length: 1_000 }, () => byNode[w][next++ % byNode[w].length]);
          offered += batch.length;
          try {
            const [out] = await rpcBatch<{ status: string; reason?: string }[]>(
              target(node),
              [["sendrawtransactions", [batch]]],
              60_000,
            );
            busy += out.filter((o) => o.reason === "busy").length;
          } catch (e) {
            // A node over its budget refuses the whole call.
            if (!/busy/.test((e as Error).message)) throw e;
            busy += batch.length;
          }
        }
      }));
    });
    // RPC keeps answering a simple call within a few seconds while the flood runs.
    let slowestProbeMs = 0;
    const probe = (async () => {
      while (flooding) {
        const t0 = Date.now();
        await withTimeout(heightOf(nodes[1]), 5_000, "getblockcount during the flood");
        slowestProbeMs = Math.max(slowestProbeMs, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    let loaded: { from: number; to: number; perSec: number };
    try {
      loaded = await window(10_000);
    } finally {
      flooding = false;
      await Promise.allSettled([...flood, probe]);
    }
    await Promise.all([...flood, probe]);
    const blocks = await Promise.all(
      Array.from(
        { length: Math.max(0, loaded.to - loaded.from + 1) },
        (_, k) => nodes[0].rpc<FloodBlock>("getblock", [loaded.from + k]),
      ),
    );
    const carried = blocks.map((b) => b.transactions.length);
    console.log(
      `blocks/s without flood ${quiet.perSec.toFixed(2)}, during ${loaded.perSec.toFixed(2)} ` +
        `(${(100 * loaded.perSec / quiet.perSec).toFixed(0)}%); transfers per block during ` +
        `${carried.join(" ")}; rounds ${blocks.map((b) => b.certificate.round).join(" ")}; ` +
        `${offered} offered, ${busy} refused busy; slowest getblockcount ${slowestProbeMs} ms`,
    );
    // Starved consensus (votes and proposals waiting behind transfer admission, the failure this
    // guards against) shows as heights that stop, or that need later rounds after timeouts. Full
    // blocks make heights longer by design (their work adds to the interval); how much is a
    // benchmark figure (`deno task bench --only ledger`), not a pass/fail line on a shared machine.
    assert.ok(quiet.perSec > 0, "blocks without the flood");
    assert.ok(blocks.length >= 2, `only ${blocks.length} heights committed in 10 s of flood`);
    const late = blocks.filter((b) => b.certificate.round > 1);
    assert.deepEqual(
      late.map((b) => `${b.height}:r${b.certificate.round}`),
      [],
      "heights decided after two rounds during the flood",
    );
    assert.ok(
      carried.some((n) => n > 0),
      `no transfer committed during the flood (${carried.join(" ")})`,
    );
  } finally {
    await devnet.stop();
  }
});
