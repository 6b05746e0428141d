/**
 * A stand-in `StateMachine` for tests and tools: the validator set is the genesis masternodes
 * at every height, and blocks change no state.
 *
 * Owns: nothing beyond that stand-in. Must never: be wired into a real node; the real state
 * machine (state/state.ts) checks records and evolves the set.
 */
import { fromHex } from "../../encoding/binary.ts";
import type { Block } from "../../chain/block.ts";
import type { Genesis } from "../../chain/genesis.ts";
import { makeValidatorSet, type ValidatorSet } from "../../chain/validators.ts";
import type { StateMachine, StateView, StateWrites } from "../../chain/api.ts";

export function genesisValidatorSet(genesis: Genesis): ValidatorSet {
  return makeValidatorSet(genesis.masternodes.map((m) => ({
    nodeId: fromHex(m.nodeId),
    tier: m.tier,
    power: genesis.tierPower[m.tier],
    rewardAddress: m.rewardAddress,
    address: m.address,
  })));
}

export class StaticStateMachine implements StateMachine {
  readonly set: ValidatorSet;

  constructor(genesis: Genesis) {
    this.set = genesisValidatorSet(genesis);
  }

  validatorSetFor(_view: StateView, _tipHeight: number, _height: number): ValidatorSet {
    return this.set;
  }

  apply(_view: StateView, _block: Block): StateWrites {
    return new Map();
  }
}
