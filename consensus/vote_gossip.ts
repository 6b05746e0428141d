/**
 * Vote relay that sends each vote only to the peers that lack it.
 *
 * Why: every validator sends its own votes to all its peers, and masternodes keep a connection
 * to every other voting masternode, so on the normal full mesh every peer already has a vote we
 * received. Relaying each first-seen vote at once to all peers made every node receive every
 * vote from every other node: n³ messages per height for n validators, each decoded and checked
 * (at 50 masternodes about 4,800 vote messages per node per height, docs/benchmarks.md). The
 * relay is still needed when a link is missing, so it is not dropped, only held back:
 *
 *  - a node tells its peers which votes it has (`haveVotes`: a bitmap over the height's voting
 *    set, per round and vote type), coalesced over `ANNOUNCE_DELAY_MS`;
 *  - a vote it accepted is relayed after `RELAY_HOLD_MS`, and only to peers that, by then, have
 *    not shown they have it: not the peer it came from, no peer that sent it to us or announced
 *    it, not its signer, and never twice to one peer;
 *  - a node also tells its peers which voters it is connected to itself (`voterLinks`: a bitmap
 *    over the voting set), sent when the set or its connections change. A vote is never relayed
 *    to a peer connected to its signer: the signer sends it its votes itself. That rule does not
 *    depend on timing, so on a full mesh no vote is relayed however late announcements are (on a
 *    loaded 25-node devnet most relays went out because announcements came after the hold, and
 *    because a node that had decided no longer announced the votes it still received). For the
 *    same reason a node announces to such peers only the votes of signers it is not connected to:
 *    nobody would relay it the others. When a peer reports a link gone, the votes and proposals
 *    of that signer we accepted at this height are sent to it at once, so a vote lost with the
 *    link still arrives. A peer that never sent its links (an older node) is treated as
 *    connected to nobody: it gets every announcement and relay as before.
 *
 * Owns: per height, what we have, what each peer is known to have, what we sent to whom, the
 * held relays, and which voters each peer and we are connected to. Pure: the shell passes the clock and the connected peers, and does the sending.
 * Bounded: state is per height and reset at the next; rounds beyond `MAX_TRACKED_ROUNDS` of
 * the highest round we hold a vote in are ignored; a bitmap is at most one bit per voter.
 * Must never: decide anything (an announcement only saves a send; a lying peer can at worst not
 * get a vote from us, as if the link were missing), or hold a relay past its due time.
 */
import { toHex } from "../encoding/binary.ts";
import type { Proposal, Vote, VoteType } from "../chain/block.ts";

/**
 * Collecting announcements turns the votes a node accepts in one round step into a bitmap or two
 * per peer instead of one per vote. At 10 ms a loaded 10-node devnet sent about as many
 * announcements as the duplicate votes they saved, and each node used more CPU per height than
 * before; at 50 ms CPU was back at par (docs/benchmarks.md). It must stay well below the hold.
 */
export const ANNOUNCE_DELAY_MS = 50;
/**
 * How long an accepted vote waits before it is relayed to peers that have not announced it.
 * Long enough for the peers' announcements to arrive on a loaded machine (event loop delays of
 * tens of ms with 50 processes on 2 cores), short beside the 1 s prevote and precommit
 * timeouts: only a peer that lacks a link pays it, once per missing hop.
 */
export const RELAY_HOLD_MS = 150;
/** Rounds above the highest one we hold a vote in that a peer's announcement may describe. */
export const MAX_TRACKED_ROUNDS = 4;

/** Proposals kept per height for re-sending over a link that replaces a lost one. */
export const MAX_KEPT_PROPOSALS = 8;

export interface GossipPeer {
  /** Registry key, as `NetworkApi.send` takes it. */
  key: string;
  /** Hex node id. */
  nodeId: string;
}

/** One (round, type) of announcements: which voters' votes someone has. */
export interface HaveVotes {
  height: number;
  round: number;
  type: VoteType;
  bitmap: Uint8Array;
}

/** Which voters of the set with `setHash` (hex) the sender is connected to (bit per voter). */
export interface VoterLinks {
  setHash: string;
  bitmap: Uint8Array;
}

/** Our announcements of one flush: all we have, and the part peers that know our links need. */
export interface Announcements {
  /** For peers that never sent their links (older nodes): everything we accepted. */
  all: HaveVotes[];
  /** For peers that know our links: only the votes of signers we are not connected to. */
  unlinked: HaveVotes[];
}

interface HeldRelay {
  vote: Vote;
  slot: number;
  index: number;
  dueAt: number;
}

/** Slot of (round, type): type is 1 or 2 (VoteType), so two slots per round. */
const slotOf = (round: number, type: number) => round * 2 + (type - 1);

const bitSet = (bits: Uint8Array, i: number) => (bits[i >> 3] & (1 << (i & 7))) !== 0;

export class VoteGossip {
  #height = -1;
  #setHash = "";
  /** Hex id → index in the height's voting set. */
  #index = new Map<string, number>();
  #bitmapBytes = 0;
  #highestRound = 0;
  /** Our own bitmaps per slot. */
  readonly #have = new Map<number, Uint8Array>();
  /** Peer key → slot → bitmap of what the peer has (sent us, announced, or we sent it). */
  readonly #peerHas = new Map<string, Map<number, Uint8Array>>();
  readonly #dirty = new Set<number>();
  #held: HeldRelay[] = [];
  /** Every vote accepted at this height, by voter index: what a lost link may need again. */
  #accepted: Vote[][] = [];
  /** Proposals relayed at this height with their proposer's index. */
  #proposals: { index: number; proposal: Proposal }[] = [];
  /** Peer key → the last links it sent (any set: kept until it sends others or goes). */
  readonly #peerLinks = new Map<string, VoterLinks>();
  /** Our own links over the current set; null before the first height. */
  #selfLinks: Uint8Array | null = null;

  /**
   * Starts `height` with its voting set (hex ids, set order) and the set's hash (hex); the
   * height's votes and what peers were known to have are dropped, their links are kept.
   */
  startHeight(height: number, voters: readonly string[], setHash: string): void {
    if (height === this.#height) return;
    this.#height = height;
    if (setHash !== this.#setHash) this.#selfLinks = null;
    this.#setHash = setHash;
    this.#index = new Map(voters.map((id, i) => [id, i]));
    this.#bitmapBytes = Math.ceil(voters.length / 8);
    this.#highestRound = 0;
    this.#have.clear();
    this.#peerHas.clear();
    this.#dirty.clear();
    this.#held = [];
    this.#accepted = voters.map(() => []);
    this.#proposals = [];
  }

  get setHash(): string {
    return this.#setHash;
  }

  /** Index of a voter (hex id) in the current set, or undefined. */
  indexOf(nodeId: string): number | undefined {
    return this.#index.get(nodeId);
  }

  /**
   * Our links: the voters (hex ids, ourselves included) we are connected to now. Returns the
   * message to send when they changed since the last call (or the set did), else null.
   */
  setSelfLinks(connected: Iterable<string>): VoterLinks | null {
    if (this.#height < 0) return null;
    const bitmap = new Uint8Array(this.#bitmapBytes);
    for (const id of connected) {
      const i = this.#index.get(id);
      if (i !== undefined) bitmap[i >> 3] |= 1 << (i & 7);
    }
    const old = this.#selfLinks;
    this.#selfLinks = bitmap;
    if (old !== null && old.every((b, i) => b === bitmap[i])) return null;
    return { setHash: this.#setHash, bitmap: bitmap.slice() };
  }

  /** Our current links message, for a peer that just connected; null before a height. */
  selfLinks(): VoterLinks | null {
    return this.#selfLinks === null
      ? null
      : { setHash: this.#setHash, bitmap: this.#selfLinks.slice() };
  }

  /** Whether `peer` sent us its links (it is a node that relays by them). */
  knowsLinks(peer: string): boolean {
    return this.#peerLinks.has(peer);
  }

  /**
   * A peer told us which voters it is connected to. Returns what it must get at once: every
   * vote and proposal we accepted at this height from a signer it was connected to before and
   * is not now, and that it is not known to have (each marked as sent).
   */
  peerLinked(peer: string, links: VoterLinks): { votes: Vote[]; proposals: Proposal[] } {
    const before = this.#linksOf(peer);
    this.#peerLinks.set(peer, { setHash: links.setHash, bitmap: links.bitmap.slice() });
    const votes: Vote[] = [];
    const proposals: Proposal[] = [];
    if (before === null) return { votes, proposals };
    const after = this.#linksOf(peer);
    for (let i = 0; i < this.#accepted.length; i++) {
      if (!bitSet(before, i) || (after !== null && bitSet(after, i))) continue;
      for (const vote of this.#accepted[i]) {
        const slot = slotOf(vote.round, vote.type);
        if (this.#has(peer, slot, i)) continue;
        this.#mark(peer, slot, i);
        votes.push(vote);
      }
      for (const p of this.#proposals) if (p.index === i) proposals.push(p.proposal);
    }
    return { votes, proposals };
  }

  /**
   * What `signer` (hex id; our own id) accepted or proposed at this height and `peer` is not
   * known to have: sent to a peer that just connected, which will soon tell everyone it is
   * connected to us, so nobody relays our messages to it any more. Each vote is marked as sent.
   */
  ownFor(peer: string, signer: string): { votes: Vote[]; proposals: Proposal[] } {
    const votes: Vote[] = [];
    const index = this.#index.get(signer);
    if (index === undefined) return { votes, proposals: [] };
    for (const vote of this.#accepted[index] ?? []) {
      const slot = slotOf(vote.round, vote.type);
      if (this.#has(peer, slot, index)) continue;
      this.#mark(peer, slot, index);
      votes.push(vote);
    }
    const proposals = this.#proposals.filter((p) => p.index === index).map((p) => p.proposal);
    return { votes, proposals };
  }

  /** Our own proposal (`proposer`: our hex id), kept for peers that connect later. */
  keepProposal(proposal: Proposal, proposer: string): void {
    const index = this.#index.get(proposer);
    if (index === undefined || proposal.height !== this.#height) return;
    if (this.#proposals.length < MAX_KEPT_PROPOSALS) this.#proposals.push({ index, proposal });
  }

  /** A peer disconnected: its links are no longer known. */
  peerGone(peer: string): void {
    this.#peerLinks.delete(peer);
  }

  /**
   * A proposal by voter `proposer` (hex id) we accepted: the peers it must be relayed to, of
   * `peers`, are those not connected to its proposer (they get it from the proposer itself)
   * and not `from`. Kept for re-sending should a peer lose its link to the proposer.
   */
  proposalTargets(
    proposal: Proposal,
    proposer: string,
    from: string | null,
    peers: readonly GossipPeer[],
  ): string[] {
    const index = this.#index.get(proposer);
    if (index === undefined) return peers.filter((p) => p.key !== from).map((p) => p.key);
    if (this.#proposals.length < MAX_KEPT_PROPOSALS) this.#proposals.push({ index, proposal });
    return peers.filter((p) =>
      p.key !== from && p.nodeId !== proposer && !this.#linked(p.key, index)
    ).map((p) => p.key);
  }

  get height(): number {
    return this.#height;
  }

  /** Whether a vote can go through this relay (its height, a voter); else relay it at once. */
  handles(vote: Vote): boolean {
    return vote.height === this.#height && this.#index.has(toHex(vote.validator));
  }

  /** A peer sent us `vote` (any copy, valid or not yet checked): it has it. */
  peerSent(peer: string, vote: Vote): void {
    if (vote.height !== this.#height || vote.round > this.#highestRound + MAX_TRACKED_ROUNDS) {
      return;
    }
    const index = this.#index.get(toHex(vote.validator));
    if (index !== undefined) this.#mark(peer, slotOf(vote.round, vote.type), index);
  }

  /** A peer announced what it has. Announcements for other heights or sizes are ignored. */
  peerAnnounced(peer: string, a: HaveVotes): void {
    if (a.height !== this.#height || a.bitmap.length !== this.#bitmapBytes) return;
    if (a.round > this.#highestRound + MAX_TRACKED_ROUNDS) return;
    const bits = this.#peerBitmap(peer, slotOf(a.round, a.type));
    for (let i = 0; i < bits.length; i++) bits[i] |= a.bitmap[i];
  }

  /** We sent `vote` ourselves to `peers` (our own vote, or a resend): they have it. */
  sentTo(peers: readonly string[], vote: Vote): void {
    for (const p of peers) this.peerSent(p, vote);
  }

  /**
   * We accepted `vote` (verified, first sight) from `from` (null: our own): we have it, it is
   * announced at the next flush, and relayed to whoever still lacks it at `now + RELAY_HOLD_MS`.
   * False when we already had a vote of that voter there: this one conflicts with it, and a
   * bitmap cannot tell the two apart, so the caller relays it to everyone at once as before
   * (a proof of lock that counts an equivocator must reach nodes that saw its other vote).
   */
  accept(vote: Vote, from: string | null, now: number): boolean {
    const index = this.#index.get(toHex(vote.validator));
    if (vote.height !== this.#height || index === undefined) return false;
    const slot = slotOf(vote.round, vote.type);
    const have = this.#bitmap(this.#have, slot);
    if ((have[index >> 3] & (1 << (index & 7))) !== 0) return false;
    this.#highestRound = Math.max(this.#highestRound, vote.round);
    have[index >> 3] |= 1 << (index & 7);
    this.#dirty.add(slot);
    if (from !== null) this.#mark(from, slot, index);
    this.#held.push({ vote, slot, index, dueAt: now + RELAY_HOLD_MS });
    this.#accepted[index].push(vote);
    return true;
  }

  /**
   * Our bitmaps that changed since the last call: all of them for peers that do not know our
   * links, and for the others only the bits of signers we are not connected to (empty ones
   * left out).
   */
  takeAnnouncements(): Announcements {
    const all: HaveVotes[] = [];
    const unlinked: HaveVotes[] = [];
    for (const slot of this.#dirty) {
      const bitmap = this.#have.get(slot)!.slice();
      const round = slot >> 1;
      const type = ((slot & 1) + 1) as VoteType;
      all.push({ height: this.#height, round, type, bitmap });
      const self = this.#selfLinks;
      const rest = self === null ? bitmap : bitmap.map((b, i) => b & ~self[i]);
      if (rest.some((b) => b !== 0)) {
        unlinked.push({ height: this.#height, round, type, bitmap: rest });
      }
    }
    this.#dirty.clear();
    return { all, unlinked };
  }

  /** When the earliest held relay is due; null when none is held. */
  nextDue(): number | null {
    return this.#held.length === 0 ? null : this.#held[0].dueAt;
  }

  /**
   * The relays due at `now`: each held vote to each connected peer that is not known to have
   * it and is not its signer. Every returned (vote, peer) is marked, so it is never sent twice.
   */
  takeDue(now: number, peers: readonly GossipPeer[]): { peer: string; vote: Vote }[] {
    const out: { peer: string; vote: Vote }[] = [];
    let done = 0;
    // Held in acceptance order with one hold time, so due times are in order too.
    for (; done < this.#held.length && this.#held[done].dueAt <= now; done++) {
      const { vote, slot, index } = this.#held[done];
      const signer = toHex(vote.validator);
      for (const p of peers) {
        if (p.nodeId === signer || this.#has(p.key, slot, index)) continue;
        if (this.#linked(p.key, index)) continue;
        this.#mark(p.key, slot, index);
        out.push({ peer: p.key, vote });
      }
    }
    if (done > 0) this.#held = this.#held.slice(done);
    return out;
  }

  /** The peer's links over the current set, or null when it sent none for this set. */
  #linksOf(peer: string): Uint8Array | null {
    const links = this.#peerLinks.get(peer);
    if (links === undefined || links.setHash !== this.#setHash) return null;
    return links.bitmap.length === this.#bitmapBytes ? links.bitmap : null;
  }

  /** The peer said it is connected to voter `index` of the current set. */
  #linked(peer: string, index: number): boolean {
    const links = this.#linksOf(peer);
    return links !== null && bitSet(links, index);
  }

  #has(peer: string, slot: number, index: number): boolean {
    const bits = this.#peerHas.get(peer)?.get(slot);
    return bits !== undefined && (bits[index >> 3] & (1 << (index & 7))) !== 0;
  }

  #mark(peer: string, slot: number, index: number): void {
    this.#peerBitmap(peer, slot)[index >> 3] |= 1 << (index & 7);
  }

  #peerBitmap(peer: string, slot: number): Uint8Array {
    let slots = this.#peerHas.get(peer);
    if (slots === undefined) {
      slots = new Map();
      this.#peerHas.set(peer, slots);
    }
    return this.#bitmap(slots, slot);
  }

  #bitmap(slots: Map<number, Uint8Array>, slot: number): Uint8Array {
    let bits = slots.get(slot);
    if (bits === undefined) {
      bits = new Uint8Array(this.#bitmapBytes);
      slots.set(slot, bits);
    }
    return bits;
  }
}
