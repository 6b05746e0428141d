import assert from "node:assert/strict";
import { fromHex } from "../../../encoding/binary.ts";
import type { ChainApi, StateView } from "../../../chain/api.ts";
import { payloadRoot } from "../../../chain/block.ts";
import { createNodeMetrics } from "../../../metrics/definitions.ts";
import { createStateMachine } from "../../../state/state.ts";
import { transactionIdHex } from "../../../state/transaction.ts";
import { checkTransactionSignatures } from "../../../sync/verify_worker.ts";
import { INVALID_TX_PENALTY, TxService } from "../../../mempool/service.ts";
import { FakeNetwork } from "../../support/fake_network.ts";
import { GENESIS, GENESIS_HASH, transfer, walletKey } from "../state/ledger_support.ts";

/** A chain at height 1 (the genesis allocations applied), enough for admission. */
function fundedChain() {
  const sm = createStateMachine(GENESIS);
  const entries = new Map<string, Uint8Array>();
  const view: StateView = { get: (k) => entries.get(k) };
  const block = {
    header: {
      version: 2,
      chainId: GENESIS_HASH,
      height: 1,
      prevHash: GENESIS_HASH,
      timestamp: GENESIS.genesisTime + 1,
      proposer: walletKey("mn").publicKey,
      round: 0,
      payloadRoot: payloadRoot([]),
      validatorSetHash: sm.validatorSetFor(view, 0, 1)!.hash,
    },
    records: [],
  };
  for (const [k, v] of sm.apply(view, block)) if (v) entries.set(k, v);
  const chain = {
    genesis: GENESIS,
    genesisHash: GENESIS_HASH,
    tip: () => ({ height: 1, hash: new Uint8Array(32), timestamp: 0 }),
    stateView: () => view,
    onBlockApplied: () => {},
  } as unknown as ChainApi;
  return { sm, chain };
}

function setup(dataDir: string | null = null) {
  const { sm, chain } = fundedChain();
  const net = new FakeNetwork();
  const verified: Uint8Array[][] = [];
  const service = new TxService({
    network: net,
    chain,
    stateMachine: sm,
    metrics: createNodeMetrics(),
    dataDir,
    verifier: {
      verifyTransactions: (txs) => {
        verified.push([...txs]);
        return Promise.resolve(
          [...checkTransactionSignatures(GENESIS_HASH, txs)].map((b) => b === 1),
        );
      },
    },
  });
  return { net, service, verified, sm };
}

Deno.test("tx service: a submitted transfer is pooled and announced once to every peer", async () => {
  const { net, service, verified } = setup();
  await service.start();
  net.connect("p1");
  net.connect("p2");
  const tx = transfer("alice", "bob");
  const id = transactionIdHex(tx);
  assert.deepEqual(await service.submit(tx, null), { id, status: "added" });
  assert.equal(verified.length, 1, "the signature went to the verifier");
  assert.deepEqual(await service.submit(tx, null), { id, status: "duplicate" });
  service.flushAnnouncements();
  service.flushAnnouncements();
  for (const p of ["p1", "p2"]) {
    const sent = net.sentTo(p, "txAnnounce");
    assert.equal(sent.length, 1, p);
    assert.deepEqual(sent[0], { kind: "txAnnounce", ids: [fromHex(id)] });
  }
  // A peer asks for it and gets it.
  net.deliver("p1", { kind: "getTxs", ids: [fromHex(id), new Uint8Array(32)] });
  assert.deepEqual(net.sentTo("p1", "txs"), [{ kind: "txs", txs: [tx] }]);
  await service.stop();
  net.close();
});

Deno.test("tx service: announced transfers are requested, admitted and relayed except to the origin", async () => {
  const { net, service } = setup();
  await service.start();
  net.connect("origin");
  net.connect("other");
  const tx = transfer("alice", "bob");
  const id = transactionIdHex(tx);
  net.deliver("origin", { kind: "txAnnounce", ids: [fromHex(id)] });
  assert.deepEqual(net.sentTo("origin", "getTxs"), [{ kind: "getTxs", ids: [fromHex(id)] }]);
  // A second announcement of the same id (from anyone) is not requested again.
  net.deliver("other", { kind: "txAnnounce", ids: [fromHex(id)] });
  assert.deepEqual(net.sentTo("other", "getTxs"), []);
  net.deliver("origin", { kind: "txs", txs: [tx] });
  await waitFor(() => service.pool.has(id));
  service.flushAnnouncements();
  assert.deepEqual(net.sentTo("origin", "txAnnounce"), []);
  assert.equal(net.sentTo("other", "txAnnounce").length, 1);
  await service.stop();
  net.close();
});

Deno.test("tx service: peers are charged for bad signatures, never for a nonce or balance", async () => {
  const { net, service, verified } = setup();
  await service.start();
  net.connect("liar");
  net.connect("stale");
  const forged = transfer("alice", "bob", { nonce: 0 });
  forged[forged.length - 1] ^= 1;
  const stale = transfer("carol", "bob"); // carol has nothing at our tip
  for (const [peer, tx] of [["liar", forged], ["stale", stale]] as const) {
    net.deliver(peer, { kind: "txAnnounce", ids: [fromHex(transactionIdHex(tx))] });
    net.deliver(peer, { kind: "txs", txs: [tx] });
  }
  await waitFor(() => net.penaltiesOf("liar").length > 0 && verified.length >= 1);
  await service.stop(); // drains: every submission has its verdict
  assert.deepEqual(net.penaltiesOf("liar").map((p) => p.score), [INVALID_TX_PENALTY]);
  assert.deepEqual(net.penaltiesOf("stale"), []);
  // Unsolicited transactions are ignored before any signature work.
  const before = verified.flat().length;
  net.deliver("liar", { kind: "txs", txs: [transfer("alice", "bob", { nonce: 5 })] });
  assert.equal(verified.flat().length, before);
  net.close();
});

Deno.test("tx service: a transfer the pool would refuse at the tip costs no signature check", async () => {
  const { service, verified } = setup();
  await service.start();
  // carol has nothing at our tip; alice's nonce 64 is beyond her pending window.
  const broke = await service.submit(transfer("carol", "bob"), null);
  const ahead = await service.submit(transfer("alice", "bob", { nonce: 64 }), null);
  assert.equal(broke.status === "refused" && broke.reason, "insufficient-balance");
  assert.equal(ahead.status === "refused" && ahead.reason, "nonce-gap");
  assert.equal(verified.flat().length, 0, "no signature was checked");
  // One the pool takes is checked, and a second copy is a duplicate, never checked again.
  const ok = transfer("alice", "bob", { nonce: 0 });
  assert.equal((await service.submit(ok, null)).status, "added");
  assert.equal((await service.submit(ok, null)).status, "duplicate");
  assert.equal(verified.flat().length, 1);
  await service.stop();
});

Deno.test("tx service: the mempool survives a restart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = setup(dir);
    await a.service.start();
    const txs = [0, 1, 2].map((n) => transfer("alice", "bob", { nonce: n }));
    for (const t of txs) assert.equal((await a.service.submit(t, null)).status, "added");
    await a.service.stop();
    a.net.close();
    const b = setup(dir);
    await b.service.start();
    assert.deepEqual(
      [...b.service.pool.entries()].map((e) => e.id).sort(),
      txs.map(transactionIdHex).sort(),
    );
    await b.service.stop();
    b.net.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 0));
  assert.ok(cond(), "condition not reached");
}
