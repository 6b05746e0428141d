/**
 * The I/O shell of consensus/vote_gossip.ts: feeds it the votes and `haveVotes` announcements
 * peers send, flushes our announcements and the held relays on timers, and sends them.
 *
 * Owns: those two timers and the `haveVotes` subscription.
 * Must never: delay a vote it does not handle (another height, a non-voter: the caller
 * broadcasts those at once), leave a timer running after `stop`, or trust an announcement for
 * anything but skipping a send.
 */
import type { Vote } from "../chain/block.ts";
import type { NetworkApi } from "../network/api.ts";
import { ANNOUNCE_DELAY_MS, VoteGossip } from "./vote_gossip.ts";

export class VoteRelay {
  readonly #gossip = new VoteGossip();
  readonly #net: NetworkApi;
  readonly #now: () => number;
  #announceTimer: ReturnType<typeof setTimeout> | undefined;
  #dueTimer: ReturnType<typeof setTimeout> | undefined;
  #dueAt: number | null = null;
  #stopped = false;
  /** Votes sent as relays (each to one peer), for tests and the bench. */
  relayed = 0;

  constructor(net: NetworkApi, now: () => number) {
    this.#net = net;
    this.#now = now;
  }

  start(): void {
    this.#net.onMessage("haveVotes", (from, m) => this.#gossip.peerAnnounced(from, m));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#announceTimer);
    clearTimeout(this.#dueTimer);
  }

  /** A new height with its voting set (hex ids in set order). */
  startHeight(height: number, voters: readonly string[]): void {
    this.#gossip.startHeight(height, voters);
  }

  /** Every vote a peer sends, before any check: that peer has it. */
  received(from: string, vote: Vote): void {
    this.#gossip.peerSent(from, vote);
  }

  /** We broadcast `vote` ourselves: every connected peer has it now. */
  broadcasted(vote: Vote): void {
    if (!this.#gossip.handles(vote)) return;
    this.#gossip.sentTo(this.#net.peers().map((p) => p.key), vote);
    this.#gossip.accept(vote, null, this.#now());
    this.#schedule();
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

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#announceTimer === undefined) {
      this.#announceTimer = setTimeout(() => {
        this.#announceTimer = undefined;
        for (const a of this.#gossip.takeAnnouncements()) {
          this.#net.broadcast({ kind: "haveVotes", ...a });
        }
      }, ANNOUNCE_DELAY_MS);
    }
    const due = this.#gossip.nextDue();
    if (due === null || (this.#dueAt !== null && this.#dueAt <= due)) return;
    clearTimeout(this.#dueTimer);
    this.#dueAt = due;
    this.#dueTimer = setTimeout(() => this.#flushDue(), Math.max(0, due - this.#now()));
  }

  #flushDue(): void {
    this.#dueAt = null;
    this.#dueTimer = undefined;
    if (this.#stopped) return;
    const peers = this.#net.peers().map((p) => ({ key: p.key, nodeId: p.nodeId }));
    for (const { peer, vote } of this.#gossip.takeDue(this.#now(), peers)) {
      if (this.#net.send(peer, { kind: "vote", vote })) this.relayed++;
    }
    this.#schedule();
  }
}
