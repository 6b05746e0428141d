import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  Authenticator,
  COOKIE_USER,
  FAILED_AUTH_BURST,
  FailedAuthThrottle,
  makeRpcAuth,
  parseBasicAuth,
  parseRpcAuth,
  readCookie,
  writeCookie,
} from "../../../rpc/auth.ts";
import { basic } from "../../../node/rpc_client.ts";

Deno.test("rpcauth lines: made with a salt, parsed back, verified as bitcoind computes them", () => {
  let n = 0;
  const random = (len: number) => new Uint8Array(len).fill(++n);
  const made = makeRpcAuth("alice", "correct horse", random);
  const salt = "01".repeat(16);
  const hash = createHmac("sha256", salt).update("correct horse").digest("hex");
  assert.equal(made.line, `alice:${salt}$${hash}`);
  assert.equal(made.password, "correct horse");
  const generated = makeRpcAuth("bob");
  assert.match(generated.password, /^[A-Za-z0-9_-]{43}$/);
  const entry = parseRpcAuth(generated.line);
  assert.ok(typeof entry === "object");
  const auth = new Authenticator({ cookieSecret: null, entries: [entry] });
  assert.equal(auth.check(basic("bob", generated.password)), "bob");
  assert.equal(auth.check(basic("bob", generated.password + "x")), null);
  assert.equal(auth.check(basic("alice", generated.password)), null);
  assert.throws(() => makeRpcAuth("a:b"), RangeError);
});

Deno.test("rpcauth parsing refuses what is not USER:SALT$HASH", () => {
  for (
    const bad of [
      "alice",
      "alice:salt",
      "alice:ab$12",
      ":ab$" + "0".repeat(64),
      "a b:ab$" + "0".repeat(64),
      "alice:zz$" + "0".repeat(64),
    ]
  ) {
    assert.equal(typeof parseRpcAuth(bad), "string", bad);
  }
});

Deno.test("the cookie authenticates only as __cookie__ with the exact secret", () => {
  const auth = new Authenticator({ cookieSecret: "s3cret", entries: [] });
  assert.equal(auth.check(basic(COOKIE_USER, "s3cret")), COOKIE_USER);
  assert.equal(auth.check(basic(COOKIE_USER, "s3cre")), null);
  assert.equal(auth.check(basic("root", "s3cret")), null);
  assert.equal(auth.check(null), null);
  assert.equal(auth.check("Bearer s3cret"), null);
  assert.equal(auth.check("Basic !!!"), null);
  assert.equal(auth.check("Basic " + "A".repeat(5000)), null);
});

Deno.test("Basic header parsing keeps colons in passwords", () => {
  assert.deepEqual(parseBasicAuth(basic("u", "p:a:ss")), { user: "u", password: "p:a:ss" });
  assert.equal(parseBasicAuth(`Basic ${btoa("nocolon")}`), null);
});

Deno.test("failed logins are throttled per IP after a burst, and refill", () => {
  const t = new FailedAuthThrottle();
  for (let i = 0; i < FAILED_AUTH_BURST; i++) {
    assert.equal(t.blocked("127.0.0.1", 0), false);
    t.recordFailure("127.0.0.1", 0);
  }
  assert.equal(t.blocked("127.0.0.1", 0), true, "loopback is not exempt");
  assert.equal(t.blocked("10.0.0.2", 0), false, "another IP has its own budget");
  assert.equal(t.blocked("127.0.0.1", 2_000), false, "one attempt back after 2 s");
});

Deno.test("the cookie file: mode 0600, one line, removed only while it is ours", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = await writeCookie(dir);
    assert.equal((await Deno.stat(c.path)).mode! & 0o777, 0o600);
    assert.deepEqual(await readCookie(c.path), { user: COOKIE_USER, password: c.secret });
    const next = await writeCookie(dir); // a restart replaces it
    await c.remove(); // the old node's remover must not delete the new cookie
    assert.ok(await readCookie(next.path));
    await next.remove();
    assert.equal(await readCookie(next.path), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
