/**
 * Declared RPC methods: each method states its params (name, type, required) once, and that
 * one declaration maps positional params to names, checks types, and writes `help`.
 *
 * Owns: the `MethodSpec` shape, positional → named mapping, param type checks and their
 * -32602 messages, and the `help` method's text.
 * Must never: know what any method does (that is node/node.ts), or pass a handler a param it
 * did not declare.
 */
import { RpcError, RpcErrorCode, type RpcMethods, type RpcParams } from "./jsonrpc.ts";

export type ParamType = "string" | "number" | "integer" | "boolean" | "object" | "array";

export interface ParamSpec {
  name: string;
  /** One type, or several a param may take (getblock: a height or a hash). */
  type: ParamType | readonly ParamType[];
  required: boolean;
  description: string;
  /** Other names accepted for it in named params (getblock takes `height` or `hash`). */
  aliases?: readonly string[];
}

export interface MethodSpec {
  category: string;
  summary: string;
  params: readonly ParamSpec[];
  /** What it returns, in a few words. */
  result: string;
  /** Gets only declared params, by name; absent optional params are undefined. */
  handler: (params: Record<string, unknown>) => unknown | Promise<unknown>;
}

export type MethodTable = Record<string, MethodSpec>;

/**
 * The JSON-RPC method functions for `table`, plus `help [method]` built from it. Every call
 * goes through `mapParams` first.
 */
export function bindMethods(table: MethodTable): RpcMethods {
  const all: MethodTable = { ...table, help: helpSpec(table) };
  const out: RpcMethods = {};
  for (const [name, spec] of Object.entries(all)) {
    out[name] = (params) => spec.handler(mapParams(name, spec, params));
  }
  return out;
}

/** Positional or named params to the declared names, checked; throws RpcError -32602. */
export function mapParams(
  method: string,
  spec: MethodSpec,
  params: RpcParams,
): Record<string, unknown> {
  const named: Record<string, unknown> = {};
  const decl = spec.params;
  if (Array.isArray(params)) {
    if (params.length > decl.length) {
      throw invalid(
        `${method} takes ${countText(decl.length)}${signatureHint(decl)}, got ${params.length}`,
      );
    }
    // A JSON null in a position means "not given", so an optional param can be skipped.
    params.forEach((v, i) => {
      if (v !== null) named[decl[i].name] = v;
    });
  } else {
    for (const [key, value] of Object.entries(params)) {
      const p = decl.find((d) => d.name === key || d.aliases?.includes(key));
      if (!p) {
        throw invalid(
          `${method} has no param ${JSON.stringify(key.slice(0, 64))}` +
            (decl.length ? ` (params: ${decl.map((d) => d.name).join(", ")})` : " (it takes none)"),
        );
      }
      if (p.name in named) throw invalid(`${method}: ${p.name} given twice (by another name)`);
      if (value !== null) named[p.name] = value;
    }
  }
  decl.forEach((p, i) => {
    const v = named[p.name];
    if (v === undefined) {
      if (p.required) throw invalid(`${method}: missing param ${p.name} (${ordinal(i + 1)})`);
      return;
    }
    if (!typeMatches(p.type, v)) {
      const hint = Array.isArray(params) && i === 0 && params.length === 1 &&
          describe(v) === "an object"
        ? `; named params go in an object, not inside an array: {"${p.name}": …}`
        : "";
      throw invalid(
        `${method}: param ${p.name} (${ordinal(i + 1)}) must be ${typeText(p.type)}, ` +
          `got ${describe(v)}${hint}`,
      );
    }
  });
  return named;
}

function typeMatches(type: ParamSpec["type"], v: unknown): boolean {
  const types: readonly ParamType[] = typeof type === "string" ? [type] : type;
  return types.some((t) => {
    switch (t) {
      case "string":
        return typeof v === "string";
      case "number":
        return typeof v === "number" && Number.isFinite(v);
      case "integer":
        return typeof v === "number" && Number.isSafeInteger(v);
      case "boolean":
        return typeof v === "boolean";
      case "object":
        return typeof v === "object" && v !== null && !Array.isArray(v);
      case "array":
        return Array.isArray(v);
    }
  });
}

function typeText(type: ParamSpec["type"]): string {
  const article = (t: ParamType) =>
    (t === "integer" || t === "object" || t === "array" ? "an " : "a ") + t;
  return typeof type === "string" ? article(type) : type.map(article).join(" or ");
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `a string (${JSON.stringify(v.slice(0, 40))})`;
  if (typeof v === "number" && !Number.isSafeInteger(v)) return `the number ${v}`;
  return `${typeof v === "number" ? "the number" : "the " + typeof v} ${String(v)}`;
}

function countText(n: number): string {
  return n === 0 ? "no params" : n === 1 ? "at most 1 param" : `at most ${n} params`;
}

function signatureHint(decl: readonly ParamSpec[]): string {
  return decl.length ? ` (${decl.map((d) => d.name).join(", ")})` : "";
}

function ordinal(n: number): string {
  return n === 1 ? "1st" : n === 2 ? "2nd" : n === 3 ? "3rd" : `${n}th`;
}

function invalid(message: string): RpcError {
  return new RpcError(RpcErrorCode.InvalidParams, message);
}

// ---------------------------------------------------------------------------------------------
// help

function helpSpec(table: MethodTable): MethodSpec {
  const withHelp = (): MethodTable => ({ ...table, help: helpSpec(table) });
  return {
    category: "Control",
    summary: "List every method, or explain one.",
    params: [{
      name: "command",
      type: "string",
      required: false,
      description: "the method to explain",
    }],
    result: "text",
    handler: ({ command }) => {
      const all = withHelp();
      if (command === undefined) return methodList(all);
      const name = command as string;
      if (!Object.hasOwn(all, name)) {
        throw new RpcError(-32601, `help: unknown method ${JSON.stringify(name.slice(0, 64))}`);
      }
      return methodHelp(name, all[name]);
    },
  };
}

/** One line per method, grouped by category: `name param [optional]`. */
export function methodList(table: MethodTable): string {
  const byCategory = new Map<string, string[]>();
  for (const [name, spec] of Object.entries(table)) {
    const lines = byCategory.get(spec.category) ?? [];
    lines.push(signature(name, spec));
    byCategory.set(spec.category, lines);
  }
  const parts: string[] = [];
  for (const [category, lines] of byCategory) {
    parts.push(`== ${category} ==`, ...lines, "");
  }
  return parts.join("\n").trimEnd();
}

/** The full help of one method: signature, summary, each param, result. */
export function methodHelp(name: string, spec: MethodSpec): string {
  const lines = [signature(name, spec), "", spec.summary, ""];
  if (spec.params.length === 0) lines.push("Arguments: none");
  else {
    lines.push("Arguments:");
    spec.params.forEach((p, i) => {
      const names = [p.name, ...(p.aliases ?? [])].join(" | ");
      const type = typeof p.type === "string" ? p.type : p.type.join(" | ");
      lines.push(
        `${i + 1}. ${names} (${type}, ${p.required ? "required" : "optional"}) ${p.description}`,
      );
    });
  }
  lines.push("", `Result: ${spec.result}`);
  return lines.join("\n");
}

function signature(name: string, spec: MethodSpec): string {
  const params = spec.params.map((p) => (p.required ? p.name : `[${p.name}]`));
  return [name, ...params].join(" ");
}
