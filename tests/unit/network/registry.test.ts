import assert from "node:assert/strict";
import { ConnectionRegistry, type SessionInfo, survivor } from "../../../network/registry.ts";
import { randomInt, SeededRandom } from "../../../network/random.ts";

/**
 * Simultaneous-open simulation. Two nodes A and B dial each other (and sometimes redial), the
 * handshakes complete at each end in a random order, and every close reaches the other end
 * after a random delay. Whatever the interleaving, both ends must end with exactly one
 * connection, the same one, open at both ends.
 */
interface Conn {
  id: number;
  dialer: "A" | "B";
  open: { A: boolean; B: boolean };
  sessionAt: { A: number; B: number };
}

type Event =
  | { type: "ready"; at: "A" | "B"; conn: Conn }
  | { type: "remote-close"; at: "A" | "B"; conn: Conn };

function runInterleaving(
  seed: number,
): { survivors: number; sameAtBothEnds: boolean; closes: number } {
  const rnd = new SeededRandom(seed);
  const ids = { A: "", B: "" };
  for (const side of ["A", "B"] as const) {
    ids[side] = Array.from(rnd.bytes(8), (b) => b.toString(16).padStart(2, "0")).join("");
  }
  const registry = {
    A: new ConnectionRegistry<SessionInfo & { conn: Conn }>(ids.A),
    B: new ConnectionRegistry<SessionInfo & { conn: Conn }>(ids.B),
  };
  let nextSession = 1;
  const conns: Conn[] = [];
  const pending: Event[] = [];
  const other = (s: "A" | "B") => (s === "A" ? "B" : "A");
  let closes = 0;

  const openConn = (dialer: "A" | "B") => {
    const conn: Conn = {
      id: conns.length,
      dialer,
      open: { A: true, B: true },
      sessionAt: { A: nextSession++, B: nextSession++ },
    };
    conns.push(conn);
    pending.push({ type: "ready", at: "A", conn }, { type: "ready", at: "B", conn });
  };
  const closeAt = (side: "A" | "B", conn: Conn) => {
    if (!conn.open[side]) return;
    conn.open[side] = false;
    closes++;
    registry[side].remove(ids[other(side)], conn.sessionAt[side]);
    pending.push({ type: "remote-close", at: other(side), conn });
  };

  openConn("A");
  openConn("B");
  // Sometimes a third, late dial (a reconnect attempt racing the others).
  if (rnd.next() < 0.3) openConn(rnd.next() < 0.5 ? "A" : "B");

  while (pending.length > 0) {
    const e = pending.splice(randomInt(rnd, pending.length), 1)[0];
    const side = e.at;
    if (e.type === "remote-close") {
      closeAt(side, e.conn);
      continue;
    }
    // A handshake cannot complete at one end once the other end has closed the socket.
    if (!e.conn.open.A || !e.conn.open.B) continue;
    const info = {
      sessionId: e.conn.sessionAt[side],
      key: ids[other(side)],
      direction: e.conn.dialer === side ? "outbound" as const : "inbound" as const,
      nodeId: ids[other(side)],
      conn: e.conn,
    };
    const r = registry[side].admit(info);
    if (!r.admit) closeAt(side, e.conn);
    else if (r.replaced) closeAt(side, r.replaced.conn);
  }

  const atA = registry.A.get(ids.B);
  const atB = registry.B.get(ids.A);
  const survivors = conns.filter((c) => c.open.A && c.open.B).length;
  return {
    survivors,
    sameAtBothEnds: atA !== undefined && atB !== undefined && atA.conn === atB.conn &&
      atA.conn.open.A &&
      atA.conn.open.B,
    closes,
  };
}

Deno.test("simultaneous dials: exactly one survivor, the same at both ends, over 2,000 interleavings", () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const r = runInterleaving(seed);
    assert.equal(r.survivors, 1, `seed ${seed}: ${r.survivors} survivors`);
    assert.ok(r.sameAtBothEnds, `seed ${seed}: ends disagree`);
  }
});

Deno.test("survivor rule is symmetric: both ends pick the connection dialed by the smaller node id", () => {
  const a = "aa", b = "bb";
  // At A: X is outbound (dialer A), Y inbound (dialer B). At B: mirror image.
  const xAtA: SessionInfo = { sessionId: 1, key: b, direction: "outbound", nodeId: b };
  const yAtA: SessionInfo = { sessionId: 2, key: b, direction: "inbound", nodeId: b };
  const xAtB: SessionInfo = { sessionId: 7, key: a, direction: "inbound", nodeId: a };
  const yAtB: SessionInfo = { sessionId: 3, key: a, direction: "outbound", nodeId: a };
  assert.equal(survivor(xAtA, yAtA, a), xAtA);
  assert.equal(survivor(yAtA, xAtA, a), xAtA);
  assert.equal(survivor(xAtB, yAtB, b), xAtB);
  assert.equal(survivor(yAtB, xAtB, b), xAtB);
});

Deno.test("two connections from the same dialer: the newer survives", () => {
  const s1: SessionInfo = { sessionId: 4, key: "k", direction: "inbound", nodeId: "bb" };
  const s2: SessionInfo = { sessionId: 9, key: "k", direction: "inbound", nodeId: "bb" };
  assert.equal(survivor(s1, s2, "aa"), s2);
});

Deno.test("a superseded session cannot remove the entry of the session that replaced it", () => {
  const reg = new ConnectionRegistry<SessionInfo>("aa");
  const older: SessionInfo = { sessionId: 1, key: "k", direction: "inbound", nodeId: "bb" };
  const newer: SessionInfo = { sessionId: 2, key: "k", direction: "inbound", nodeId: "bb" };
  assert.deepEqual(reg.admit(older), { admit: true, replaced: null });
  const r = reg.admit(newer);
  assert.ok(r.admit && r.replaced === older);
  assert.equal(reg.remove("k", older.sessionId), false);
  assert.equal(reg.get("k"), newer);
  assert.equal(reg.remove("k", newer.sessionId), true);
  assert.equal(reg.size, 0);
});

Deno.test("a different node behind the same key does not displace the live one", () => {
  const reg = new ConnectionRegistry<SessionInfo>("aa");
  const live: SessionInfo = { sessionId: 1, key: "k", direction: "inbound", nodeId: "bb" };
  const other: SessionInfo = { sessionId: 2, key: "k", direction: "inbound", nodeId: "cc" };
  reg.admit(live);
  const r = reg.admit(other);
  assert.equal(r.admit, false);
  assert.equal(reg.get("k"), live);
  assert.equal(reg.count("inbound"), 1);
});
