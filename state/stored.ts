/**
 * Small helpers for state values: fixed-width numbers and reading a value that must decode.
 *
 * Owns: the u64 and u128 value encodings shared by the state modules, and the rule that a stored
 * value which fails to decode means a corrupt store (a plain error that stops the node), never a
 * block rejection.
 * Must never: turn a decode failure of stored state into `InvalidBlockError`: state is written
 * only by `apply`, so the block is not at fault.
 */
import { ByteReader, ByteWriter } from "../encoding/binary.ts";
import type { StateView } from "../chain/api.ts";

/** Reads a state key, seeing the writes of the block being applied first when there are any. */
export type StateRead = (key: string) => Uint8Array | undefined;

export function encodeU64(v: number): Uint8Array {
  return new ByteWriter(8).u64(v).finish();
}

export function decodeU64(bytes: Uint8Array): number {
  const r = new ByteReader(bytes);
  const v = r.u64();
  r.end();
  return v;
}

export function writeU128(w: ByteWriter, v: bigint): ByteWriter {
  return w.u64big(v & ((1n << 64n) - 1n)).u64big(v >> 64n);
}

export function readU128(r: ByteReader): bigint {
  const lo = r.u64big();
  return (r.u64big() << 64n) | lo;
}

export function corrupt(what: string, cause: unknown): never {
  throw new Error(`consensus state is corrupt (${what}): ${(cause as Error).message}`);
}

export function readOrCorrupt<T>(
  view: StateView | StateRead,
  key: string,
  decode: (b: Uint8Array) => T,
): T | undefined {
  const bytes = typeof view === "function" ? view(key) : view.get(key);
  if (bytes === undefined) return undefined;
  try {
    return decode(bytes);
  } catch (e) {
    return corrupt(key, e);
  }
}
