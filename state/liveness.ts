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

/**
 * Counts `height` for one member: `missed` or signed. Returns the new encoded value, `null` to
 * delete it (no miss left in the window), or `undefined` when nothing changed. `current` is the
 * stored value (`undefined`: no miss in the window).
 */
export function countHeight(
  current: Liveness | undefined,
  window: number,
  height: number,
  missed: boolean,
): { value: Uint8Array | null | undefined; missedInWindow: number } {
  const index = height % window;
  const byte = index >> 3;
  const bit = 1 << (index & 7);
  // The bit at `index` last belonged to `height - window`, which just left the window.
  const wasSet = current !== undefined && (current.bitmap[byte] & bit) !== 0;
  const before = current?.missed ?? 0;
  if (wasSet === missed) return { value: undefined, missedInWindow: before };
  const bitmap = current?.bitmap.slice() ?? new Uint8Array(bitmapBytes(window));
  bitmap[byte] = missed ? bitmap[byte] | bit : bitmap[byte] & ~bit;
  const after = before + (missed ? 1 : -1);
  return {
    value: after === 0 ? null : encodeLiveness({ missed: after, bitmap }),
    missedInWindow: after,
  };
}
