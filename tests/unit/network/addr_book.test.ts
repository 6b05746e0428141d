import assert from "node:assert/strict";
import {
  ADDR_BOOK_DEFAULTS,
  AddrBook,
  AddrBookFileError,
  loadAddrBook,
  saveAddrBook,
} from "../../../network/addr_book.ts";
import { MESSAGE_LIMITS } from "../../../network/messages.ts";
import { SeededRandom } from "../../../network/random.ts";

const T0 = 1_700_000_000_000;
const DAY = 24 * 60 * 60 * 1000;
const PUBLIC_PEER = "9.9.9.9";
const LOCAL_PEER = "127.0.0.1:24310";
const neverBanned = () => false;

function book(opts = {}, own: string[] = []) {
  return new AddrBook(opts, new SeededRandom("addr-book"), own);
}

function publicAddr(i: number, port = 24100): string {
  return `8.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${port}`;
}

Deno.test("addr book: learns valid addresses in canonical form", () => {
  const b = book();
  const r = b.learn(
    [
      { address: "1.2.3.4:24100", lastSeen: T0 - 1_000 },
      { address: "[2001:DB8::0001]:24100", lastSeen: T0 },
      { address: "[::ffff:5.6.7.8]:24100", lastSeen: T0 },
      { address: "Seed.Example.com:24100", lastSeen: T0 },
    ],
    PUBLIC_PEER,
    T0,
  );
  // Hostnames never come from gossip: only the operator's --peer may name one.
  assert.deepEqual(r, { added: 3, updated: 0, rejected: 1, limited: 0 });
  assert.equal(b.size, 3);
  assert.ok(b.has("[2001:db8::1]:24100"));
  assert.ok(b.has("5.6.7.8:24100"));
  assert.ok(!b.has("seed.example.com:24100"));
  assert.deepEqual(b.get("1.2.3.4:24100"), {
    address: "1.2.3.4:24100",
    lastSeen: T0 - 1_000,
    lastTried: 0,
    lastSuccess: 0,
    failures: 0,
  });
  // Seen again, later: lastSeen moves forward, never back.
  const again = b.learn(
    [
      { address: "1.2.3.4:24100", lastSeen: T0 },
      { address: "5.6.7.8:24100", lastSeen: T0 - 5_000 },
    ],
    PUBLIC_PEER,
    T0,
  );
  assert.deepEqual(again, { added: 0, updated: 1, rejected: 0, limited: 0 });
  assert.equal(b.get("1.2.3.4:24100")!.lastSeen, T0);
  assert.equal(b.get("5.6.7.8:24100")!.lastSeen, T0);
});

Deno.test("addr book: rejects garbage, stale and out-of-scope addresses", () => {
  const b = book({}, ["3.3.3.3:24100"]);
  const garbage = [
    "",
    "1.2.3.4",
    "1.2.3.4:0",
    "1.2.3.4:65536",
    "::1:80",
    "[::1]",
    "999.1.1.1:80",
    "bad_host:80",
    `${"a".repeat(64)}.com:80`,
    "0.0.0.0:24100", // unspecified
    "[::]:24100",
    "224.0.0.1:24100", // multicast
    "255.255.255.255:24100", // broadcast
    "3.3.3.3:24100", // our own
  ];
  const r = b.learn(garbage.map((address) => ({ address, lastSeen: T0 })), PUBLIC_PEER, T0);
  assert.deepEqual(r, { added: 0, updated: 0, rejected: garbage.length, limited: 0 });
  // A public peer may not teach us loopback or private addresses.
  const local = ["127.0.0.1:24300", "[::1]:24300", "10.0.0.1:24100", "192.168.1.2:24100"];
  const r2 = b.learn(local.map((address) => ({ address, lastSeen: T0 })), PUBLIC_PEER, T0);
  assert.equal(r2.rejected, local.length);
  // Bad timestamps: negative, non-integer, unsafe, stale (> 30 days).
  const times = [-1, 1.5, NaN, Number.MAX_SAFE_INTEGER + 2, T0 - 31 * DAY];
  const r3 = b.learn(
    times.map((lastSeen) => ({ address: "4.4.4.4:1", lastSeen })),
    PUBLIC_PEER,
    T0,
  );
  assert.equal(r3.rejected, times.length);
  // Hostile shapes never throw.
  const hostile = [null, {}, { address: 5, lastSeen: T0 }, { address: "4.4.4.4:1" }];
  // deno-lint-ignore no-explicit-any -- deliberately malformed input
  const r4 = b.learn(hostile as any, PUBLIC_PEER, T0);
  assert.equal(r4.rejected, hostile.length);
  assert.equal(b.size, 0);
});

Deno.test("addr book: future timestamps are clamped to now", () => {
  const b = book();
  b.learn(
    [
      { address: "1.1.1.1:1", lastSeen: T0 + 5 * 60_000 },
      { address: "2.2.2.2:1", lastSeen: T0 + 365 * DAY },
    ],
    PUBLIC_PEER,
    T0,
  );
  assert.equal(b.get("1.1.1.1:1")!.lastSeen, T0);
  assert.equal(b.get("2.2.2.2:1")!.lastSeen, T0);
});

Deno.test("addr book: loopback and private peers may share local addresses", () => {
  const b = book();
  const local = ["127.0.0.1:24300", "127.0.0.1:24320", "10.0.0.1:24100", "9.8.7.6:24100"];
  const r = b.learn(local.map((address) => ({ address, lastSeen: T0 })), LOCAL_PEER, T0);
  assert.deepEqual(r, { added: 4, updated: 0, rejected: 0, limited: 0 });
  // A peer on a private network may tell private addresses, but not loopback ones.
  const b2 = book();
  const r2 = b2.learn(local.map((address) => ({ address, lastSeen: T0 })), "10.0.0.9", T0);
  assert.deepEqual(r2, { added: 2, updated: 0, rejected: 2, limited: 0 });
});

Deno.test("addr book: one public peer is rate limited; loopback peers are not", () => {
  // Buckets out of the way: this is about the rate.
  const b = book({ maxEntries: 100_000, maxPerBucket: 1e9, maxPerSourceGroup: 1e9 });
  const batch = (offset: number) =>
    Array.from({ length: MESSAGE_LIMITS.maxAddresses }, (_, i) => ({
      address: publicAddr(offset + i),
      lastSeen: T0,
    }));
  assert.equal(b.learn(batch(0), PUBLIC_PEER, T0).added, 1_000, "a full first message fits");
  const second = b.learn(batch(1_000), PUBLIC_PEER, T0 + 10_000);
  assert.equal(second.added, 1, "0.1 per second: one more after ten seconds");
  assert.equal(second.limited, 999);
  // Another peer has its own budget.
  assert.equal(b.learn(batch(2_000), "9.9.9.10", T0).added, 1_000);
  // A devnet neighbour on loopback is never throttled.
  for (let i = 0; i < 5; i++) {
    assert.equal(b.learn(batch(10_000 + i * 1_000), LOCAL_PEER, T0).limited, 0);
  }
  // Lists longer than the codec allows are cut at the bound.
  const huge = Array.from(
    { length: 5_000 },
    (_, i) => ({ address: publicAddr(50_000 + i), lastSeen: T0 }),
  );
  const r = b.learn(huge, "127.0.0.1:24320", T0);
  assert.equal(r.added, MESSAGE_LIMITS.maxAddresses);
  assert.equal(r.rejected, 4_000);
});

Deno.test("addr book: bounded; eviction protects addresses that worked", () => {
  const b = book({ maxEntries: 50 });
  for (let i = 0; i < 10; i++) {
    const a = publicAddr(i, 1);
    b.markSuccess(a, T0);
  }
  for (let i = 0; i < 20; i++) {
    b.learn(
      Array.from(
        { length: 100 },
        (_, j) => ({ address: publicAddr(1_000 + i * 100 + j), lastSeen: T0 }),
      ),
      LOCAL_PEER,
      T0,
    );
    assert.ok(b.size <= 50, `size ${b.size}`);
  }
  assert.equal(b.size, 50);
  let kept = 0;
  for (let i = 0; i < 10; i++) if (b.has(publicAddr(i, 1))) kept++;
  // Eviction samples 8 entries and drops the worst; a worked address is evicted only when all
  // 8 sampled worked, which with 10 of 50 is vanishingly rare.
  assert.equal(kept, 10);
});

Deno.test("addr book: candidates skip excluded, banned and backing-off addresses", () => {
  const b = book();
  const addrs = ["1.1.1.1:1", "2.2.2.2:1", "3.3.3.3:1", "4.4.4.4:1", "127.0.0.1:24300"];
  b.learn(addrs.map((address) => ({ address, lastSeen: T0 })), LOCAL_PEER, T0);
  const all = b.candidates(T0, 10, new Set(), neverBanned);
  assert.deepEqual([...all].sort(), [...addrs].sort());
  // Excluded by address, or by the key the connection would get.
  const exclude = new Set(["1.1.1.1:1", "2.2.2.2", "127.0.0.1:24300"]);
  const banned = (key: string) => key === "3.3.3.3";
  assert.deepEqual(b.candidates(T0, 10, exclude, banned), ["4.4.4.4:1"]);
  // Just tried: wait the minimum retry interval even without a failure.
  b.markAttempt("4.4.4.4:1", T0);
  assert.deepEqual(b.candidates(T0 + 1_000, 10, exclude, banned), []);
  assert.deepEqual(b.candidates(T0 + 30_000, 10, exclude, banned), ["4.4.4.4:1"]);
  assert.equal(b.candidates(T0, 0, new Set(), neverBanned).length, 0);
  assert.equal(b.candidates(T0, 2, new Set(), neverBanned).length, 2);
});

Deno.test("addr book: failures back off exponentially and eventually forget", () => {
  const b = book();
  b.learn([{ address: "1.1.1.1:1", lastSeen: T0 }], PUBLIC_PEER, T0);
  const none = new Set<string>();
  let now = T0;
  const waits: number[] = [];
  for (let i = 0; i < ADDR_BOOK_DEFAULTS.maxFailures - 1; i++) {
    b.markAttempt("1.1.1.1:1", now);
    b.markFailure("1.1.1.1:1", now);
    // Find the first minute at which it is a candidate again.
    let wait = 0;
    while (b.candidates(now + wait, 1, none, neverBanned).length === 0) wait += 60_000;
    waits.push(wait / 60_000);
    now += wait;
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
  b.markFailure("1.1.1.1:1", now);
  assert.equal(b.has("1.1.1.1:1"), false, "forgotten after maxFailures in a row");
});

Deno.test("addr book: a success resets failures and protects from being forgotten", () => {
  const b = book();
  b.learn([{ address: "1.1.1.1:1", lastSeen: T0 - DAY }], PUBLIC_PEER, T0);
  b.markFailure("1.1.1.1:1", T0);
  b.markFailure("1.1.1.1:1", T0);
  b.markSuccess("1.1.1.1:1", T0 + 1);
  assert.deepEqual(b.get("1.1.1.1:1"), {
    address: "1.1.1.1:1",
    lastSeen: T0 + 1,
    lastTried: T0 + 1,
    lastSuccess: T0 + 1,
    failures: 0,
  });
  for (let i = 0; i < 20; i++) b.markFailure("1.1.1.1:1", T0 + 2 + i);
  assert.ok(b.has("1.1.1.1:1"), "worked this week: kept despite failures");
  // Addresses that worked come first among candidates.
  b.learn([{ address: "2.2.2.2:1", lastSeen: T0 }], PUBLIC_PEER, T0);
  const c = b.candidates(T0 + DAY, 2, new Set(), neverBanned);
  assert.equal(c.length, 2);
  assert.equal(c[0], "1.1.1.1:1");
  // markSuccess learns unknown dialed addresses; marks on unknown or garbage are ignored.
  b.markSuccess("5.5.5.5:5", T0);
  assert.ok(b.has("5.5.5.5:5"));
  b.markFailure("6.6.6.6:6", T0);
  b.markAttempt("garbage", T0);
  b.markSuccess("0.0.0.0:1", T0);
  assert.equal(b.has("6.6.6.6:6") || b.has("0.0.0.0:1"), false);
});

Deno.test("addr book: sample never leaks our own or local addresses to public peers", () => {
  const own = ["5.5.5.5:24100", "127.0.0.1:24300"];
  const b = book({}, own);
  const local = ["127.0.0.1:24310", "10.0.0.2:24100"];
  const pub = Array.from({ length: 50 }, (_, i) => publicAddr(i));
  b.learn([...local, ...pub].map((address) => ({ address, lastSeen: T0 })), LOCAL_PEER, T0);
  b.markSuccess("5.5.5.5:24100", T0); // our own address reached back to us: never stored
  assert.equal(b.has("5.5.5.5:24100"), false);
  const forPublic = b.sample(1_000, PUBLIC_PEER, T0).map((e) => e.address);
  assert.equal(forPublic.length, 50);
  assert.deepEqual(new Set(forPublic), new Set(pub));
  const forLocal = b.sample(1_000, "127.0.0.1:24320", T0).map((e) => e.address);
  assert.deepEqual(new Set(forLocal), new Set([...local, ...pub]));
  for (const a of own) assert.ok(!forLocal.includes(a));
  // Setting our own addresses later drops them from the book too.
  b.setOwnAddresses(["127.0.0.1:24310"]);
  assert.ok(!b.sample(1_000, LOCAL_PEER, T0).some((e) => e.address === "127.0.0.1:24310"));
  assert.equal(b.has("127.0.0.1:24310"), false);
});

Deno.test("addr book: sample is random, bounded, and skips failing and stale entries", () => {
  const b = book({ maxEntries: 3_000 });
  for (let k = 0; k < 3; k++) {
    b.learn(
      Array.from(
        { length: 1_000 },
        (_, i) => ({ address: publicAddr(k * 1_000 + i), lastSeen: T0 }),
      ),
      `127.0.0.1:${30_000 + k}`,
      T0,
    );
  }
  assert.equal(b.size, 3_000);
  const s = b.sample(5_000, PUBLIC_PEER, T0);
  assert.equal(s.length, MESSAGE_LIMITS.maxAddresses, "capped at one message");
  assert.equal(new Set(s.map((e) => e.address)).size, s.length, "no duplicates");
  const s2 = b.sample(10, PUBLIC_PEER, T0).map((e) => e.address);
  const s3 = b.sample(10, PUBLIC_PEER, T0).map((e) => e.address);
  assert.notDeepEqual(s2, s3);
  assert.deepEqual(b.sample(0, PUBLIC_PEER, T0), []);
  assert.deepEqual(b.sample(-5, PUBLIC_PEER, T0), []);

  const small = book();
  small.learn(
    [{ address: "1.1.1.1:1", lastSeen: T0 }, { address: "2.2.2.2:1", lastSeen: T0 }],
    PUBLIC_PEER,
    T0,
  );
  for (let i = 0; i < ADDR_BOOK_DEFAULTS.shareMaxFailures; i++) small.markFailure("1.1.1.1:1", T0);
  assert.deepEqual(small.sample(10, PUBLIC_PEER, T0).map((e) => e.address), ["2.2.2.2:1"]);
  assert.deepEqual(
    small.sample(10, PUBLIC_PEER, T0 + 31 * DAY),
    [],
    "stale entries are not shared",
  );
  assert.equal(small.prune(T0 + 31 * DAY), 2);
  assert.equal(small.size, 0);
});

Deno.test("addr book: JSON round trip and hostile files", () => {
  const b = book();
  b.learn(
    [
      { address: "1.1.1.1:1", lastSeen: T0 },
      { address: "[2001:db8::1]:2", lastSeen: T0 - 5 },
      { address: "127.0.0.1:24300", lastSeen: T0 },
    ],
    LOCAL_PEER,
    T0,
  );
  b.markFailure("1.1.1.1:1", T0 + 1);
  const back = AddrBook.fromJSON(JSON.parse(JSON.stringify(b)), {}, new SeededRandom(1));
  assert.deepEqual(
    back.entries().sort((x, y) => x.address.localeCompare(y.address)),
    b.entries().sort((x, y) => x.address.localeCompare(y.address)),
  );
  const junk = {
    version: 1,
    entries: [
      null,
      "1.1.1.1:1",
      { address: "0.0.0.0:1", lastSeen: 1, lastTried: 0, lastSuccess: 0, failures: 0 },
      { address: "1.1.1.1:0", lastSeen: 1, lastTried: 0, lastSuccess: 0, failures: 0 },
      { address: "2.2.2.2:2", lastSeen: -1, lastTried: 0, lastSuccess: 0, failures: 0 },
      { address: "3.3.3.3:3", lastSeen: 1, lastTried: 0, lastSuccess: 0 },
      { address: "4.4.4.4:4", lastSeen: 1, lastTried: 0, lastSuccess: 0, failures: 0 },
      { address: "4.4.4.4:4", lastSeen: 2, lastTried: 0, lastSuccess: 0, failures: 0 },
      { address: "[::FFFF:5.5.5.5]:5", lastSeen: 1, lastTried: 0, lastSuccess: 0, failures: 0 },
      { address: "6.6.6.6:6", lastSeen: 1, lastTried: 0, lastSuccess: 0, failures: 0 },
    ],
  };
  const fromJunk = AddrBook.fromJSON(junk, {}, new SeededRandom(1), ["6.6.6.6:6"]);
  assert.deepEqual(fromJunk.entries().map((e) => e.address).sort(), ["4.4.4.4:4", "5.5.5.5:5"]);
  assert.equal(fromJunk.get("4.4.4.4:4")!.lastSeen, 2, "the newest duplicate wins");
  for (const bad of [null, 3, "x", [], { version: 2, entries: [] }, { version: 1, entries: 5 }]) {
    assert.equal(AddrBook.fromJSON(bad, {}, new SeededRandom(1)).size, 0);
  }
  // A file with more entries than the bound keeps the most recently seen.
  const many = {
    version: 1,
    entries: Array.from({ length: 100 }, (_, i) => ({
      address: publicAddr(i),
      lastSeen: T0 + i,
      lastTried: 0,
      lastSuccess: 0,
      failures: 0,
    })),
  };
  const bounded = AddrBook.fromJSON(many, { maxEntries: 10 }, new SeededRandom(1));
  assert.equal(bounded.size, 10);
  assert.ok(bounded.has(publicAddr(99)) && !bounded.has(publicAddr(0)));
});

Deno.test("addr book: merge keeps the newer facts and respects the bound", () => {
  const live = book({ maxEntries: 3 }, ["7.7.7.7:7"]);
  live.learn([{ address: "1.1.1.1:1", lastSeen: T0 - 10 }], PUBLIC_PEER, T0);
  live.markAttempt("1.1.1.1:1", T0);
  const saved = book();
  saved.learn(
    [
      { address: "1.1.1.1:1", lastSeen: T0 },
      { address: "2.2.2.2:2", lastSeen: T0 - 1 },
      { address: "3.3.3.3:3", lastSeen: T0 - 2 },
      { address: "4.4.4.4:4", lastSeen: T0 - 3 },
      { address: "7.7.7.7:7", lastSeen: T0 },
    ],
    PUBLIC_PEER,
    T0,
  );
  saved.markFailure("1.1.1.1:1", T0 - 100); // an older try than the live one
  live.merge(saved);
  assert.equal(live.size, 3);
  assert.deepEqual(live.get("1.1.1.1:1"), {
    address: "1.1.1.1:1",
    lastSeen: T0,
    lastTried: T0,
    lastSuccess: 0,
    failures: 0,
  });
  assert.ok(live.has("2.2.2.2:2") && live.has("3.3.3.3:3"), "the most recently seen fill the book");
  assert.equal(live.has("7.7.7.7:7"), false, "never our own");
  // The merged entries are copies: changing one book leaves the other alone.
  live.markFailure("2.2.2.2:2", T0);
  assert.equal(saved.get("2.2.2.2:2")!.failures, 0);
});

Deno.test("addr book: saveAddrBook / loadAddrBook are atomic and tolerate bad files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "addrbook-test-" });
  try {
    const path = `${dir}/peers.json`;
    const missing = await loadAddrBook(path);
    assert.equal(missing.size, 0);

    const b = book();
    b.learn(
      [{ address: "1.1.1.1:1", lastSeen: T0 }, { address: "2.2.2.2:2", lastSeen: T0 }],
      PUBLIC_PEER,
      T0,
    );
    await saveAddrBook(path, b);
    await saveAddrBook(path, b); // overwriting works too
    const loaded = await loadAddrBook(path, {}, new SeededRandom(1));
    assert.deepEqual(
      loaded.entries().sort((x, y) => x.address.localeCompare(y.address)),
      b.entries().sort((x, y) => x.address.localeCompare(y.address)),
    );
    // No temporary files are left behind.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["peers.json"]);

    await Deno.writeTextFile(path, "{ not json");
    await assert.rejects(() => loadAddrBook(path), AddrBookFileError);
    await Deno.writeTextFile(path, JSON.stringify({ version: 1, entries: "nope" }));
    assert.equal((await loadAddrBook(path)).size, 0, "valid JSON, wrong shape: empty, no throw");

    await Deno.remove(path);
    await Deno.mkdir(path); // unreadable as a file
    await assert.rejects(() => loadAddrBook(path), AddrBookFileError);
    // Saving over a directory fails and cleans up its temporary file.
    await assert.rejects(() => saveAddrBook(path, b));
    const after = [];
    for await (const e of Deno.readDir(dir)) after.push(e.name);
    assert.deepEqual(after, ["peers.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("addr book: 10,000 addresses of one /16 from one peer leave a handful dialable", () => {
  const b = book();
  const now = T0;
  // Arrives as ten full answers over time, so the rate limit is not what stops it.
  for (let m = 0; m < 10; m++) {
    const entries = Array.from({ length: 1_000 }, (_, i) => ({
      address: `203.0.${(m * 1_000 + i) >> 8 & 255}.${(m * 1_000 + i) & 255}:24100`,
      lastSeen: now,
    }));
    b.learn(entries, PUBLIC_PEER, now + m * 10_000_000);
  }
  const stored = b.entries().filter((e) => e.address.startsWith("203.0."));
  assert.ok(stored.length <= 8, `${stored.length} stored`);
  // One outbound per netgroup: of those, one is a dial candidate at a time.
  const dialable = b.candidates(now + 100_000_000, 8, new Set(), () => false);
  assert.equal(dialable.filter((a) => a.startsWith("203.0.")).length, 1);
  // A /16 we already have an outbound connection into gives none.
  assert.deepEqual(
    b.candidates(now + 100_000_000, 8, new Set(), () => false, new Set(["4:203.0"])),
    [],
  );
  // Other sources still teach addresses of other subnets.
  const other = b.learn([{ address: "198.51.100.7:24100", lastSeen: now }], "192.0.2.1", now);
  assert.equal(other.added, 1);
});

Deno.test("addr book: hostnames are neither learned, kept from disk, nor remembered on success", () => {
  const b = book();
  const r = b.learn(
    [
      { address: "ip6-localhost:24101", lastSeen: T0 },
      { address: "internal-db.example:5432", lastSeen: T0 },
    ],
    PUBLIC_PEER,
    T0,
  );
  assert.equal(r.added, 0);
  b.markSuccess("seed.example.com:24100", T0);
  assert.equal(b.size, 0);
  const loaded = AddrBook.fromJSON({
    version: 1,
    entries: [
      {
        address: "seed.example.com:24100",
        lastSeen: T0,
        lastTried: 0,
        lastSuccess: 0,
        failures: 0,
      },
      { address: "1.2.3.4:24100", lastSeen: T0, lastTried: 0, lastSuccess: 0, failures: 0 },
    ],
  });
  assert.deepEqual(loaded.entries().map((e) => e.address), ["1.2.3.4:24100"]);
});
