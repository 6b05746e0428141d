/**
 * Collateral after it leaves the set: unbonding per node, the release index, and tombstones
 * (docs/state.md#collateral, #double-signing).
 *
 * Owns: the key families `mn/unbond/<nodeHex>`, `unbond/at/<height>` and `mn/tomb/<nodeHex>`
 * and their encodings; starting an unbonding, releasing the due ones, slashing an unbonding
 * node, and marking a node tombstoned. Account balances move through `AccountWorkingSet`.
 * Must never: release an entry at any height but its own, keep an index entry after its release,
 * or read anything but the state it is given.
 */
import { ByteReader, ByteWriter, writeList } from "../encoding/binary.ts";
import { CHAIN_LIMITS } from "../chain/block.ts";
import type { StateWrites } from "../chain/api.ts";
import type { AccountWorkingSet } from "./accounts.ts";
import { RECORD_LIMITS } from "./records.ts";
import { encodeU64, readOrCorrupt, readU128, type StateRead, writeU128 } from "./stored.ts";

const KEY = {
  /** The node's collateral that is unbonding: owner, amount, release height (slashable). */
  unbond: (nodeIdHex: string) => `mn/unbond/${nodeIdHex}`,
  /** Addresses with an unbonding entry released by block `height`. */
  unbondAt: (height: number) => `unbond/at/${height}`,
  /** u64: the height whose block tombstoned the node (double signing); it never returns. */
  tomb: (nodeIdHex: string) => `mn/tomb/${nodeIdHex}`,
} as const;

/**
 * Owners released by one block: at most every member leaving in one block (the set bound), and
 * twice that for room.
 */
const MAX_OWNERS_PER_RELEASE = CHAIN_LIMITS.maxValidators * 2;

/** The node's collateral that is unbonding (kept per node so evidence can still slash it). */
export interface Unbond {
  owner: string;
  amount: bigint;
  releaseHeight: number;
}

function encodeUnbond(u: Unbond): Uint8Array {
  return writeU128(new ByteWriter(48).string(u.owner), u.amount).u64(u.releaseHeight).finish();
}

function decodeUnbond(bytes: Uint8Array): Unbond {
  const r = new ByteReader(bytes);
  const u = {
    owner: r.string(RECORD_LIMITS.maxRewardAddressBytes),
    amount: readU128(r),
    releaseHeight: r.u64(),
  };
  r.end();
  return u;
}

function decodeAddressList(bytes: Uint8Array): string[] {
  const r = new ByteReader(bytes);
  const list = r.list(MAX_OWNERS_PER_RELEASE, (r) => r.string(RECORD_LIMITS.maxRewardAddressBytes));
  r.end();
  return list;
}

function encodeAddressList(list: readonly string[]): Uint8Array {
  const w = new ByteWriter(64);
  writeList(w, list, (w, a) => w.string(a));
  return w.finish();
}

/** The node's unbonding collateral, if any is still waiting for its release. */
export function unbondOf(read: StateRead, nodeIdHex: string): Unbond | undefined {
  return readOrCorrupt(read, KEY.unbond(nodeIdHex), decodeUnbond);
}

export function isTombstoned(read: StateRead, nodeIdHex: string): boolean {
  return read(KEY.tomb(nodeIdHex)) !== undefined;
}

export function tombstone(writes: StateWrites, nodeIdHex: string, height: number): void {
  writes.set(KEY.tomb(nodeIdHex), encodeU64(height));
}

/** Moves `units` of the node's collateral from locked to unbonding until `releaseHeight`. */
export function startUnbonding(
  read: StateRead,
  accounts: AccountWorkingSet,
  writes: StateWrites,
  bond: { nodeId: string; owner: string; units: bigint; releaseHeight: number },
): void {
  const { nodeId, owner, units, releaseHeight } = bond;
  if (units === 0n) return;
  accounts.unbond(owner, nodeId, units, releaseHeight);
  writes.set(KEY.unbond(nodeId), encodeUnbond({ owner, amount: units, releaseHeight }));
  const indexKey = KEY.unbondAt(releaseHeight);
  const owners = readOrCorrupt(read, indexKey, decodeAddressList) ?? [];
  if (!owners.includes(owner)) {
    writes.set(indexKey, encodeAddressList([...owners, owner].sort()));
  }
}

/** Block `height` moves the entries released at it to their owners' spendable balances. */
export function releaseDue(
  read: StateRead,
  accounts: AccountWorkingSet,
  writes: StateWrites,
  height: number,
): void {
  const indexKey = KEY.unbondAt(height);
  const owners = readOrCorrupt(read, indexKey, decodeAddressList);
  if (!owners) return;
  for (const owner of owners) {
    for (const nodeId of accounts.release(owner, height)) writes.set(KEY.unbond(nodeId), null);
  }
  writes.set(indexKey, null);
}

/** Burns `percent` of a departed node's unbonding collateral (rounded down). */
export function slashUnbonding(
  read: StateRead,
  accounts: AccountWorkingSet,
  writes: StateWrites,
  nodeIdHex: string,
  percent: number,
): void {
  const unbond = unbondOf(read, nodeIdHex);
  if (!unbond) return;
  const slash = unbond.amount * BigInt(percent) / 100n;
  accounts.burnUnbonding(unbond.owner, nodeIdHex, slash);
  writes.set(KEY.unbond(nodeIdHex), encodeUnbond({ ...unbond, amount: unbond.amount - slash }));
}
