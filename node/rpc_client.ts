/**
 * The client side of the node's RPC: what `timenode rpc`, `timenode status`, the devnet's live
 * view and the test helpers use to call a running node.
 *
 * Owns: finding credentials (the cookie in the data dir, or a user and password), one JSON-RPC
 * call over HTTP with a deadline, and sorting failures into "the node answered with an error"
 * (`RpcCallError`) and "no node answered" (`NodeUnreachableError`).
 * Must never: print, exit, or retry on its own; callers decide what a failure means.
 */
import { cookiePath, readCookie } from "../rpc/auth.ts";

/** Default wait for an answer: generous for a busy node, short enough for a human. */
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

/** Where a node's RPC is and how to log in. */
export interface RpcTarget {
  /** "http://host:port" */
  url: string;
  /** The cookie file tried when no user is given. */
  cookieFile: string;
  /** Explicit credentials (`--rpc-user`, `--rpc-password`); null to use the cookie. */
  user: string | null;
  password: string | null;
}

/** The node answered with a JSON-RPC error. */
export class RpcCallError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "RpcCallError";
  }
}

/** The node answered, but not with JSON-RPC: an HTTP refusal (401, 403, 429, 503…). */
export class RpcHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "RpcHttpError";
  }
}

/** Nothing answered at the address (refused, reset, timed out). */
export class NodeUnreachableError extends Error {
  constructor(readonly url: string, readonly reason: string) {
    super(`no node answered at ${url}: ${reason}`);
    this.name = "NodeUnreachableError";
  }
}

/** `Authorization` header value from a data dir's cookie; null when there is no cookie. */
export async function cookieAuthorization(dataDir: string): Promise<string | null> {
  const creds = await readCookie(cookiePath(dataDir));
  return creds === null ? null : basic(creds.user, creds.password);
}

export function basic(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** The header for `target`, and where it came from (for hints). */
export async function authorizationFor(
  target: RpcTarget,
): Promise<{ header: string | null; source: "user" | "cookie" | "none" }> {
  if (target.user !== null) {
    return { header: basic(target.user, target.password ?? ""), source: "user" };
  }
  const creds = await readCookie(target.cookieFile);
  if (creds === null) return { header: null, source: "none" };
  return { header: basic(creds.user, creds.password), source: "cookie" };
}

/** One JSON-RPC 2.0 call. Throws RpcCallError, RpcHttpError or NodeUnreachableError. */
export async function callRpc<T = unknown>(
  url: string,
  authorization: string | null,
  method: string,
  params: unknown[] | Record<string, unknown> = [],
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
): Promise<T> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (authorization !== null) headers.authorization = authorization;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new NodeUnreachableError(url, unreachableReason(e, timeoutMs));
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw new NodeUnreachableError(url, unreachableReason(e, timeoutMs));
  }
  if (res.status !== 200) {
    throw new RpcHttpError(res.status, httpMessage(res.status, text));
  }
  let body: { result?: unknown; error?: { code?: unknown; message?: unknown } | null };
  try {
    body = JSON.parse(text);
  } catch {
    throw new RpcHttpError(res.status, "the answer is not JSON: is this a timenode RPC port?");
  }
  if (body.error) {
    const code = typeof body.error.code === "number" ? body.error.code : 0;
    throw new RpcCallError(code, String(body.error.message ?? "unknown error"));
  }
  return body.result as T;
}

function unreachableReason(e: unknown, timeoutMs: number): string {
  if (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError")) {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  const cause = (e as { cause?: unknown }).cause;
  const text = String(cause ?? e);
  if (/refused/i.test(text)) return "connection refused";
  if (/reset|closed/i.test(text)) return "connection closed";
  return text.split("\n")[0].slice(0, 200);
}

function httpMessage(status: number, text: string): string {
  const detail = text.trim().split("\n")[0].slice(0, 200);
  switch (status) {
    case 401:
      return "authentication failed (wrong or missing cookie or --rpc-user/--rpc-password)";
    default:
      return `HTTP ${status}${detail ? `: ${detail}` : ""}`;
  }
}

/** A `key=value` argument: a param name, then "=". */
const NAMED_ARG_RE = /^([A-Za-z_][A-Za-z0-9_]{0,63})=(.*)$/s;

/**
 * Command-line words to JSON-RPC params, as bitcoin-cli reads them: each word is JSON where it
 * parses (numbers, true, objects, arrays, quoted strings), a plain string otherwise. When every
 * word is `name=value` the params are named. Big or oddly written numbers (a hash made only of
 * digits, "1e3", "007") stay strings, so a hex value never turns into a rounded number.
 * Returns a reason instead when the words mix both forms.
 */
export function argsToParams(
  words: readonly string[],
): unknown[] | Record<string, unknown> | string {
  const named = words.map((w) => NAMED_ARG_RE.exec(w));
  if (words.length > 0 && named.every((m) => m !== null)) {
    const out: Record<string, unknown> = {};
    for (const m of named) {
      if (Object.hasOwn(out, m![1])) return `param ${m![1]} given twice`;
      out[m![1]] = wordValue(m![2]);
    }
    return out;
  }
  if (named.some((m) => m !== null) && named.some((m) => m === null)) {
    const first = words[named.findIndex((m) => m !== null)];
    return `mixes positional and name=value params (${JSON.stringify(first.slice(0, 40))}); ` +
      `use one form, or quote a positional string that contains "=" as JSON: '"a=b"'`;
  }
  return words.map(wordValue);
}

function wordValue(word: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(word);
  } catch {
    return word;
  }
  // Only numbers written exactly as JSON prints them: "12", "-1", "0.5"; not "1e3" or a
  // 64-digit hash that would lose digits.
  if (typeof v === "number" && (String(v) !== word || Math.abs(v) > Number.MAX_SAFE_INTEGER)) {
    return word;
  }
  return v;
}
