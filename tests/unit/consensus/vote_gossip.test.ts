/**
 * Vote gossip: a vote goes to each peer at most once and only to peers not known to have it or
 * to be connected to its signer; on a full mesh nothing is relayed, however late announcements
 * are once links are known, and on sparse meshes, or when a link goes down, every vote still
 * reaches every node.
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
  type VoterLinks,
} from "../../../consensus/vote_gossip.ts";
import { TestRandom } from "../../support/random.ts";

const HEIGHT = 9;
const SET_HASH = "5e7";

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
  g.startHeight(HEIGHT, Array.from({ length: voters }, (_, i) => hexId(i)), SET_HASH);
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
  assert.deepEqual(g.takeAnnouncements(), { all: [], unlinked: [] });
  g.accept(vote(0), "p1", 0);
  g.accept(vote(9), "p1", 0);
  g.accept(vote(3, VoteType.Precommit, 1), null, 0);
  const a = g.takeAnnouncements();
  const expected = [
    { height: HEIGHT, round: 0, type: VoteType.Prevote, bitmap: Uint8Array.of(0b1, 0b10) },
    { height: HEIGHT, round: 1, type: VoteType.Precommit, bitmap: Uint8Array.of(0b1000, 0) },
  ];
  // Before our links are known, peers that relay by links get everything too.
  assert.deepEqual(a, { all: expected, unlinked: expected });
  assert.deepEqual(g.takeAnnouncements(), { all: [], unlinked: [] }, "nothing changed since");
});

Deno.test("vote gossip: peers that know our links hear only of signers we are not connected to", () => {
  const g = gossipOf(10);
  assert.deepEqual(g.setSelfLinks([hexId(0), hexId(3), hexId(9)]), {
    setHash: SET_HASH,
    bitmap: Uint8Array.of(0b1001, 0b10),
  });
  assert.equal(g.setSelfLinks([hexId(9), hexId(3), hexId(0)]), null, "unchanged");
  g.accept(vote(0), "p1", 0);
  g.accept(vote(9), "p1", 0);
  g.accept(vote(4), "p1", 0);
  g.accept(vote(3, VoteType.Precommit), null, 0);
  const { all, unlinked } = g.takeAnnouncements();
  assert.deepEqual(all.map((a) => [...a.bitmap]), [[0b10001, 0b10], [0b1000, 0]]);
  // Only voter 4's prevote: the precommit slot holds linked signers only and is left out.
  assert.deepEqual(unlinked, [
    { height: HEIGHT, round: 0, type: VoteType.Prevote, bitmap: Uint8Array.of(0b10000, 0) },
  ]);
});

Deno.test("vote gossip: no relay to a peer connected to the signer; a lost link gets the votes at once", () => {
  const g = gossipOf(6);
  const peers = [1, 2, 3, 4, 5].map(peer);
  const links = (...voters: number[]): VoterLinks => {
    const bitmap = new Uint8Array(1);
    for (const v of voters) bitmap[0] |= 1 << v;
    return { setHash: SET_HASH, bitmap };
  };
  assert.equal(g.knowsLinks("p3"), false);
  assert.deepEqual(g.peerLinked("p3", links(0, 1, 3)), { votes: [], proposals: [] });
  assert.deepEqual(g.peerLinked("p4", links(1, 4)), { votes: [], proposals: [] });
  g.peerLinked("p5", { setHash: "other set", bitmap: Uint8Array.of(0xff) });
  assert.equal(g.knowsLinks("p3"), true);
  g.accept(vote(1), "p2", 0);
  g.accept(vote(0), "p2", 0);
  const sent = g.takeDue(RELAY_HOLD_MS, peers).map((s) => `${s.vote.validator[0]}>${s.peer}`);
  // p3 and p4 are connected to voter 1, p3 to voter 0; p5's links are for another set, and p1
  // (voter 1 itself) sent none.
  assert.deepEqual(sent.sort(), ["0>p1", "0>p4", "0>p5", "1>p5"]);
  // p3 loses its link to voter 1: it gets voter 1's vote now, but not voter 0's again.
  const lost = g.peerLinked("p3", links(0, 3));
  assert.deepEqual(lost.votes.map((v) => v.validator[0]), [1]);
  assert.deepEqual(g.peerLinked("p3", links(3)).votes.map((v) => v.validator[0]), [0]);
  assert.deepEqual(g.peerLinked("p3", links()).votes, [], "each vote once");
  // A peer that goes is connected to nobody we know of again.
  g.peerGone("p4");
  assert.equal(g.knowsLinks("p4"), false);
});

Deno.test("vote gossip: a peer that connects later gets our own votes and proposal of the height", () => {
  const g = gossipOf(6);
  const proposal = { height: HEIGHT, round: 0 } as unknown as Parameters<
    VoteGossip["keepProposal"]
  >[0];
  g.keepProposal(proposal, hexId(2));
  g.keepProposal({ ...proposal, height: HEIGHT + 1 }, hexId(2));
  g.sentTo(["p1"], vote(2));
  g.accept(vote(2), null, 0);
  g.accept(vote(2, VoteType.Precommit), null, 0);
  g.accept(vote(4), "p4", 0);
  // p1 had our prevote already; p5 connects now and has nothing.
  const forP1 = g.ownFor("p1", hexId(2));
  assert.deepEqual(forP1.votes.map((v) => v.type), [VoteType.Precommit]);
  assert.deepEqual(forP1.proposals, [proposal]);
  assert.deepEqual(g.ownFor("p5", hexId(2)).votes.length, 2);
  assert.deepEqual(g.ownFor("p5", hexId(2)).votes, [], "once");
  assert.deepEqual(g.ownFor("p5", "stranger"), { votes: [], proposals: [] });
});

Deno.test("vote gossip: a proposal goes to the peers not connected to its proposer, again on a lost link", () => {
  const g = gossipOf(6);
  const peers = [1, 2, 3, 4, 5].map(peer);
  const proposal = { height: HEIGHT, round: 0 } as unknown as Parameters<
    VoteGossip["proposalTargets"]
  >[0];
  g.peerLinked("p3", { setHash: SET_HASH, bitmap: Uint8Array.of(0b1111) });
  g.peerLinked("p4", { setHash: SET_HASH, bitmap: Uint8Array.of(0b0001) });
  // Proposer 2 sent it to us through p1; p2 is the proposer, p3 is connected to it.
  assert.deepEqual(g.proposalTargets(proposal, hexId(2), "p1", peers), ["p4", "p5"]);
  assert.deepEqual(g.peerLinked("p3", { setHash: SET_HASH, bitmap: Uint8Array.of(0b1011) }), {
    votes: [],
    proposals: [proposal],
  });
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
function simulate(
  n: number,
  links: [number, number][],
  latency: number,
  opts: { voterLinks?: boolean; announceDelay?: number; drop?: [number, number] } = {},
) {
  const announceDelay = opts.announceDelay ?? ANNOUNCE_DELAY_MS;
  const peersOf = Array.from({ length: n }, () => [] as number[]);
  for (const [a, b] of links) {
    peersOf[a].push(b);
    peersOf[b].push(a);
  }
  const gossip = Array.from({ length: n }, () => gossipOf(n));
  const accepted = Array.from({ length: n }, () => new Set<number>());
  // Each node tells its peers which voters it is connected to before any vote.
  const linksOf = (i: number) => [...peersOf[i], i].map(hexId);
  if (opts.voterLinks) {
    for (let i = 0; i < n; i++) {
      const mine = gossip[i].setSelfLinks(linksOf(i))!;
      for (const p of peersOf[i]) gossip[p].peerLinked(`p${i}`, mine);
    }
  }
  const sentTo = new Set<string>();
  const queue: Event[] = [];
  let sends = 0;
  let announcements = 0;
  const sendVote = (from: number, to: number, v: Vote, now: number) => {
    const key = `${from}>${to}:${v.validator[0]}`;
    assert.ok(!sentTo.has(key), `vote ${v.validator[0]} sent ${from} → ${to} twice`);
    sentTo.add(key);
    sends++;
    // The dropped link loses whatever is on it when it goes (here: the signers' own votes).
    const [a, b] = opts.drop ?? [-1, -1];
    if ((from === a && to === b) || (from === b && to === a)) return;
    queue.push({ at: now + latency, kind: "vote", to, from, vote: v });
  };
  const announceAt = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const own = vote(i);
    accepted[i].add(i);
    gossip[i].sentTo(peersOf[i].map((p) => `p${p}`), own);
    gossip[i].accept(own, null, 0);
    announceAt.set(i, announceDelay);
    for (const p of peersOf[i]) sendVote(i, p, own, 0);
  }
  if (opts.drop) {
    // The link goes down as the votes leave; both ends tell their other peers at once.
    const [a, b] = opts.drop;
    peersOf[a].splice(peersOf[a].indexOf(b), 1);
    peersOf[b].splice(peersOf[b].indexOf(a), 1);
    for (const i of [a, b]) {
      const mine = gossip[i].setSelfLinks(linksOf(i));
      for (const p of peersOf[i]) {
        for (const v of gossip[p].peerLinked(`p${i}`, mine!).votes) sendVote(p, i, v, 0);
      }
    }
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
      const { all, unlinked } = gossip[i].takeAnnouncements();
      for (const p of peersOf[i]) {
        for (const have of opts.voterLinks ? unlinked : all) {
          announcements++;
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
      if (!announceAt.has(e.to)) announceAt.set(e.to, now + announceDelay);
    }
    for (let i = 0; i < n; i++) {
      const peers = peersOf[i].map(peer);
      for (const { peer: to, vote: v } of gossip[i].takeDue(now, peers)) {
        sendVote(i, Number(to.slice(1)), v, now);
      }
    }
  }
  return { accepted, sends, announcements };
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
    for (const voterLinks of [false, true]) {
      const { accepted } = simulate(n, links, latency, { voterLinks });
      for (const [i, a] of accepted.entries()) {
        assert.equal(
          a.size,
          n,
          `trial ${trial}, links ${voterLinks}: node ${i} of ${n} has ${a.size} votes`,
        );
      }
    }
  }
});

Deno.test("vote gossip: with links known, a full mesh relays and announces nothing, however slow", () => {
  const n = 12;
  // Announcements far later than the hold: without links every node would relay everything.
  const slow = { announceDelay: RELAY_HOLD_MS * 4 };
  const without = simulate(n, fullMesh(n), 5, slow);
  assert.ok(without.sends > n * (n - 1), "the timing rule alone relays when announcements lag");
  const { accepted, sends, announcements } = simulate(n, fullMesh(n), 5, {
    ...slow,
    voterLinks: true,
  });
  for (const a of accepted) assert.equal(a.size, n);
  assert.equal(sends, n * (n - 1));
  assert.equal(announcements, 0);
});

Deno.test("vote gossip: a link that goes down with votes on it: every vote still reaches every node", () => {
  const random = new TestRandom(7);
  for (let trial = 0; trial < 20; trial++) {
    const n = random.int(4, 16);
    const a = random.int(0, n - 1);
    const b = (a + random.int(1, n - 1)) % n;
    const { accepted } = simulate(n, fullMesh(n), 5, { voterLinks: true, drop: [a, b] });
    for (const [i, got] of accepted.entries()) {
      assert.equal(got.size, n, `trial ${trial}: link ${a}-${b} dropped, node ${i} lacks votes`);
    }
  }
});
