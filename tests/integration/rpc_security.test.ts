/**
 * The RPC of a real node process: cookie and rpcauth logins, Host and Origin checks against
 * web pages, slow-loris sockets, JSON-RPC 1.0, declared params, and the refusal to expose the
 * RPC without --rpc-allow-ip.
 */
import assert from "node:assert/strict";
import { addressOf } from "../../state/address.ts";
import { generateKeyPair } from "../../crypto/ed25519.ts";
import { freePort, NodeProcess, tempDir, withTimeout } from "../support/cluster.ts";
import { makeRpcAuth } from "../../rpc/auth.ts";
import { basic, cookieAuthorization } from "../../node/rpc_client.ts";
import { DEFAULT_BODY_TIMEOUT_MS } from "../../rpc/http1.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const enc = new TextEncoder();

async function startNode(extra: string[] = []): Promise<NodeProcess> {
  const node = new NodeProcess({
    name: "rpc",
    dataDir: await tempDir("rpcsec"),
    p2pPort: await freePort(),
    rpcPort: await freePort(),
    extra,
    logLevel: "info",
  });
  node.start();
  await node.waitForLog((e) => e.message.startsWith("rpc listening on"), "rpc listening");
  return node;
}

async function stopNode(node: NodeProcess): Promise<void> {
  await node.stop();
  await Deno.remove(node.opts.dataDir, { recursive: true }).catch(() => {});
}

function call(
  node: NodeProcess,
  body: unknown,
  authorization: string | null,
): Promise<Response> {
  return fetch(node.rpcUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(authorization === null ? {} : { authorization }),
    },
    body: JSON.stringify(body),
  });
}

/** A raw request (fetch will not send a Host of our choosing); resolves with status and body. */
async function raw(port: number, head: string): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(enc.encode(head));
  const text = await new Response(conn.readable).text();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text };
}

const GETBLOCKCOUNT = { jsonrpc: "2.0", id: 1, method: "getblockcount" };

Deno.test("RPC logins: 401 without or with a wrong cookie, 200 with it or an rpcauth user; the cookie is 0600 and removed at a clean stop", async () => {
  const alice = makeRpcAuth("alice");
  const node = await startNode(["--rpc-auth", alice.line]);
  const cookieFile = `${node.opts.dataDir}/.cookie`;
  try {
    assert.equal((await Deno.stat(cookieFile)).mode! & 0o777, 0o600);
    const cookie = await cookieAuthorization(node.opts.dataDir);
    assert.ok(cookie);

    const none = await call(node, GETBLOCKCOUNT, null);
    assert.equal(none.status, 401);
    await none.body?.cancel();
    const wrong = await call(node, GETBLOCKCOUNT, basic("__cookie__", "0".repeat(64)));
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const wrongUser = await call(node, GETBLOCKCOUNT, basic("alice", alice.password + "x"));
    assert.equal(wrongUser.status, 401);
    await wrongUser.body?.cancel();

    const ok = await call(node, GETBLOCKCOUNT, cookie);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { jsonrpc: "2.0", id: 1, result: 0 });
    const asAlice = await call(node, GETBLOCKCOUNT, basic("alice", alice.password));
    assert.equal(asAlice.status, 200);
    assert.equal((await asAlice.json()).result, 0);

    // Scrapers need no login by default.
    const metrics = await fetch(`${node.rpcUrl}/metrics`);
    assert.equal(metrics.status, 200);
    await metrics.body?.cancel();
    assert.ok(node.logs.some((e) => e.message.includes("RPC login failed")), "failures logged");
  } finally {
    assert.equal(await node.stop(), 0);
  }
  await assert.rejects(Deno.stat(cookieFile), Deno.errors.NotFound);
  await Deno.remove(node.opts.dataDir, { recursive: true });
});

Deno.test("a DNS-rebinding Host and any Origin are refused, even with the cookie", async () => {
  const node = await startNode();
  const port = node.opts.rpcPort;
  try {
    const cookie = (await cookieAuthorization(node.opts.dataDir))!;
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "setban",
      params: ["203.0.113.9"],
    });
    const request = (hostAndOrigin: string) =>
      `POST / HTTP/1.1\r\n${hostAndOrigin}\r\nAuthorization: ${cookie}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const rebound = await raw(port, request(`Host: rebind.attacker.example:${port}`));
    assert.equal(rebound.status, 403);
    const fromPage = await raw(
      port,
      request(`Host: 127.0.0.1:${port}\r\nOrigin: http://rebind.attacker.example`),
    );
    assert.equal(fromPage.status, 403);
    const health = await raw(port, `GET /health HTTP/1.1\r\nHost: evil.example:${port}\r\n\r\n`);
    assert.equal(health.status, 403, "/health gets the Host check too");
    const bans = await node.rpc<unknown[]>("listbanned");
    assert.deepEqual(bans, [], "nothing was banned");
    const ours = await raw(port, request(`Host: localhost:${port}`));
    assert.equal(ours.status, 200);
    assert.match(ours.text, /"key":"203\.0\.113\.9"/);
  } finally {
    await stopNode(node);
  }
});

Deno.test("32 slow-loris sockets do not block other calls, and are closed after the timeout", async () => {
  const node = await startNode();
  const port = node.opts.rpcPort;
  const sockets: Deno.Conn[] = [];
  try {
    // With the cookie, so they get past the login and hold the body read itself.
    const cookie = (await cookieAuthorization(node.opts.dataDir))!;
    for (let i = 0; i < 32; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(enc.encode(
        `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
          `Authorization: ${cookie}\r\nContent-Length: 1000\r\n\r\n{`,
      ));
      sockets.push(c);
    }
    const closed = sockets.map(async (c) => {
      const buf = new Uint8Array(512);
      try {
        while ((await c.read(buf)) !== null) { /* the 408 or nothing, then the end */ }
      } catch {
        // Reset: closed as well.
      }
    });
    // While all 32 hold their connections, calls keep being answered.
    for (let i = 0; i < 5; i++) assert.equal(await node.rpc<number>("getblockcount"), 0);
    // The server, not the test, ends them (the deadline only keeps a failure from hanging).
    await withTimeout(
      Promise.all(closed),
      DEFAULT_BODY_TIMEOUT_MS + 30_000,
      "the server to close the slow sockets",
    );
    assert.equal(await node.rpc<number>("getblockcount"), 0);
    assert.ok(node.logs.some((e) => e.message.includes("too slow sending its body")));
  } finally {
    for (const c of sockets) {
      try {
        c.close();
      } catch {
        // Already closed by the server.
      }
    }
    await stopNode(node);
  }
});

Deno.test("JSON-RPC 1.0 is answered in kind; positional params follow the documented order", async () => {
  const node = await startNode();
  try {
    const cookie = (await cookieAuthorization(node.opts.dataDir))!;
    const legacy = await call(
      node,
      { id: "curltest", method: "getblockcount", params: [] },
      cookie,
    );
    assert.deepEqual(await legacy.json(), { result: 0, error: null, id: "curltest" });
    const legacyError = await call(node, { id: 2, method: "getblockhash", params: [99] }, cookie);
    assert.deepEqual(await legacyError.json(), {
      result: null,
      error: { code: -5, message: "no block at height 99" },
      id: 2,
    });

    const address = `127.0.0.1:${node.opts.p2pPort}`;
    const rewards = addressOf("devnet", generateKeyPair().publicKey);
    const positional = await node.rpc<{ status: string; expiresAt: number }>(
      "registermasternode",
      [rewards, address],
    );
    assert.equal(positional.status, "added");
    const wrapped = await call(node, {
      jsonrpc: "2.0",
      id: 3,
      method: "registermasternode",
      params: [{ rewardAddress: rewards }],
    }, cookie);
    const error = (await wrapped.json()).error;
    assert.equal(error.code, -32602);
    assert.match(error.message, /named params go in an object, not inside an array/);
    const help = await node.rpc<string>("help", ["registermasternode"]);
    assert.match(help, /1\. rewardAddress \(string, required\)/);
    assert.match(help, /2\. address \(string, optional\)/);
  } finally {
    await stopNode(node);
  }
});

Deno.test("--rpc-auth-metrics puts /metrics behind the login; --rpc-allow-host adds a name", async () => {
  const node = await startNode(["--rpc-auth-metrics", "--rpc-allow-host", "node1.example.org"]);
  const port = node.opts.rpcPort;
  try {
    const cookie = (await cookieAuthorization(node.opts.dataDir))!;
    assert.equal(
      (await raw(port, `GET /metrics HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`)).status,
      401,
    );
    const get = (host: string) =>
      raw(port, `GET /health HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${cookie}\r\n\r\n`);
    assert.equal((await get(`localhost:${port}`)).status, 200);
    assert.equal((await get(`node1.example.org:${port}`)).status, 200);
    assert.equal((await get(`node2.example.org:${port}`)).status, 403);
  } finally {
    await stopNode(node);
  }
});

Deno.test("a non-loopback --rpc without --rpc-allow-ip is a usage error (exit 2)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", "--network", "devnet", "--rpc", "0.0.0.0:0"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /--rpc-allow-ip/);
});
