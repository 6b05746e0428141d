/**
 * Whether the messages buffered for height + 1 hold a quorum certificate: precommits for one
 * block, in one round, by members of the set of height + 1 holding more than 2/3 of its power.
 * That is verified evidence that the network has decided a height above ours (docs/security.md,
 * fake heights), the second kind sync accepts besides a fetched block (`SyncService.isBehind`).
 *
 * Owns: the count over the buffer. Must never: verify signatures or trust an unverified message
 * (the engine buffers only what its set's members signed, signatures checked), or count a nil
 * precommit (a nil quorum decides nothing).
 */
import { toHex } from "../encoding/binary.ts";
import { VoteType } from "../chain/block.ts";
import { hasQuorum, type ValidatorSet } from "../chain/validators.ts";
import type { BufferedMessage } from "./engine.ts";

export function hasQuorumAhead(
  nextSet: ValidatorSet,
  buffered: readonly BufferedMessage[],
): boolean {
  // (round, block) -> signers already counted, and their power.
  const tallies = new Map<string, { signers: Set<string>; power: number }>();
  for (const { message } of buffered) {
    if (message.kind !== "vote" || message.vote.type !== VoteType.Precommit) continue;
    const vote = message.vote;
    if (vote.blockHash.every((b) => b === 0)) continue;
    const key = `${vote.round}/${toHex(vote.blockHash)}`;
    const tally = tallies.get(key) ?? { signers: new Set<string>(), power: 0 };
    tallies.set(key, tally);
    const signer = toHex(vote.validator);
    if (tally.signers.has(signer)) continue;
    tally.signers.add(signer);
    tally.power += nextSet.powerOf(signer);
    if (hasQuorum(tally.power, nextSet.totalPower)) return true;
  }
  return false;
}
