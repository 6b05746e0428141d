/**
 * The ledger's RPC methods: accounts, transfers, the mempool and fee estimates (docs/rpc.md).
 *
 * Owns: parameter checks and the JSON shape of accounts and transactions (amounts as TIME
 * decimal strings, base units in `...Units` fields).
 * Must never: hold or use a wallet key: transfers arrive signed (`sendrawtransaction`).
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { RpcError } from "../rpc/server.ts";
import type { MethodTable } from "../rpc/methods.ts";
import type { Chain } from "../chain/chain.ts";
import { blockHash } from "../chain/block.ts";
import type { MasternodeStateMachine } from "../state/state.ts";
import { addressOf, checkAddress, encodeAddress } from "../state/address.ts";
import { formatAmount } from "../state/amount.ts";
import {
  decodeTransaction,
  MAX_DECODED_TX_BYTES,
  transactionIdHex,
  transferSize,
} from "../state/transaction.ts";
import type { TxService } from "../mempool/service.ts";

/** RPC error code of a refused transfer (as Bitcoin's "transaction rejected"). */
export const TX_REFUSED = -26;
/** Transfers per `sendrawtransactions` call: well inside the 1 MiB request bound. */
const MAX_BATCH_SUBMIT = 1_000;
/**
 * Transfers of one `sendrawtransactions` call handed to the mempool per event-loop turn (each
 * costs a hash and a decode, ~30 µs): the loop is given back between slices, so a batch of
 * 1,000 never delays a consensus message by more than a few milliseconds.
 */
const SUBMIT_SLICE = 100;
/** Entries `listtransactions` returns at most. */
const MAX_HISTORY = 1_000;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export interface LedgerRpcDeps {
  chain: Chain;
  stateMachine: MasternodeStateMachine;
  txs: TxService;
}

/** A transaction as RPC shows it. */
export function transactionJson(network: string, bytes: Uint8Array) {
  const tx = decodeTransaction(bytes);
  let memo: string | null = null;
  try {
    memo = tx.memo.length ? utf8.decode(tx.memo) : "";
  } catch {
    // Not text: shown as hex only.
  }
  return {
    id: transactionIdHex(bytes),
    from: addressOf(network, tx.sender),
    to: encodeAddress(network, tx.recipient),
    amount: formatAmount(tx.amount),
    amountUnits: tx.amount.toString(),
    fee: formatAmount(tx.fee),
    feeUnits: tx.fee.toString(),
    nonce: tx.nonce,
    expiresAt: tx.expiresAt,
    memo,
    memoHex: toHex(tx.memo),
    size: bytes.length,
  };
}

export function ledgerRpcMethods(d: LedgerRpcDeps): MethodTable {
  const network = d.stateMachine.genesis.network;
  const none = [] as const;
  const addressParam = {
    name: "address",
    type: "string",
    required: true,
    description: "an address of this network",
  } as const;
  const checked = (a: unknown, name = "address"): string => {
    if (typeof a !== "string") throw new RpcError(-32602, `${name} must be a string`);
    const c = checkAddress(network, a);
    if (!c.ok) throw new RpcError(-32602, `${name} ${JSON.stringify(a)}: ${c.why}`);
    return a;
  };
  const rawTx = (hex: unknown, name: string): Uint8Array => {
    if (
      typeof hex !== "string" || hex.length > 2 * MAX_DECODED_TX_BYTES ||
      !/^([0-9a-f]{2})+$/.test(hex)
    ) {
      throw new RpcError(-32602, `${name} must be an encoded transaction in lowercase hex`);
    }
    return fromHex(hex);
  };
  return {
    getaccount: {
      category: "Ledger",
      summary: "Spendable balance, nonce, locked and unbonding collateral of an address, and " +
        "its transfers pending here.",
      params: [addressParam],
      result: "{address, balance, balanceUnits, nonce, nextNonce, pending, height, locked, " +
        "lockedUnits, unbonding}",
      handler: ({ address }) => {
        const a = checked(address);
        const account = d.stateMachine.accountOf(d.chain.stateView(), a);
        const pending = d.txs.pool.pendingOf(a);
        let nextNonce = account.nonce;
        for (const p of pending) if (p.tx.nonce === nextNonce) nextNonce++;
        return {
          address: a,
          balance: formatAmount(account.balance),
          balanceUnits: account.balance.toString(),
          nonce: account.nonce,
          // The nonce a new transfer should carry, counting the sender's pooled transfers.
          nextNonce,
          pending: pending.length,
          height: d.chain.tip().height,
          // Collateral: never spendable while locked; unbonding entries become spendable in
          // the block of their release height.
          locked: formatAmount(account.locked),
          lockedUnits: account.locked.toString(),
          unbonding: account.unbonding.map((u) => ({
            nodeId: u.nodeId,
            amount: formatAmount(u.amount),
            amountUnits: u.amount.toString(),
            releaseHeight: u.releaseHeight,
          })),
        };
      },
    },
    sendrawtransaction: {
      category: "Ledger",
      summary: "Submit a signed transfer: verified, pooled and relayed.",
      params: [{
        name: "hex",
        type: "string",
        required: true,
        description: "the encoded transfer in lowercase hex",
      }],
      result: "{id, status}",
      handler: async ({ hex }) => {
        const o = await d.txs.submit(rawTx(hex, "hex"), null);
        if (o.status === "refused") {
          throw new RpcError(TX_REFUSED, `transaction refused: ${o.reason}: ${o.detail}`);
        }
        return { id: o.id, status: o.status };
      },
    },
    sendrawtransactions: {
      category: "Ledger",
      summary: "Submit up to 1,000 signed transfers at once; one outcome each.",
      params: [{
        name: "hexes",
        type: "array",
        required: true,
        description: "encoded transfers in lowercase hex",
      }],
      result: "array of {id, status[, reason, detail]}",
      handler: async ({ hexes }) => {
        if (!Array.isArray(hexes) || hexes.length > MAX_BATCH_SUBMIT) {
          throw new RpcError(
            -32602,
            `hexes must be an array of at most ${MAX_BATCH_SUBMIT} transactions`,
          );
        }
        // Over the admission budget: one refusal for the call, before hashing or decoding any
        // of its transfers, so a flooder that retries at once costs a JSON parse per call.
        if (d.txs.busy) {
          throw new RpcError(
            TX_REFUSED,
            "transaction refused: busy: node over its admission budget",
          );
        }
        const bytes = hexes.map((hex, i) => rawTx(hex, `hexes[${i}]`));
        // Submitted in slices, all awaited together: their signatures share verify batches.
        const pending = [];
        for (let i = 0; i < bytes.length; i += SUBMIT_SLICE) {
          if (i > 0) await new Promise((r) => setTimeout(r, 0));
          pending.push(...bytes.slice(i, i + SUBMIT_SLICE).map((b) => d.txs.submit(b, null)));
        }
        const outcomes = await Promise.all(pending);
        return outcomes.map((o) =>
          o.status === "refused"
            ? { id: o.id, status: o.status, reason: o.reason, detail: o.detail }
            : { id: o.id, status: o.status }
        );
      },
    },
    gettransaction: {
      category: "Ledger",
      summary: "A transfer pending here or included in a block, with its confirmations.",
      params: [{ name: "id", type: "string", required: true, description: "64-char hex id" }],
      result: "transaction object with status pending or confirmed",
      handler: ({ id }) => {
        if (typeof id !== "string" || !/^[0-9a-f]{64}$/.test(id)) {
          throw new RpcError(-32602, "id must be a 64-char lowercase hex transaction id");
        }
        const pooled = d.txs.pool.get(id);
        if (pooled) return { ...transactionJson(network, pooled.bytes), status: "pending" };
        const height = d.chain.transactionHeight(fromHex(id));
        if (height === undefined) throw new RpcError(-5, "transaction not found");
        const cb = d.chain.getBlock(height);
        const bytes = cb?.block.transactions?.find((t) => transactionIdHex(t) === id);
        if (!cb || !bytes) throw new RpcError(-5, "transaction not found");
        return {
          ...transactionJson(network, bytes),
          status: "confirmed",
          height,
          blockHash: toHex(blockHash(cb.block.header)),
          confirmations: d.chain.tip().height - height + 1,
          time: cb.block.header.timestamp,
        };
      },
    },
    listtransactions: {
      category: "Ledger",
      summary: "Transfers from and to an address: pending ones, then included, newest first.",
      params: [addressParam, {
        name: "limit",
        type: "integer",
        required: false,
        description: "included transfers to list, 1 to 1,000 (default 100)",
      }],
      result: "array of transaction objects",
      handler: ({ address, limit = 100 }) => {
        const a = checked(address);
        if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) {
          throw new RpcError(-32602, "limit must be a whole number ≥ 1");
        }
        const tip = d.chain.tip().height;
        const pending = d.txs.pool.pendingOf(a).map((p) => ({
          ...transactionJson(network, p.bytes),
          status: "pending",
        }));
        const confirmed = d.chain.transactionsOf(a, Math.min(limit, MAX_HISTORY)).map((t) => {
          const id = toHex(t.id);
          const bytes = d.chain.getBlock(t.height)?.block.transactions?.find((b) =>
            transactionIdHex(b) === id
          );
          return {
            ...(bytes ? transactionJson(network, bytes) : { id }),
            status: "confirmed",
            height: t.height,
            confirmations: tip - t.height + 1,
          };
        });
        return [...pending, ...confirmed];
      },
    },
    getrawmempool: {
      category: "Ledger",
      summary: "Ids of the transfers in the mempool.",
      params: none,
      result: "array of hex ids",
      handler: () => [...d.txs.pool.entries()].map((e) => e.id),
    },
    getmempoolinfo: {
      category: "Ledger",
      summary: "Mempool size and bounds, and the fee rules of the chain.",
      params: none,
      result: "{size, bytes, maxBytes, maxPerSender, minFeePerByteUnits, maxBlockBytes}",
      handler: () => ({
        size: d.txs.pool.size,
        bytes: d.txs.pool.bytes,
        maxBytes: d.txs.pool.maxBytes,
        maxPerSender: d.txs.pool.maxPerSender,
        minFeePerByteUnits: d.stateMachine.ledger.minFeePerByte.toString(),
        maxBlockBytes: d.stateMachine.ledger.maxBlockBytes,
      }),
    },
    estimatefee: {
      category: "Ledger",
      summary: "The fee a transfer needs to get into the next block.",
      params: [{
        name: "memoBytes",
        type: "integer",
        required: false,
        description: "memo length, 0 to 80 (default 0)",
      }],
      result: "{feePerByteUnits, fee, feeUnits, size}",
      handler: ({ memoBytes = 0 }) => {
        if (
          typeof memoBytes !== "number" || !Number.isInteger(memoBytes) || memoBytes < 0 ||
          memoBytes > 80
        ) {
          throw new RpcError(-32602, "memoBytes must be a whole number from 0 to 80");
        }
        const perByte = d.txs.estimateFeePerByte();
        const fee = perByte * BigInt(transferSize(memoBytes));
        return {
          feePerByteUnits: perByte.toString(),
          fee: formatAmount(fee),
          feeUnits: fee.toString(),
          size: transferSize(memoBytes),
        };
      },
    },
  };
}
