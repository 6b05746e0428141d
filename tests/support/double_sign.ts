/**
 * A test-only double signer: signs two conflicting precommits of one validator key (the same
 * height and round, two different block hashes) and hands both to a real node over a raw peer
 * connection, as a validator running its key on two machines would.
 *
 * Must never: be imported by product code; it exists to prove evidence, slashing and
 * tombstoning end to end (tests/integration/stake_slash.test.ts).
 */
import { type KeyPair, signBytes } from "../../crypto/ed25519.ts";
import { type Genesis, genesisHash } from "../../chain/genesis.ts";
import { type Vote, voteSignBytes, VoteType } from "../../chain/block.ts";
import { dialAsPeer } from "./raw_peer.ts";

/** A precommit of `key` for `blockHash`, validly signed for this chain. */
export function signedPrecommit(
  gHash: Uint8Array,
  key: KeyPair,
  height: number,
  round: number,
  blockHash: Uint8Array,
): Vote {
  const bytes = voteSignBytes(gHash, VoteType.Precommit, height, round, blockHash);
  return {
    type: VoteType.Precommit,
    height,
    round,
    blockHash,
    validator: key.publicKey,
    signature: signBytes(key, bytes),
  };
}

/**
 * Sends, for each of `heights`, two precommits of `key` at round 0 for two different (made-up)
 * block hashes to the node at `address`. A node deciding one of those heights (or buffering the
 * next one) sees the pair, records the equivocation and submits the evidence.
 */
export async function doubleSign(
  genesis: Genesis,
  address: string,
  key: KeyPair,
  heights: readonly number[],
): Promise<void> {
  const gHash = genesisHash(genesis);
  const peer = await dialAsPeer(genesis, address);
  try {
    for (const height of heights) {
      for (const fill of [0xaa, 0xbb]) {
        const vote = signedPrecommit(gHash, key, height, 0, new Uint8Array(32).fill(fill));
        await peer.send({ kind: "vote", vote });
      }
    }
  } finally {
    await peer.close();
  }
}
