/**
 * Downtime accounting: which of the last `signedBlocksWindow` heights each member missed
 * (docs/state.md#downtime-and-jail).
 *
 * Owns: the `mn/live/<nodeHex>` value (a miss count plus a bitmap indexed by
 * `height mod window`) and the update of one member for one counted height.
 * Must never: write when nothing changed (a member that signs every height costs no write), keep
 * a value for a member without a miss in the window (absent means none), or read anything but
 * the value it is given.
 */
import { ByteReader, ByteWriter, DecodeError } from "../encoding/binary.ts";
import { STAKE_BOUNDS } from "../chain/genesis.ts";

/** The state key of a member's misses. */
export function livenessKey(nodeIdHex: string): string {
  return `mn/live/${nodeIdHex}`;
}

export interface Liveness {
  /** Set bits in `bitmap`: misses within the window. */
  missed: number;
  /** Bit `height mod window` is set when that height was missed. */
  bitmap: Uint8Array;
}

const bitmapBytes = (window: number) => Math.ceil(window / 8);

export function encodeLiveness(l: Liveness): Uint8Array {
  return new ByteWriter(8 + l.bitmap.length).u32(l.missed).bytes(l.bitmap).finish();
}

export function decodeLiveness(bytes: Uint8Array, window: number): Liveness {
  const r = new ByteReader(bytes);
  const missed = r.u32();
  const bitmap = r.bytes(Math.ceil(STAKE_BOUNDS.maxSignedBlocksWindow / 8)).slice();
  r.end();
  if (bitmap.length !== bitmapBytes(window)) {
    throw new DecodeError(`liveness bitmap of ${bitmap.length} bytes for a window of ${window}`);
  }
  return { missed, bitmap };
}

/** The miss count of an encoded value (its first field, u32 little-endian), without decoding. */
function missedOf(stored: Uint8Array | undefined): number {
  if (stored === undefined) return 0;
  return new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0, true);
}

/** Where the bitmap starts in an encoded value: u32 missed, then the u32 length prefix. */
const BITMAP_OFFSET = 8;

/**
 * Counts `height` for one member: `missed` or signed. `stored` is the encoded value (`undefined`:
 * no miss in the window). Returns the new encoded value, `null` to delete it (no miss left in
 * the window), or `undefined` when nothing changed: the common case reads one byte and decodes
 * nothing, because this runs for every member at every block.
 */
export function countHeight(
  stored: Uint8Array | undefined,
  window: number,
  height: number,
  missed: boolean,
): { value: Uint8Array | null | undefined; missedInWindow: number } {
  if (stored !== undefined && stored.length !== BITMAP_OFFSET + bitmapBytes(window)) {
    throw new DecodeError(`liveness value of ${stored.length} bytes for a window of ${window}`);
  }
  const index = height % window;
  const byte = index >> 3;
  const bit = 1 << (index & 7);
  // The bit at `index` last belonged to `height - window`, which just left the window.
  const wasSet = stored !== undefined && (stored[BITMAP_OFFSET + byte] & bit) !== 0;
  if (wasSet === missed) return { value: undefined, missedInWindow: missedOf(stored) };
  const current = stored ? decodeLiveness(stored, window) : undefined;
  const bitmap = current?.bitmap ?? new Uint8Array(bitmapBytes(window));
  bitmap[byte] = missed ? bitmap[byte] | bit : bitmap[byte] & ~bit;
  const after = (current?.missed ?? 0) + (missed ? 1 : -1);
  return {
    value: after === 0 ? null : encodeLiveness({ missed: after, bitmap }),
    missedInWindow: after,
  };
}
