import assert from "node:assert/strict";
import {
  HostAllowList,
  IpAllowList,
  isLoopbackBind,
  parseCidr,
  parseHostHeader,
} from "../../../rpc/http_guard.ts";

function cidrs(...texts: string[]) {
  return texts.map((t) => {
    const c = parseCidr(t);
    assert.ok(typeof c === "object", t);
    return c;
  });
}

Deno.test("CIDR parsing: IPv4, IPv6, bare addresses; bad prefixes refused", () => {
  assert.deepEqual(parseCidr("10.0.0.0/8"), { address: "10.0.0.0", prefix: 8, family: "ipv4" });
  assert.deepEqual(parseCidr("192.0.2.7"), { address: "192.0.2.7", prefix: 32, family: "ipv4" });
  assert.deepEqual(parseCidr("2001:db8::/32"), {
    address: "2001:db8::",
    prefix: 32,
    family: "ipv6",
  });
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/", "10.0.0.0/-1", ""]) {
    assert.equal(typeof parseCidr(bad), "string", bad);
  }
});

Deno.test("the IP allow list: loopback always, listed networks, IPv4-mapped clients", () => {
  const list = new IpAllowList(cidrs("10.0.0.0/8", "2001:db8::/32", "192.0.2.7"));
  for (
    const ok of [
      "127.0.0.1",
      "127.9.9.9",
      "::1",
      "10.200.1.1",
      "::ffff:10.0.0.9",
      "2001:db8::5",
      "192.0.2.7",
    ]
  ) {
    assert.ok(list.allows(ok), ok);
  }
  for (const no of ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::ffff:11.0.0.1", "garbage"]) {
    assert.ok(!list.allows(no), no);
  }
  assert.ok(!new IpAllowList([]).allows("10.0.0.1"), "nothing but loopback by default");
});

Deno.test("a loopback bind is 127/8, ::1 or localhost", () => {
  for (const h of ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"]) {
    assert.ok(isLoopbackBind(h), h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "node.example.org"]) {
    assert.ok(!isLoopbackBind(h), h);
  }
});

Deno.test("Host header parsing", () => {
  assert.deepEqual(parseHostHeader("LocalHost:24101"), { host: "localhost", port: 24101 });
  assert.deepEqual(parseHostHeader("[::1]:24101"), { host: "::1", port: 24101 });
  assert.deepEqual(parseHostHeader("example.org."), { host: "example.org", port: null });
  for (const bad of ["", "a b:1", "[::1", "[::1]x", "h:0", "h:99999", "h:x", "x".repeat(400)]) {
    assert.equal(parseHostHeader(bad), null, bad);
  }
});

Deno.test("Host check: our own names with our port; rebinding names and other ports refused", () => {
  const hosts = new HostAllowList("127.0.0.1", 24101, ["node1.example.org", "tunnel.example:8080"]);
  for (
    const ok of [
      "localhost:24101",
      "127.0.0.1:24101",
      "[::1]:24101",
      "node1.example.org:24101",
      "tunnel.example:8080",
    ]
  ) {
    assert.ok(hosts.allows(ok, "127.0.0.1"), ok);
  }
  for (
    const no of [
      "rebind.attacker.example:24101",
      "localhost:24102",
      "localhost",
      "tunnel.example:24101",
      "127.0.0.1:24101, evil:1",
    ]
  ) {
    assert.ok(!hosts.allows(no, "127.0.0.1"), no);
  }
  assert.ok(!hosts.allows(null, "127.0.0.1"), "no Host header");
  // A wildcard bind: the address the connection arrived on is ours too.
  const wild = new HostAllowList("0.0.0.0", 24101);
  assert.ok(wild.allows("10.0.0.5:24101", "10.0.0.5"));
  assert.ok(wild.allows("10.0.0.5:24101", "::ffff:10.0.0.5"));
  assert.ok(!wild.allows("10.0.0.6:24101", "10.0.0.5"));
});
