/**
 * Logging setup: LogTape configured once per process to write one line per record to stderr,
 * as readable text or as JSON lines, at the level chosen by `--log-level`.
 *
 * Owns: the sink, both line formats and the level filter. Every module logs through
 * `getLogger(["timenode", <category>])` (or `logger(category)` here) with structured
 * properties; this module decides how those look.
 * Must never: let a logged value break the line format. Values come from peers (user agents,
 * goodbye reasons, addresses), so control characters are escaped and long values are clipped:
 * a hostile peer cannot forge log lines or flood the journal with one record.
 */
import {
  configureSync,
  getLogger,
  type Logger,
  type LogLevel as LogTapeLevel,
  type LogRecord,
  resetSync,
  type Sink,
} from "@logtape/logtape";
import { toHex } from "../encoding/binary.ts";
import type { LogFormat, LogLevel } from "./config.ts";

/** Longest string value kept in a line; error details fit, a flood from a peer does not. */
const MAX_STRING_CHARS = 1_024;
/** Longest byte array shown as hex: a hash or key is 32 bytes, a signature 64. */
const MAX_HEX_BYTES = 64;
/** Width of the category column in text lines: the longest category, "consensus". */
const CATEGORY_COLUMN = 9;
/** The level column fits "ERROR"; "warning" is written WARN so the column stays narrow. */
const LEVEL_COLUMN = 5;
/** LogTape's own warnings (a sink that threw) are worth seeing; its info chatter is not. */
const META_LOG_LEVEL: LogTapeLevel = "warning";

export const LOG_CATEGORIES = ["net", "sync", "consensus", "rpc", "chain", "node"] as const;
export type LogCategory = typeof LOG_CATEGORIES[number];

export interface LoggingOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where finished lines go (each ends in "\n"). Default: synchronous writes to stderr. */
  write?: (line: string) => void;
}

/** The logger of one timenode category. */
export function logger(category: LogCategory): Logger {
  return getLogger(["timenode", category]);
}

/**
 * Configures LogTape for the whole process. Safe to call again: the previous configuration is
 * reset first, so tests and the devnet runner can reconfigure.
 */
export function setupLogging(opts: LoggingOptions): void {
  const format = opts.format === "json" ? formatJsonLine : formatTextLine;
  const write = opts.write ?? writeStderr;
  const sink: Sink = (record) => write(format(record));
  configureSync({
    reset: true,
    sinks: { out: sink },
    loggers: [
      { category: ["timenode"], sinks: ["out"], lowestLevel: opts.level },
      { category: ["logtape", "meta"], sinks: ["out"], lowestLevel: META_LOG_LEVEL },
    ],
  });
}

/** Drops the configuration; loggers become silent until `setupLogging` runs again. */
export function resetLogging(): void {
  resetSync();
}

const stderrEncoder = new TextEncoder();

/**
 * Synchronous so that lines keep their order and the last words before a crash are not lost
 * in a buffer; stderr is a pipe to journald or a terminal, both fast to drain.
 */
function writeStderr(line: string): void {
  let bytes = stderrEncoder.encode(line);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
}

// ---------------------------------------------------------------------------------------------
// Text: 2026-11-22T01:02:03.456Z INFO  net       peer connected key=127.0.0.1:24100 dir=outbound

export function formatTextLine(record: LogRecord): string {
  const time = new Date(record.timestamp).toISOString();
  const level = levelName(record.level).padEnd(LEVEL_COLUMN);
  const category = categoryName(record.category).padEnd(CATEGORY_COLUMN);
  let line = `${time} ${level} ${category} ${renderMessage(record)}`;
  const inMessage = placeholders(record.rawMessage);
  for (const [key, value] of Object.entries(record.properties)) {
    if (inMessage.has(key)) continue;
    line += ` ${safeKey(key)}=${renderText(value)}`;
  }
  return line + "\n";
}

// ---------------------------------------------------------------------------------------------
// JSON lines: {"@timestamp":"…","level":"INFO","logger":"timenode.net","message":"…","properties":{…}}

export function formatJsonLine(record: LogRecord): string {
  let properties: string;
  try {
    properties = JSON.stringify(record.properties, jsonReplacer) ?? "{}";
  } catch {
    properties = '{"logError":"properties not serializable"}'; // e.g. a cyclic object
  }
  return `{"@timestamp":${JSON.stringify(new Date(record.timestamp).toISOString())},` +
    `"level":${JSON.stringify(levelName(record.level))},` +
    `"logger":${JSON.stringify(record.category.join("."))},` +
    `"message":${JSON.stringify(renderMessage(record))},` +
    `"properties":${properties}}\n`;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "string") return clip(value);
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return hex(value);
  if (value instanceof Error) return errorText(value);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

function levelName(level: LogTapeLevel): string {
  return level === "warning" ? "WARN" : level.toUpperCase();
}

/** ["timenode", "net"] → "net"; anything outside timenode (LogTape's meta logger) in full. */
function categoryName(category: readonly string[]): string {
  const parts = category[0] === "timenode" && category.length > 1 ? category.slice(1) : category;
  return parts.join(".");
}

/** The message with its values filled in; values render as in the key=value part. */
function renderMessage(record: LogRecord): string {
  let out = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    out += i % 2 === 0 ? String(part) : renderText(part);
  }
  return out;
}

/** Names used as `{name}` in a message template: already shown, so not repeated as key=value. */
function placeholders(raw: string | TemplateStringsArray): Set<string> {
  if (typeof raw !== "string") return new Set();
  return new Set([...raw.matchAll(/\{([^{}\s]+)\}/g)].map((m) => m[1]));
}

function safeKey(key: string): string {
  return /^[\w.-]{1,64}$/.test(key) ? key : quote(clip(key));
}

/** One value in a text line: bare when unambiguous, otherwise JSON-quoted (escapes included). */
export function renderText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return bareOrQuoted(clip(value));
    case "number":
    case "boolean":
    case "bigint":
    case "undefined":
      return String(value);
    case "symbol":
      return bareOrQuoted(value.toString());
    case "function":
      return "[function]";
  }
  if (value === null) return "null";
  if (value instanceof Uint8Array) return hex(value);
  if (value instanceof Error) return bareOrQuoted(errorText(value));
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? "invalid-date" : value.toISOString();
  }
  try {
    return clip(JSON.stringify(value, jsonReplacer) ?? String(value));
  } catch {
    return "[unserializable]";
  }
}

function bareOrQuoted(s: string): string {
  return /^[^\s"'=\\\p{Cc}\p{Cf}]+$/u.test(s) ? s : quote(s);
}

/**
 * JSON string syntax, plus escapes for the invisible format characters JSON leaves alone
 * (bidi overrides, zero-width joiners, U+2028/9) that could make a line read differently.
 */
function quote(s: string): string {
  return JSON.stringify(s).replace(
    /[\p{Cf}\u2028\u2029]/gu,
    (c) => [...Array(c.length).keys()].map((i) => unicodeEscape(c.charCodeAt(i))).join(""),
  );
}

function unicodeEscape(codeUnit: number): string {
  return `\\u${codeUnit.toString(16).padStart(4, "0")}`;
}

/** The error's name and message only: stack traces belong in a debugger, not in the journal. */
function errorText(e: Error): string {
  const text = e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
  return clip(text);
}

function clip(s: string): string {
  return s.length > MAX_STRING_CHARS ? `${s.slice(0, MAX_STRING_CHARS)}…(${s.length} chars)` : s;
}

function hex(bytes: Uint8Array): string {
  const s = toHex(bytes.subarray(0, MAX_HEX_BYTES));
  return bytes.length > MAX_HEX_BYTES ? `${s}…(${bytes.length} bytes)` : s;
}
