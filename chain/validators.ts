/**
 * The validator (masternode) set as consensus state: members, voting power and its hash.
 *
 * Owns: the canonical order of a set (by node id), its hash, and the quorum rule.
 * Must never: be built from anything but the chain (genesis plus applied records): a node's
 * private view of who is "active" split the network this replaces (docs/lessons.md#14).
 */
import { ByteWriter, compareBytes, toHex } from "../encoding/binary.ts";
import { sha256 } from "../crypto/hash.ts";
import type { Tier } from "./genesis.ts";

export interface Validator {
  nodeId: Uint8Array;
  tier: Tier;
  /**
   * Voting power; 0 for a listed member without a vote (free tier, docs/state.md): it never
   * counts toward quorum, never proposes, need not sign and earns no reward.
   */
  power: number;
  rewardAddress: string;
  /** Announced p2p address, "host:port". */
  address: string;
}

export interface ValidatorSet {
  /** Sorted by node id, ascending. */
  readonly validators: readonly Validator[];
  readonly totalPower: number;
  readonly hash: Uint8Array;
  /** Members with power > 0, in node-id order: who proposes, signs and is kept connected. */
  readonly voting: readonly Validator[];
  /** Power of a validator by hex node id; 0 when not a member or a member without a vote. */
  powerOf(nodeIdHex: string): number;
  get(nodeIdHex: string): Validator | undefined;
}

const SET_DOMAIN = new TextEncoder().encode("timenode/validator-set/v1");

export function makeValidatorSet(members: readonly Validator[]): ValidatorSet {
  const validators = [...members].sort((a, b) => compareBytes(a.nodeId, b.nodeId));
  const byId = new Map(validators.map((v) => [toHex(v.nodeId), v]));
  if (byId.size !== validators.length) throw new Error("duplicate validator in set");
  const w = new ByteWriter(64 + validators.length * 48).raw(SET_DOMAIN).u32(validators.length);
  let totalPower = 0;
  for (const v of validators) {
    w.fixed(v.nodeId, 32).u64(v.power);
    totalPower += v.power;
  }
  return {
    validators,
    voting: validators.filter((v) => v.power > 0),
    totalPower,
    hash: sha256(w.view()),
    powerOf: (id) => byId.get(id)?.power ?? 0,
    get: (id) => byId.get(id),
  };
}

/** More than 2/3 of the total voting power: counts power, not heads. Integer-exact. */
export function hasQuorum(power: number, totalPower: number): boolean {
  return power * 3 > totalPower * 2;
}

/** At least f+1: enough power that one honest validator is among it (round-skip rule). */
export function hasOneThird(power: number, totalPower: number): boolean {
  return power * 3 > totalPower;
}
