/**
 * Vote gossip: a vote goes to each peer at most once and only to peers not known to have it;
 * on a full mesh nothing is relayed once announcements arrive, and on sparse meshes every vote
 * still reaches every node.
 */
import assert from "node:assert/strict";
import { toHex } from "../../../encoding/binary.ts";
import { type Vote, VoteType } from "../../../chain/block.ts";
import {
  ANNOUNCE_DELAY_MS,
  type GossipPeer,
  type HaveVotes,
  MAX_TRACKED_ROUNDS,
  RELAY_HOLD_MS,
  VoteGossip,
} from "../../../consensus/vote_gossip.ts";
import { TestRandom } from "../../support/random.ts";

const HEIGHT = 9;

/** Node ids: 32 bytes, the first one the index; hex as the gossip keys them. */
function nodeId(i: number): Uint8Array {
  const id = new Uint8Array(32);
  id[0] = i;
  return id;
}
const hexId = (i: number) => toHex(nodeId(i));

function vote(signer: number, type: VoteType = VoteType.Prevote, round = 0): Vote {
  return {
    type,
    height: HEIGHT,
    round,
    blockHash: new Uint8Array(32),
    validator: nodeId(signer),
    signature: new Uint8Array(64),
  };
}

const peer = (i: number): GossipPeer => ({ key: `p${i}`, nodeId: hexId(i) });

function gossipOf(voters: number): VoteGossip {
  const g = new VoteGossip();
  g.startHeight(HEIGHT, Array.from({ length: voters }, (_, i) => hexId(i)));
  return g;
}

Deno.test("vote gossip: relays after the hold, never to the sender, the signer or a peer that has it", () => {
  const g = gossipOf(6);
  const peers = [1, 2, 3, 4, 5].map(peer);
  g.peerSent("p3", vote(1)); // p3 sent us a copy too
  g.peerAnnounced("p4", {
    height: HEIGHT,
    round: 0,
    type: VoteType.Prevote,
    bitmap: Uint8Array.of(0b10),
  });
  g.accept(vote(1), "p2", 1_000);
  assert.deepEqual(g.takeDue(1_000 + RELAY_HOLD_MS - 1, peers), [], "held");
  assert.equal(g.nextDue(), 1_000 + RELAY_HOLD_MS);
  const sent = g.takeDue(1_000 + RELAY_HOLD_MS, peers).map((s) => s.peer);
  // p1 is the signer, p2 the sender, p3 sent it, p4 announced it: only p5 lacks it.
  assert.deepEqual(sent, ["p5"]);
  assert.equal(g.nextDue(), null);
  // A second vote of the same voter there conflicts: not ours to hold, the caller relays it.
  const conflicting = { ...vote(1), blockHash: new Uint8Array(32).fill(1) };
  assert.equal(g.accept(conflicting, "p3", 2_000), false);
  assert.deepEqual(g.takeDue(3_000, peers), []);
});

Deno.test("vote gossip: announcements carry what we accepted, once per change", () => {
  const g = gossipOf(10);
  assert.deepEqual(g.takeAnnouncements(), []);
  g.accept(vote(0), "p1", 0);
  g.accept(vote(9), "p1", 0);
  g.accept(vote(3, VoteType.Precommit, 1), null, 0);
  const a = g.takeAnnouncements();
  assert.deepEqual(a, [
    { height: HEIGHT, round: 0, type: VoteType.Prevote, bitmap: Uint8Array.of(0b1, 0b10) },
    { height: HEIGHT, round: 1, type: VoteType.Precommit, bitmap: Uint8Array.of(0b1000, 0) },
  ]);
  assert.deepEqual(g.takeAnnouncements(), [], "nothing changed since");
});

Deno.test("vote gossip: ignores other heights, set sizes, far rounds and strangers", () => {
  const g = gossipOf(6);
  const peers = [peer(1)];
  const bitmap = Uint8Array.of(0xff);
  g.peerAnnounced("p1", { height: HEIGHT + 1, round: 0, type: VoteType.Prevote, bitmap });
  g.peerAnnounced("p1", {
    height: HEIGHT,
    round: 0,
    type: VoteType.Prevote,
    bitmap: Uint8Array.of(0xff, 0xff),
  });
  g.peerAnnounced("p1", { height: HEIGHT, round: MAX_TRACKED_ROUNDS + 1, type: 1, bitmap });
  g.accept(vote(2), "p9", 0);
  g.accept(vote(2, VoteType.Prevote, MAX_TRACKED_ROUNDS + 1), "p9", 0);
  // None of the announcements counted: p1 gets both votes.
  assert.equal(g.takeDue(RELAY_HOLD_MS, peers).length, 2);
  const stranger = { ...vote(2), validator: new Uint8Array(32).fill(7) };
  assert.equal(g.handles(stranger), false);
  assert.equal(g.handles({ ...vote(2), height: HEIGHT + 1 }), false);
  assert.equal(g.handles(vote(2)), true);
});

// ---- a network of gossiping nodes ------------------------------------------------------------

type Event =
  | { at: number; kind: "vote"; to: number; from: number; vote: Vote }
  | { at: number; kind: "have"; to: number; from: number; have: HaveVotes };

/**
 * `n` validators on the undirected `links`; each signs one prevote and sends it to its peers.
 * Messages take `latency` ms; a node announces what it accepted ANNOUNCE_DELAY_MS later and
 * runs its due relays whenever time passes. Returns who accepted which vote and how many
 * vote messages were sent.
 */
function simulate(n: number, links: [number, number][], latency: number) {
  const peersOf = Array.from({ length: n }, () => [] as number[]);
  for (const [a, b] of links) {
    peersOf[a].push(b);
    peersOf[b].push(a);
  }
  const gossip = Array.from({ length: n }, () => gossipOf(n));
  const accepted = Array.from({ length: n }, () => new Set<number>());
  const sentTo = new Set<string>();
  const queue: Event[] = [];
  let sends = 0;
  const sendVote = (from: number, to: number, v: Vote, now: number) => {
    const key = `${from}>${to}:${v.validator[0]}`;
    assert.ok(!sentTo.has(key), `vote ${v.validator[0]} sent ${from} → ${to} twice`);
    sentTo.add(key);
    sends++;
    queue.push({ at: now + latency, kind: "vote", to, from, vote: v });
  };
  const announceAt = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const own = vote(i);
    accepted[i].add(i);
    gossip[i].sentTo(peersOf[i].map((p) => `p${p}`), own);
    gossip[i].accept(own, null, 0);
    announceAt.set(i, ANNOUNCE_DELAY_MS);
    for (const p of peersOf[i]) sendVote(i, p, own, 0);
  }
  let now = 0;
  for (let step = 0; step < 100_000; step++) {
    const nextEvent = Math.min(...queue.map((e) => e.at));
    const nextDue = Math.min(...gossip.map((g) => g.nextDue() ?? Infinity));
    const nextAnnounce = Math.min(...announceAt.values());
    now = Math.min(nextEvent, nextDue, nextAnnounce);
    if (now === Infinity) break;
    for (const [i, at] of [...announceAt]) {
      if (at > now) continue;
      announceAt.delete(i);
      for (const have of gossip[i].takeAnnouncements()) {
        for (const p of peersOf[i]) {
          queue.push({ at: now + latency, kind: "have", to: p, from: i, have });
        }
      }
    }
    for (const e of queue.filter((e) => e.at <= now)) {
      queue.splice(queue.indexOf(e), 1);
      const g = gossip[e.to];
      if (e.kind === "have") {
        g.peerAnnounced(`p${e.from}`, e.have);
        continue;
      }
      g.peerSent(`p${e.from}`, e.vote);
      const signer = e.vote.validator[0];
      if (accepted[e.to].has(signer)) continue;
      accepted[e.to].add(signer);
      g.accept(e.vote, `p${e.from}`, now);
      if (!announceAt.has(e.to)) announceAt.set(e.to, now + ANNOUNCE_DELAY_MS);
    }
    for (let i = 0; i < n; i++) {
      const peers = peersOf[i].map(peer);
      for (const { peer: to, vote: v } of gossip[i].takeDue(now, peers)) {
        sendVote(i, Number(to.slice(1)), v, now);
      }
    }
  }
  return { accepted, sends };
}

function fullMesh(n: number): [number, number][] {
  const links: [number, number][] = [];
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) links.push([a, b]);
  return links;
}

Deno.test("vote gossip: on a full mesh each vote crosses each link once, no relays", () => {
  const n = 12;
  const { accepted, sends } = simulate(n, fullMesh(n), 5);
  for (const a of accepted) assert.equal(a.size, n);
  // Only the signers' own sends: n × (n - 1). Flooding relays would add n × (n - 1) × (n - 2).
  assert.equal(sends, n * (n - 1));
});

Deno.test("vote gossip: every vote reaches every node on sparse and slow meshes", () => {
  const random = new TestRandom(12);
  for (let trial = 0; trial < 20; trial++) {
    const n = random.int(4, 20);
    // A random spanning tree keeps it connected; some extra random links on top.
    const links: [number, number][] = [];
    for (let i = 1; i < n; i++) links.push([i, random.int(0, i - 1)]);
    for (let k = random.int(0, n); k > 0; k--) {
      const a = random.int(0, n - 1);
      const b = random.int(0, n - 1);
      if (a !== b && !links.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) {
        links.push([a, b]);
      }
    }
    // Links slower than the hold: announcements come too late, so relays overlap; still once each.
    const latency = random.chance(0.5) ? 3 : RELAY_HOLD_MS * 2;
    const { accepted } = simulate(n, links, latency);
    for (const [i, a] of accepted.entries()) {
      assert.equal(a.size, n, `trial ${trial}: node ${i} of ${n} has ${a.size} votes`);
    }
  }
});
