/**
 * How the wallet reaches its node: one JSON-RPC call at a time over HTTP.
 *
 * Owns: the tiny `WalletRpc` interface the wallet commands use, and a fetch-based client for
 * the node's `--rpc` address. Kept this small so it can be swapped for the shared RPC client
 * (cookie authentication) without touching the commands.
 * Must never: send a private key: only signed transactions and public queries go out.
 */

export interface WalletRpc {
  call(method: string, params?: unknown[] | Record<string, unknown>): Promise<unknown>;
}

export class WalletRpcError extends Error {
  constructor(message: string, readonly code?: number) {
    super(message);
    this.name = "WalletRpcError";
  }
}

/** Time to wait for one RPC answer: the node answers in milliseconds unless it is down. */
const CALL_TIMEOUT_MS = 30_000;

/** A client for the node at `url` ("http://127.0.0.1:24101"). */
export function httpWalletRpc(url: string): WalletRpc {
  let nextId = 1;
  return {
    async call(method, params = []) {
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
      } catch (e) {
        throw new WalletRpcError(`cannot reach the node at ${url}: ${(e as Error).message}`);
      }
      const text = await res.text();
      let body: { result?: unknown; error?: { code: number; message: string } };
      try {
        body = JSON.parse(text);
      } catch {
        throw new WalletRpcError(
          `the node at ${url} answered HTTP ${res.status}: ${text.slice(0, 200)}`,
        );
      }
      if (body.error) throw new WalletRpcError(body.error.message, body.error.code);
      return body.result;
    },
  };
}
