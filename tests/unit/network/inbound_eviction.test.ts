import assert from "node:assert/strict";
import { type EvictionCandidate, selectInboundToEvict } from "../../../network/inbound_eviction.ts";
import { admitInbound, type OpenInbound } from "../../../network/inbound_admission.ts";
import { banPrefix, LOOPBACK_NETGROUP, netgroup } from "../../../network/netgroup.ts";

const rankByName = { netgroupRank: (g: string) => g.charCodeAt(g.length - 1) };

function peer(id: string, group: string, connectedAt: number, rtt: number | null = 50) {
  return { id, netgroup: group, connectedAt, minRttMs: rtt, isValidator: false };
}

Deno.test("netgroup: IPv4 /16, IPv6 /32, loopback apart, names apart", () => {
  assert.equal(netgroup("203.0.113.7"), netgroup("203.0.200.1"));
  assert.notEqual(netgroup("203.0.113.7"), netgroup("203.1.113.7"));
  assert.equal(netgroup("2001:db8:1::1"), netgroup("2001:db8:ffff::2"));
  assert.notEqual(netgroup("2001:db8::1"), netgroup("2001:db9::1"));
  assert.equal(netgroup("::ffff:203.0.113.7"), netgroup("203.0.1.1"));
  assert.equal(netgroup("127.0.0.1"), LOOPBACK_NETGROUP);
  assert.equal(netgroup("::1"), LOOPBACK_NETGROUP);
  assert.notEqual(netgroup("example.org"), netgroup("203.0.113.7"));
});

Deno.test("banPrefix: an IPv6 host is its /64; IPv4 and loopback are exact", () => {
  assert.equal(banPrefix("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(banPrefix("2001:db8:1:2::9"), banPrefix("2001:db8:1:2:ffff::1"));
  assert.notEqual(banPrefix("2001:db8:1:2::9"), banPrefix("2001:db8:1:3::9"));
  assert.equal(banPrefix("203.0.113.7"), "203.0.113.7");
  assert.equal(banPrefix("::1"), "::1");
  assert.equal(banPrefix("127.0.0.1:9000"), null);
});

Deno.test("admission: the handshake budget is small, per IP, and loopback shares only the total", () => {
  const limits = { maxHandshaking: 4, maxHandshakingPerIp: 2, maxInboundPerNetgroup: 3 };
  const open: OpenInbound[] = [
    { ip: "198.51.100.1", handshaking: true },
    { ip: "198.51.100.1", handshaking: true },
  ];
  assert.deepEqual(admitInbound("198.51.100.1", open, limits), {
    admit: false,
    reason: "handshake-budget-ip",
  });
  assert.deepEqual(admitInbound("198.52.0.1", open, limits), { admit: true });
  // Ready peers do not spend the handshake budget.
  const ready = Array.from({ length: 50 }, (_, i) => ({ ip: `10.${i}.0.1`, handshaking: false }));
  assert.deepEqual(admitInbound("192.0.2.9", ready, limits), { admit: true });
  // The netgroup cap counts handshaking and ready sockets alike.
  const group: OpenInbound[] = [
    { ip: "203.0.1.1", handshaking: false },
    { ip: "203.0.2.2", handshaking: false },
    { ip: "203.0.3.3", handshaking: true },
  ];
  assert.deepEqual(admitInbound("203.0.9.9", group, limits), {
    admit: false,
    reason: "netgroup-full",
  });
  // Loopback: no per-IP or netgroup rule, but the total still applies.
  const local = Array.from({ length: 3 }, () => ({ ip: "127.0.0.1", handshaking: true }));
  assert.deepEqual(admitInbound("127.0.0.1", local, limits), { admit: true });
  local.push({ ip: "127.0.0.1", handshaking: true });
  assert.deepEqual(admitInbound("127.0.0.1", local, limits), {
    admit: false,
    reason: "handshake-budget",
  });
});

Deno.test("eviction: validators are never evicted; all protected means nobody", () => {
  const validators = Array.from({ length: 20 }, (_, i) => ({
    ...peer(`v${i}`, "4:1.1", i),
    isValidator: true,
  }));
  assert.equal(selectInboundToEvict(validators, rankByName), null);
  assert.equal(selectInboundToEvict([], rankByName), null);
});

Deno.test("eviction: the crowded netgroup loses its youngest; fast, old and diverse peers stay", () => {
  const honest: EvictionCandidate[] = [];
  // Twelve honest peers in distinct netgroups, connected long ago, some with low RTT.
  for (let i = 0; i < 12; i++) honest.push(peer(`h${i}`, `4:${i}.${i}`, i, 20 + i));
  // An attacker: twenty young, slow peers from one /16.
  const attacker = Array.from({ length: 20 }, (_, i) => peer(`a${i}`, "4:66.66", 100 + i, 400));
  const all = [...honest, ...attacker];
  const evicted = new Set<string>();
  let rest = all;
  for (let round = 0; round < 15; round++) {
    const v = selectInboundToEvict(rest, rankByName);
    assert.ok(v !== null);
    evicted.add(v);
    rest = rest.filter((c) => c.id !== v);
  }
  for (const id of evicted) assert.ok(id.startsWith("a"), `evicted honest ${id}`);
  // The first victim is the attacker's youngest.
  assert.equal(selectInboundToEvict(all, rankByName), "a19");
});

Deno.test("eviction: a tie in group size goes to the group whose youngest is youngest", () => {
  const c = [
    ...Array.from({ length: 14 }, (_, i) => peer(`p${i}`, `4:${i}.0`, i, 10)),
    peer("x1", "4:200.0", 50, 900),
    peer("x2", "4:200.0", 51, 900),
    peer("y1", "4:201.0", 60, 900),
    peer("y2", "4:201.0", 70, 900),
  ];
  assert.equal(
    selectInboundToEvict(c, { ...rankByName, protectByNetgroup: 0, protectByRtt: 0 }),
    "y2",
  );
});
