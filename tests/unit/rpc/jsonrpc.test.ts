import assert from "node:assert/strict";
import {
  DEFAULT_MAX_BATCH,
  handleJsonRpc,
  RpcError,
  RpcErrorCode,
  type RpcMethods,
  type RpcParams,
} from "../../../rpc/jsonrpc.ts";

const calls: RpcParams[] = [];
const methods: RpcMethods = {
  echo: (params) => {
    calls.push(params);
    return params;
  },
  add: (params) => {
    if (!Array.isArray(params) || params.length !== 2 || !params.every(Number.isFinite)) {
      throw new RpcError(RpcErrorCode.InvalidParams, "expected [a, b]");
    }
    return (params[0] as number) + (params[1] as number);
  },
  asyncValue: async () => {
    await Promise.resolve();
    return { height: 7 };
  },
  nothing: () => undefined,
  bytes: () => ({ hash: new Uint8Array([0xde, 0xad, 0x01]), amount: 12345678901234567890n }),
  bug: () => {
    throw new TypeError("secret internal detail at /home/op/x.ts:12");
  },
  cyclic: () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    return o;
  },
  customError: () => {
    throw new RpcError(-32001, "block not found", { height: 99 });
  },
};

async function call(body: unknown, opts = {}): Promise<unknown> {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const out = await handleJsonRpc(text, methods, opts);
  return out === null ? null : JSON.parse(out);
}

Deno.test("a single call returns its result with the same id", async () => {
  assert.deepEqual(await call({ jsonrpc: "2.0", id: 1, method: "add", params: [2, 3] }), {
    jsonrpc: "2.0",
    id: 1,
    result: 5,
  });
  assert.deepEqual(await call({ jsonrpc: "2.0", id: "abc", method: "asyncValue" }), {
    jsonrpc: "2.0",
    id: "abc",
    result: { height: 7 },
  });
  assert.deepEqual(await call({ jsonrpc: "2.0", id: null, method: "nothing" }), {
    jsonrpc: "2.0",
    id: null,
    result: null,
  });
});

Deno.test("params default to [] and may be named", async () => {
  calls.length = 0;
  await call({ jsonrpc: "2.0", id: 1, method: "echo" });
  await call({ jsonrpc: "2.0", id: 2, method: "echo", params: { height: 5 } });
  assert.deepEqual(calls, [[], { height: 5 }]);
});

Deno.test("bytes become hex and bigints decimal strings", async () => {
  assert.deepEqual(await call({ jsonrpc: "2.0", id: 1, method: "bytes" }), {
    jsonrpc: "2.0",
    id: 1,
    result: { hash: "dead01", amount: "12345678901234567890" },
  });
});

Deno.test("-32700 for a body that is not JSON", async () => {
  for (const body of ["{", "", "nul", '{"jsonrpc":"2.0",}', "[".repeat(100_000)]) {
    assert.deepEqual(await call(body), {
      jsonrpc: "2.0",
      id: null,
      error: { code: -32700, message: "parse error" },
    });
  }
});

Deno.test("-32600 for requests that are not JSON-RPC 2.0 requests", async () => {
  const invalid: [unknown, string | number | null][] = [
    [1, null],
    ["x", null],
    [null, null],
    [{ jsonrpc: "3.0", id: 1, method: "add" }, 1],
    [{ jsonrpc: 2, id: 2, method: "add" }, 2],
    [{ jsonrpc: "2.0", id: 3 }, 3],
    [{ jsonrpc: "2.0", id: 4, method: 5 }, 4],
    [{ jsonrpc: "2.0", id: 5, method: "add", params: "x" }, 5],
    [{ jsonrpc: "2.0", id: 6, method: "add", params: null }, 6],
    [{ jsonrpc: "2.0", id: { a: 1 }, method: "add" }, null],
    [{ jsonrpc: "2.0", id: true, method: "add" }, null],
    // No id, yet invalid: the spec still wants an answer (with id null).
    [{ jsonrpc: "2.0", method: 1 }, null],
  ];
  for (const [request, id] of invalid) {
    const r = JSON.parse((await handleJsonRpc(JSON.stringify(request), methods))!);
    assert.equal(r.error.code, -32600, JSON.stringify(request));
    assert.equal(r.id, id, JSON.stringify(request));
  }
});

Deno.test("JSON-RPC 1.0 requests (no jsonrpc field, or 1.0) are answered in kind", async () => {
  assert.deepEqual(await call({ id: 1, method: "add", params: [2, 3] }), {
    result: 5,
    error: null,
    id: 1,
  });
  assert.deepEqual(await call({ jsonrpc: "1.0", id: "curltest", method: "add", params: [1, 1] }), {
    result: 2,
    error: null,
    id: "curltest",
  });
  // 1.0 has no notifications: an absent id is answered with id null.
  assert.deepEqual(await call({ method: "nope" }), {
    result: null,
    error: { code: -32601, message: "method not found: nope" },
    id: null,
  });
  const bad = await call({ id: 4, method: 5 }) as { result: null; error: { code: number } };
  assert.equal(bad.result, null);
  assert.equal(bad.error.code, -32600);
  // A batch mixing both versions answers each in its own.
  const mixed = await call([
    { id: 1, method: "add", params: [1, 2] },
    { jsonrpc: "2.0", id: 2, method: "add", params: [2, 2] },
  ]);
  assert.deepEqual(mixed, [
    { result: 3, error: null, id: 1 },
    { jsonrpc: "2.0", id: 2, result: 4 },
  ]);
});

Deno.test("-32601 for unknown methods, including inherited property names", async () => {
  for (const method of ["nope", "__proto__", "constructor", "toString", "hasOwnProperty"]) {
    const r = await call({ jsonrpc: "2.0", id: 9, method }) as {
      id: number;
      error: { code: number; message: string };
    };
    assert.equal(r.id, 9);
    assert.equal(r.error.code, -32601, method);
  }
  const long = await call({ jsonrpc: "2.0", id: 1, method: "m".repeat(10_000) }) as {
    error: { message: string };
  };
  assert.ok(long.error.message.length < 200, "a long method name is not echoed in full");
});

Deno.test("-32602 and custom codes come from RpcError, with data", async () => {
  assert.deepEqual(await call({ jsonrpc: "2.0", id: 1, method: "add", params: ["x"] }), {
    jsonrpc: "2.0",
    id: 1,
    error: { code: -32602, message: "expected [a, b]" },
  });
  assert.deepEqual(await call({ jsonrpc: "2.0", id: 2, method: "customError" }), {
    jsonrpc: "2.0",
    id: 2,
    error: { code: -32001, message: "block not found", data: { height: 99 } },
  });
});

Deno.test("-32603 for a method's bug, reported aside and never leaked", async () => {
  const reported: [string, unknown][] = [];
  const onInternalError = (m: string, e: unknown) => reported.push([m, e]);
  const out = await handleJsonRpc(
    JSON.stringify({ jsonrpc: "2.0", id: 1, method: "bug" }),
    methods,
    { onInternalError },
  );
  assert.deepEqual(JSON.parse(out!), {
    jsonrpc: "2.0",
    id: 1,
    error: { code: -32603, message: "internal error" },
  });
  assert.ok(!out!.includes("secret"), "the error's message stays on the server");
  assert.ok(!out!.includes(".ts"), "no stack trace");
  assert.equal(reported.length, 1);
  assert.equal(reported[0][0], "bug");
  assert.ok(reported[0][1] instanceof TypeError);

  const cyclic = await handleJsonRpc(
    JSON.stringify({ jsonrpc: "2.0", id: 2, method: "cyclic" }),
    methods,
    { onInternalError },
  );
  assert.equal(JSON.parse(cyclic!).error.code, -32603);
  assert.equal(reported.length, 2);
});

Deno.test("notifications get no response, even when they fail", async () => {
  calls.length = 0;
  assert.equal(await call({ jsonrpc: "2.0", method: "echo", params: [1] }), null);
  assert.deepEqual(calls, [[1]], "the notification still ran");
  assert.equal(await call({ jsonrpc: "2.0", method: "nope" }), null);
  assert.equal(await call({ jsonrpc: "2.0", method: "add", params: ["bad"] }), null);
  assert.equal(await call({ jsonrpc: "2.0", method: "bug" }), null);
});

Deno.test("a batch answers each call in order and skips notifications", async () => {
  const r = await call([
    { jsonrpc: "2.0", id: 1, method: "add", params: [1, 2] },
    { jsonrpc: "2.0", method: "echo", params: [] },
    { jsonrpc: "2.0", id: 2, method: "nope" },
    1,
    { jsonrpc: "2.0", id: 3, method: "add", params: ["x"] },
  ]);
  assert.deepEqual(r, [
    { jsonrpc: "2.0", id: 1, result: 3 },
    { jsonrpc: "2.0", id: 2, error: { code: -32601, message: "method not found: nope" } },
    {
      jsonrpc: "2.0",
      id: null,
      error: { code: -32600, message: "invalid request: not an object" },
    },
    { jsonrpc: "2.0", id: 3, error: { code: -32602, message: "expected [a, b]" } },
  ]);
});

Deno.test("a batch of notifications only gets no response", async () => {
  assert.equal(
    await call([{ jsonrpc: "2.0", method: "echo" }, { jsonrpc: "2.0", method: "echo" }]),
    null,
  );
});

Deno.test("an empty batch is one invalid request", async () => {
  assert.deepEqual(await call([]), {
    jsonrpc: "2.0",
    id: null,
    error: { code: -32600, message: "empty batch" },
  });
});

Deno.test("batches are bounded", async () => {
  const one = { jsonrpc: "2.0", id: 1, method: "add", params: [1, 1] };
  const atLimit = await call(Array(DEFAULT_MAX_BATCH).fill(one)) as unknown[];
  assert.equal(atLimit.length, DEFAULT_MAX_BATCH);
  calls.length = 0;
  const over = await call(
    Array(DEFAULT_MAX_BATCH + 1).fill({ jsonrpc: "2.0", id: 1, method: "echo" }),
  ) as { error: { code: number } };
  assert.equal(over.error.code, -32600);
  assert.equal(calls.length, 0, "no call of an oversized batch runs");
  const small = await call([one, one, one], { maxBatch: 2 }) as { error: { code: number } };
  assert.equal(small.error.code, -32600);
});
