/**
 * Ledger calls shared by the ledger integration tests: a node's RPC target, accounts read in
 * batches, transfers submitted in batches.
 */
import { toHex } from "../../encoding/binary.ts";
import type { NodeProcess } from "./cluster.ts";
import { rpcBatch } from "./rpc_batch.ts";

export const TIME = 100_000_000n;

export interface Account {
  balanceUnits: string;
  nonce: number;
  height: number;
}

/** Where a node's RPC is and the data dir that holds its cookie. */
export function target(n: NodeProcess): { rpc: string; dataDir: string } {
  return { rpc: n.rpcUrl, dataDir: n.opts.dataDir };
}

export async function accounts(node: NodeProcess, addresses: string[]): Promise<Account[]> {
  const out: Account[] = [];
  for (let i = 0; i < addresses.length; i += 100) {
    out.push(
      ...await rpcBatch<Account>(
        target(node),
        addresses.slice(i, i + 100).map((a) => ["getaccount", [a]]),
      ),
    );
  }
  return out;
}

export async function submitAll(node: NodeProcess, txs: Uint8Array[]): Promise<void> {
  for (let i = 0; i < txs.length; i += 100) {
    await rpcBatch(
      target(node),
      txs.slice(i, i + 100).map((t) => ["sendrawtransaction", [toHex(t)]]),
    );
  }
}
