import assert from "node:assert/strict";
import {
  classifyConnectError,
  type DialAction,
  type DialFailure,
  DialPlanner,
  type DialWorld,
  UNREACHABLE_WARNING_INTERVAL_MS,
} from "../../../network/dial_planner.ts";
import { AddrBook } from "../../../network/addr_book.ts";
import { type Random, SeededRandom } from "../../../network/random.ts";

/** A Random that always returns the same float, to pin the jitter at an end of its window. */
function fixedRandom(value: number): Random {
  return { next: () => value, u64: () => 0n, bytes: (n) => new Uint8Array(n) };
}
const TOP_OF_WINDOW = 0.999_999_999;

const PEER = "203.0.113.7:24100";
const OTHER = "198.51.100.2:24100";
const REFUSED: DialFailure = { kind: "refused", detail: "Connection refused (os error 111)" };
/** Wall-clock time for the address book, which keeps wall-clock timestamps. */
const WALL = 1_700_000_000_000;

/** The live connections as the planner sees them, set by each test. */
class FakeWorld implements DialWorld {
  readonly connected = new Set<string>();
  readonly bannedKeys = new Set<string>();
  outbound = 0;
  busy: string[] = [];
  book: AddrBook | null = null;

  isConnected(address: string): boolean {
    return this.connected.has(address);
  }
  isBanned(key: string): boolean {
    return this.bannedKeys.has(key);
  }
  outboundConnections(): number {
    return this.outbound;
  }
  busyAddresses(): Iterable<string> {
    return this.busy;
  }
  candidates(count: number, exclude: ReadonlySet<string>, isBanned: (k: string) => boolean) {
    return this.book ? this.book.candidates(WALL, count, exclude, isBanned) : [];
  }
}

function planner(random: Random = new SeededRandom("dial"), maxOutbound = 0): DialPlanner {
  return new DialPlanner({ maxOutbound, random });
}

const dials = (actions: DialAction[]) =>
  actions.flatMap((a) => a.kind === "dial" ? [a.address] : []);
const wakeOf = (actions: DialAction[]) => {
  const wakes = actions.flatMap((a) => a.kind === "wake" ? [a.at] : []);
  return wakes.length === 0 ? Infinity : Math.min(...wakes);
};
const warnings = (actions: DialAction[]) =>
  actions.filter((a): a is Extract<DialAction, { kind: "warn-unreachable" }> =>
    a.kind === "warn-unreachable"
  );

/**
 * Runs the planner on a virtual clock, as the shell does: tick when a wake-up is due, run its
 * dials through `outcome` (which may fail them at once), until `until`. Returns every dial
 * with its time and every action.
 */
function runClock(
  p: DialPlanner,
  world: FakeWorld,
  from: number,
  until: number,
  outcome: (address: string, now: number) => DialAction[],
): { dials: { address: string; at: number }[]; actions: DialAction[] } {
  const log: { address: string; at: number }[] = [];
  const all: DialAction[] = [];
  let now = from;
  let ticks = 0;
  while (now <= until) {
    assert.ok(++ticks < 100_000, "the planner keeps waking without progress");
    const actions = p.tick(now, world);
    all.push(...actions);
    let next = wakeOf(actions);
    for (const address of dials(actions)) {
      log.push({ address, at: now });
      const after = outcome(address, now);
      all.push(...after);
      next = Math.min(next, wakeOf(after));
    }
    assert.ok(next > now, `wake-up at ${next} is not after ${now}`);
    now = next;
  }
  return { dials: log, actions: all };
}

Deno.test("dial planner: a persistent peer is dialed at the first tick, once", () => {
  const p = planner();
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  const first = p.tick(0, world);
  assert.deepEqual(dials(first), [PEER]);
  // One dial in flight per target: the next ticks do not dial it again while it connects.
  assert.deepEqual(dials(p.tick(1_000, world)), []);
  assert.deepEqual(dials(p.tick(60_000, world)), []);
  assert.equal(p.dialsInFlight, 1);
  // Adding the same address again changes nothing.
  p.addPersistent(PEER, false);
  assert.deepEqual(p.persistentAddresses(), [PEER]);
  assert.deepEqual(dials(p.tick(61_000, world)), []);
});

Deno.test("dial planner: a dead peer is redialed 1 s, 2 s, 4 s ... up to 60 s apart", () => {
  const p = planner(fixedRandom(TOP_OF_WINDOW));
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  const run = runClock(p, world, 0, 10 * 60_000, (a, now) => p.dialFailed(a, REFUSED, now));
  const gaps = run.dials.slice(1).map((d, i) => d.at - run.dials[i].at);
  assert.deepEqual(
    gaps.slice(0, 9),
    [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000],
  );
  assert.ok(gaps.every((g) => g <= 60_000), "never more than the cap apart");
});

Deno.test("dial planner: jittered redials stay in [window/2, window] and differ between peers", () => {
  const schedules: number[][] = [];
  for (const seed of ["a", "b", "c"]) {
    const p = planner(new SeededRandom(seed));
    const world = new FakeWorld();
    p.addPersistent(PEER, true);
    const run = runClock(p, world, 0, 15 * 60_000, (a, now) => p.dialFailed(a, REFUSED, now));
    const gaps = run.dials.slice(1).map((d, i) => d.at - run.dials[i].at);
    gaps.forEach((gap, attempt) => {
      const window = Math.min(60_000, 1_000 * 2 ** attempt);
      assert.ok(gap >= window / 2 && gap <= window, `seed ${seed} attempt ${attempt}: ${gap}`);
    });
    schedules.push(gaps);
  }
  assert.notDeepEqual(schedules[0], schedules[1], "no lockstep redials");
  assert.notDeepEqual(schedules[1], schedules[2], "no lockstep redials");
});

Deno.test("dial planner: a connection that lived 60 s resets the backoff, a shorter one not", () => {
  for (const lived of [60_000, 59_999]) {
    const p = planner(fixedRandom(TOP_OF_WINDOW));
    const world = new FakeWorld();
    p.addPersistent(PEER, true);
    let now = 0;
    // Ten failures push the window to the 60 s cap.
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(dials(p.tick(now, world)), [PEER]);
      now = wakeOf(p.dialFailed(PEER, REFUSED, now));
    }
    assert.deepEqual(dials(p.tick(now, world)), [PEER]);
    p.dialConnected(PEER);
    world.connected.add(PEER);
    p.sessionReady(PEER, "203.0.113.7", now);
    now += lived;
    world.connected.delete(PEER);
    const closed = p.sessionClosed(PEER, { reason: "eof", detail: "", wasReady: true }, now);
    const expected = lived >= 60_000 ? 1_000 : 60_000;
    assert.equal(wakeOf(closed) - now, expected, `after ${lived} ms connected`);
    assert.deepEqual(dials(p.tick(wakeOf(closed) - 1, world)), [], "not before the backoff");
    assert.deepEqual(dials(p.tick(wakeOf(closed), world)), [PEER]);
  }
});

Deno.test("dial planner: a connected peer is never redialed and sets no timer of its own", () => {
  const p = planner();
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  assert.deepEqual(dials(p.tick(0, world)), [PEER]);
  p.dialConnected(PEER);
  world.connected.add(PEER);
  p.sessionReady(PEER, "203.0.113.7", 10);
  // An hour of ticks: nothing is dialed, and every wake-up is only the slot refill interval.
  const run = runClock(p, world, 1_000, 3_600_000, () => []);
  assert.deepEqual(run.dials, []);
  const wakes = run.actions.flatMap((a) => a.kind === "wake" ? [a.at] : []);
  assert.equal(wakes.length, 3_600);
  // A redial scheduled by a lost duplicate race is not run while another connection holds it.
  p.sessionClosed(PEER, { reason: "duplicate", detail: "", wasReady: false }, 3_600_000);
  assert.deepEqual(runClock(p, world, 3_600_001, 3_700_000, () => []).dials, []);
  // Only once nothing reaches it any more is it dialed again.
  world.connected.delete(PEER);
  assert.deepEqual(dials(p.tick(3_700_001, world)), [PEER]);
});

Deno.test("dial planner: banned and self addresses are never dialed", () => {
  const p = planner();
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  p.addPersistent("127.0.0.1:24300", true);
  world.bannedKeys.add("203.0.113.7");
  assert.deepEqual(dials(p.tick(0, world)), ["127.0.0.1:24300"]);
  p.dialConnected("127.0.0.1:24300");
  // The handshake showed that address is this node: it is never dialed again.
  const self = p.sessionClosed(
    "127.0.0.1:24300",
    { reason: "self-connection", detail: "connected to ourselves", wasReady: false },
    5,
  );
  assert.deepEqual(self, []);
  assert.deepEqual(runClock(p, world, 10, 600_000, () => []).dials, []);
  // The ban ends: the peer is dialed at the next tick.
  world.bannedKeys.clear();
  assert.deepEqual(dials(p.tick(600_001, world)), [PEER]);
  const status = p.status(600_001, () => false);
  assert.deepEqual(status.find((s) => s.address === "127.0.0.1:24300")?.nextRetryInSeconds, null);
});

Deno.test("dial planner: outbound slots are filled from the address book, respecting bans", () => {
  const book = new AddrBook({}, new SeededRandom("book"));
  const addresses = Array.from({ length: 12 }, (_, i) => `203.0.113.${i + 10}:24100`);
  book.learn(addresses.map((address) => ({ address, lastSeen: WALL })), "9.9.9.9", WALL);
  const world = new FakeWorld();
  world.book = book;
  world.bannedKeys.add("203.0.113.10");
  world.bannedKeys.add("203.0.113.11");
  // An open connection we dialed, and a registered peer key: both are busy.
  world.busy = ["203.0.113.12:24100", "203.0.113.13", "203.0.113.99:24100"];
  world.outbound = 1;
  const p = planner(new SeededRandom("slots"), 4);
  p.addPersistent("203.0.113.14:24100", true);
  const first = dials(p.tick(0, world));
  // The persistent peer is dialed outside the limit; the book fills 4 - 1 open - 1 in flight.
  assert.equal(first[0], "203.0.113.14:24100");
  const fromBook = first.slice(1);
  assert.equal(fromBook.length, 2);
  const forbidden = new Set([
    "203.0.113.10:24100",
    "203.0.113.11:24100",
    "203.0.113.12:24100",
    "203.0.113.13:24100",
    "203.0.113.14:24100",
  ]);
  for (const a of fromBook) assert.ok(!forbidden.has(a), `dialed ${a}`);
  assert.equal(new Set(fromBook).size, 2, "one dial per address");
  // The slots are full while those dials are in flight: nothing more is dialed.
  assert.deepEqual(dials(p.tick(1_000, world)), []);
  // One fails; the next tick takes another address, never one still in flight.
  p.dialFailed(fromBook[0], REFUSED, 1_500);
  const refill = dials(p.tick(2_000, world));
  assert.equal(refill.length, 1);
  assert.ok(!forbidden.has(refill[0]) && refill[0] !== fromBook[1], refill[0]);
});

Deno.test("dial planner: a book that offers banned or busy addresses still gets none dialed", () => {
  // A sloppy candidate source: the planner checks bans, busy keys and in-flight dials itself.
  const world = new FakeWorld();
  world.bannedKeys.add("203.0.113.1");
  world.busy = ["203.0.113.2"];
  world.candidates = () => [
    "203.0.113.1:24100",
    "203.0.113.2:24100",
    "203.0.113.3:24100",
    "203.0.113.3:24100",
  ];
  const p = planner(new SeededRandom(1), 8);
  assert.deepEqual(dials(p.tick(0, world)), ["203.0.113.3:24100"]);
  assert.deepEqual(dials(p.tick(1_000, world)), []);
});

Deno.test("dial planner: a failing --peer warns at once, then at most once a minute, then recovers", () => {
  const p = planner(new SeededRandom("warn"));
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  const run = runClock(p, world, 0, 10 * 60_000, (a, now) => p.dialFailed(a, REFUSED, now));
  const warned = warnings(run.actions);
  assert.ok(run.dials.length > 15, `${run.dials.length} dials`);
  assert.equal(warned[0].failures, 1, "the first failure is warned about");
  assert.equal(warned[0].failure.kind, "refused");
  assert.ok(warned[0].retryInMs >= 500 && warned[0].retryInMs <= 1_000);
  // Later warnings come at least a minute apart, while it keeps failing.
  const warnedAt = run.dials.filter((_, i) => warned.some((w) => w.failures === i + 1));
  for (let i = 1; i < warnedAt.length; i++) {
    assert.ok(warnedAt[i].at - warnedAt[i - 1].at >= UNREACHABLE_WARNING_INTERVAL_MS);
  }
  assert.ok(warned.length >= 5 && warned.length <= 11, `${warned.length} warnings in 10 min`);
  // It comes back: one info line with the count, and its state is clean again.
  const last = run.dials[run.dials.length - 1].at;
  world.connected.add(PEER);
  const back = p.sessionReady(PEER, "203.0.113.7", last + 10);
  assert.deepEqual(back, [{ kind: "reconnected", address: PEER, failures: run.dials.length }]);
  assert.deepEqual(p.status(last + 10, (a) => world.connected.has(a)), [
    { address: PEER, connected: true, lastError: null, failures: 0, nextRetryInSeconds: null },
  ]);
  // A later failure is a new first failure: warned about at once.
  world.connected.delete(PEER);
  p.sessionClosed(PEER, { reason: "eof", detail: "", wasReady: true }, last + 20);
  const again = p.dialFailed(PEER, REFUSED, last + 2_000);
  assert.equal(warnings(again).length, 1);
});

Deno.test("dial planner: peers not given by the operator fail quietly", () => {
  const p = planner();
  const world = new FakeWorld();
  p.addPersistent(PEER, false);
  const run = runClock(p, world, 0, 5 * 60_000, (a, now) => p.dialFailed(a, REFUSED, now));
  assert.ok(run.dials.length > 5);
  assert.deepEqual(warnings(run.actions), []);
  assert.deepEqual(p.sessionReady(PEER, "203.0.113.7", 5 * 60_000), []);
  // Once the operator names it with --peer too, it is warned about.
  p.addPersistent(PEER, true);
  assert.equal(warnings(p.dialFailed(PEER, REFUSED, 5 * 60_000 + 1)).length, 1);
});

Deno.test("dial planner: a refused handshake is a failure; losing the duplicate rule is not", () => {
  const p = planner(fixedRandom(0));
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  p.tick(0, world);
  p.dialConnected(PEER);
  const refused = p.sessionClosed(
    PEER,
    { reason: "wrong-genesis", detail: "genesis 0011… is not ours", wasReady: false },
    100,
  );
  const [w] = warnings(refused);
  assert.equal(w.failure.kind, "handshake");
  assert.equal(w.failure.detail, "wrong-genesis: genesis 0011… is not ours");
  assert.deepEqual(p.status(100, () => false), [{
    address: PEER,
    connected: false,
    lastError: "handshake refused: wrong-genesis: genesis 0011… is not ours",
    failures: 1,
    nextRetryInSeconds: 0.5,
  }]);
  p.tick(600, world);
  p.dialConnected(PEER);
  const duplicate = p.sessionClosed(
    PEER,
    { reason: "duplicate", detail: "", wasReady: false },
    700,
  );
  assert.deepEqual(warnings(duplicate), []);
  assert.equal(p.status(700, () => false)[0].failures, 1);
});

Deno.test("dial planner: an inbound session from a failing peer counts as it being back", () => {
  const p = planner();
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  p.addPersistent("127.0.0.1:24302", true);
  p.tick(0, world);
  p.dialFailed(PEER, REFUSED, 10);
  p.dialFailed("127.0.0.1:24302", REFUSED, 10);
  // It dialed us: public peers are keyed by IP, loopback ones by their listen address.
  assert.deepEqual(dials(p.tick(20, world)), []);
  assert.equal(p.sessionReady(null, "203.0.113.7", 20)[0]?.kind, "reconnected");
  assert.equal(p.sessionReady(null, "127.0.0.1:24302", 20)[0]?.kind, "reconnected");
  assert.ok(p.status(20, () => true).every((s) => s.failures === 0 && s.lastError === null));
  // Another port on loopback is another node: it changes nothing.
  p.dialFailed(OTHER, REFUSED, 30);
  assert.deepEqual(p.sessionReady(null, "127.0.0.1:24304", 40), []);
});

Deno.test("dial planner: status shows each persistent peer's state", () => {
  const p = planner(fixedRandom(TOP_OF_WINDOW));
  const world = new FakeWorld();
  p.addPersistent(PEER, true);
  p.addPersistent(OTHER, false);
  assert.deepEqual(p.status(0, () => false).map((s) => s.nextRetryInSeconds), [0, 0]);
  p.tick(0, world);
  // While dialing there is no retry to wait for.
  assert.deepEqual(p.status(0, () => false).map((s) => s.nextRetryInSeconds), [null, null]);
  p.dialFailed(PEER, { kind: "timeout", detail: "no answer within 5000 ms" }, 5_000);
  p.dialConnected(OTHER);
  world.connected.add(OTHER);
  p.sessionReady(OTHER, "198.51.100.2", 5_000);
  assert.deepEqual(p.status(5_250, (a) => world.connected.has(a)), [
    {
      address: PEER,
      connected: false,
      lastError: "connect timed out: no answer within 5000 ms",
      failures: 1,
      nextRetryInSeconds: 0.8,
    },
    { address: OTHER, connected: true, lastError: null, failures: 0, nextRetryInSeconds: null },
  ]);
});

Deno.test("dial planner: connect errors are sorted into what an operator can act on", () => {
  assert.equal(classifyConnectError(new Deno.errors.ConnectionRefused("refused")).kind, "refused");
  assert.equal(classifyConnectError(new Deno.errors.TimedOut("slow")).kind, "timeout");
  const dns = classifyConnectError(
    new Error("failed to lookup address information: Name or service not known"),
  );
  assert.deepEqual(dns, {
    kind: "dns",
    detail: "failed to lookup address information: Name or service not known",
  });
  assert.equal(classifyConnectError(new Error("Network is unreachable")).kind, "unreachable");
  assert.equal(classifyConnectError("odd").kind, "unreachable");
});
