import assert from "node:assert/strict";
import {
  AddressError,
  announcedDialAddress,
  canonicalAddress,
  canonicalIp,
  formatHostPort,
  ipScope,
  isBareLoopbackIp,
  isIp,
  isLoopback,
  isLoopbackKey,
  keyForDialTarget,
  keyScope,
  parseHostPort,
  parseHostPortExplained,
  peerKey,
  tryCanonicalIp,
} from "../../../network/peer_key.ts";
import { SeededRandom } from "../../../network/random.ts";

Deno.test("canonicalIp: IPv4 dotted quads", () => {
  const cases: [string, string][] = [
    ["1.2.3.4", "1.2.3.4"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["127.0.0.1", "127.0.0.1"],
    ["10.0.0.10", "10.0.0.10"],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

Deno.test("canonicalIp: IPv6 follows RFC 5952", () => {
  const cases: [string, string][] = [
    // Lowercase, leading zeros dropped.
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    // A single zero group is not compressed (§4.2.2).
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    // The longest run is compressed (§4.2.3)...
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    // ...and the first one on a tie.
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::", "::"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["::1", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1::", "1::"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["fe80::1:2", "fe80::1:2"],
    ["FE80:0:0:0:0:0:0:0001", "fe80::1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:2:3:4:5:6::8", "1:2:3:4:5:6:0:8"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    // Embedded IPv4 that is not IPv4-mapped is written in hex.
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

Deno.test("canonicalIp: IPv4-mapped IPv6 folds to IPv4, zone ids are stripped", () => {
  assert.equal(canonicalIp("::ffff:1.2.3.4"), "1.2.3.4");
  assert.equal(canonicalIp("::FFFF:127.0.0.1"), "127.0.0.1");
  assert.equal(canonicalIp("::ffff:0102:0304"), "1.2.3.4");
  assert.equal(canonicalIp("0:0:0:0:0:ffff:a00:1"), "10.0.0.1");
  assert.equal(canonicalIp("fe80::1%eth0"), "fe80::1");
  assert.equal(canonicalIp("fe80::1%3"), "fe80::1");
  assert.equal(canonicalIp("::1%lo"), "::1");
});

Deno.test("canonicalIp: rejects garbage, tryCanonicalIp returns null for it", () => {
  const bad = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.256",
    "01.2.3.4", // octal ambiguity
    "1.2.3.04",
    "1..3.4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "+1.2.3.4",
    "1.2.3.-4",
    "a.b.c.d",
    "localhost",
    ":",
    ":::",
    "1:2:3:4:5:6:7", // too few groups, no ::
    "1:2:3:4:5:6:7:8:9",
    "1::2::3", // two ::
    "1:2:3:4:5:6:7::8", // :: must stand for at least one group
    "::1:2:3:4:5:6:7:8",
    "12345::1",
    "g::1",
    ":1::",
    "1:",
    ":1",
    "1.2.3.4::", // IPv4 only at the end
    "::1.2.3.4:5",
    "::ffff:1.2.3.256",
    "::ffff:01.2.3.4",
    "fe80::1%", // empty zone
    "fe80::1%a%b",
    "[::1]", // brackets belong to host:port
    "1.2.3.4:80",
    "0x7f.0.0.1",
    "2130706433", // integer IPv4 form
    "1:2:3:4:5:6:7:8".repeat(10),
  ];
  for (const s of bad) {
    assert.equal(tryCanonicalIp(s), null, JSON.stringify(s));
    assert.equal(isIp(s), false, JSON.stringify(s));
    assert.throws(() => canonicalIp(s), AddressError, JSON.stringify(s));
  }
});

Deno.test("canonicalIp: canonical output is a fixed point for random addresses", () => {
  const random = new SeededRandom("canonical-ip");
  for (let i = 0; i < 2_000; i++) {
    const groups: string[] = [];
    for (let g = 0; g < 8; g++) {
      // Plenty of zeros so that compression runs of every length appear.
      const v = random.next() < 0.5 ? 0 : Math.floor(random.next() * 0x10000);
      groups.push(random.next() < 0.5 ? v.toString(16) : v.toString(16).padStart(4, "0"));
    }
    const full = groups.join(":");
    const c = canonicalIp(full);
    assert.equal(canonicalIp(c), c, `${full} -> ${c}`);
    assert.equal(c, c.toLowerCase());
    assert.ok(!/:0[0-9a-f]/.test(c), `no leading zeros in ${c}`);
    assert.ok(c.split("::").length <= 2, c);
    // Same address both ways: expanding the canonical form gives the original groups back.
    assert.equal(expand(c), expand(full), `${full} -> ${c}`);
  }
});

/** Independent expansion to 8 four-digit groups (or the IPv4 text), for the property above. */
function expand(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, null];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const zeros = tail === null ? [] : new Array(8 - h.length - t.length).fill("0");
  const groups = [...h, ...zeros, ...t].map((g) => g.padStart(4, "0").toLowerCase());
  if (groups.slice(0, 5).every((g) => g === "0000") && groups[5] === "ffff") {
    const a = parseInt(groups[6], 16);
    const b = parseInt(groups[7], 16);
    return `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  return groups.join(":");
}

Deno.test("isLoopback: all of 127.0.0.0/8 and ::1, nothing else", () => {
  for (const ip of ["127.0.0.1", "127.0.0.2", "127.255.255.254", "127.1.2.3", "::1"]) {
    assert.equal(isLoopback(ip), true, ip);
  }
  for (const ip of ["::ffff:127.0.0.1", "0:0:0:0:0:0:0:1", "::1%lo"]) {
    assert.equal(isLoopback(ip), true, ip);
  }
  const notLoopback = [
    "126.255.255.255",
    "128.0.0.1",
    "0.0.0.0",
    "::",
    "::2",
    "1.2.3.4",
    "10.0.0.1",
    "::127.0.0.1", // deprecated IPv4-compatible form is not loopback
    "localhost", // not an IP
    "garbage",
    "",
  ];
  for (const ip of notLoopback) assert.equal(isLoopback(ip), false, ip);
});

Deno.test("ipScope classifies addresses", () => {
  const cases: [string, string | null][] = [
    ["8.8.8.8", "public"],
    ["1.2.3.4", "public"],
    ["127.0.0.1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["172.15.255.255", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["100.128.0.1", "public"],
    ["169.254.1.1", "private"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["::1.2.3.4", "reserved"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fe80::1", "private"],
    ["febf::1", "private"],
    ["fec0::1", "public"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "public"],
    ["2a00:1450::1", "public"],
    ["::ffff:10.0.0.1", "private"],
    ["nope", null],
  ];
  for (const [ip, want] of cases) assert.equal(ipScope(ip), want, ip);
});

Deno.test("parseHostPort / formatHostPort", () => {
  const good: [string, string, number, string][] = [
    ["1.2.3.4:80", "1.2.3.4", 80, "1.2.3.4:80"],
    ["127.0.0.1:24300", "127.0.0.1", 24300, "127.0.0.1:24300"],
    ["[::1]:24300", "::1", 24300, "[::1]:24300"],
    ["[2001:DB8:0:0:0:0:0:1]:1", "2001:db8::1", 1, "[2001:db8::1]:1"],
    ["[::ffff:1.2.3.4]:65535", "1.2.3.4", 65535, "1.2.3.4:65535"],
    ["[fe80::1%eth0]:5", "fe80::1", 5, "[fe80::1]:5"],
    ["localhost:24300", "localhost", 24300, "localhost:24300"],
    ["Node-1.Example.COM:8080", "node-1.example.com", 8080, "node-1.example.com:8080"],
    ["a:1", "a", 1, "a:1"],
  ];
  for (const [input, host, port, formatted] of good) {
    assert.deepEqual(parseHostPort(input), { host, port }, input);
    assert.equal(formatHostPort(host, port), formatted, input);
    assert.equal(canonicalAddress(input), formatted, input);
  }
  const bad = [
    "",
    "1.2.3.4",
    "1.2.3.4:",
    "1.2.3.4:0", // port 0 is garbage
    "1.2.3.4:65536",
    "1.2.3.4:080", // leading zero
    "1.2.3.4:-1",
    "1.2.3.4:+80",
    "1.2.3.4:8 0",
    "1.2.3.4:80x",
    ":80",
    "::1:80", // unbracketed IPv6 is ambiguous
    "2001:db8::1:80",
    "[::1]",
    "[::1]80",
    "[::1]:",
    "[1.2.3.4]:80", // brackets are for IPv6
    "[::1:80",
    "[]:80",
    "[garbage]:80",
    "1.2.3.256:80",
    "-host:80",
    "host-:80",
    "ho_st:80",
    "host..example:80",
    "host.:80",
    "1.2.3:80", // numeric last label: a broken IPv4, not a name
    "ex ample:80",
    "exämple:80",
    `${"a".repeat(64)}.com:80`, // label over 63
    `${"a.".repeat(127)}com:80`, // name over 253
    "x".repeat(10_000) + ":80",
    "[::1]:80:80",
    "1.2.3.4:80:80",
  ];
  for (const s of bad) {
    assert.equal(parseHostPort(s), null, JSON.stringify(s.slice(0, 80)));
    assert.equal(canonicalAddress(s), null, JSON.stringify(s.slice(0, 80)));
  }
  // A 253-character name is fine.
  const longName = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
  assert.equal(longName.length, 253);
  assert.deepEqual(parseHostPort(`${longName}:1`), { host: longName, port: 1 });
});

Deno.test("parseHostPortExplained: port 0 on request, and a reason for each refusal", () => {
  assert.deepEqual(parseHostPortExplained("1.2.3.4:0", { allowPortZero: true }), {
    ok: true,
    value: { host: "1.2.3.4", port: 0 },
  });
  const reasons: [string, RegExp][] = [
    ["", /^expected HOST:PORT$/],
    ["x".repeat(1000) + ":1", /too long/],
    ["1.2.3.4", /missing :PORT/],
    [":80", /missing HOST/],
    ["::1:80", /IPv6 addresses need brackets/],
    ["[::1]80", /\[IPv6\]:PORT/],
    ["[1.2.3.4]:80", /not a valid IPv6/],
    ["[zz::1]:80", /not a valid IPv6/],
    ["300.1.1.1:80", /not a valid IPv4/],
    ["1.2.3:80", /not a valid IPv4/],
    ["bad_host!:80", /not a valid hostname/],
    [`${"a".repeat(64)}.example:1`, /not a valid hostname/],
    ["1.2.3.4:0", /port must be 1\.\.65535/],
    ["1.2.3.4:080", /port must be 1\.\.65535/],
  ];
  for (const [input, re] of reasons) {
    const r = parseHostPortExplained(input);
    assert.ok(!r.ok, input);
    assert.match(r.reason, re, input);
  }
  const r = parseHostPortExplained("1.2.3.4:65536", { allowPortZero: true });
  assert.ok(!r.ok && /port must be 0\.\.65535/.test(r.reason));
});

Deno.test("formatHostPort throws on values our own code must never produce", () => {
  assert.throws(() => formatHostPort("1.2.3.4", 0), AddressError);
  assert.throws(() => formatHostPort("1.2.3.4", 65536), AddressError);
  assert.throws(() => formatHostPort("1.2.3.4", 1.5), AddressError);
  assert.throws(() => formatHostPort("bad host", 80), AddressError);
  assert.throws(() => formatHostPort("[::1]", 80), AddressError);
});

Deno.test("parseHostPort round-trips every canonical address", () => {
  const random = new SeededRandom("host-port");
  for (let i = 0; i < 1_000; i++) {
    const port = 1 + Math.floor(random.next() * 65535);
    const b = random.bytes(16);
    const v6 = [...Array(8).keys()].map((g) => ((b[2 * g] << 8) | b[2 * g + 1]).toString(16))
      .join(":");
    const v4 = `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
    for (const host of [v4, v6]) {
      const s = formatHostPort(host, port);
      assert.deepEqual(parseHostPort(s), { host: canonicalIp(host), port }, s);
      assert.equal(canonicalAddress(s), s);
    }
  }
});

Deno.test("peerKey: non-loopback peers are keyed by canonical remote IP only", () => {
  assert.equal(peerKey("1.2.3.4", "1.2.3.4:24100", 50_000), "1.2.3.4");
  assert.equal(peerKey("1.2.3.4", null, 50_000), "1.2.3.4");
  assert.equal(peerKey("1.2.3.4", "", 50_000), "1.2.3.4");
  // A remote peer cannot choose its key by announcing something else, loopback included.
  assert.equal(peerKey("1.2.3.4", "127.0.0.1:24300", 50_000), "1.2.3.4");
  assert.equal(peerKey("1.2.3.4", "5.6.7.8:1", 50_000), "1.2.3.4");
  assert.equal(peerKey("::ffff:1.2.3.4", "1.2.3.4:24100", 1), "1.2.3.4");
  assert.equal(peerKey("2001:0db8::0001", "[2001:db8::1]:24100", 1), "2001:db8::1");
  assert.equal(peerKey("10.0.0.7", "10.0.0.7:24100", 1), "10.0.0.7");
  assert.equal(peerKey("fe80::1%eth0", null, 1), "fe80::1");
});

Deno.test("peerKey: loopback peers are keyed by the loopback listen address they announce", () => {
  // A devnet of three nodes on one machine: every connection comes from 127.0.0.1.
  assert.equal(peerKey("127.0.0.1", "127.0.0.1:24300", 41_000), "127.0.0.1:24300");
  assert.equal(peerKey("127.0.0.1", "127.0.0.1:24310", 41_001), "127.0.0.1:24310");
  assert.equal(peerKey("127.0.0.1", "127.0.0.1:24320", 41_002), "127.0.0.1:24320");
  // The remote port of the connection does not matter: inbound and outbound agree.
  assert.equal(peerKey("127.0.0.1", "127.0.0.1:24310", 24_310), "127.0.0.1:24310");
  // Other loopback IPs and ::1 are kept as announced (nodes may bind 127.0.0.2, ...).
  assert.equal(peerKey("127.0.0.1", "127.0.0.2:24300", 41_003), "127.0.0.2:24300");
  assert.equal(peerKey("::1", "[::1]:24300", 41_004), "[::1]:24300");
  assert.equal(peerKey("::ffff:127.0.0.1", "127.0.0.1:24300", 41_005), "127.0.0.1:24300");
  assert.equal(peerKey("127.0.0.1", "[::ffff:127.0.0.1]:24300", 41_005), "127.0.0.1:24300");
  // Wildcards and localhost answer on 127.0.0.1.
  assert.equal(peerKey("127.0.0.1", "0.0.0.0:24300", 41_006), "127.0.0.1:24300");
  assert.equal(peerKey("127.0.0.1", "[::]:24300", 41_007), "127.0.0.1:24300");
  assert.equal(peerKey("::1", "localhost:24300", 41_008), "127.0.0.1:24300");
  assert.equal(peerKey("127.0.0.1", "LOCALHOST:24300", 41_008), "127.0.0.1:24300");
});

Deno.test("peerKey: loopback peers without a usable loopback announcement fall back", () => {
  assert.equal(peerKey("127.0.0.1", null, 41_000), "127.0.0.1:41000");
  assert.equal(peerKey("127.0.0.1", "", 41_001), "127.0.0.1:41001");
  assert.equal(peerKey("::1", null, 41_002), "[::1]:41002");
  // Non-loopback announcements are not how we reach this peer and cannot be checked.
  assert.equal(peerKey("127.0.0.1", "1.2.3.4:24100", 41_003), "127.0.0.1:41003");
  assert.equal(peerKey("127.0.0.1", "10.0.0.1:24100", 41_004), "127.0.0.1:41004");
  assert.equal(peerKey("127.0.0.1", "node.example.com:24100", 41_005), "127.0.0.1:41005");
  // Garbage announcements never throw.
  for (const junk of ["x", "127.0.0.1", "127.0.0.1:0", "[::1]", "127.0.0.1:99999", "\u0000"]) {
    assert.equal(peerKey("127.0.0.1", junk, 41_006), "127.0.0.1:41006", junk);
  }
  // Two non-listening local peers never share a key.
  assert.notEqual(peerKey("127.0.0.1", null, 41_007), peerKey("127.0.0.1", null, 41_008));
  // No key produced here is a bare loopback IP.
  assert.equal(isBareLoopbackIp(peerKey("127.0.0.1", null, 41_009)), false);
});

Deno.test("peerKey: the remote IP comes from the OS and must be an IP", () => {
  assert.throws(() => peerKey("not-an-ip", null, 1), AddressError);
});

Deno.test("keyForDialTarget predicts the key of the peer we dial", () => {
  // [dial address, remote IP the accepted socket reports, announced listen address, key]
  const cases: [string, string, string, string][] = [
    ["127.0.0.1:24310", "127.0.0.1", "127.0.0.1:24310", "127.0.0.1:24310"],
    ["localhost:24310", "127.0.0.1", "0.0.0.0:24310", "127.0.0.1:24310"],
    ["0.0.0.0:24310", "127.0.0.1", "localhost:24310", "127.0.0.1:24310"],
    ["[::1]:24310", "::1", "[::1]:24310", "[::1]:24310"],
  ];
  for (const [dial, remoteIp, announced, want] of cases) {
    assert.equal(keyForDialTarget(dial), want, dial);
    // The same node, once handshaken over loopback, lands on the same key.
    assert.equal(peerKey(remoteIp, announced, 55_555), want, dial);
  }
  assert.equal(keyForDialTarget("1.2.3.4:24100"), "1.2.3.4");
  assert.equal(keyForDialTarget("[2001:db8::1]:24100"), "2001:db8::1");
  assert.equal(keyForDialTarget("seed.example.com:24100"), null);
  assert.equal(keyForDialTarget("garbage"), null);
});

Deno.test("key helpers: loopback keys and bare loopback IPs", () => {
  for (const k of ["127.0.0.1", "::1", "127.0.0.1:24300", "[::1]:24300", "127.9.9.9"]) {
    assert.equal(isLoopbackKey(k), true, k);
    assert.equal(keyScope(k), "loopback", k);
  }
  for (const k of ["1.2.3.4", "1.2.3.4:5", "10.0.0.1", "", "junk", "localhost"]) {
    assert.equal(isLoopbackKey(k), false, k);
  }
  assert.equal(isLoopbackKey("localhost:80"), true);
  assert.equal(keyScope("10.0.0.1"), "private");
  assert.equal(keyScope("junk"), null);
  assert.equal(isBareLoopbackIp("127.0.0.1"), true);
  assert.equal(isBareLoopbackIp("::1"), true);
  assert.equal(isBareLoopbackIp("127.0.0.1:24300"), false);
  assert.equal(isBareLoopbackIp("1.2.3.4"), false);
});

Deno.test("announcedDialAddress makes wildcard announcements concrete", () => {
  assert.equal(announcedDialAddress("1.2.3.4", "0.0.0.0:24100"), "1.2.3.4:24100");
  assert.equal(announcedDialAddress("2001:db8::1", "[::]:24100"), "[2001:db8::1]:24100");
  assert.equal(announcedDialAddress("127.0.0.1", "0.0.0.0:24310"), "127.0.0.1:24310");
  assert.equal(announcedDialAddress("1.2.3.4", "5.6.7.8:24100"), "5.6.7.8:24100");
  assert.equal(announcedDialAddress("1.2.3.4", "Node.Example.com:1"), "node.example.com:1");
  assert.equal(announcedDialAddress("1.2.3.4", "[::FFFF:5.6.7.8]:24100"), "5.6.7.8:24100");
  for (const junk of [null, "", "x", "1.2.3.4:0", "::1:80", "\u0000"]) {
    assert.equal(announcedDialAddress("1.2.3.4", junk), null, String(junk));
  }
});
