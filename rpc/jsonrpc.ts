/**
 * JSON-RPC request handling, without HTTP: body text in, response text out. JSON-RPC 2.0, and
 * the 1.0 style bitcoin-cli-era tools send (no "jsonrpc" field, or "1.0"), answered in kind:
 * `{"result":…,"error":null,"id":…}`; a 1.0 request always gets an answer (1.0 clients do not
 * send notifications).
 *
 * Owns: request validation (single, batch, notification), method lookup, the error codes, the
 * response shape of each version, and the JSON encoding of results (Uint8Array as hex, bigint
 * as a decimal string).
 * Must never: do I/O itself, trust anything in the request (every field is checked, batches are
 * bounded, method names are looked up as own properties only so "__proto__" or "constructor"
 * reach nothing), or let an internal error's message or stack reach the client.
 */
import { toHex } from "../encoding/binary.ts";

/** Calls per batch: a monitoring script needs a handful; thousands would only tie up the node. */
export const DEFAULT_MAX_BATCH = 100;
/** Method names are short words; a long one is garbage, and is not echoed back in full. */
const MAX_METHOD_NAME_CHARS = 64;
/** A method's own error message (RpcError) is clipped to this before it goes out. */
const MAX_ERROR_MESSAGE_CHARS = 512;

export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
} as const;

/** Thrown by a method to answer with a specific code, e.g. -32602 for bad params. */
export class RpcError extends Error {
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
    this.name = "RpcError";
  }
}

export type RpcParams = unknown[] | Record<string, unknown>;
export type RpcMethod = (params: RpcParams) => unknown | Promise<unknown>;
export type RpcMethods = Record<string, RpcMethod>;
export type RpcId = string | number | null;

export interface RpcHandlerOptions {
  maxBatch?: number;
  /** Told about every failure that was not an RpcError (a bug), so the shell can log it. */
  onInternalError?: (method: string, error: unknown) => void;
}

type Version = "1.0" | "2.0";

interface ValidRequest {
  version: Version;
  method: string;
  params: RpcParams;
  /** Absent for 2.0 notifications, which get no response. */
  id?: RpcId;
}

/**
 * Handles one HTTP body. Returns the response text, or null when nothing is to be sent back
 * (a notification, or a batch made only of notifications).
 */
export async function handleJsonRpc(
  body: string,
  methods: RpcMethods,
  opts: RpcHandlerOptions = {},
): Promise<string | null> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return encodeResponse(errorResponse("2.0", null, RpcErrorCode.ParseError, "parse error"));
  }
  if (!Array.isArray(parsed)) return await handleOne(parsed, methods, opts);
  const maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  if (parsed.length === 0) {
    return encodeResponse(errorResponse("2.0", null, RpcErrorCode.InvalidRequest, "empty batch"));
  }
  if (parsed.length > maxBatch) {
    return encodeResponse(
      errorResponse(
        "2.0",
        null,
        RpcErrorCode.InvalidRequest,
        `batch larger than ${maxBatch} calls`,
      ),
    );
  }
  // One after another: a batch costs the event loop no more than its calls sent singly.
  const parts: string[] = [];
  for (const item of parsed) {
    const response = await handleOne(item, methods, opts);
    if (response !== null) parts.push(response);
  }
  return parts.length === 0 ? null : `[${parts.join(",")}]`;
}

interface RpcErrorBody {
  code: number;
  message: string;
  data?: unknown;
}
type Response =
  | { jsonrpc: "2.0"; id: RpcId; result: unknown }
  | { jsonrpc: "2.0"; id: RpcId; error: RpcErrorBody }
  | { result: unknown; error: RpcErrorBody | null; id: RpcId };

/** One call: its encoded response, or null for a notification. */
async function handleOne(
  item: unknown,
  methods: RpcMethods,
  opts: RpcHandlerOptions,
): Promise<string | null> {
  const request = validateRequest(item);
  if (typeof request === "string") {
    const message = `invalid request: ${request}`;
    return encodeResponse(
      errorResponse(versionOf(item), idOf(item), RpcErrorCode.InvalidRequest, message),
    );
  }
  const { version } = request;
  const isNotification = version === "2.0" && !("id" in request);
  const id = request.id ?? null;
  if (!Object.hasOwn(methods, request.method)) {
    if (isNotification) return null;
    const name = clip(request.method, MAX_METHOD_NAME_CHARS);
    return encodeResponse(
      errorResponse(version, id, RpcErrorCode.MethodNotFound, `method not found: ${name}`),
    );
  }
  let response: Response;
  try {
    const result = await methods[request.method](request.params);
    response = resultResponse(version, id, result ?? null);
  } catch (e) {
    if (!(e instanceof RpcError && Number.isInteger(e.code))) {
      opts.onInternalError?.(request.method, e);
      response = errorResponse(version, id, RpcErrorCode.InternalError, "internal error");
    } else {
      const message = clip(e.message, MAX_ERROR_MESSAGE_CHARS);
      response = errorResponse(version, id, e.code, message, e.data);
    }
  }
  if (isNotification) return null;
  try {
    return encodeResponse(response);
  } catch (e) {
    // A cyclic or otherwise unencodable result is a bug in the method, not the caller's fault.
    opts.onInternalError?.(request.method, e);
    return encodeResponse(
      errorResponse(version, id, RpcErrorCode.InternalError, "internal error"),
    );
  }
}

/** Returns the valid request, or why it is not one. */
function validateRequest(item: unknown): ValidRequest | string {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return "not an object";
  const o = item as Record<string, unknown>;
  const version = versionOf(o);
  if (o.jsonrpc !== undefined && o.jsonrpc !== "2.0" && o.jsonrpc !== "1.0") {
    return 'jsonrpc must be "2.0" (or absent, or "1.0", for JSON-RPC 1.0)';
  }
  if (typeof o.method !== "string") return "method must be a string";
  if ("id" in o && !isValidId(o.id)) return "id must be a string, a number or null";
  let params: RpcParams = [];
  if ("params" in o) {
    if (typeof o.params !== "object" || o.params === null) {
      return "params must be an array or an object";
    }
    params = o.params as RpcParams;
  }
  const request: ValidRequest = { version, method: o.method, params };
  if ("id" in o) request.id = o.id as RpcId;
  return request;
}

function isValidId(id: unknown): id is RpcId {
  return id === null || typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
}

/** The id to answer an invalid request with: its own when readable, else null (as the spec). */
function idOf(item: unknown): RpcId {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return null;
  const id = (item as Record<string, unknown>).id;
  return isValidId(id) ? id : null;
}

/** 1.0 for an object without "jsonrpc" or with "1.0"; 2.0 for everything else. */
function versionOf(item: unknown): Version {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return "2.0";
  const v = (item as Record<string, unknown>).jsonrpc;
  return v === undefined || v === "1.0" ? "1.0" : "2.0";
}

function resultResponse(version: Version, id: RpcId, result: unknown): Response {
  return version === "2.0" ? { jsonrpc: "2.0", id, result } : { result, error: null, id };
}

function errorResponse(
  version: Version,
  id: RpcId,
  code: number,
  message: string,
  data?: unknown,
): Response {
  const error: RpcErrorBody = { code, message };
  if (data !== undefined) error.data = data;
  return version === "2.0" ? { jsonrpc: "2.0", id, error } : { result: null, error, id };
}

function encodeResponse(response: Response): string {
  return JSON.stringify(response, jsonReplacer);
}

/**
 * The JSON form of values RPC methods return: byte arrays (hashes, keys, signatures) as
 * lowercase hex, and bigints (amounts that may exceed 2^53) as decimal strings.
 */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return toHex(value);
  return value;
}

/** `JSON.stringify` with `jsonReplacer`: for /health and anything else served as JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer);
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
