/**
 * What a validator has signed and what it is locked on: the positions the sign guard persists
 * and the consensus engine reasons about.
 *
 * Owns: `SignStep`, `SignedPosition`, `LockState` and their order.
 * Must never: do I/O. The pure engine imports these; the file-writing guard imports them too, so
 * the engine never depends on the module that touches the disk.
 */

/** Consensus steps in the order they are signed within one round. */
export const SignStep = { Propose: 1, Prevote: 2, Precommit: 3 } as const;
export type SignStep = typeof SignStep[keyof typeof SignStep];

export interface SignedPosition {
  height: number;
  round: number;
  step: SignStep;
  /** The block hash the message was for; all-zero for a nil vote. */
  blockHash: Uint8Array;
}

export interface LockState {
  height: number;
  round: number;
  blockHash: Uint8Array;
}

/** Orders positions: height, then round, then step. */
export function comparePositions(
  a: { height: number; round: number; step: SignStep },
  b: { height: number; round: number; step: SignStep },
): number {
  return a.height - b.height || a.round - b.round || a.step - b.step;
}
