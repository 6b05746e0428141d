import assert from "node:assert/strict";
import {
  BAN_SCORE_DEFAULTS,
  BanFileError,
  BanScores,
  isBannable,
  loadBans,
  MAX_REASON_LENGTH,
  saveBans,
} from "../../../network/ban_score.ts";

const DAY = 24 * 60 * 60 * 1000;
const HALF_LIFE = BAN_SCORE_DEFAULTS.halfLifeMs;
const T0 = 1_700_000_000_000;

Deno.test("ban score: threshold 100 bans for 24 h", () => {
  assert.equal(BAN_SCORE_DEFAULTS.threshold, 100);
  assert.equal(BAN_SCORE_DEFAULTS.banDurationMs, DAY);
  const s = new BanScores();
  assert.deepEqual(s.add("1.2.3.4", 60, "bad frame", T0), {
    score: 60,
    banned: false,
    newlyBanned: false,
  });
  assert.equal(s.isBanned("1.2.3.4", T0), false);
  const r = s.add("1.2.3.4", 40, "bad block", T0);
  assert.equal(r.banned, true);
  assert.equal(r.score, 100);
  assert.equal(s.isBanned("1.2.3.4", T0), true);
  assert.equal(s.isBanned("1.2.3.4", T0 + DAY - 1), true);
  assert.deepEqual(s.banOf("1.2.3.4", T0), {
    key: "1.2.3.4",
    until: T0 + DAY,
    reason: "bad block",
  });
  assert.equal(s.isBanned("1.2.3.4", T0 + DAY), false);
  // The ban cleared the score: the key starts fresh afterwards.
  assert.equal(s.score("1.2.3.4", T0 + DAY), 0);
  assert.equal(s.add("1.2.3.4", 10, "x", T0 + DAY).banned, false);
  // Other keys are unaffected.
  assert.equal(s.isBanned("1.2.3.5", T0), false);
});

Deno.test("ban score: a single offence at the threshold bans at once", () => {
  const s = new BanScores();
  assert.deepEqual(s.add("5.6.7.8", 100, "forged certificate", T0), {
    score: 100,
    banned: true,
    newlyBanned: true,
  });
  // While banned, adding does nothing more and reports banned.
  assert.deepEqual(s.add("5.6.7.8", 1, "again", T0 + 1), {
    score: 0,
    banned: true,
    newlyBanned: false,
  });
});

Deno.test("ban score: the transient part halves every half-life", () => {
  const s = new BanScores();
  s.add("k", 80, "burst", T0);
  assert.equal(s.score("k", T0), 80);
  assert.ok(Math.abs(s.score("k", T0 + HALF_LIFE) - 40) < 1e-9);
  assert.ok(Math.abs(s.score("k", T0 + 2 * HALF_LIFE) - 20) < 1e-9);
  // Decayed points no longer count toward a ban.
  assert.equal(s.add("k", 70, "later", T0 + 2 * HALF_LIFE).banned, false);
  assert.ok(Math.abs(s.score("k", T0 + 2 * HALF_LIFE) - 90) < 1e-9);
});

Deno.test("ban score: occasional faults never add up to a ban, a burst does", () => {
  const s = new BanScores();
  // An honest but buggy peer: one 10-point fault per minute for a day.
  for (let t = 0; t < DAY; t += 60_000) {
    assert.equal(s.add("friend", 10, "malformed", T0 + t).banned, false, `minute ${t / 60_000}`);
  }
  assert.ok(s.score("friend", T0 + DAY) < 100);
  // A hostile one: a fault per second. Ten are not quite enough (decay), the eleventh bans.
  for (let i = 0; i < 10; i++) {
    assert.equal(s.add("foe", 10, "malformed", T0 + i * 1_000).banned, false, `fault ${i}`);
  }
  assert.equal(s.add("foe", 10, "malformed", T0 + 10_000).banned, true);
});

Deno.test("ban score: the persistent part never decays", () => {
  const s = new BanScores();
  s.add("k", 50, "bad signature", T0, { persistent: true });
  s.add("k", 30, "malformed", T0);
  assert.equal(s.score("k", T0), 80);
  assert.ok(Math.abs(s.score("k", T0 + 100 * HALF_LIFE) - 50) < 1e-6);
  assert.equal(
    s.add("k", 50, "bad signature", T0 + 100 * HALF_LIFE, { persistent: true }).banned,
    true,
  );
});

Deno.test("ban score: garbage points and a clock stepping back change nothing", () => {
  const s = new BanScores();
  s.add("k", 50, "x", T0);
  for (const p of [NaN, -10, 0, -Infinity]) assert.equal(s.add("k", p, "x", T0).score, 50);
  assert.equal(s.add("k", Infinity, "x", T0).score, 50);
  // Going back in time neither inflates nor resets the score.
  assert.equal(s.score("k", T0 - 10 * HALF_LIFE), 50);
  assert.equal(s.add("k", 10, "x", T0 - HALF_LIFE).score, 60);
  assert.ok(Math.abs(s.score("k", T0 + HALF_LIFE) - 30) < 1e-9);
});

Deno.test("ban score: a bare loopback IP is never banned; loopback listen keys are", () => {
  assert.equal(isBannable("127.0.0.1"), false);
  assert.equal(isBannable("::1"), false);
  assert.equal(isBannable("127.3.2.1"), false);
  assert.equal(isBannable(""), false);
  assert.equal(isBannable("127.0.0.1:24310"), true);
  assert.equal(isBannable("[::1]:24310"), true);
  assert.equal(isBannable("1.2.3.4"), true);
  const s = new BanScores();
  const r = s.add("127.0.0.1", 500, "whatever", T0);
  assert.equal(r.banned, false);
  assert.equal(s.isBanned("127.0.0.1", T0), false);
  assert.equal(s.ban("127.0.0.1", T0 + DAY, "manual"), false);
  assert.equal(s.ban("::1", T0 + DAY, "manual"), false);
  assert.equal(s.isBanned("::1", T0), false);
  // One misbehaving local node is banned by its own key, not the machine.
  assert.equal(s.add("127.0.0.1:24310", 100, "bad", T0).banned, true);
  assert.equal(s.isBanned("127.0.0.1:24320", T0), false);
});

Deno.test("ban score: manual ban, longer ban wins, unban", () => {
  const s = new BanScores();
  assert.equal(s.ban("1.2.3.4", T0 + 1_000, "short"), true);
  assert.equal(s.ban("1.2.3.4", T0 + 500, "shorter"), true);
  assert.equal(s.banOf("1.2.3.4", T0)?.until, T0 + 1_000);
  assert.equal(s.banOf("1.2.3.4", T0)?.reason, "short");
  s.ban("1.2.3.4", T0 + 5_000, "longer");
  assert.equal(s.banOf("1.2.3.4", T0)?.until, T0 + 5_000);
  assert.equal(s.unban("1.2.3.4"), true);
  assert.equal(s.isBanned("1.2.3.4", T0), false);
  assert.equal(s.unban("1.2.3.4"), false);
  assert.equal(s.ban("1.2.3.4", NaN, "bad"), false);
});

Deno.test("ban score: reasons are clamped", () => {
  const s = new BanScores();
  s.ban("1.2.3.4", T0 + 1, "x".repeat(10_000));
  assert.equal(s.banOf("1.2.3.4", T0)!.reason.length, MAX_REASON_LENGTH);
});

Deno.test("ban score: memory is bounded; the lowest score is forgotten first", () => {
  const s = new BanScores({ maxTrackedKeys: 100, maxBans: 10 });
  s.add("worst", 90, "x", T0);
  for (let i = 0; i < 1_000; i++) s.add(`10.0.${i >> 8}.${i & 255}`, 1 + (i % 50), "x", T0);
  assert.ok(s.trackedKeys <= 100);
  assert.ok(Math.abs(s.score("worst", T0) - 90) < 1e-9, "the highest score survives");
  for (let i = 0; i < 50; i++) s.ban(`20.0.0.${i}`, T0 + 1_000 + i, "x");
  assert.equal(s.bans(T0).length, 10);
  // The bans that end soonest were dropped; the latest ten remain.
  assert.deepEqual(
    s.bans(T0).map((b) => b.key),
    [...Array(10).keys()].map((i) => `20.0.0.${40 + i}`),
  );
});

Deno.test("ban score: prune drops ended bans and decayed scores", () => {
  const s = new BanScores();
  s.add("a", 10, "x", T0);
  s.add("p", 10, "x", T0, { persistent: true });
  s.ban("b", T0 + 100, "x");
  s.prune(T0 + 20 * HALF_LIFE);
  assert.equal(s.trackedKeys, 1, "only the persistent score is left");
  assert.equal(s.score("p", T0 + 20 * HALF_LIFE), 10);
  assert.deepEqual(s.bans(T0 + 20 * HALF_LIFE), []);
});

Deno.test("ban score: bans survive a JSON round trip; junk in the file is skipped", () => {
  const s = new BanScores();
  s.add("1.2.3.4", 150, "bad block", T0);
  s.ban("127.0.0.1:24310", T0 + 10, "local");
  s.ban("9.9.9.9", T0 + 5, "soon over");
  const text = JSON.stringify(s);
  const back = BanScores.fromJSON(JSON.parse(text), T0 + 6);
  assert.equal(back.isBanned("1.2.3.4", T0 + 6), true);
  assert.equal(back.banOf("1.2.3.4", T0 + 6)?.reason, "bad block");
  assert.equal(back.isBanned("127.0.0.1:24310", T0 + 6), true);
  assert.equal(back.isBanned("9.9.9.9", T0 + 6), false, "ended bans are not restored");

  const junk = {
    version: 1,
    bans: [
      null,
      42,
      { key: 5, until: T0 + 1_000, reason: "x" },
      { key: "127.0.0.1", until: T0 + 1_000, reason: "loopback" },
      { key: "2.2.2.2", until: "tomorrow", reason: "x" },
      { key: "3.3.3.3", until: Infinity, reason: "x" },
      { key: "4.4.4.4", until: T0 + 1_000 },
      { key: "x".repeat(10_000), until: T0 + 1_000, reason: "x" },
    ],
  };
  const fromJunk = BanScores.fromJSON(junk, T0);
  assert.deepEqual(fromJunk.bans(T0).map((b) => b.key), ["4.4.4.4"]);
  // restore() adds to a live instance, keeping what it already had.
  const live = new BanScores();
  live.ban("8.8.8.8", T0 + 1_000, "live");
  assert.equal(live.restore(JSON.parse(text)), 3);
  assert.equal(live.bannedCount(T0 + 6), 3, "8.8.8.8, 1.2.3.4 and the loopback listen key");
  assert.equal(live.bannedCount(T0), 4);
  assert.equal(live.restore(junk), 1);
  assert.equal(live.restore("garbage"), 0);
  for (const bad of [null, 7, "x", [], { version: 2, bans: [] }, { version: 1 }]) {
    assert.deepEqual(BanScores.fromJSON(bad, T0).bans(T0), []);
  }
});

Deno.test("ban score: invalid options are refused", () => {
  assert.throws(() => new BanScores({ threshold: 0 }), RangeError);
  assert.throws(() => new BanScores({ halfLifeMs: -1 }), RangeError);
  assert.throws(() => new BanScores({ maxTrackedKeys: 0 }), RangeError);
});

Deno.test("ban score: saveBans / loadBans round-trip bans.json and tolerate bad files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bans-test-" });
  try {
    const path = `${dir}/bans.json`;
    const fresh = new BanScores();
    assert.equal(await loadBans(path, fresh), 0, "a missing file is no bans, not an error");
    assert.equal(fresh.bannedCount(T0), 0);

    const s = new BanScores();
    s.ban("203.0.113.7", T0 + DAY, "operator: scanner");
    s.add("198.51.100.2", 100, "invalid-block: bad-height", T0);
    s.add("198.51.100.3", 40, "malformed-message", T0); // a partial score is not saved
    await saveBans(path, s);
    await saveBans(path, s); // overwriting works too
    const back = new BanScores();
    assert.equal(await loadBans(path, back), 2);
    assert.deepEqual(back.bans(T0), s.bans(T0));
    assert.equal(back.banOf("203.0.113.7", T0)?.reason, "operator: scanner");
    assert.equal(back.score("198.51.100.3", T0), 0);
    // Bans are added to what the instance already holds.
    const merged = new BanScores();
    merged.ban("192.0.2.1", T0 + DAY, "already here");
    assert.equal(await loadBans(path, merged), 2);
    assert.equal(merged.bannedCount(T0), 3);
    // No temporary files are left behind.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["bans.json"]);

    await Deno.writeTextFile(path, "{ not json");
    await assert.rejects(() => loadBans(path, new BanScores()), BanFileError);
    await Deno.writeTextFile(path, JSON.stringify({ version: 1, bans: "nope" }));
    assert.equal(await loadBans(path, new BanScores()), 0, "valid JSON, wrong shape: no throw");
    await Deno.writeTextFile(path, " ".repeat(4 * 1024 * 1024 + 1));
    await assert.rejects(() => loadBans(path, new BanScores()), BanFileError, "over the limit");

    await Deno.remove(path);
    await Deno.mkdir(path); // unreadable as a file
    await assert.rejects(() => loadBans(path, new BanScores()), BanFileError);
    // Saving over a directory fails and cleans up its temporary file.
    await assert.rejects(() => saveBans(path, s));
    const after = [];
    for await (const e of Deno.readDir(dir)) after.push(e.name);
    assert.deepEqual(after, ["bans.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bans: an IPv6 ban and score cover the /64; IPv4 stays exact", () => {
  const b = new BanScores();
  assert.ok(b.ban("2001:db8:1:2::1", 10_000, "test"));
  assert.ok(b.isBanned("2001:db8:1:2:ffff:ffff:ffff:ffff", 0));
  assert.ok(!b.isBanned("2001:db8:1:3::1", 0));
  assert.equal(b.bans(0)[0].key, "2001:db8:1:2::/64");
  // Rotating the low bits does not reset a score.
  for (let i = 1; i <= 5; i++) b.add(`2001:db8:9:9::${i}`, 20, "junk", 0);
  assert.ok(b.isBanned("2001:db8:9:9::abcd", 0));
  assert.ok(b.ban("203.0.113.5", 10_000, "test"));
  assert.ok(!b.isBanned("203.0.113.6", 0));
  assert.ok(b.unban("2001:db8:1:2::77"));
  assert.ok(!b.isBanned("2001:db8:1:2::1", 0));
});

Deno.test("bans: automatic bans never evict an operator ban, and the list stays bounded", () => {
  const b = new BanScores({ maxBans: 3 });
  assert.ok(b.ban("198.51.100.1", 1_000, "operator", { operator: true }));
  assert.ok(b.ban("198.51.100.2", 2_000, "operator", { operator: true }));
  for (let i = 0; i < 50; i++) b.add(`203.0.113.${i}`, 100, "auto", 0);
  assert.equal(b.bans(0).length, 3);
  assert.ok(b.isBanned("198.51.100.1", 0) && b.isBanned("198.51.100.2", 0));
  // A full list of operator bans refuses the next one instead of dropping one.
  assert.ok(b.ban("198.51.100.3", 3_000, "operator", { operator: true }));
  assert.equal(b.ban("198.51.100.4", 3_000, "operator", { operator: true }), false);
  // The operator mark survives the file.
  const back = BanScores.fromJSON(JSON.parse(JSON.stringify(b.toJSON())), 0, { maxBans: 3 });
  for (let i = 0; i < 5; i++) back.add(`192.0.2.${i}`, 100, "auto", 0);
  assert.ok(back.isBanned("198.51.100.1", 0) && back.isBanned("198.51.100.3", 0));
});
