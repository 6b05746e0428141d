/**
 * JSON-RPC 2.0 to a node's RPC URL for tests and benchmarks: one batch of many calls, and the
 * authenticated POST that single calls (tests/support/cluster.ts `rpcCall`) share.
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
  const { status, body } = await postJsonRpc(
    node,
    calls.map(([method, params], id) => ({ jsonrpc: "2.0", id, method, params })),
    timeoutMs,
  );
  if (!Array.isArray(body)) {
    throw new Error(`RPC ${status}: ${JSON.stringify(body).slice(0, 200)}`);
  }
  const answers = body as { id: number; result?: T; error?: { message: string } }[];
  return answers.sort((a, b) => a.id - b.id).map((r) => {
    if (r.error) throw new Error(r.error.message);
    return r.result as T;
  });
}

/** POSTs one JSON-RPC body (a call or a batch) with the node's cookie; the parsed answer. */
export async function postJsonRpc(
  node: { rpc: string; dataDir: string },
  request: unknown,
  timeoutMs: number,
): Promise<{ status: number; body: unknown }> {
  const authorization = await cookieAuthorization(node.dataDir);
  const res = await fetch(node.rpc, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: await res.json() };
}
