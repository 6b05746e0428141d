/**
 * The HTTP shell of the operator interface: JSON-RPC at `POST /`, Prometheus text at
 * `GET /metrics`, and a liveness answer at `GET /health`, served by rpc/http1.ts.
 *
 * Owns: the order of the checks every request passes (Host, Origin, authentication with its
 * throttle, routing, content type, concurrency, body bound), HTTP status codes, and the
 * `/metrics` and `/health` responses. JSON-RPC itself is rpc/jsonrpc.ts; who may connect and
 * which Host names are ours is rpc/http_guard.ts; credentials are rpc/auth.ts.
 * Must never: hold node state of its own, run a method for an unauthenticated request, read
 * more than `maxBodyBytes` of a body, or send an exception's message or stack to a client
 * (those go to the log).
 */
import { getLogger } from "@logtape/logtape";
import { handleJsonRpc, RpcErrorCode, type RpcMethods, toJson } from "./jsonrpc.ts";
import { type Authenticator, FailedAuthThrottle } from "./auth.ts";
import { HostAllowList, IpAllowList } from "./http_guard.ts";
import { type HttpRequest, type HttpResponse, serveHttp } from "./http1.ts";

export { RpcError, RpcErrorCode, type RpcMethods, type RpcParams } from "./jsonrpc.ts";

/** Largest request body: a 100-call batch of small calls is a few KiB; 1 MiB is generous. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * JSON-RPC requests handled at once (after their body has arrived). Calls are quick reads of
 * local state, so more than this means a runaway script; it gets 503 rather than piling up work
 * on the event loop.
 */
export const DEFAULT_MAX_CONCURRENT = 32;
/**
 * A failed authentication is answered this much later (bitcoind waits 250 ms too): one
 * connection cannot try more than four passwords a second, and a typo costs a human nothing.
 */
export const FAILED_AUTH_DELAY_MS = 250;
/**
 * A client past its failed-login budget (rpc/auth.ts) waits this long for each further refusal:
 * with at most 64 connections (rpc/http1.ts) that is some 30 guesses a second at most, against
 * four a second per connection before.
 */
export const THROTTLED_AUTH_DELAY_MS = 2_000;
/** Failed logins and refused Host or Origin headers are logged at most this often. */
const REFUSAL_LOG_EVERY_MS = 10_000;
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
  /** Checks credentials; every JSON-RPC request needs them. */
  auth: Authenticator;
  /** Also require credentials for /metrics and /health (`--rpc-auth-metrics`). */
  authMetrics?: boolean;
  /** Client networks besides loopback (`--rpc-allow-ip`). */
  allowIps?: IpAllowList;
  /** Host header names besides this endpoint's own (`--rpc-allow-host`). */
  allowHosts?: readonly string[];
  /** Aborting it stops the server, like `shutdown()`. */
  signal?: AbortSignal;
  maxBodyBytes?: number;
  maxBatch?: number;
  maxConcurrent?: number;
  /** rpc/http1.ts bounds; the defaults are its constants. */
  maxConnections?: number;
  headerTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Overrides both FAILED_AUTH_DELAY_MS and THROTTLED_AUTH_DELAY_MS (tests use 0). */
  failedAuthDelayMs?: number;
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
  const failedAuthDelayMs = opts.failedAuthDelayMs ?? FAILED_AUTH_DELAY_MS;
  const throttledAuthDelayMs = opts.failedAuthDelayMs ?? THROTTLED_AUTH_DELAY_MS;
  const allowIps = opts.allowIps ?? new IpAllowList([]);
  const throttle = new FailedAuthThrottle();
  const refusals = new RateLimitedLog(REFUSAL_LOG_EVERY_MS);
  let hosts: HostAllowList | null = null;
  let inFlight = 0;

  const handleRpc = async (req: HttpRequest): Promise<HttpResponse> => {
    if (!isJsonContentType(req.headers.get("content-type"))) {
      return rpcTransportError(415, "content-type must be application/json");
    }
    const body = await req.readBody(maxBodyBytes);
    if (body.kind === "too-large") {
      return rpcTransportError(413, `request body larger than ${maxBodyBytes} bytes`);
    }
    if (body.kind === "bad") return rpcTransportError(400, "malformed request body");
    if (inFlight >= maxConcurrent) {
      return rpcTransportError(503, "too many concurrent requests", { "retry-after": "1" });
    }
    inFlight++;
    try {
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(body.bytes);
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
      return out === null ? { status: 204 } : jsonResponse(200, out);
    } finally {
      inFlight--;
    }
  };

  const handleMetrics = (req: HttpRequest): HttpResponse => {
    let text: string;
    try {
      text = opts.metrics();
    } catch (error) {
      log.error("metrics rendering failed: {error}", { error });
      return plainResponse(500, "metrics unavailable\n");
    }
    return {
      status: 200,
      headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
      body: req.method === "HEAD" ? null : text,
    };
  };

  const handleHealth = (req: HttpRequest): HttpResponse => {
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

  /**
   * Null when the request may go on; else the refusal to send. Valid credentials always pass,
   * so a script with a stale cookie hammering the port cannot lock the operator out; a client
   * past its failure budget waits longer for each refusal (429), which is what slows guessing.
   */
  const authenticate = async (req: HttpRequest): Promise<HttpResponse | null> => {
    if (opts.auth.check(req.headers.get("authorization")) !== null) return null;
    const now = Date.now();
    const throttled = throttle.blocked(req.remoteIp, now);
    throttle.recordFailure(req.remoteIp, now);
    refusals.note(
      throttled
        ? "RPC logins from {ip} keep failing; slowing them down"
        : "RPC login failed from {ip} (wrong or missing credentials)",
      req.remoteIp,
    );
    await new Promise((r) => setTimeout(r, throttled ? throttledAuthDelayMs : failedAuthDelayMs));
    if (throttled) {
      return plainResponse(429, "too many failed logins; retry later\n", { "retry-after": "2" });
    }
    return plainResponse(401, "authentication required\n", {
      "www-authenticate": 'Basic realm="timenode"',
    });
  };

  const route = async (req: HttpRequest): Promise<HttpResponse> => {
    // Host first: a page that rebinds its own name to 127.0.0.1 sends that name here.
    if (!hosts!.allows(req.headers.get("host"), req.localIp)) {
      refusals.note(
        "RPC request from {ip} with a Host header that is not ours refused",
        req.remoteIp,
      );
      return plainResponse(403, "host not allowed (see --rpc-allow-host)\n");
    }
    // Browsers send Origin on cross-origin requests; command-line tools and scrapers never do.
    if (req.headers.has("origin")) {
      refusals.note(
        "RPC request from {ip} with an Origin header (a web page) refused",
        req.remoteIp,
      );
      return plainResponse(403, "requests from web pages are not allowed\n");
    }
    const path = req.path;
    const isRpc = path === "/";
    if (!isRpc && path !== "/metrics" && path !== "/health") {
      return plainResponse(404, "not found\n");
    }
    if (isRpc || opts.authMetrics) {
      const refused = await authenticate(req);
      if (refused) return refused;
    }
    if (isRpc) return req.method === "POST" ? await handleRpc(req) : methodNotAllowed("POST");
    if (!isGetOrHead(req)) return methodNotAllowed("GET, HEAD");
    return path === "/metrics" ? handleMetrics(req) : handleHealth(req);
  };

  const handler = async (req: HttpRequest): Promise<HttpResponse> => {
    const response = await route(req);
    log.trace("{httpMethod} {path} {status}", {
      httpMethod: req.method,
      path: req.path.slice(0, 100),
      status: response.status,
    });
    return response;
  };

  let server: ReturnType<typeof serveHttp>;
  try {
    server = serveHttp({
      hostname: opts.hostname,
      port: opts.port,
      handler,
      acceptFrom: (ip) => allowIps.allows(ip),
      maxConnections: opts.maxConnections,
      headerTimeoutMs: opts.headerTimeoutMs,
      bodyTimeoutMs: opts.bodyTimeoutMs,
    });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot start RPC server on ${opts.hostname}:${opts.port}: ${reason}`, {
      cause: e,
    });
  }
  hosts = new HostAllowList(opts.hostname, server.addr.port, opts.allowHosts ?? []);
  log.debug("RPC listening on {address}", {
    address: `${server.addr.hostname}:${server.addr.port}`,
  });
  opts.signal?.addEventListener("abort", () => server.shutdown(), { once: true });

  return {
    addr: server.addr,
    shutdown: () => server.shutdown(),
  };
}

/** A warning per kind of refusal at most every `everyMs`, with how many were suppressed. */
class RateLimitedLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly everyMs: number) {}

  note(message: string, ip: string): void {
    const now = Date.now();
    const entry = this.#last.get(message);
    if (entry && now - entry.at < this.everyMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    log.warn(suppressed > 0 ? `${message} ({suppressed} more since the last report)` : message, {
      ip,
      suppressed,
    });
    this.#last.set(message, { at: now, suppressed: 0 });
  }
}

/**
 * Requiring application/json makes a browser send a CORS preflight, which this server never
 * approves, so a web page cannot fire calls at a node's RPC port on the operator's machine.
 */
function isJsonContentType(value: string | null): boolean {
  return value !== null && value.split(";")[0].trim().toLowerCase() === JSON_CONTENT_TYPE;
}

function isGetOrHead(req: HttpRequest): boolean {
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
): HttpResponse {
  const response = jsonResponse(status, toJson(rpcError(RpcErrorCode.InvalidRequest, message)));
  return { ...response, headers: { ...response.headers, ...headers } };
}

function jsonResponse(status: number, body: string | null): HttpResponse {
  return {
    status,
    headers: { "content-type": JSON_CONTENT_TYPE, "cache-control": "no-store" },
    body,
  };
}

function plainResponse(
  status: number,
  text: string,
  headers: Record<string, string> = {},
): HttpResponse {
  return {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
    body: text,
  };
}

function methodNotAllowed(allow: string): HttpResponse {
  return plainResponse(405, "method not allowed\n", { allow });
}
