import assert from "node:assert/strict";
import { serveHttp } from "../../../rpc/http1.ts";

const enc = new TextEncoder();

function start(opts: { maxConnections?: number } = {}) {
  return serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutMs: 300,
    bodyTimeoutMs: 300,
    ...opts,
    handler: async (req) => {
      const body = await req.readBody(1024);
      if (body.kind !== "ok") return { status: body.kind === "too-large" ? 413 : 400 };
      return { status: 200, body: `${req.method} ${req.path} ${body.bytes.length}` };
    },
  });
}

/** Resolves when the server closes `conn` (its read sees end of stream or an error). */
async function closedByServer(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(1024);
  let text = "";
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch {
    // Reset by the server: closed as well.
  }
  conn.close();
  return text;
}

Deno.test("slow headers and slow bodies are cut off; other requests are served meanwhile", async () => {
  const server = start();
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    const slow: Deno.Conn[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await c.write(enc.encode(
        i % 2
          ? "GET / HTTP/1.1\r\nHost: x\r\n"
          : "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
      ));
      slow.push(c);
    }
    const res = await fetch(`${url}/ok`, { method: "POST", body: "abc" });
    assert.equal(await res.text(), "POST /ok 3");
    const closed = await Promise.all(slow.map(closedByServer));
    assert.equal(closed.length, 8);
    assert.equal(server.connections, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("at the cap a socket still sending its headers yields its slot; busy ones do not", async () => {
  const release = Promise.withResolvers<void>();
  let busy = 0;
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 2,
    handler: async (req) => {
      if (req.path === "/wait") {
        busy++;
        await release.promise;
      }
      return { status: 200, body: req.path };
    },
  });
  const port = server.addr.port;
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
  const request = (path: string) => enc.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  try {
    // Two silent sockets fill the slots; a real request evicts the oldest and is served.
    const silent = [await connect(), await connect()];
    while (server.connections < 2) await new Promise((r) => setTimeout(r, 10));
    const real = await connect();
    await real.write(request("/real"));
    assert.match(await closedByServer(real), /200 OK[\s\S]*\/real$/);
    await Promise.all(silent.map(closedByServer));

    // Two requests being handled are never evicted: a third connection gets 503.
    const waiting = [await connect(), await connect()];
    for (const c of waiting) await c.write(request("/wait"));
    while (busy < 2) await new Promise((r) => setTimeout(r, 10));
    const third = await connect();
    assert.match(await closedByServer(third), /^HTTP\/1\.1 503 /);
    release.resolve();
    for (const text of await Promise.all(waiting.map(closedByServer))) {
      assert.match(text, /200 OK/);
    }
  } finally {
    release.resolve();
    await server.shutdown();
  }
});

Deno.test("chunked bodies, bounds and malformed heads", async () => {
  const server = start();
  const port = server.addr.port;
  const raw = async (text: string) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(enc.encode(text));
    return await closedByServer(c);
  };
  try {
    assert.match(
      await raw(
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
      ),
      /200 OK[\s\S]*POST \/c 5$/,
    );
    assert.match(
      await raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"),
      /^HTTP\/1\.1 413/,
    );
    assert.match(
      await raw("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
      /^HTTP\/1\.1 400/,
    );
    assert.match(await raw("GET / HTTP/1.1\r\n folded: x\r\n\r\n"), /^HTTP\/1\.1 400/);
    assert.match(await raw(`GET /${"a".repeat(9000)} HTTP/1.1\r\n\r\n`), /^HTTP\/1\.1 414/);
    assert.match(await raw("BREW /pot HTCPCP/1.0\r\n\r\n"), /^HTTP\/1\.1 400/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a client IP the filter refuses gets 403 before anything is read", async () => {
  const seen: string[] = [];
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    acceptFrom: (ip) => {
      seen.push(ip);
      return false;
    },
    handler: () => {
      throw new Error("never called");
    },
  });
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    assert.match(await closedByServer(c), /^HTTP\/1\.1 403 [\s\S]*client IP not allowed/);
    assert.deepEqual(seen, ["127.0.0.1"]);
  } finally {
    await server.shutdown();
  }
});
