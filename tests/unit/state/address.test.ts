import assert from "node:assert/strict";
import { addressOf, addressPrefix, checkAddress, parseAddress } from "../../../state/address.ts";
import { formatAmount, MAX_AMOUNT, parseAmount, parseUnits } from "../../../state/amount.ts";

const KEY = new Uint8Array(32).fill(7);

Deno.test("address: bech32m with the network's prefix, round-trips to its hash", () => {
  assert.equal(addressPrefix("mainnet"), "time");
  assert.equal(addressPrefix("testnet"), "ttime");
  assert.equal(addressPrefix("devnet"), "ttime");
  const a = addressOf("devnet", KEY);
  assert.match(a, /^ttime1[02-9ac-hj-np-z]{38}$/);
  assert.match(addressOf("mainnet", KEY), /^time1/);
  assert.equal(parseAddress("devnet", a).length, 20);
  assert.notEqual(addressOf("devnet", new Uint8Array(32).fill(8)), a);
});

Deno.test("address: every kind of mistake is refused with its reason", () => {
  const a = addressOf("devnet", KEY);
  const why = (s: string, network = "devnet") => {
    const c = checkAddress(network, s);
    assert.equal(c.ok, false, s);
    return (c as { why: string }).why;
  };
  assert.match(why(""), /empty/);
  assert.match(why(a, "mainnet"), /prefix/);
  assert.match(why(a.toUpperCase()), /lower case/);
  const flipped = a.slice(0, 10) + (a[10] === "q" ? "p" : "q") + a.slice(11);
  assert.match(why(flipped), /typo/);
  assert.match(why("rewardaddr"), /not an address/);
  assert.match(why("x".repeat(100)), /too long/);
  assert.throws(() => parseAddress("devnet", flipped), RangeError);
});

Deno.test("amount: decimal TIME and base units, no floats, u128 bounds", () => {
  assert.equal(parseAmount("12.5"), 1_250_000_000n);
  assert.equal(parseAmount("0.00000001"), 1n);
  assert.equal(parseAmount("7"), 700_000_000n);
  assert.equal(formatAmount(1_250_000_000n), "12.5");
  assert.equal(formatAmount(1n), "0.00000001");
  assert.equal(formatAmount(700_000_000n), "7");
  assert.equal(formatAmount(0n), "0");
  for (const bad of ["", "-1", "1e3", "1.", ".5", "1.123456789", "0x10", " 1", "1,5"]) {
    assert.throws(() => parseAmount(bad), RangeError, bad);
  }
  assert.equal(parseAmount(formatAmount(MAX_AMOUNT)), MAX_AMOUNT);
  assert.throws(() => parseAmount(formatAmount(MAX_AMOUNT) + "1"), RangeError);
  assert.equal(parseUnits(MAX_AMOUNT.toString()), MAX_AMOUNT);
  assert.throws(() => parseUnits((MAX_AMOUNT + 1n).toString()), RangeError);
  assert.throws(() => parseUnits("1.5"), RangeError);
});
