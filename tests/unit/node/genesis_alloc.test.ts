import assert from "node:assert/strict";
import { parseCli, UsageError } from "../../../node/cli.ts";
import { addressOf } from "../../../state/address.ts";

const ID = "ab".repeat(32);
const A = addressOf("devnet", new Uint8Array(32).fill(1));
const B = addressOf("devnet", new Uint8Array(32).fill(2));

function genesis(...extra: string[]) {
  const c = parseCli(
    ["genesis", "--network", "devnet", "--key", ID, "--out", "g.json", ...extra],
    { HOME: "/h" },
  );
  assert.equal(c.kind, "genesis");
  return c as Extract<typeof c, { kind: "genesis" }>;
}

Deno.test("genesis --alloc: repeatable ADDRESS=AMOUNT of the network, amounts normalised", () => {
  assert.deepEqual(genesis().alloc, {});
  assert.deepEqual(genesis("--alloc", `${A}=12.50`, "--alloc", `${B}=3`).alloc, {
    [A]: "12.5",
    [B]: "3",
  });
  const refuse = (arg: string, why: RegExp) =>
    assert.throws(() => genesis("--alloc", arg), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, why);
      return true;
    });
  refuse(A, /ADDRESS=AMOUNT/);
  refuse(`${A.slice(0, -1)}x=1`, /--alloc: .*typo/);
  refuse(`${addressOf("mainnet", new Uint8Array(32))}=1`, /prefix/);
  refuse(`${A}=0`, /above 0/);
  refuse(`${A}=1.123456789`, /decimals/);
  assert.throws(() => genesis("--alloc", `${A}=1`, "--alloc", `${A}=2`), /twice/);
});
