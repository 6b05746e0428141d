/**
 * What a proposal's `lastCommit` costs a validator: verifying a commit of 1,000 signatures (the
 * largest set) on the event loop, and the same through the verify pool's workers (the node's
 * `verifyCommit` path), which leaves the loop free. Not part of `deno task bench`'s suites:
 *
 *   deno run -A bench/last_commit.ts [--signers 1000] [--reps 5]
 *
 * Owns: this measurement only. Must never: be imported by tests or by the node.
 */
import { parseArgs } from "node:util";
import { generateKeyPair, signBytes } from "../crypto/ed25519.ts";
import { sha256 } from "../crypto/hash.ts";
import {
  BLOCK_VERSION,
  blockHash,
  type BlockHeader,
  type Certificate,
  encodeCommittedBlock,
  sortedCommit,
  voteSignBytes,
  VoteType,
} from "../chain/block.ts";
import { verifyCertificateSignatures } from "../chain/certificate.ts";
import { VerifyPool } from "../sync/verify_pool.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { signers: { type: "string", default: "1000" }, reps: { type: "string", default: "5" } },
});
const signers = Number(values.signers);
const reps = Number(values.reps);
const genesisHash = sha256(new TextEncoder().encode("bench/last-commit"));
const header: BlockHeader = {
  version: BLOCK_VERSION,
  chainId: genesisHash,
  height: 7,
  prevHash: sha256(new TextEncoder().encode("prev")),
  timestamp: 1,
  proposer: new Uint8Array(32),
  round: 0,
  payloadRoot: new Uint8Array(32),
  validatorSetHash: new Uint8Array(32),
};
const hash = blockHash(header);
const message = voteSignBytes(genesisHash, VoteType.Precommit, 7, 0, hash);
const commit: Certificate = sortedCommit({
  height: 7,
  round: 0,
  blockHash: hash,
  signatures: Array.from({ length: signers }, () => {
    const key = generateKeyPair();
    return { validator: key.publicKey, signature: signBytes(key, message) };
  }),
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const onLoop: number[] = [];
for (let i = 0; i < reps; i++) {
  const t = performance.now();
  if (!verifyCertificateSignatures(genesisHash, commit)) throw new Error("does not verify");
  onLoop.push(performance.now() - t);
}

const pool = new VerifyPool({ genesisHash, workers: 1 });
const inWorker: number[] = [];
try {
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const encoded = encodeCommittedBlock({ block: { header, records: [] }, certificate: commit });
    const check = await pool.verify(7, [encoded]);
    if (check.okCount !== 1) throw new Error("worker refused it");
    inWorker.push(performance.now() - t);
  }
} finally {
  pool.close();
}
console.log(`${signers} signatures, median of ${reps}:`);
console.log(`  on the event loop: ${median(onLoop).toFixed(1)} ms (the loop is blocked)`);
console.log(`  in a verify worker: ${median(inWorker).toFixed(1)} ms (the loop stays free)`);
