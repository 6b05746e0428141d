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
 *    it, not its signer, and never twice to one peer.
 *
 * Owns: per height, what we have, what each peer is known to have, what we sent to whom, and the
 * held relays. Pure: the shell passes the clock and the connected peers, and does the sending.
 * Bounded: state is per height and reset at the next; rounds beyond `MAX_TRACKED_ROUNDS` of
 * the highest round we hold a vote in are ignored; a bitmap is at most one bit per voter.
 * Must never: decide anything (an announcement only saves a send; a lying peer can at worst not
 * get a vote from us, as if the link were missing), or hold a relay past its due time.
 */
import { toHex } from "../encoding/binary.ts";
import type { Vote, VoteType } from "../chain/block.ts";

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

interface HeldRelay {
  vote: Vote;
  slot: number;
  index: number;
  dueAt: number;
}

/** Slot of (round, type): type is 1 or 2 (VoteType), so two slots per round. */
const slotOf = (round: number, type: number) => round * 2 + (type - 1);

export class VoteGossip {
  #height = -1;
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

  /** Starts `height` with its voting set (hex ids, set order); all state of before is dropped. */
  startHeight(height: number, voters: readonly string[]): void {
    if (height === this.#height) return;
    this.#height = height;
    this.#index = new Map(voters.map((id, i) => [id, i]));
    this.#bitmapBytes = Math.ceil(voters.length / 8);
    this.#highestRound = 0;
    this.#have.clear();
    this.#peerHas.clear();
    this.#dirty.clear();
    this.#held = [];
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
    return true;
  }

  /** Our bitmaps that changed since the last call, to announce to every peer. */
  takeAnnouncements(): HaveVotes[] {
    const out: HaveVotes[] = [];
    for (const slot of this.#dirty) {
      out.push({
        height: this.#height,
        round: slot >> 1,
        type: ((slot & 1) + 1) as VoteType,
        bitmap: this.#have.get(slot)!.slice(),
      });
    }
    this.#dirty.clear();
    return out;
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
        this.#mark(p.key, slot, index);
        out.push({ peer: p.key, vote });
      }
    }
    if (done > 0) this.#held = this.#held.slice(done);
    return out;
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
