/**
 * The transaction shell: admission of transfers from RPC and peers, relay by announcement,
 * the mempool's life across blocks and restarts, and the transactions of the blocks we build.
 *
 * Owns: the admission pipeline (cheap stateless checks on the loop, signatures in the verify
 * workers in batches, then the pool against the tip), misbehavior charges for transactions
 * invalid at every state, the relay timers, persistence (`mempool.bin`) and ledger metrics.
 * Must never: verify a signature on the event loop, charge a peer for a nonce, expiry or
 * balance that differs at our tip, announce a transaction twice, or answer `getTxs` with
 * anything but pooled transactions.
 */
import { getLogger } from "@logtape/logtape";
import { fromHex, toHex } from "../encoding/binary.ts";
import { type Block, type CommittedBlock, transactionsOf } from "../chain/block.ts";
import type { ChainApi, ChainTip } from "../chain/api.ts";
import type { NetworkApi } from "../network/api.ts";
import type { LedgerMetrics } from "../metrics/definitions.ts";
import type { MasternodeStateMachine } from "../state/state.ts";
import type { Account } from "../state/accounts.ts";
import { addressOf, encodeAddress } from "../state/address.ts";
import {
  checkTxFormat,
  decodeTransactionOnce,
  STATELESS_REASONS,
  type Transaction,
  transactionIdHex,
  transactionIdsOf,
  TxInvalidError,
  type TxRejectReason,
} from "../state/transaction.ts";
import { Mempool, type MempoolOptions, type PoolEntry, type PoolRefusal } from "./pool.ts";
import { RELAY_LIMITS, TxRelay } from "./relay.ts";
import { loadMempool, MEMPOOL_FILE, saveMempool } from "./persist.ts";
import { Slicer } from "./slicer.ts";
import { TokenBucket } from "../network/rate_limit.ts";

const log = getLogger(["timenode", "mempool"]);

/**
 * Points for a transaction invalid at every state (bad signature, malformed, wrong chain, memo,
 * fee below the genesis minimum): ten of them ban the peer (the ban threshold is 100).
 */
export const INVALID_TX_PENALTY = 10;
/** Transactions per verify-worker job: amortises the message cost, keeps each job short. */
const VERIFY_BATCH = 512;
/** Transactions per verify job of a proposal: a full proposal spreads over both workers. */
const PREPARE_BATCH = 128;
/** Verify jobs in flight at once: one per worker of the default pool of two. */
const MAX_VERIFY_IN_FLIGHT = 2;
/**
 * Transactions waiting for a verify worker (queued or in a job); beyond this, new submissions are
 * refused `busy` at once: a client learns quickly that the node is full instead of waiting behind
 * an unbounded queue. Only a restore (exempt from the rate budget) can come near it.
 */
const MAX_VERIFY_QUEUE = 4_096;
/**
 * Transfers this node admits per second (RPC and peers together; a restore is exempt), and its
 * burst; beyond it: `busy`, at once, before decoding. Every admitted transfer costs a signature
 * check in a worker (50 to 150 µs of a core here, by load) and a few hashes and decodes on the
 * loop, and is relayed to every validator, which admits it too; so this budget is what a flood
 * can make each node spend, and every validator admitting every transfer caps a network's
 * committed rate near it: it must sit above the rate the network should commit (1,000/s, issue
 * target). Measured 2026-11-28 on 2 cores shared by 4 validators (`deno task bench --only
 * ledger`, one 60 s run each, 1,250/s offered): 1,000/s with 2,000 per block committed 998/s
 * (not all included, p99 45 s); 1,500/s with 3,000 committed 1,221/s (all, p50 1.0 s, p99 2.0
 * s). Over-offered (3,000/s) both fell to about 650/s: four validators' budgets on two cores
 * admit more than the machine can commit. The flood test (3 validators) kept every height in
 * round 0 at 1,500/s.
 */
export const ADMISSION_LIMITS = { ratePerSec: 1_500, burst: 3_000 } as const;
/**
 * Transfers received from peers and not yet looked at (`txs` messages are handled in slices);
 * beyond this a peer's answer is dropped without penalty, as when we are over budget.
 */
const MAX_RELAYED_BACKLOG = 4_096;
/**
 * Ids whose signature was verified outside the pool (a proposal's transfers we had not seen):
 * enough for a few full blocks, so checking a proposal and committing it verify once.
 */
const MAX_VERIFIED_OUTSIDE_POOL = 100_000;
/**
 * Transfers this node puts in a block it proposes (a local policy, not a consensus rule). The next
 * height starts one block interval after a commit, so each validator's per-block work (verify the
 * proposal's unseen transfers, judge it, commit it, revalidate the mempool) adds to the interval:
 * the committed rate is at most this many per (interval + that work). Before the apply cache and
 * the per-block reuse of ids, Merkle root, decodings and accounts, a 1,000-transfer block cost
 * each validator 380 to 920 ms (load average 4 to 5) and the cap was 250 (250/s at most). After
 * them, on 2 cores shared by 4 validators at 1 s blocks: 2,000 filled its blocks at 1,250/s
 * offered (1,953 per block, 0.51 blocks/s, 998/s committed); 3,000 committed 1,221/s at 0.63
 * blocks/s with p99 2.0 s from submission (docs/benchmarks.md, "Ledger"). Larger blocks slow
 * heights further for little more: at ~0.5 ms of critical-path work per transfer on this machine,
 * the rate approaches 2,000/s only as heights grow without bound. 12,000 (2 MiB `maxBlockBytes`)
 * took longer than a round before the reuse.
 */
export const MAX_PROPOSAL_TRANSACTIONS = 3_000;
/** Proposals whose transfers were prepared, by payload root: a re-sent proposal costs nothing. */
const MAX_PREPARED_REMEMBERED = 8;
/** Accounts remembered for the current tip: the pool's senders many times over; cleared when full. */
const MAX_TIP_ACCOUNTS = 65_536;
/** How often the mempool is saved besides at shutdown. */
const SAVE_INTERVAL_MS = 60_000;

export type SubmitOutcome =
  | { id: string; status: "added" }
  | { id: string; status: "duplicate" }
  | {
    id: string;
    status: "refused";
    reason: TxRejectReason | PoolRefusal | "busy";
    detail: string;
  };

export interface TransactionVerifier {
  verifyTransactions(txs: readonly Uint8Array[]): Promise<boolean[]>;
}

export interface TxServiceOptions {
  network: NetworkApi;
  chain: ChainApi;
  stateMachine: MasternodeStateMachine;
  verifier: TransactionVerifier;
  metrics: LedgerMetrics;
  /** Where `mempool.bin` lives; null keeps the pool in memory only. */
  dataDir: string | null;
  pool?: MempoolOptions;
  now?: () => number;
}

interface Pending {
  entry: PoolEntry;
  from: string | null;
  source: string;
  resolve: (o: SubmitOutcome) => void;
}

export class TxService {
  readonly pool: Mempool;
  readonly #o: TxServiceOptions;
  readonly #relay = new TxRelay();
  readonly #now: () => number;
  readonly #queue: Pending[] = [];
  readonly #inflight = new Set<string>();
  readonly #verifiedOutside = new Set<string>();
  readonly #prepared = new Set<string>();
  #verifying = 0;
  /**
   * Accounts at the current tip, read once per block: every admission reads its sender's twice
   * (before and after the signature check), and the store decodes a copy on each read. Keyed by
   * the tip they were read at: another block subscriber may read before our own handler runs.
   */
  readonly #tipAccounts = new Map<string, Account>();
  #tipAccountsAt: ChainTip | null = null;
  /** Transfer work on the event loop, in slices that leave turns to consensus messages. */
  readonly #slicer = new Slicer();
  readonly #budget: TokenBucket;
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopped = false;
  #saving: Promise<void> = Promise.resolve();

  constructor(o: TxServiceOptions) {
    this.#o = o;
    this.pool = new Mempool(o.pool);
    this.#now = o.now ?? Date.now;
    this.#budget = new TokenBucket(ADMISSION_LIMITS, this.#now());
  }

  /** True when `id`'s signature was verified: pooled, or checked by the state machine. */
  has(id: string): boolean {
    return this.pool.has(id) || this.#verifiedOutside.has(id);
  }

  /** Remembers a signature the state machine verified (bounded, oldest forgotten first). */
  add(id: string): void {
    this.#verifiedOutside.add(id);
    if (this.#verifiedOutside.size > MAX_VERIFIED_OUTSIDE_POOL) {
      this.#verifiedOutside.delete(this.#verifiedOutside.values().next().value as string);
    }
  }

  async start(): Promise<void> {
    const net = this.#o.network;
    net.onMessage("txAnnounce", (from, m) => this.#onAnnounce(from, m.ids));
    net.onMessage("getTxs", (from, m) => this.#onGetTxs(from, m.ids));
    net.onMessage("txs", (from, m) => this.#onTxs(from, m.txs));
    net.onPeerGone((peer) => this.#relay.peerGone(peer));
    this.#o.chain.onBlockApplied((cb) => this.#onBlockApplied(cb));
    const m = this.#o.metrics;
    m.mempoolTransactions.collectFrom(() => this.pool.size);
    m.mempoolBytes.collectFrom(() => this.pool.bytes);
    this.#timers.push(setInterval(() => this.flushAnnouncements(), RELAY_LIMITS.announceDelayMs));
    if (this.#o.dataDir) {
      this.#timers.push(setInterval(() => this.#save(), SAVE_INTERVAL_MS));
      const { txs, error } = await loadMempool(this.#path());
      if (error) log.warn("ignoring unreadable {file}: {error}", { file: MEMPOOL_FILE, error });
      if (txs.length > 0) {
        const outcomes = await Promise.all(txs.map((t) => this.submit(t, null, "restore")));
        log.info("mempool restored: {added} of {total} transfers still valid", {
          added: outcomes.filter((o) => o.status === "added").length,
          total: txs.length,
        });
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#slicer.drain();
    for (const p of this.#queue.splice(0)) {
      p.resolve({ id: p.entry.id, status: "refused", reason: "busy", detail: "node is stopping" });
    }
    await this.#save();
  }

  /**
   * Admits a transfer: from RPC (`from` null) or a peer. Resolves once it is pooled or refused;
   * the signature is checked in a verify worker.
   */
  submit(
    bytes: Uint8Array,
    from: string | null,
    source = from ? "peer" : "rpc",
  ): Promise<SubmitOutcome> {
    const id = transactionIdHex(bytes);
    if (this.pool.has(id) || this.#inflight.has(id)) {
      return Promise.resolve({ id, status: "duplicate" });
    }
    // Refused before any further work: a flood costs one hash per transfer beyond the budget.
    const busy = this.#stopped ? "node is stopping" : source === "restore"
      ? null // our own saved pool, bounded by the file: never refused for load
      : this.#queue.length + this.#verifying * VERIFY_BATCH >= MAX_VERIFY_QUEUE
      ? "verify queue full"
      : !this.#budget.take(this.#now())
      ? `over the admission budget of ${ADMISSION_LIMITS.ratePerSec} transfers/s`
      : null;
    if (busy) {
      this.#o.metrics.txRejected.inc({ reason: "busy" });
      return Promise.resolve({ id, status: "refused", reason: "busy", detail: busy });
    }
    let tx: Transaction;
    try {
      tx = checkTxFormat(this.#o.stateMachine.txRules, bytes);
    } catch (e) {
      if (!(e instanceof TxInvalidError)) throw e;
      return Promise.resolve(this.#refused(id, from, e.reason, e.message));
    }
    const network = this.#o.stateMachine.genesis.network;
    const entry: PoolEntry = {
      id,
      bytes,
      tx,
      sender: addressOf(network, tx.sender),
      recipient: encodeAddress(network, tx.recipient),
    };
    // A local submission the pool would refuse at our tip costs no signature check (a client
    // re-offering stale or far-ahead nonces); `#admit` asks the pool again after the check. A
    // peer's transfer is checked first all the same: a forged signature must earn its penalty
    // even from a sender that holds nothing (docs/security.md#transfer-floods).
    const refusal = from !== null ? null : this.pool.precheck(
      entry,
      this.#tipAccount,
      this.#o.chain.tip().height + 1,
    );
    if (refusal) return Promise.resolve(this.#poolRefused(id, refusal));
    this.#inflight.add(id);
    return new Promise((resolve) => {
      this.#queue.push({ entry, from, source, resolve });
      this.#pump();
    });
  }

  /**
   * Verifies, in the workers, the signatures of a proposed block's transfers this node has not
   * verified yet, and remembers the good ones: applying the block then skips them. A bad one
   * is left for the state machine, which refuses the block at the first.
   */
  async prepareBlock(block: Block): Promise<void> {
    // The same proposal arrives again (re-sent each round, and once per peer): its transfers
    // were hashed and verified the first time.
    const root = toHex(block.header.payloadRoot);
    if (this.#prepared.has(root)) return;
    const txs = transactionsOf(block);
    // Hashed once here; judging and committing the same block object reuse the ids.
    const ids = transactionIdsOf(txs);
    const unknown = txs.flatMap((t, i) => this.has(ids[i]) ? [] : [{ t, id: ids[i] }]);
    if (unknown.length === 0 || this.#stopped) return;
    const chunks: { t: Uint8Array; id: string }[][] = [];
    for (let i = 0; i < unknown.length; i += PREPARE_BATCH) {
      chunks.push(unknown.slice(i, i + PREPARE_BATCH));
    }
    await Promise.all(chunks.map(async (chunk) => {
      const ok = await this.#o.verifier.verifyTransactions(chunk.map((c) => c.t));
      chunk.forEach((c, i) => {
        if (ok[i]) this.add(c.id);
      });
    }));
    this.#prepared.add(root);
    if (this.#prepared.size > MAX_PREPARED_REMEMBERED) {
      this.#prepared.delete(this.#prepared.values().next().value as string);
    }
  }

  /** Transfers for the block at the next height, within `maxBytes` of body. */
  selectForBlock(height: number, maxBytes: number): Uint8Array[] {
    return this.pool.select(
      this.#tipAccount,
      height,
      maxBytes,
      MAX_PROPOSAL_TRANSACTIONS,
    );
  }

  /**
   * Fee per byte that gets a transfer into the next block or two: the minimum while the pool
   * holds less than a block, else just above the rate at one block's depth.
   */
  estimateFeePerByte(): bigint {
    const min = this.#o.stateMachine.ledger.minFeePerByte;
    const budget = this.#o.stateMachine.ledger.maxBlockBytes;
    if (this.pool.bytes < budget) return min;
    const rates = [...this.pool.entries()]
      .map((e) => ({ rate: e.tx.fee / BigInt(e.bytes.length), size: e.bytes.length + 4 }))
      .sort((a, b) => (a.rate > b.rate ? -1 : a.rate < b.rate ? 1 : 0));
    let used = 0;
    for (const r of rates) {
      used += r.size;
      if (used >= budget) return r.rate + 1n > min ? r.rate + 1n : min;
    }
    return min;
  }

  // ---- admission ---------------------------------------------------------------------------

  readonly #tipAccount = (address: string): Account => {
    const tip = this.#o.chain.tip();
    if (tip !== this.#tipAccountsAt) {
      this.#tipAccounts.clear();
      this.#tipAccountsAt = tip;
    }
    let a = this.#tipAccounts.get(address);
    if (a === undefined) {
      if (this.#tipAccounts.size >= MAX_TIP_ACCOUNTS) this.#tipAccounts.clear();
      a = this.#o.stateMachine.accountOf(this.#o.chain.stateView(), address);
      this.#tipAccounts.set(address, a);
    }
    return a;
  };

  #pump(): void {
    while (this.#verifying < MAX_VERIFY_IN_FLIGHT && this.#queue.length > 0 && !this.#stopped) {
      const batch = this.#queue.splice(0, VERIFY_BATCH).filter((p) => {
        // A peer banned (or gone) meanwhile gets no more signature work: a flood of forged
        // transactions costs at most the batches queued before its ban took effect.
        if (p.from === null || this.#o.network.peer(p.from)) return true;
        this.#inflight.delete(p.entry.id);
        p.resolve({ id: p.entry.id, status: "refused", reason: "busy", detail: "peer is gone" });
        return false;
      });
      if (batch.length === 0) continue;
      this.#verifying++;
      this.#o.verifier.verifyTransactions(batch.map((p) => p.entry.bytes)).then(
        // Each admission later, in slices: a batch of 512 never holds the loop in one go.
        (ok) => batch.forEach((p, i) => this.#slicer.push(() => this.#admit(p, ok[i]))),
        (e) => {
          log.warn("transaction verify job failed: {error}", { error: (e as Error).message });
          for (const p of batch) {
            this.#inflight.delete(p.entry.id);
            p.resolve({
              id: p.entry.id,
              status: "refused",
              reason: "busy",
              detail: "verify failed",
            });
          }
        },
      ).finally(() =>
        // After this batch's admissions: a ban they cause stops the peer's next batch.
        this.#slicer.push(() => {
          this.#verifying--;
          this.#pump();
        })
      );
    }
  }

  #admit(p: Pending, signatureOk: boolean): void {
    const id = p.entry.id;
    this.#inflight.delete(id);
    if (!signatureOk) {
      p.resolve(this.#refused(id, p.from, "bad-signature", "the signature does not verify"));
      return;
    }
    const outcome = this.pool.add(
      p.entry,
      this.#tipAccount,
      this.#o.chain.tip().height + 1,
    );
    if (!outcome.added) {
      p.resolve(this.#poolRefused(id, outcome));
      return;
    }
    this.#relay.markSeen(id);
    this.#o.metrics.txAccepted.inc({ source: p.source });
    this.#relay.queueAnnounce(id, p.from);
    p.resolve({ id, status: "added" });
  }

  /** The pool's refusal: never a peer's fault, since the transfer may fit the tip it has. */
  #poolRefused(id: string, r: { reason: PoolRefusal; detail: string }): SubmitOutcome {
    this.#relay.markSeen(id);
    if (r.reason === "duplicate") return { id, status: "duplicate" };
    this.#o.metrics.txRejected.inc({ reason: r.reason });
    return { id, status: "refused", reason: r.reason, detail: r.detail };
  }

  #refused(
    id: string,
    from: string | null,
    reason: TxRejectReason,
    detail: string,
  ): SubmitOutcome {
    this.#relay.markSeen(id);
    this.#o.metrics.txRejected.inc({ reason });
    if (from && STATELESS_REASONS.has(reason)) {
      this.#o.network.penalize(from, INVALID_TX_PENALTY, "invalid-transaction", reason);
    }
    return { id, status: "refused", reason, detail };
  }

  // ---- relay -------------------------------------------------------------------------------

  /** True when a new transfer would be refused `busy` (RPC refuses a whole batch at once). */
  get busy(): boolean {
    return this.#busy();
  }

  /** True when new transfers would be refused `busy`: nothing worth requesting from peers. */
  #busy(): boolean {
    return this.#slicer.pending >= MAX_RELAYED_BACKLOG ||
      this.#queue.length + this.#verifying * VERIFY_BATCH >= MAX_VERIFY_QUEUE ||
      this.#budget.available(this.#now()) < 1;
  }

  #onAnnounce(from: string, ids: Uint8Array[]): void {
    // Over budget: request nothing; the announcer keeps the transfers and includes them itself.
    if (this.#busy()) return;
    const want = this.#relay.onAnnounce(
      from,
      ids.map(toHex).filter((id) => !this.pool.has(id) && !this.#inflight.has(id)),
      this.#now(),
    );
    if (want.length > 0) this.#o.network.send(from, { kind: "getTxs", ids: want.map(fromHex) });
  }

  #onGetTxs(from: string, ids: Uint8Array[]): void {
    if (!this.#relay.allow(from, ids.length, this.#now())) return;
    const txs: Uint8Array[] = [];
    for (const id of ids) {
      const e = this.pool.get(toHex(id));
      if (e) txs.push(e.bytes);
    }
    if (txs.length > 0) this.#o.network.send(from, { kind: "txs", txs });
  }

  #onTxs(from: string, txs: Uint8Array[]): void {
    // Looked at later, in slices: a message of 1,000 transfers never runs inside one dispatch,
    // so consensus messages behind it are handled first.
    if (this.#slicer.pending + txs.length > MAX_RELAYED_BACKLOG) {
      this.#o.metrics.txRejected.inc({ reason: "busy" }, txs.length);
      return; // dropped without penalty, like any transfer over our budget
    }
    for (const bytes of txs) {
      this.#slicer.push(() => {
        // Only what we asked this peer for: unsolicited transactions cost nothing to ignore.
        if (!this.#relay.takeRequested(from, transactionIdHex(bytes))) return;
        void this.submit(bytes, from);
      });
    }
  }

  /** Sends the queued announcements (a timer calls it every 100 ms; tests call it directly). */
  flushAnnouncements(): void {
    this.#relay.expire(this.#now());
    if (this.#relay.pendingAnnouncements === 0) return;
    for (const a of this.#relay.takeAnnouncements()) {
      // Only what is still pooled: a transfer included meanwhile needs no relay.
      const ids = a.ids.filter((id) => this.pool.has(id)).map(fromHex);
      if (ids.length > 0) {
        this.#o.network.broadcast({ kind: "txAnnounce", ids }, a.except ?? undefined);
      }
    }
  }

  // ---- blocks ------------------------------------------------------------------------------

  #onBlockApplied(cb: CommittedBlock): void {
    const txs = transactionsOf(cb.block);
    const m = this.#o.metrics;
    m.blockTransactions.observe(txs.length);
    // Hashed when the block was prepared and judged: the same list object.
    const ids = transactionIdsOf(txs);
    // The senders of the block's transfers: the only accounts a block without records lowers.
    const senders = new Set<string>();
    if (txs.length > 0) {
      let fees = 0n;
      const network = this.#o.stateMachine.genesis.network;
      txs.forEach((bytes, i) => {
        const id = ids[i];
        this.#relay.markSeen(id);
        const pooled = this.pool.get(id);
        const tx = pooled?.tx ?? decodeTransactionOnce(bytes);
        fees += tx.fee;
        senders.add(pooled?.sender ?? addressOf(network, tx.sender));
      });
      m.transactionsApplied.inc(undefined, txs.length);
      m.feesCollected.inc(undefined, Number(fees));
    }
    if (this.pool.size === 0) return;
    const dropped = this.pool.revalidate(
      ids,
      this.#tipAccount,
      cb.block.header.height + 1,
      // Records can lock a balance (a registration's collateral): then every sender is checked.
      cb.block.records.length === 0 ? senders : undefined,
    );
    if (dropped.length > 0) {
      log.debug("mempool dropped {n} transfers that no longer apply", { n: dropped.length });
    }
  }

  // ---- persistence -------------------------------------------------------------------------

  #path(): string {
    return `${this.#o.dataDir}/${MEMPOOL_FILE}`;
  }

  #save(): Promise<void> {
    if (!this.#o.dataDir) return Promise.resolve();
    // In nonce order per sender, so a restore admits each sender's transfers in order.
    const entries = [...this.pool.entries()].sort((a, b) =>
      a.sender < b.sender ? -1 : a.sender > b.sender ? 1 : a.tx.nonce - b.tx.nonce
    );
    const bytes = entries.map((e) => e.bytes);
    this.#saving = this.#saving.then(() => saveMempool(this.#path(), bytes)).catch((e) =>
      log.warn("cannot save {file}: {error}", { file: MEMPOOL_FILE, error: (e as Error).message })
    );
    return this.#saving;
  }
}
