/**
 * Commit certificates at the quorum boundary: signers holding exactly 2/3 of the power are
 * refused, one validator more is accepted. Checked on `checkCertificateQuorum` alone and on the
 * path every block takes into the chain (`Chain.applyBlocks`, as sync calls it with the
 * signatures already verified by its workers: the quorum check must still run).
 *
 * Mutations caught: `>` → `>=` in `hasQuorum` (chain/validators.ts); the quorum test in
 * `checkCertificateQuorum` written as `power * 3 < total * 2` (or any `>=` inline form);
 * dropping the "signed twice" check (the duplicate row reaches 3 of 3 with two validators).
 */
import assert from "node:assert/strict";
import { checkCertificateQuorum } from "../../../chain/certificate.ts";
import type { Tier } from "../../../chain/genesis.ts";
import { InvalidBlockError } from "../../../chain/api.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import { toHex } from "../../../encoding/binary.ts";
import { ChainBuilder } from "../../support/chain_builder.ts";

interface BoundaryCase {
  name: string;
  tiers: Tier[];
  /** Builder key indexes whose power is exactly 2/3 of the total. */
  exactlyTwoThirds: number[];
  /** One more validator: just above 2/3. */
  aboveTwoThirds: number[];
}

const B = "bronze", S = "silver", G = "gold";
const CASES: BoundaryCase[] = [
  { name: "2 of 3", tiers: [B, B, B], exactlyTwoThirds: [0, 1], aboveTwoThirds: [0, 1, 2] },
  {
    name: "4 of 6",
    tiers: [B, B, B, B, B, B],
    exactlyTwoThirds: [0, 1, 2, 3],
    aboveTwoThirds: [0, 1, 2, 3, 4],
  },
  {
    name: "one silver among five bronze (100 of 150)",
    tiers: [S, B, B, B, B, B],
    exactlyTwoThirds: [0],
    aboveTwoThirds: [0, 1],
  },
  {
    name: "two silver and two bronze of three each (220 of 330)",
    tiers: [S, S, S, B, B, B],
    exactlyTwoThirds: [0, 1, 3, 4],
    aboveTwoThirds: [0, 1, 3, 4, 5],
  },
  { name: "2 gold of 3", tiers: [G, G, G], exactlyTwoThirds: [0, 1], aboveTwoThirds: [0, 1, 2] },
];

function setOf(b: ChainBuilder) {
  const set = b.stateMachine.validatorSetFor({ get: () => undefined }, 0, 1);
  assert.ok(set);
  return set;
}

for (const c of CASES) {
  Deno.test(`certificate quorum, ${c.name}: exactly 2/3 is refused, one more passes`, () => {
    const exact = ChainBuilder.create({ validators: c.tiers.length, tiers: c.tiers });
    const set = setOf(exact);
    const power = (idx: number[]) =>
      idx.reduce((sum, i) => sum + set.powerOf(toHex(exact.keys[i].publicKey)), 0);
    assert.equal(power(c.exactlyTwoThirds) * 3, set.totalPower * 2, "the case sits on 2/3");

    const atBoundary = exact.next({ signers: c.exactlyTwoThirds });
    const refused = checkCertificateQuorum(
      atBoundary.cb.certificate,
      1,
      atBoundary.hash,
      set,
    );
    assert.equal(refused.ok, false);
    assert.match(!refused.ok ? refused.why : "", /need > 2\/3/);

    const above = ChainBuilder.create({ validators: c.tiers.length, tiers: c.tiers })
      .next({ signers: c.aboveTwoThirds });
    assert.deepEqual(checkCertificateQuorum(above.cb.certificate, 1, above.hash, set), {
      ok: true,
    });
  });
}

Deno.test("certificate quorum: a validator signing twice is counted once", () => {
  const b = ChainBuilder.create({ validators: 3 });
  const twice = b.next({ signers: [0, 1, 1] });
  const check = checkCertificateQuorum(twice.cb.certificate, 1, twice.hash, setOf(b));
  assert.equal(check.ok, false);
  assert.match(!check.ok ? check.why : "", /signed twice/);
});

Deno.test("certificate quorum: a signer outside the set is refused, not ignored", () => {
  const b = ChainBuilder.create({ validators: 3 });
  const set = setOf(b);
  const outsider = ChainBuilder.create({ validators: 5 });
  // Key 3 of the larger builder is not a member of the 3-validator set. Two members and the
  // stranger: as many signatures as the set has voters, so only membership can refuse it.
  const block = b.next({ signers: [0, 1] });
  const other = outsider.next({ signers: [3] }).cb.certificate.signatures;
  const cert = {
    ...block.cb.certificate,
    signatures: [...block.cb.certificate.signatures, ...other],
  };
  const check = checkCertificateQuorum(cert, 1, block.hash, set);
  assert.equal(check.ok, false);
  assert.match(!check.ok ? check.why : "", /not a voting member of the validator set/);
});

for (const c of CASES) {
  Deno.test(`chain apply (the sync path), ${c.name}: an exactly-2/3 block is refused`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "timenode-cert-" });
    const b = ChainBuilder.create({ validators: c.tiers.length, tiers: c.tiers });
    const chain = new Chain({
      store: ChainStore.open(dir, b.genesisHash),
      genesis: b.genesis,
      stateMachine: b.stateMachine,
    });
    try {
      const atBoundary = b.next({ signers: c.exactlyTwoThirds });
      // Sync hands over blocks whose signatures its workers checked; quorum is still ours.
      const result = chain.applyBlocks([atBoundary], { signaturesVerified: true });
      assert.equal(result.applied, 0);
      assert.ok(result.error instanceof InvalidBlockError);
      assert.equal(result.error.reason, "bad-certificate");
      assert.equal(chain.tip().height, 0);
      assert.throws(() => chain.applyBlock(atBoundary.cb, atBoundary.encoded), InvalidBlockError);
    } finally {
      chain.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
