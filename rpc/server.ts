/**
 * The HTTP shell of the operator interface: JSON-RPC 2.0 at `POST /`, Prometheus text at
 * `GET /metrics`, and a liveness answer at `GET /health`, served by `Deno.serve`.
 *
 * Owns: routing, HTTP status codes, the request body bound (enforced while reading, before any
 * parsing), the content-type rule and the concurrency bound. JSON-RPC itself is rpc/jsonrpc.ts.
 * Must never: hold node state of its own, read more than `maxBodyBytes` of a body, or send an
 * exception's message or stack to a client (those go to the log).
 */
import { getLogger } from "@logtape/logtape";
import { handleJsonRpc, RpcErrorCode, type RpcMethods, toJson } from "./jsonrpc.ts";

export { RpcError, RpcErrorCode, type RpcMethods, type RpcParams } from "./jsonrpc.ts";

/** Largest request body: a 100-call batch of small calls is a few KiB; 1 MiB is generous. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * JSON-RPC requests handled at once. Calls are quick reads of local state, so more than this
 * means a runaway script; it gets 503 rather than piling up work on the event loop.
 */
export const DEFAULT_MAX_CONCURRENT = 32;
/** The content type Prometheus asks for (text exposition format 0.0.4). */
const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
const JSON_CONTENT_TYPE = "application/json";

const log = getLogger(["timenode", "rpc"]);

export interface HealthReport {
  ok: boolean;
  [key: string]: unknown;
}

export interface RpcServerOptions {
  hostname: string;
  port: number;
  methods: RpcMethods;
  /** The Prometheus text of all metrics, rendered at scrape time. */
  metrics: () => string;
  /** 200 when `ok`, 503 otherwise; the whole report is the JSON body. */
  health: () => HealthReport;
  /** Aborting it stops the server, like `shutdown()`. */
  signal?: AbortSignal;
  maxBodyBytes?: number;
  maxBatch?: number;
  maxConcurrent?: number;
}

export interface RpcServer {
  /** The bound address; with port 0, the port the OS picked. */
  readonly addr: { hostname: string; port: number };
  /** Stops accepting, lets in-flight requests finish, and resolves once the server is closed. */
  shutdown(): Promise<void>;
}

/** Binds and starts serving. Throws (with the address in the message) when it cannot bind. */
export function startRpcServer(opts: RpcServerOptions): RpcServer {
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxConcurrent = opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  let inFlight = 0;

  const handleRpc = async (req: Request): Promise<Response> => {
    if (!isJsonContentType(req.headers.get("content-type"))) {
      return rpcTransportError(415, "content-type must be application/json");
    }
    if (inFlight >= maxConcurrent) {
      await req.body?.cancel();
      return rpcTransportError(503, "too many concurrent requests", { "retry-after": "1" });
    }
    inFlight++;
    try {
      const bytes = await readBodyBounded(req, maxBodyBytes);
      if (bytes === null) {
        return rpcTransportError(413, `request body larger than ${maxBodyBytes} bytes`);
      }
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        return jsonResponse(
          200,
          toJson(rpcError(RpcErrorCode.ParseError, "parse error: body is not UTF-8")),
        );
      }
      const out = await handleJsonRpc(text, opts.methods, {
        maxBatch: opts.maxBatch,
        onInternalError: (method, error) =>
          log.error("RPC method {method} failed: {error}", { method, error }),
      });
      return out === null ? new Response(null, { status: 204 }) : jsonResponse(200, out);
    } finally {
      inFlight--;
    }
  };

  const handleMetrics = (req: Request): Response => {
    let text: string;
    try {
      text = opts.metrics();
    } catch (error) {
      log.error("metrics rendering failed: {error}", { error });
      return plainResponse(500, "metrics unavailable\n");
    }
    return new Response(req.method === "HEAD" ? null : text, {
      status: 200,
      headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  };

  const handleHealth = (req: Request): Response => {
    let report: HealthReport;
    try {
      report = opts.health();
    } catch (error) {
      log.error("health check failed: {error}", { error });
      report = { ok: false, error: "health check failed" };
    }
    const status = report.ok === true ? 200 : 503;
    let body: string;
    try {
      body = toJson(report);
    } catch (error) {
      log.error("health report not serializable: {error}", { error });
      body = toJson({ ok: report.ok === true });
    }
    return jsonResponse(status, req.method === "HEAD" ? null : body);
  };

  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    let response: Response;
    if (path === "/") {
      response = req.method === "POST" ? await handleRpc(req) : methodNotAllowed("POST");
    } else if (path === "/metrics") {
      response = isGetOrHead(req) ? handleMetrics(req) : methodNotAllowed("GET, HEAD");
    } else if (path === "/health") {
      response = isGetOrHead(req) ? handleHealth(req) : methodNotAllowed("GET, HEAD");
    } else {
      response = plainResponse(404, "not found\n");
    }
    log.trace("{httpMethod} {path} {status}", {
      httpMethod: req.method,
      path: path.slice(0, 100),
      status: response.status,
    });
    return response;
  };

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: opts.hostname,
      port: opts.port,
      signal: opts.signal,
      onListen: (addr) =>
        log.debug("RPC listening on {address}", { address: `${addr.hostname}:${addr.port}` }),
      onError: (error) => {
        log.error("RPC request failed: {error}", { error });
        return plainResponse(500, "internal error\n");
      },
    }, handler);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot start RPC server on ${opts.hostname}:${opts.port}: ${reason}`, {
      cause: e,
    });
  }

  let stopping: Promise<void> | null = null;
  return {
    addr: { hostname: server.addr.hostname, port: server.addr.port },
    shutdown() {
      stopping ??= (opts.signal?.aborted ? Promise.resolve() : server.shutdown())
        .then(() => server.finished);
      return stopping;
    },
  };
}

/**
 * Reads at most `max` bytes. Returns null as soon as the body is known to be larger, from the
 * Content-Length header or from counting a chunked body, without buffering the excess.
 */
async function readBodyBounded(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await req.body?.cancel();
    return null;
  }
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Requiring application/json makes a browser send a CORS preflight, which this server never
 * approves, so a web page cannot fire calls at a node's RPC port on the operator's machine.
 */
function isJsonContentType(value: string | null): boolean {
  return value !== null && value.split(";")[0].trim().toLowerCase() === JSON_CONTENT_TYPE;
}

function isGetOrHead(req: Request): boolean {
  return req.method === "GET" || req.method === "HEAD";
}

function rpcError(code: number, message: string) {
  return { jsonrpc: "2.0", id: null, error: { code, message } };
}

/** A request refused before JSON-RPC ran: an HTTP error status with a JSON-RPC error body. */
function rpcTransportError(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  const body = toJson(rpcError(RpcErrorCode.InvalidRequest, message));
  const response = jsonResponse(status, body);
  for (const [k, v] of Object.entries(headers)) response.headers.set(k, v);
  return response;
}

function jsonResponse(status: number, body: string | null): Response {
  return new Response(body, {
    status,
    headers: { "content-type": JSON_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

function plainResponse(status: number, text: string, headers: Record<string, string> = {}) {
  return new Response(text, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function methodNotAllowed(allow: string): Response {
  return plainResponse(405, "method not allowed\n", { allow });
}
