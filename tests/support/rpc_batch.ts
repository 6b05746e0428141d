/**
 * One JSON-RPC 2.0 batch to a node's RPC URL, for tests and benchmarks that send many calls.
 *
 * Owns: the request shape (logged in with the node's cookie) and putting the answers back in
 * call order. Must never: retry.
 */
import { cookieAuthorization } from "../../node/rpc_client.ts";

/** Calls per batch the node accepts (rpc/server.ts). */
export const MAX_BATCH_CALLS = 100;

/**
 * Sends `calls` (at most 100) in one request and returns their results in order; a call that
 * failed throws with its message, as does an answer that is not a batch (e.g. HTTP 503).
 */
export async function rpcBatch<T>(
  node: { rpc: string; dataDir: string },
  calls: [string, unknown[]][],
  timeoutMs = 30_000,
): Promise<T[]> {
  const authorization = await cookieAuthorization(node.dataDir);
  const res = await fetch(node.rpc, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify(
      calls.map(([method, params], id) => ({ jsonrpc: "2.0", id, method, params })),
    ),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await res.json() as { id: number; result?: T; error?: { message: string } }[];
  if (!Array.isArray(body)) {
    throw new Error(`RPC ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
  }
  return body.sort((a, b) => a.id - b.id).map((r) => {
    if (r.error) throw new Error(r.error.message);
    return r.result as T;
  });
}
