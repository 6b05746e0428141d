import assert from "node:assert/strict";
import {
  DEFAULT_MAX_BODY_BYTES,
  type RpcServerOptions,
  startRpcServer,
} from "../../../rpc/server.ts";
import { RpcError, RpcErrorCode, type RpcMethods } from "../../../rpc/jsonrpc.ts";
import { Registry } from "../../../metrics/registry.ts";
import { resetLogging, setupLogging } from "../../../node/log.ts";
import { Authenticator } from "../../../rpc/auth.ts";

const COOKIE = "unit-test-cookie";
const AUTHORIZATION = `Basic ${btoa(`__cookie__:${COOKIE}`)}`;

const methods: RpcMethods = {
  getblockcount: () => 42,
  getblockhash: (params) => {
    const height = Array.isArray(params) ? params[0] : params.height;
    if (typeof height !== "number") throw new RpcError(RpcErrorCode.InvalidParams, "height");
    return new Uint8Array([height, 0xff]);
  },
  broken: () => {
    throw new Error("db handle closed at /srv/timenode/chain/store.ts:88");
  },
};

function start(overrides: Partial<RpcServerOptions> = {}) {
  const registry = new Registry();
  const height = registry.gauge("timenode_chain_height", "Height of the local chain tip.");
  height.collectFrom(() => 42);
  const server = startRpcServer({
    hostname: "127.0.0.1",
    port: 0,
    methods,
    metrics: () => registry.render(),
    health: () => ({ ok: true, height: 42 }),
    auth: new Authenticator({ cookieSecret: COOKIE, entries: [] }),
    ...overrides,
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { server, url };
}

function post(url: string, body: BodyInit, contentType = "application/json") {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": contentType, authorization: AUTHORIZATION },
    body,
  });
}

async function rpc(url: string, request: unknown) {
  const res = await post(url, JSON.stringify(request));
  return { status: res.status, body: await res.json() };
}

Deno.test("binds an ephemeral port on 127.0.0.1 and answers JSON-RPC", async () => {
  const { server, url } = start();
  try {
    assert.equal(server.addr.hostname, "127.0.0.1");
    assert.ok(server.addr.port > 0);
    const res = await post(url, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "getblockcount" }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.deepEqual(await res.json(), { jsonrpc: "2.0", id: 1, result: 42 });
  } finally {
    await server.shutdown();
  }
});

Deno.test("every JSON-RPC error code over HTTP", async () => {
  const { server, url } = start();
  try {
    const parse = await post(url, "{not json");
    assert.equal(parse.status, 200);
    assert.equal((await parse.json()).error.code, -32700);

    const notUtf8 = await post(url, new Uint8Array([0x22, 0xff, 0xfe, 0x22]));
    assert.equal((await notUtf8.json()).error.code, -32700);

    assert.equal(
      (await rpc(url, { jsonrpc: "3.0", id: 1, method: "getblockcount" })).body.error.code,
      -32600,
    );
    assert.equal(
      (await rpc(url, { jsonrpc: "2.0", id: 1, method: "nope" })).body.error.code,
      -32601,
    );
    assert.equal(
      (await rpc(url, { jsonrpc: "2.0", id: 1, method: "getblockhash", params: ["x"] })).body
        .error.code,
      -32602,
    );
    const internal = await post(
      url,
      JSON.stringify({ jsonrpc: "2.0", id: 7, method: "broken" }),
    );
    const text = await internal.text();
    assert.deepEqual(JSON.parse(text), {
      jsonrpc: "2.0",
      id: 7,
      error: { code: -32603, message: "internal error" },
    });
    assert.ok(!text.includes("store.ts") && !text.includes("db handle"), "nothing leaks");
  } finally {
    await server.shutdown();
  }
});

Deno.test("an internal error is logged with its message, not sent", async () => {
  const lines: string[] = [];
  setupLogging({ level: "info", format: "text", write: (l) => lines.push(l) });
  const { server, url } = start();
  try {
    const r = await rpc(url, { jsonrpc: "2.0", id: 1, method: "broken" });
    assert.equal(r.body.error.code, -32603);
    const logged = lines.filter((l) => l.includes("ERROR") && l.includes("broken"));
    assert.equal(logged.length, 1);
    assert.match(logged[0], /db handle closed/);
  } finally {
    await server.shutdown();
    resetLogging();
  }
});

Deno.test("results encode bytes as hex; named params work", async () => {
  const { server, url } = start();
  try {
    const r = await rpc(url, {
      jsonrpc: "2.0",
      id: "a",
      method: "getblockhash",
      params: { height: 16 },
    });
    assert.deepEqual(r.body, { jsonrpc: "2.0", id: "a", result: "10ff" });
  } finally {
    await server.shutdown();
  }
});

Deno.test("batches over HTTP, and 204 for notifications", async () => {
  const { server, url } = start();
  try {
    const batch = await rpc(url, [
      { jsonrpc: "2.0", id: 1, method: "getblockcount" },
      { jsonrpc: "2.0", method: "getblockcount" },
      { jsonrpc: "2.0", id: 2, method: "getblockhash", params: [1] },
    ]);
    assert.deepEqual(batch.body, [
      { jsonrpc: "2.0", id: 1, result: 42 },
      { jsonrpc: "2.0", id: 2, result: "01ff" },
    ]);
    const tooBig = await rpc(url, Array(101).fill({ jsonrpc: "2.0", id: 1, method: "x" }));
    assert.equal(tooBig.body.error.code, -32600);

    const note = await post(url, JSON.stringify({ jsonrpc: "2.0", method: "getblockcount" }));
    assert.equal(note.status, 204);
    assert.equal(await note.text(), "");
  } finally {
    await server.shutdown();
  }
});

Deno.test("the body bound is enforced before parsing, declared or chunked", async () => {
  const { server, url } = start();
  try {
    // Exactly at the bound: parsed (and a parse error, since it is padding, not JSON).
    const atBound = await post(url, " ".repeat(DEFAULT_MAX_BODY_BYTES - 1) + "x");
    assert.equal(atBound.status, 200);
    assert.equal((await atBound.json()).error.code, -32700);

    const over = await post(url, " ".repeat(DEFAULT_MAX_BODY_BYTES) + "1");
    assert.equal(over.status, 413);
    assert.equal((await over.json()).error.code, -32600);

    // No Content-Length: counted while streaming, cut off once past the bound.
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > DEFAULT_MAX_BODY_BYTES * 4) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const chunked = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: AUTHORIZATION },
      body: stream,
    });
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("a smaller configured body bound applies", async () => {
  const { server, url } = start({ maxBodyBytes: 64 });
  try {
    const small = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "getblockcount" });
    assert.ok(small.length <= 64);
    assert.equal((await rpc(url, JSON.parse(small))).body.result, 42);
    const big = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "getblockcount",
      pad: "x".repeat(64),
    });
    const res = await post(url, big);
    assert.equal(res.status, 413);
    await res.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("POST / requires a JSON content type", async () => {
  const { server, url } = start();
  try {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "getblockcount" });
    for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
      const res = await post(url, body, type);
      assert.equal(res.status, 415, type);
      assert.equal((await res.json()).error.code, -32600);
    }
    const withCharset = await post(url, body, "application/json; charset=utf-8");
    assert.equal((await withCharset.json()).result, 42);
  } finally {
    await server.shutdown();
  }
});

Deno.test("GET /metrics serves the Prometheus text format", async () => {
  const { server, url } = start();
  try {
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.ok(res.headers.get("content-type")!.startsWith("text/plain; version=0.0.4"));
    const text = await res.text();
    assert.match(text, /^# TYPE timenode_chain_height gauge$/m);
    assert.match(text, /^timenode_chain_height 42$/m);
  } finally {
    await server.shutdown();
  }
});

Deno.test("GET /metrics answers 500 when rendering throws", async () => {
  const { server, url } = start({
    metrics: () => {
      throw new Error("boom");
    },
  });
  try {
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 500);
    assert.ok(!(await res.text()).includes("boom"));
  } finally {
    await server.shutdown();
  }
});

Deno.test("GET /health is 200 when ok and 503 when not", async () => {
  let report: { ok: boolean; [k: string]: unknown } = {
    ok: true,
    height: 3,
    tip: new Uint8Array([1, 2]),
  };
  const { server, url } = start({ health: () => report });
  try {
    const up = await fetch(`${url}/health`);
    assert.equal(up.status, 200);
    assert.deepEqual(await up.json(), { ok: true, height: 3, tip: "0102" });

    report = { ok: false, reason: "no peers" };
    const down = await fetch(`${url}/health`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), { ok: false, reason: "no peers" });

    const head = await fetch(`${url}/health`, { method: "HEAD" });
    assert.equal(head.status, 503);
    assert.equal(await head.text(), "");
  } finally {
    await server.shutdown();
  }
});

Deno.test("GET /health is 503 when the check itself throws", async () => {
  const { server, url } = start({
    health: () => {
      throw new Error("state unavailable");
    },
  });
  try {
    const res = await fetch(`${url}/health`);
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.ok, false);
    assert.ok(!JSON.stringify(body).includes("state unavailable"));
  } finally {
    await server.shutdown();
  }
});

Deno.test("unknown paths are 404 and wrong methods 405 with Allow", async () => {
  const { server, url } = start();
  try {
    for (const path of ["/nope", "/metrics/", "/rpc", "//"]) {
      const res = await fetch(`${url}${path}`);
      assert.equal(res.status, 404, path);
      await res.body?.cancel();
    }
    const cases: [string, string, string][] = [
      ["/", "GET", "POST"],
      ["/", "PUT", "POST"],
      ["/metrics", "POST", "GET, HEAD"],
      ["/health", "DELETE", "GET, HEAD"],
    ];
    for (const [path, method, allow] of cases) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: AUTHORIZATION },
      });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow);
      await res.body?.cancel();
    }
  } finally {
    await server.shutdown();
  }
});

/** A method that blocks until released, and tells when it has started. */
function gate() {
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const method = async () => {
    started.resolve();
    await release.promise;
    return "done";
  };
  return { method, started: started.promise, release: () => release.resolve() };
}

Deno.test("requests beyond the concurrency bound get 503", async () => {
  const g = gate();
  const { server, url } = start({ methods: { ...methods, slow: g.method }, maxConcurrent: 1 });
  try {
    const first = rpc(url, { jsonrpc: "2.0", id: 1, method: "slow" });
    await g.started;
    const second = await post(
      url,
      JSON.stringify({ jsonrpc: "2.0", id: 2, method: "getblockcount" }),
    );
    assert.equal(second.status, 503);
    assert.equal(second.headers.get("retry-after"), "1");
    await second.body?.cancel();
    // /health is not an RPC call and stays available.
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    g.release();
    assert.equal((await first).body.result, "done");
    assert.equal(
      (await rpc(url, { jsonrpc: "2.0", id: 3, method: "getblockcount" })).body.result,
      42,
    );
  } finally {
    g.release();
    await server.shutdown();
  }
});

Deno.test("shutdown lets an in-flight call finish, then refuses connections", async () => {
  const g = gate();
  const { server, url } = start({ methods: { ...methods, slow: g.method } });
  const inFlight = rpc(url, { jsonrpc: "2.0", id: 1, method: "slow" });
  await g.started;
  const stopped = server.shutdown();
  g.release();
  assert.equal((await inFlight).body.result, "done");
  await stopped;
  await server.shutdown(); // idempotent
  await assert.rejects(fetch(`${url}/health`), TypeError);
});

Deno.test("aborting the signal stops the server", async () => {
  const controller = new AbortController();
  const { server, url } = start({ signal: controller.signal });
  const res = await fetch(`${url}/health`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
  controller.abort();
  await server.shutdown();
  await assert.rejects(fetch(`${url}/health`), TypeError);
});

Deno.test("binding a busy port fails with the address in the message", async () => {
  const { server } = start();
  try {
    assert.throws(
      () => start({ port: server.addr.port }),
      (e: Error) => e.message.includes(`127.0.0.1:${server.addr.port}`),
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("JSON-RPC needs credentials: 401 without or with wrong ones, 429 once failing too often", async () => {
  const { server, url } = start({ failedAuthDelayMs: 0 });
  try {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "getblockcount" });
    const none = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Basic realm="timenode"');
    await none.body?.cancel();
    let status = 0;
    for (let i = 0; i < 20 && status !== 429; i++) {
      const wrong = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Basic ${btoa("__cookie__:x")}`,
        },
        body,
      });
      status = wrong.status;
      await wrong.body?.cancel();
      if (status !== 429) assert.equal(status, 401);
    }
    assert.equal(status, 429, "failed logins are throttled");
    // The right cookie still works: a failing script cannot lock the operator out.
    const right = await post(url, body);
    assert.equal(right.status, 200);
    await right.body?.cancel();
    // /metrics and /health stay open to scrapers.
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("--rpc-auth-metrics puts /metrics and /health behind the same login", async () => {
  const { server, url } = start({ authMetrics: true, failedAuthDelayMs: 0 });
  try {
    for (const path of ["/metrics", "/health"]) {
      const open = await fetch(`${url}${path}`);
      assert.equal(open.status, 401, path);
      await open.body?.cancel();
      const authed = await fetch(`${url}${path}`, { headers: { authorization: AUTHORIZATION } });
      assert.equal(authed.status, 200, path);
      await authed.body?.cancel();
    }
  } finally {
    await server.shutdown();
  }
});

/** A raw HTTP/1.1 request, for headers fetch will not send as given (Host); returns the status. */
async function rawStatus(port: number, head: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(head));
  const text = await new Response(conn.readable).text();
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

Deno.test("foreign Host headers and any Origin are refused on every path", async () => {
  const { server, url } = start();
  const port = server.addr.port;
  try {
    for (const [method, path] of [["POST", "/"], ["GET", "/metrics"], ["GET", "/health"]]) {
      for (
        const extra of [
          `Host: rebind.attacker.example:${port}`,
          `Host: localhost:${port}\r\nOrigin: http://localhost:3000`,
          `Host: 127.0.0.1:${port}\r\nOrigin: null`,
          "", // no Host at all
        ]
      ) {
        const status = await rawStatus(
          port,
          `${method} ${path} HTTP/1.1\r\n${extra}${extra ? "\r\n" : ""}` +
            `Authorization: ${AUTHORIZATION}\r\nContent-Type: application/json\r\n` +
            "Content-Length: 2\r\n\r\n{}",
        );
        assert.equal(status, 403, `${method} ${path} ${extra}`);
      }
      const ours = await rawStatus(
        port,
        `${method} ${path} HTTP/1.1\r\nHost: [::1]:${port}\r\nAuthorization: ${AUTHORIZATION}\r\n` +
          "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
      );
      assert.equal(ours, 200, `${method} ${path} with our own Host`);
    }
    const ok = await fetch(`http://localhost:${port}/health`);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const web = await fetch(`${url}/health`, { headers: { origin: "https://example.org" } });
    assert.equal(web.status, 403);
    await web.body?.cancel();
  } finally {
    await server.shutdown();
  }
});
