/**
 * A small HTTP/1.1 server over `Deno.listen`, for the RPC port, with every wait bounded.
 *
 * Why not `Deno.serve`: measured on Deno 2.9.6, a connection that sends half a request line,
 * or headers that declare a body and then 1 byte of it, stays open for as long as the client
 * likes (over 60 s, no limit found), and there is no connection cap; `node:http`'s
 * `headersTimeout` and `requestTimeout` are not enforced either (`maxConnections` is). A
 * handful of such sockets held every RPC slot. Here the server owns the read loop, so the
 * headers, the body and the response each get a deadline, and connections are counted.
 *
 * One request per connection (`Connection: close`): RPC calls are rare and cheap to connect
 * for, and no idle keep-alive connection ever holds a slot or races a close.
 *
 * Owns: accepting (connection cap, the client IP filter), parsing the request head (bounded
 * line and header counts), reading the body (Content-Length or chunked, bounded, with
 * `Expect: 100-continue`), the deadlines, writing the response, and graceful shutdown.
 * Must never: wait without a deadline, buffer more than the head bound or the body bound the
 * handler asks for, or let a handler's exception escape (it becomes a 500).
 */
import { getLogger } from "@logtape/logtape";

/** Headers of a request must arrive within this of the connection being accepted. */
export const DEFAULT_HEADER_TIMEOUT_MS = 5_000;
/** The body must arrive within this of the headers: 1 MiB at a slow 200 KB/s, with margin. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** The client must take the response within this, or the connection is dropped. */
export const DEFAULT_WRITE_TIMEOUT_MS = 10_000;
/**
 * Open connections at once. RPC callers are an operator, a monitoring agent and a few scripts;
 * 64 leaves room for bursts while bounding the memory a flood can pin (64 × (head + body)).
 */
export const DEFAULT_MAX_CONNECTIONS = 64;
/** Request line plus all headers: real clients send well under 1 KiB. */
const MAX_HEAD_BYTES = 8 * 1024;
const MAX_HEADER_COUNT = 64;
/** A chunk-size line ("1a2b;ext=…"): anything longer is an attack on the parser. */
const MAX_CHUNK_LINE_BYTES = 256;
const READ_CHUNK_BYTES = 16 * 1024;
/** How long, and how much, unread request data is discarded before a close (lingeringClose). */
const LINGER_MS = 2_000;
const MAX_LINGER_BYTES = 8 * 1024 * 1024;
/** Refused connections and timeouts are logged at most this often, with a count. */
const LOG_EVERY_MS = 10_000;

const log = getLogger(["timenode", "rpc"]);

export interface HttpRequest {
  method: string;
  /** The request target's path, without the query string. */
  path: string;
  headers: Headers;
  remoteIp: string;
  /** The local address the connection arrived on (differs from the bind host on 0.0.0.0). */
  localIp: string;
  /** Reads the whole body, up to `max` bytes; see `BodyResult`. At most once. */
  readBody(max: number): Promise<BodyResult>;
}

export type BodyResult =
  | { kind: "ok"; bytes: Uint8Array }
  | { kind: "too-large" }
  | { kind: "bad" };

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array | null;
}

export interface HttpServerOptions {
  hostname: string;
  port: number;
  handler: (req: HttpRequest) => Promise<HttpResponse>;
  /** Connections from IPs this refuses get a 403 and are closed before anything is read. */
  acceptFrom?: (remoteIp: string) => boolean;
  maxConnections?: number;
  headerTimeoutMs?: number;
  bodyTimeoutMs?: number;
  writeTimeoutMs?: number;
}

export interface HttpServer {
  readonly addr: { hostname: string; port: number };
  /** Connections open right now. */
  readonly connections: number;
  /** Stops accepting, drops connections still sending their headers, and lets the rest end. */
  shutdown(): Promise<void>;
}

/** Binds and starts serving; throws when it cannot bind. */
export function serveHttp(opts: HttpServerOptions): HttpServer {
  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const server = new Http1Server(listener, opts);
  return server;
}

class Http1Server implements HttpServer {
  readonly addr: { hostname: string; port: number };
  readonly #listener: Deno.TcpListener;
  readonly #opts: Required<Omit<HttpServerOptions, "acceptFrom">> & HttpServerOptions;
  readonly #open = new Map<Deno.TcpConn, { phase: "head" | "busy" }>();
  readonly #done = new Set<Promise<void>>();
  readonly #acceptLoop: Promise<void>;
  #stopping = false;
  #shutdown: Promise<void> | null = null;
  #refusedCount = 0;
  #timedOutCount = 0;
  #lastLogAt = 0;

  constructor(listener: Deno.TcpListener, opts: HttpServerOptions) {
    this.#listener = listener;
    this.#opts = {
      ...opts,
      // `?? default` rather than spreading: an option passed as undefined keeps its default.
      maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      headerTimeoutMs: opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
      writeTimeoutMs: opts.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS,
    };
    const a = listener.addr;
    this.addr = { hostname: a.hostname, port: a.port };
    this.#acceptLoop = this.#accept();
  }

  get connections(): number {
    return this.#open.size;
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#stopping = true;
      try {
        this.#listener.close();
      } catch {
        // Already closed.
      }
      await this.#acceptLoop;
      for (const [conn, state] of this.#open) if (state.phase === "head") closeQuietly(conn);
      await Promise.all([...this.#done]);
    })();
    return this.#shutdown;
  }

  async #accept(): Promise<void> {
    while (!this.#stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#stopping || e instanceof Deno.errors.BadResource) return;
        log.warn("RPC accept failed: {error}", { error: String(e) });
        continue;
      }
      const remoteIp = conn.remoteAddr.hostname;
      if (this.#opts.acceptFrom && !this.#opts.acceptFrom(remoteIp)) {
        this.#noteRefused("client IP not allowed by --rpc-allow-ip", remoteIp);
        this.#track(conn, refuse(conn, 403, "client IP not allowed\n"));
        continue;
      }
      if (this.#open.size >= this.#opts.maxConnections && !this.#evictOldestWaitingForHead()) {
        this.#noteRefused("too many RPC connections", remoteIp);
        this.#track(conn, refuse(conn, 503, "too many connections\n"));
        continue;
      }
      this.#open.set(conn, { phase: "head" });
      this.#track(conn, this.#serve(conn));
    }
  }

  /**
   * At the cap, a connection that has not finished sending its headers yields its slot to the
   * newcomer: a real client sends them at once, so the oldest such connection is the one most
   * likely to be a slow-loris socket. False when every slot is busy with a real request.
   */
  #evictOldestWaitingForHead(): boolean {
    for (const [conn, state] of this.#open) {
      if (state.phase !== "head") continue;
      this.#noteTimeout(conn, "headers (evicted for a new connection)");
      this.#open.delete(conn);
      closeQuietly(conn);
      return true;
    }
    return false;
  }

  #track(conn: Deno.TcpConn, work: Promise<void>): void {
    const p = work.catch(() => {}).finally(() => {
      this.#open.delete(conn);
      this.#done.delete(p);
      closeQuietly(conn);
    });
    this.#done.add(p);
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const reader = new ConnReader(conn);
    let timedOut = false;
    let timer = setTimeout(() => {
      timedOut = true;
      this.#noteTimeout(conn, "headers");
      closeQuietly(conn);
    }, this.#opts.headerTimeoutMs);
    try {
      const head = await readHead(reader);
      if (typeof head === "number") {
        if (head !== 0) {
          await writeResponse(conn, { status: head }, this.#opts.writeTimeoutMs);
          await lingeringClose(conn);
        }
        return;
      }
      const state = this.#open.get(conn);
      if (state) state.phase = "busy";
      clearTimeout(timer);
      let bodyRead = false;
      const request: HttpRequest = {
        method: head.method,
        path: head.path,
        headers: head.headers,
        remoteIp: conn.remoteAddr.hostname,
        localIp: conn.localAddr.hostname,
        readBody: async (max) => {
          if (bodyRead) throw new Error("body already read");
          bodyRead = true;
          // The body's own deadline: the handler's work after it is not the client's to stall.
          timer = setTimeout(() => {
            timedOut = true;
            this.#noteTimeout(conn, "body");
            closeQuietly(conn);
          }, this.#opts.bodyTimeoutMs);
          try {
            if (head.expectContinue && head.body.kind !== "none") {
              await writeAll(conn, new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n"));
            }
            return await readBody(reader, head.body, max);
          } finally {
            clearTimeout(timer);
          }
        },
      };
      let response: HttpResponse;
      try {
        response = await this.#opts.handler(request);
      } catch (error) {
        if (timedOut) return;
        log.error("RPC request failed: {error}", { error });
        response = { status: 500, body: "internal error\n" };
      }
      if (timedOut) return;
      await writeResponse(conn, response, this.#opts.writeTimeoutMs);
      await lingeringClose(conn);
    } catch {
      // The connection broke or was closed by a deadline: nothing to answer.
    } finally {
      clearTimeout(timer);
    }
  }

  #noteRefused(reason: string, remoteIp: string): void {
    this.#refusedCount++;
    this.#maybeLog(() =>
      log.warn("RPC connection from {ip} refused: {reason} ({count} refused recently)", {
        ip: remoteIp,
        reason,
        count: this.#refusedCount,
      })
    );
  }

  #noteTimeout(conn: Deno.TcpConn, what: string): void {
    this.#timedOutCount++;
    this.#maybeLog(() =>
      log.warn(
        "RPC client {ip} too slow sending its {what}; connection closed ({count} recently)",
        {
          ip: conn.remoteAddr.hostname,
          what,
          count: this.#timedOutCount,
        },
      )
    );
  }

  #maybeLog(emit: () => void): void {
    const now = Date.now();
    if (now - this.#lastLogAt < LOG_EVERY_MS) return;
    this.#lastLogAt = now;
    emit();
    this.#refusedCount = 0;
    this.#timedOutCount = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Buffered reads over one connection: lines and exact byte counts. */
class ConnReader {
  #buf: Uint8Array = new Uint8Array(0);
  constructor(private readonly conn: Deno.Conn) {}

  /** Reads more into the buffer; false at end of stream. */
  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    const n = await this.conn.read(chunk);
    if (n === null) return false;
    const merged = new Uint8Array(this.#buf.length + n);
    merged.set(this.#buf);
    merged.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = merged;
    return true;
  }

  /** One line without its CRLF (or LF); "too-long" past `max` bytes; null at end of stream. */
  async readLine(max: number): Promise<string | "too-long" | null> {
    while (true) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) {
        if (nl > max) return "too-long";
        const end = nl > 0 && this.#buf[nl - 1] === 0x0d ? nl - 1 : nl;
        const line = new TextDecoder("latin1").decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.subarray(nl + 1);
        return line;
      }
      if (this.#buf.length > max) return "too-long";
      if (!(await this.#fill())) return null;
    }
  }

  /** Exactly `n` bytes, or null if the stream ends first. Reads straight into the result. */
  async readExact(n: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let off = Math.min(n, this.#buf.length);
    out.set(this.#buf.subarray(0, off));
    this.#buf = this.#buf.subarray(off);
    while (off < n) {
      const got = await this.conn.read(out.subarray(off));
      if (got === null) return null;
      off += got;
    }
    return out;
  }
}

type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

interface RequestHead {
  method: string;
  path: string;
  headers: Headers;
  body: BodyFraming;
  expectContinue: boolean;
}

const REQUEST_LINE_RE = /^([A-Z]{1,16}) (\/[\x21-\x7e]{0,2047}) HTTP\/1\.([01])$/;
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

/** The request head, or an HTTP status to answer with (0: the client went away, say nothing). */
async function readHead(reader: ConnReader): Promise<RequestHead | number> {
  let budget = MAX_HEAD_BYTES;
  const requestLine = await reader.readLine(budget);
  if (requestLine === null) return 0;
  if (requestLine === "too-long") return 414;
  budget -= requestLine.length;
  const m = REQUEST_LINE_RE.exec(requestLine);
  if (!m) return 400;
  const headers = new Headers();
  for (let count = 0;; count++) {
    const line = await reader.readLine(budget);
    if (line === null) return 0;
    if (line === "too-long" || count > MAX_HEADER_COUNT) return 431;
    budget -= line.length + 2;
    if (line === "") break;
    const colon = line.indexOf(":");
    // A line starting with whitespace is an obsolete folded header: refused, as RFC 9112 allows.
    if (colon <= 0 || !HEADER_NAME_RE.test(line.slice(0, colon))) return 400;
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    } catch {
      return 400;
    }
  }
  const te = headers.get("transfer-encoding");
  const cl = headers.get("content-length");
  let body: BodyFraming = { kind: "none" };
  if (te !== null) {
    // Both headers at once is how requests are smuggled past proxies: refused outright.
    if (cl !== null) return 400;
    if (te.toLowerCase() !== "chunked") return 501;
    body = { kind: "chunked" };
  } else if (cl !== null) {
    if (!/^\d{1,15}$/.test(cl)) return 400;
    const length = Number(cl);
    if (length > 0) body = { kind: "length", length };
  }
  const target = m[2];
  const q = target.indexOf("?");
  return {
    method: m[1],
    path: q < 0 ? target : target.slice(0, q),
    headers,
    body,
    expectContinue: headers.get("expect")?.toLowerCase() === "100-continue",
  };
}

async function readBody(
  reader: ConnReader,
  framing: BodyFraming,
  max: number,
): Promise<BodyResult> {
  if (framing.kind === "none") return { kind: "ok", bytes: new Uint8Array(0) };
  if (framing.kind === "length") {
    if (framing.length > max) return { kind: "too-large" };
    const bytes = await reader.readExact(framing.length);
    return bytes === null ? { kind: "bad" } : { kind: "ok", bytes };
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const line = await reader.readLine(MAX_CHUNK_LINE_BYTES);
    if (line === null || line === "too-long") return { kind: "bad" };
    const sizeText = line.split(";")[0].trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return { kind: "bad" };
    const size = parseInt(sizeText, 16);
    if (size === 0) break;
    total += size;
    if (total > max) return { kind: "too-large" };
    const data = await reader.readExact(size);
    const crlf = await reader.readLine(2);
    if (data === null || crlf !== "") return { kind: "bad" };
    parts.push(data);
  }
  // Trailers, if any, end with an empty line; they are bounded like headers and ignored.
  for (let i = 0; i <= MAX_HEADER_COUNT; i++) {
    const line = await reader.readLine(MAX_HEAD_BYTES);
    if (line === null || line === "too-long") return { kind: "bad" };
    if (line === "") {
      const bytes = new Uint8Array(total);
      let off = 0;
      for (const p of parts) {
        bytes.set(p, off);
        off += p.length;
      }
      return { kind: "ok", bytes };
    }
  }
  return { kind: "bad" };
}

// ---------------------------------------------------------------------------------------------
// Writing

const REASONS: Record<number, string> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

function encodeResponse(r: HttpResponse): Uint8Array {
  const body = typeof r.body === "string" ? new TextEncoder().encode(r.body) : r.body ?? null;
  const lines = [`HTTP/1.1 ${r.status} ${REASONS[r.status] ?? "Status"}`];
  const headers = { "content-type": "text/plain; charset=utf-8", ...r.headers };
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n]/.test(k + v)) continue; // never let a value split the head
    lines.push(`${k}: ${v}`);
  }
  lines.push(`content-length: ${body?.length ?? 0}`, "connection: close", "", "");
  const head = new TextEncoder().encode(lines.join("\r\n"));
  if (!body || body.length === 0) return head;
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

async function writeResponse(conn: Deno.Conn, r: HttpResponse, timeoutMs: number) {
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    await writeAll(conn, encodeResponse(r));
  } finally {
    clearTimeout(timer);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Answers a connection refused at accept, without reading its request. */
async function refuse(conn: Deno.TcpConn, status: number, text: string): Promise<void> {
  await writeResponse(conn, { status, body: text }, LINGER_MS);
  await lingeringClose(conn);
}

/**
 * Ends the connection without losing the response: closing a socket that still has unread
 * request bytes makes the kernel send a reset, and the client may then drop the answer it
 * was about to read (a 401 to a request whose body was never read). So: send FIN (the client
 * sees the end of the answer), read and discard what it still sends until it closes too, for a
 * short while at most, then close.
 */
async function lingeringClose(conn: Deno.TcpConn): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  try {
    await conn.closeWrite();
    const sink = new Uint8Array(READ_CHUNK_BYTES);
    let discarded = 0;
    while (discarded < MAX_LINGER_BYTES) {
      const n = await conn.read(sink);
      if (n === null) break;
      discarded += n;
    }
  } catch {
    // Closed by the timer or by the client: done either way.
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
