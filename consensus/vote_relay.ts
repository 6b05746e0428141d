/**
 * The I/O shell of consensus/vote_gossip.ts: feeds it the votes, `haveVotes` announcements and
 * `voterLinks` peers send and the connections coming and going, flushes our announcements, our
 * links and the held relays on timers, and sends them; relays proposals to the peers not
 * connected to their proposer.
 *
 * Owns: those timers and the `haveVotes`/`voterLinks` subscriptions.
 * Must never: delay a vote it does not handle (another height, a non-voter: the caller
 * broadcasts those at once), leave a timer running after `stop`, or trust an announcement or a
 * peer's links for anything but skipping a send.
 */
import type { Proposal, Vote } from "../chain/block.ts";
import { fromHex, toHex } from "../encoding/binary.ts";
import type { NetworkApi } from "../network/api.ts";
import { ANNOUNCE_DELAY_MS, VoteGossip, type VoterLinks } from "./vote_gossip.ts";

export class VoteRelay {
  readonly #gossip = new VoteGossip();
  readonly #net: NetworkApi;
  readonly #now: () => number;
  readonly #selfId: string;
  #announceTimer: ReturnType<typeof setTimeout> | undefined;
  #linksTimer: ReturnType<typeof setTimeout> | undefined;
  #dueTimer: ReturnType<typeof setTimeout> | undefined;
  #dueAt: number | null = null;
  #stopped = false;
  /** Peers connected since our links were last sent: they get them at the next links flush. */
  readonly #newPeers = new Set<string>();
  /** Votes sent as relays (each to one peer), for tests and the bench. */
  relayed = 0;

  constructor(net: NetworkApi, now: () => number, selfId: string) {
    this.#net = net;
    this.#now = now;
    this.#selfId = selfId;
  }

  start(): void {
    this.#net.onMessage("haveVotes", (from, m) => this.#gossip.peerAnnounced(from, m));
    this.#net.onMessage("voterLinks", (from, m) => this.#onPeerLinks(from, m));
    this.#net.onPeerReady((p) => {
      this.#newPeers.add(p.key);
      this.#scheduleLinks();
      // It will tell everyone it is connected to us, so nobody relays our messages to it: what
      // we signed at this height before the connection existed goes to it now.
      const own = this.#gossip.ownFor(p.key, this.#selfId);
      for (const proposal of own.proposals) this.#net.send(p.key, { kind: "proposal", proposal });
      for (const vote of own.votes) this.#net.send(p.key, { kind: "vote", vote });
    });
    this.#net.onPeerGone((key) => {
      this.#gossip.peerGone(key);
      this.#newPeers.delete(key);
      this.#scheduleLinks();
    });
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#announceTimer);
    clearTimeout(this.#linksTimer);
    clearTimeout(this.#dueTimer);
  }

  /** A new height with its voting set (hex ids in set order) and the set's hash. */
  startHeight(height: number, voters: readonly string[], setHash: Uint8Array): void {
    // Relays still held go now, to whoever lacks them: a late precommit accepted just before
    // the next height must still reach the peers without a link to its signer.
    if (height !== this.#gossip.height) this.#sendDue(Infinity);
    this.#gossip.startHeight(height, voters, toHex(setHash));
    this.#flushLinks();
  }

  /** Every vote a peer sends, before any check: that peer has it. */
  received(from: string, vote: Vote): void {
    this.#gossip.peerSent(from, vote);
  }

  /** We broadcast `vote` ourselves: every connected peer has it now. */
  broadcasted(vote: Vote): void {
    if (!this.#gossip.handles(vote)) return;
    this.#gossip.sentTo(this.#net.peerIds().map((p) => p.key), vote);
    this.#gossip.accept(vote, null, this.#now());
    this.#schedule();
  }

  /** We broadcast our own `proposal`: kept for peers that connect during this height. */
  proposed(proposal: Proposal): void {
    this.#gossip.keepProposal(proposal, this.#selfId);
  }

  /**
   * Takes over the relay of a vote the engine accepted from `from`. False when the vote is not
   * one this relay handles (another height, a non-voter, a vote conflicting with one we have):
   * the caller relays it at once to every peer as before.
   */
  relay(vote: Vote, from: string): boolean {
    if (!this.#gossip.accept(vote, from, this.#now())) return false;
    this.#schedule();
    return true;
  }

  /**
   * `relay` without the hold: the vote (and any relay still held) goes at once to the peers
   * that lack it. For late precommits: the next proposer collects them for at most one block
   * interval after the commit, shorter than the hold plus a loaded machine's delays at short
   * intervals, and a precommit that misses it counts as a missed block for its signer.
   */
  relayNow(vote: Vote, from: string): boolean {
    if (!this.#gossip.accept(vote, from, this.#now())) return false;
    this.#sendDue(Infinity);
    return true;
  }

  /**
   * Relays a first-seen proposal of this height from `from` to the peers not connected to its
   * proposer (hex id): those get it from the proposer itself. False when the proposal is of
   * another height: the caller relays it to every peer as before.
   */
  relayProposal(proposal: Proposal, proposer: string, from: string | null): boolean {
    if (proposal.height !== this.#gossip.height) return false;
    const peers = this.#net.peerIds();
    for (const key of this.#gossip.proposalTargets(proposal, proposer, from, peers)) {
      this.#net.send(key, { kind: "proposal", proposal });
    }
    return true;
  }

  #onPeerLinks(from: string, m: { setHash: Uint8Array; bitmap: Uint8Array }): void {
    const lost = this.#gossip.peerLinked(from, { setHash: toHex(m.setHash), bitmap: m.bitmap });
    for (const proposal of lost.proposals) this.#net.send(from, { kind: "proposal", proposal });
    for (const vote of lost.votes) {
      if (this.#net.send(from, { kind: "vote", vote })) this.relayed++;
    }
  }

  #scheduleLinks(): void {
    if (this.#stopped || this.#linksTimer !== undefined) return;
    this.#linksTimer = setTimeout(() => {
      this.#linksTimer = undefined;
      this.#flushLinks();
    }, ANNOUNCE_DELAY_MS);
  }

  /** Sends our links to every peer when they changed, else to the peers new since last time. */
  #flushLinks(): void {
    if (this.#stopped) return;
    const ids = this.#net.peerIds().map((p) => p.nodeId);
    ids.push(this.#selfId);
    const changed = this.#gossip.setSelfLinks(ids);
    const links: VoterLinks | null = changed ?? this.#gossip.selfLinks();
    if (links === null) return;
    const message = {
      kind: "voterLinks" as const,
      setHash: fromHex(links.setHash),
      bitmap: links.bitmap,
    };
    if (changed !== null) this.#net.broadcast(message);
    else for (const key of this.#newPeers) this.#net.send(key, message);
    this.#newPeers.clear();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#announceTimer === undefined) {
      this.#announceTimer = setTimeout(() => {
        this.#announceTimer = undefined;
        this.#flushAnnouncements();
      }, ANNOUNCE_DELAY_MS);
    }
    const due = this.#gossip.nextDue();
    if (due === null || (this.#dueAt !== null && this.#dueAt <= due)) return;
    clearTimeout(this.#dueTimer);
    this.#dueAt = due;
    this.#dueTimer = setTimeout(() => this.#flushDue(), Math.max(0, due - this.#now()));
  }

  /** Everything to peers that relay by announcements only; the rest to the others. */
  #flushAnnouncements(): void {
    const { all, unlinked } = this.#gossip.takeAnnouncements();
    if (all.length === 0) return;
    for (const p of this.#net.peerIds()) {
      for (const a of this.#gossip.knowsLinks(p.key) ? unlinked : all) {
        this.#net.send(p.key, { kind: "haveVotes", ...a });
      }
    }
  }

  #flushDue(): void {
    this.#dueAt = null;
    this.#dueTimer = undefined;
    if (this.#stopped) return;
    this.#sendDue(this.#now());
    this.#schedule();
  }

  #sendDue(now: number): void {
    if (this.#stopped) return;
    for (const { peer, vote } of this.#gossip.takeDue(now, this.#net.peerIds())) {
      if (this.#net.send(peer, { kind: "vote", vote })) this.relayed++;
    }
  }
}
