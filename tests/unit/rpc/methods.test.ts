import assert from "node:assert/strict";
import { bindMethods, mapParams, methodHelp, type MethodSpec } from "../../../rpc/methods.ts";
import { RpcError } from "../../../rpc/jsonrpc.ts";

const register: MethodSpec = {
  category: "Masternode",
  summary: "Register.",
  params: [
    { name: "rewardAddress", type: "string", required: true, description: "where rewards go" },
    { name: "address", type: "string", required: false, description: "host:port" },
  ],
  result: "object",
  handler: (p) => p,
};
const getblock: MethodSpec = {
  category: "Blockchain",
  summary: "A block.",
  params: [{
    name: "block",
    aliases: ["height", "hash"],
    type: ["integer", "string"],
    required: true,
    description: "height or hash",
  }],
  result: "block",
  handler: (p) => p,
};

function invalidParams(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RpcError);
    assert.equal(e.code, -32602);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("positional params map to the declared names, in order", () => {
  assert.deepEqual(mapParams("r", register, ["mn-rewards", "10.0.0.1:24100"]), {
    rewardAddress: "mn-rewards",
    address: "10.0.0.1:24100",
  });
  assert.deepEqual(mapParams("r", register, ["mn-rewards"]), { rewardAddress: "mn-rewards" });
  // null skips an optional param.
  assert.deepEqual(mapParams("r", register, ["mn-rewards", null]), { rewardAddress: "mn-rewards" });
});

Deno.test("named params, with aliases; unknown names refused", () => {
  assert.deepEqual(mapParams("r", register, { address: "a:1", rewardAddress: "x" }), {
    rewardAddress: "x",
    address: "a:1",
  });
  assert.deepEqual(mapParams("getblock", getblock, { height: 12 }), { block: 12 });
  assert.deepEqual(mapParams("getblock", getblock, { hash: "ab" }), { block: "ab" });
  invalidParams(
    () => mapParams("r", register, { rewardadress: "x" }),
    /has no param "rewardadress" \(params: rewardAddress, address\)/,
  );
  invalidParams(() => mapParams("getblock", getblock, { height: 1, hash: "ab" }), /given twice/);
});

Deno.test("missing, surplus and mistyped params name the param and its position", () => {
  invalidParams(() => mapParams("r", register, []), /missing param rewardAddress \(1st\)/);
  invalidParams(
    () => mapParams("r", register, ["a", "b", "c"]),
    /at most 2 params \(rewardAddress, address\), got 3/,
  );
  invalidParams(
    () => mapParams("r", register, ["a", 5]),
    /address \(2nd\) must be a string, got the number 5/,
  );
  invalidParams(() => mapParams("getblock", getblock, [1.5]), /must be an integer or a string/);
  invalidParams(() => mapParams("getblock", getblock, [true]), /got the boolean true/);
});

Deno.test("named params wrapped in an array get a hint instead of a misleading error", () => {
  invalidParams(
    () => mapParams("registermasternode", register, [{ rewardAddress: "x" }]),
    /named params go in an object, not inside an array/,
  );
});

Deno.test("help lists every method and explains one; it is itself documented", async () => {
  const methods = bindMethods({ registermasternode: register, getblock });
  const list = await methods.help([]) as string;
  assert.match(list, /registermasternode rewardAddress \[address\]/);
  assert.match(list, /getblock block/);
  assert.match(list, /help \[command\]/);
  const one = await methods.help(["registermasternode"]) as string;
  assert.equal(one, methodHelp("registermasternode", register));
  assert.match(one, /1\. rewardAddress \(string, required\) where rewards go/);
  assert.match(one, /2\. address \(string, optional\) host:port/);
  assert.match(await methods.help({ command: "help" }) as string, /help \[command\]/);
  await assert.rejects(async () => await methods.help(["nope"]), /unknown method/);
  // Every call goes through the mapping.
  await assert.rejects(async () => await methods.getblock([]), /missing param block/);
});
