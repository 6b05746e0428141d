/**
 * The config file (`--config FILE`, default `DATA_DIR/timenode.toml`): TOML whose top-level keys
 * are the long flag names of `timenode run` (`data-dir = "/var/lib/timenode"`,
 * `peer = ["203.0.113.7:24100"]`). The keys are not listed here: the CLI derives a `ConfigSpec`
 * from its flag table, so every flag, including one added later, has its key.
 *
 * Owns: reading the file, TOML syntax (smol-toml), which keys exist and the TOML type each takes,
 * and the line of each key for error messages and `timenode config`. Values come back as the
 * strings a command line would carry, so the CLI checks them with the same code as flags.
 * Must never: judge a value's meaning (ranges, addresses: that is node/cli.ts), accept a key
 * it does not know, or print anything. Errors are `ConfigFileError`s that name the file, the
 * line and the key.
 */
import { parse, TomlError } from "smol-toml";

/** The default file name inside the data dir. */
export const CONFIG_FILE_NAME = "timenode.toml";
/** A config file is a few dozen lines; anything this large is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** More entries than this in one array is a mistake, not a configuration. */
const MAX_ARRAY_ITEMS = 1_024;

/** What TOML type a key takes. `seconds` is an integer or a float; `boolean` a bare flag. */
export type ConfigValueKind = "string" | "integer" | "seconds" | "boolean";

export interface ConfigKeySpec {
  kind: ConfigValueKind;
  /** A repeatable flag: its key takes an array. */
  multiple: boolean;
}

/** Every key the file may hold, by name (a flag name without its leading "--"). */
export type ConfigSpec = Readonly<Record<string, ConfigKeySpec>>;

/** One key's value in command-line form: a string, strings for a repeatable flag, or a switch. */
export type ConfigValue = string | string[] | boolean;

export interface ConfigEntry {
  value: ConfigValue;
  /** 1-based line of the key in the file. */
  line: number;
}

export interface ConfigFile {
  path: string;
  entries: ReadonlyMap<string, ConfigEntry>;
}

export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

/**
 * The text of the config file at `path`, or null when there is none. Anything else that stops
 * reading it (a directory, no permission, too large, not UTF-8) is a `ConfigFileError`.
 */
export function readConfigFile(path: string): string | null {
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw new ConfigFileError(`${path}: not a regular file`);
    if (info.size > MAX_CONFIG_BYTES) {
      throw new ConfigFileError(`${path}: larger than ${MAX_CONFIG_BYTES} bytes`);
    }
    bytes = Deno.readFileSync(path);
  } catch (e) {
    // A data dir that is not a directory has no config file; starting will say what is wrong.
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    if (e instanceof ConfigFileError) throw e;
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new ConfigFileError(`${path}: permission denied (the node's user must read it)`);
    }
    throw new ConfigFileError(`${path}: cannot read: ${(e as Error).message}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigFileError(`${path}: not UTF-8 text`);
  }
}

/** Parses and checks `text` (the contents of `path`) against `spec`. */
export function parseConfigText(text: string, path: string, spec: ConfigSpec): ConfigFile {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) {
      const what = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new ConfigFileError(`${path}:${e.line}: not valid TOML: ${what}`);
    }
    throw e;
  }
  const lines = topLevelKeyLines(text);
  const entries = new Map<string, ConfigEntry>();
  for (const [key, raw] of Object.entries(doc)) {
    const line = lines.get(key) ?? 0;
    const where = `${path}:${line}: ${key}`;
    const keySpec = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (keySpec === undefined) {
      throw new ConfigFileError(`${where}: ${unknownKeyReason(key, spec)}`);
    }
    entries.set(key, { value: checkValue(where, raw, keySpec), line });
  }
  return { path, entries };
}

function unknownKeyReason(key: string, spec: ConfigSpec): string {
  const dashed = key.replaceAll("_", "-").toLowerCase();
  if (dashed !== key && Object.hasOwn(spec, dashed)) {
    return `unknown key (did you mean "${dashed}"? keys are the flag names)`;
  }
  return 'unknown key (keys are the long flags of timenode run, without "--"; ' +
    "see timenode help run)";
}

function checkValue(where: string, raw: unknown, spec: ConfigKeySpec): ConfigValue {
  if (!spec.multiple) {
    if (Array.isArray(raw)) {
      throw new ConfigFileError(`${where}: expected ${kindName(spec)}, got an array`);
    }
    return checkScalar(where, raw, spec.kind);
  }
  if (!Array.isArray(raw)) {
    throw new ConfigFileError(
      `${where}: expected an array (a repeatable flag: [${kindName(spec)}, …]), got ${
        typeName(raw)
      }`,
    );
  }
  if (raw.length > MAX_ARRAY_ITEMS) {
    throw new ConfigFileError(`${where}: at most ${MAX_ARRAY_ITEMS} entries, got ${raw.length}`);
  }
  return raw.map((item, i) => {
    const v = checkScalar(`${where}[${i}]`, item, spec.kind);
    if (typeof v !== "string") throw new ConfigFileError(`${where}: a switch cannot repeat`);
    return v;
  });
}

function checkScalar(where: string, raw: unknown, kind: ConfigValueKind): string | boolean {
  const wrong = () =>
    new ConfigFileError(
      `${where}: expected ${kindName({ kind, multiple: false })}, got ${typeName(raw)}`,
    );
  switch (kind) {
    case "boolean":
      if (typeof raw !== "boolean") throw wrong();
      return raw;
    case "string":
      if (typeof raw !== "string") throw wrong();
      return raw;
    case "integer":
      if (typeof raw === "bigint" || (typeof raw === "number" && Number.isInteger(raw))) {
        return String(raw);
      }
      throw wrong();
    case "seconds":
      if (typeof raw === "number" && Number.isFinite(raw)) return String(raw);
      if (typeof raw === "bigint") return String(raw);
      throw wrong();
  }
}

function kindName(spec: ConfigKeySpec): string {
  switch (spec.kind) {
    case "boolean":
      return "true or false";
    case "string":
      return "a string";
    case "integer":
      return "a whole number";
    case "seconds":
      return "a number of seconds";
  }
}

function typeName(raw: unknown): string {
  if (Array.isArray(raw)) return "an array";
  if (typeof raw === "string") return "a string";
  if (typeof raw === "boolean") return "a boolean";
  if (typeof raw === "number" || typeof raw === "bigint") {
    return Number.isInteger(Number(raw)) ? "an integer" : "a float";
  }
  if (raw instanceof Date) return "a date";
  return "a table (keys are flag names at the top level; there are no sections)";
}

/**
 * The 1-based line where each top-level key (or table header) first appears. smol-toml gives
 * values without positions, so this scans the already-valid document: it skips strings,
 * comments and the inside of arrays and inline tables, and takes the first bare or quoted key
 * of each line that starts at the top level ("a.b = 1" counts for "a").
 */
export function topLevelKeyLines(text: string): Map<string, number> {
  const found = new Map<string, number>();
  const note = (key: string, line: number) => {
    if (!found.has(key)) found.set(key, line);
  };
  const KEY = /^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]/;
  const HEADER = /^\s*\[\[?\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)/;
  let depth = 0;
  let inMultiline: string | null = null;
  const rows = text.split(/\r?\n/);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (inMultiline === null && depth === 0) {
      const m = KEY.exec(row) ?? HEADER.exec(row);
      if (m) note(unquoteKey(m[1]), i + 1);
    }
    let j = 0;
    while (j < row.length) {
      if (inMultiline !== null) {
        const end = row.indexOf(inMultiline, j);
        if (end < 0) break;
        j = end + 3;
        inMultiline = null;
        continue;
      }
      const c = row[j];
      if (c === "#") break;
      if (row.startsWith('"""', j) || row.startsWith("'''", j)) {
        inMultiline = row.slice(j, j + 3);
        j += 3;
      } else if (c === '"' || c === "'") {
        j = endOfString(row, j);
      } else {
        if (c === "[" || c === "{") depth++;
        else if (c === "]" || c === "}") depth--;
        j++;
      }
    }
  }
  return found;
}

/** Index just past the one-line string that opens at `start`. */
function endOfString(row: string, start: number): number {
  const quote = row[start];
  let j = start + 1;
  while (j < row.length && row[j] !== quote) j += quote === '"' && row[j] === "\\" ? 2 : 1;
  return j + 1;
}

function unquoteKey(k: string): string {
  if (k.startsWith("'")) return k.slice(1, -1);
  if (k.startsWith('"')) {
    try {
      return JSON.parse(k);
    } catch {
      return k.slice(1, -1);
    }
  }
  return k;
}
