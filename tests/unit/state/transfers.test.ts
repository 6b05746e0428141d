import assert from "node:assert/strict";
import { type Block, payloadRoot } from "../../../chain/block.ts";
import { InvalidBlockError, type StateView, type StateWrites } from "../../../chain/api.ts";
import { createStateMachine, type MasternodeStateMachine } from "../../../state/state.ts";
import { transactionIdHex } from "../../../state/transaction.ts";
import { addr, GENESIS, GENESIS_HASH, transfer, walletKey } from "./ledger_support.ts";

class Ledger {
  readonly entries = new Map<string, Uint8Array>();
  readonly view: StateView = { get: (k) => this.entries.get(k) };
  tip = 0;
  constructor(readonly sm: MasternodeStateMachine = createStateMachine(GENESIS)) {}

  block(transactions: Uint8Array[]): Block {
    const height = this.tip + 1;
    return {
      header: {
        version: 2,
        chainId: GENESIS_HASH,
        height,
        prevHash: new Uint8Array(32),
        timestamp: GENESIS.genesisTime + height,
        proposer: walletKey("mn").publicKey,
        round: 0,
        payloadRoot: payloadRoot([], transactions),
        validatorSetHash: this.sm.validatorSetFor(this.view, this.tip, height)!.hash,
      },
      records: [],
      transactions,
    };
  }

  apply(transactions: Uint8Array[] = []): StateWrites {
    const writes = this.sm.apply(this.view, this.block(transactions));
    for (const [k, v] of writes) v === null ? this.entries.delete(k) : this.entries.set(k, v);
    this.tip++;
    return writes;
  }

  balance(name: string): bigint {
    return this.sm.balanceOf(this.view, addr(name));
  }

  /** The reason the block with `transactions` is refused (state untouched). */
  refusal(transactions: Uint8Array[]): string {
    try {
      this.sm.apply(this.view, this.block(transactions));
    } catch (e) {
      assert.ok(e instanceof InvalidBlockError);
      assert.equal(e.reason, "bad-transactions");
      return e.message;
    }
    return "accepted";
  }
}

const TIME = 100_000_000n;
const REWARD = BigInt(GENESIS.rewards.blockReward);

Deno.test("ledger: block 1 credits the genesis allocations", () => {
  const l = new Ledger();
  assert.equal(l.balance("alice"), 0n);
  l.apply();
  assert.equal(l.balance("alice"), 100n * TIME);
  assert.equal(l.balance("bob"), 5n * TIME);
  assert.equal(l.balance("mn"), REWARD);
  l.apply();
  assert.equal(l.balance("alice"), 100n * TIME, "allocated once");
});

Deno.test("ledger: a transfer moves amount, pays the fee to the proposer, bumps the nonce", () => {
  const l = new Ledger();
  l.apply([transfer("alice", "carol", { amount: 12n * TIME, fee: 5_000n })]);
  assert.equal(l.balance("alice"), 88n * TIME - 5_000n);
  assert.equal(l.balance("carol"), 12n * TIME);
  assert.equal(l.balance("mn"), REWARD + 5_000n);
  assert.equal(l.sm.accountOf(l.view, addr("alice")).nonce, 1);
  assert.equal(l.sm.accountOf(l.view, addr("carol")).nonce, 0);
  // Nonces count within a block: 1 then 2 apply together; carol spends what she just got.
  l.apply([
    transfer("alice", "bob", { nonce: 1 }),
    transfer("alice", "bob", { nonce: 2 }),
    transfer("carol", "dave", { amount: TIME }),
  ]);
  assert.equal(l.sm.accountOf(l.view, addr("alice")).nonce, 3);
  assert.equal(l.balance("dave"), TIME);
  // A transfer to oneself costs only the fee.
  const before = l.balance("bob");
  l.apply([transfer("bob", "bob", { amount: TIME, fee: 2_000n })]);
  assert.equal(l.balance("bob"), before - 2_000n);
});

Deno.test("ledger: each rule refuses the whole block with its own reason", () => {
  const l = new Ledger();
  l.apply([transfer("alice", "bob")]);
  const cases: [string, Uint8Array[], RegExp][] = [
    ["double spend with the same nonce", [transfer("alice", "carol", { nonce: 0 })], /nonce-used/],
    ["same nonce twice in one block", [
      transfer("alice", "carol", { nonce: 1 }),
      transfer("alice", "dave", { nonce: 1 }),
    ], /transaction 1 .*nonce-used/],
    ["a nonce gap", [transfer("alice", "carol", { nonce: 2 })], /nonce-gap/],
    [
      "insufficient balance",
      [transfer("bob", "carol", { amount: 6n * TIME })],
      /insufficient-balance/,
    ],
    ["an empty account", [transfer("carol", "bob", { amount: 1n })], /insufficient-balance/],
    ["fee below minimum", [transfer("alice", "bob", { nonce: 1, fee: 100n })], /fee-too-low/],
    ["expired", [transfer("alice", "bob", { nonce: 1, expiresAt: 1 })], /expired/],
    [
      "wrong chain",
      [transfer("alice", "bob", { nonce: 1, genesisHash: new Uint8Array(32) })],
      /wrong-chain/,
    ],
    [
      "oversized memo",
      [transfer("alice", "bob", { nonce: 1, memo: new Uint8Array(81) })],
      /memo-too-long/,
    ],
    [
      "amount overflow",
      [transfer("alice", "bob", { nonce: 1, amount: (1n << 128n) - 1n })],
      /amount-overflow/,
    ],
    ["malformed", [new Uint8Array([1, 2, 3])], /malformed/],
    ["one bad among good", [
      transfer("alice", "bob", { nonce: 1 }),
      transfer("bob", "carol", { nonce: 5 }),
    ], /transaction 1 .*nonce-gap/],
  ];
  for (const [what, txs, reason] of cases) assert.match(l.refusal(txs), reason, what);
  const forged = transfer("alice", "bob", { nonce: 1 });
  forged[forged.length - 1] ^= 1;
  assert.match(l.refusal([forged]), /bad-signature/);
  assert.equal(l.sm.accountOf(l.view, addr("alice")).nonce, 1, "refused blocks change nothing");
});

Deno.test("ledger: a body over maxBlockBytes is refused", () => {
  const l = new Ledger();
  l.apply();
  const txs = Array.from(
    { length: 450 },
    (_, i) => transfer("alice", "bob", { nonce: i, amount: 1n }),
  );
  assert.match(l.refusal(txs), /maxBlockBytes/);
  l.apply(txs.slice(0, 300));
});

Deno.test("ledger: a signature verified at admission is not verified again", () => {
  const good = transfer("alice", "bob");
  const forged = good.slice();
  forged[forged.length - 1] ^= 1;
  const verified = new Set([transactionIdHex(forged)]);
  // Only to observe the cache: a real cache holds ids whose signature did verify.
  const l = new Ledger(createStateMachine(GENESIS, { verified }));
  l.apply([forged]);
  assert.equal(l.balance("bob"), 6n * TIME);
  const strict = new Ledger();
  assert.match(strict.refusal([forged]), /bad-signature/);
  assert.doesNotThrow(() =>
    strict.sm.apply(strict.view, strict.block([forged]), { signaturesVerified: true })
  );
});

Deno.test("ledger: a registration with a reward address of another network is refused", async () => {
  const { signRegistration } = await import("../../../state/records.ts");
  const l = new Ledger();
  const reg = (rewardAddress: string) =>
    signRegistration(walletKey("newmn"), {
      genesisHash: GENESIS_HASH,
      nonce: 0,
      expiresAt: 100,
      rewardAddress,
      address: "127.0.0.1:9",
    });
  const block = (r: ReturnType<typeof reg>) => ({
    ...l.block([]),
    records: [r],
    header: { ...l.block([]).header, payloadRoot: payloadRoot([r]) },
  });
  assert.throws(() => l.sm.apply(l.view, block(reg("typo-address"))), /reward address/);
  l.sm.apply(l.view, block(reg(addr("newmn"))));
});
