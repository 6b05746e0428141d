/**
 * `mempool.bin`: the mempool kept across a restart.
 *
 * Owns: the file format ("TNMP" | version u8 | list of encoded transactions | CRC-free: every
 * entry is re-admitted through the normal checks, so a damaged file only loses transactions).
 * Must never: trust the file: entries are readmitted like any submission, signatures included.
 */
import { ByteReader, ByteWriter, DecodeError, writeList } from "../encoding/binary.ts";
import { replaceFileDurably } from "../storage/durable_file.ts";
import { CHAIN_LIMITS } from "../chain/block.ts";

export const MEMPOOL_FILE = "mempool.bin";
const MAGIC = 0x504d4e54; // "TNMP" little-endian
const VERSION = 1;
/** Entries read back at most: the 32 MiB pool holds ~200,000 transfers. */
const MAX_ENTRIES = 250_000;

export function encodeMempoolFile(txs: readonly Uint8Array[]): Uint8Array {
  const w = new ByteWriter(16 + txs.length * 200).u32(MAGIC).u8(VERSION);
  writeList(w, txs, (w, t) => w.bytes(t));
  return w.finish();
}

export function decodeMempoolFile(bytes: Uint8Array): Uint8Array[] {
  const r = new ByteReader(bytes);
  if (r.u32() !== MAGIC) throw new DecodeError("not a mempool file");
  const version = r.u8();
  if (version !== VERSION) throw new DecodeError(`mempool file version ${version}`);
  const txs = r.list(MAX_ENTRIES, (r) => r.bytes(CHAIN_LIMITS.maxTransactionBytes).slice());
  r.end();
  return txs;
}

export async function saveMempool(path: string, txs: readonly Uint8Array[]): Promise<void> {
  await replaceFileDurably(path, encodeMempoolFile(txs));
}

/** The saved transactions; none when the file is missing or unreadable (with the reason). */
export async function loadMempool(path: string): Promise<{ txs: Uint8Array[]; error?: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { txs: [] };
    return { txs: [], error: (e as Error).message };
  }
  try {
    return { txs: decodeMempoolFile(bytes) };
  } catch (e) {
    return { txs: [], error: (e as Error).message };
  }
}
