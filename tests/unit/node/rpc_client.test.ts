import assert from "node:assert/strict";
import { argsToParams } from "../../../node/rpc_client.ts";

Deno.test("command-line words become JSON where they parse, strings otherwise", () => {
  assert.deepEqual(argsToParams([]), []);
  assert.deepEqual(argsToParams(["12", "true", "null", '{"a":1}', "[1]", '"7"', "mn-rewards"]), [
    12,
    true,
    null,
    { a: 1 },
    [1],
    "7",
    "mn-rewards",
  ]);
  // Numbers that would change when printed back stay strings: hashes of digits, 1e3, 007.
  const digits = "1".repeat(64);
  assert.deepEqual(argsToParams([digits, "1e3", "007", "-1", "0.5"]), [
    digits,
    "1e3",
    "007",
    -1,
    0.5,
  ]);
  assert.deepEqual(argsToParams(['"a=b"']), ["a=b"], "a quoted string may hold =");
});

Deno.test("name=value words make named params; mixing forms is refused", () => {
  assert.deepEqual(argsToParams(["rewardAddress=mn1", "address=10.0.0.1:24100"]), {
    rewardAddress: "mn1",
    address: "10.0.0.1:24100",
  });
  assert.deepEqual(argsToParams(["height=12"]), { height: 12 });
  assert.match(argsToParams(["height=1", "2"]) as string, /mixes positional and name=value/);
  assert.match(argsToParams(["a=1", "a=2"]) as string, /given twice/);
});
