/**
 * How the wallet reaches its node: one JSON-RPC call at a time over HTTP.
 *
 * Owns: the tiny `WalletRpc` interface the wallet commands use, and its implementation over
 * the shared RPC client (node/rpc_client.ts: the node's cookie in the data dir).
 * Must never: send a private key: only signed transactions and public queries go out.
 */

import {
  authorizationFor,
  callRpc,
  NodeUnreachableError,
  RpcCallError,
  RpcHttpError,
} from "../node/rpc_client.ts";

export interface WalletRpc {
  call(method: string, params?: unknown[] | Record<string, unknown>): Promise<unknown>;
}

export class WalletRpcError extends Error {
  constructor(message: string, readonly code?: number) {
    super(message);
    this.name = "WalletRpcError";
  }
}

/** A client for the node at `url` ("http://127.0.0.1:24101"), logging in with its cookie. */
export function httpWalletRpc(url: string, cookieFile: string): WalletRpc {
  return {
    async call(method, params = []) {
      const auth = await authorizationFor({ url, cookieFile, user: null, password: null });
      try {
        return await callRpc(url, auth.header, method, params);
      } catch (e) {
        if (e instanceof RpcCallError) throw new WalletRpcError(e.message, e.code);
        if (e instanceof NodeUnreachableError || e instanceof RpcHttpError) {
          throw new WalletRpcError(e.message);
        }
        throw e;
      }
    },
  };
}
