/**
 * The hostile-input benchmark suite: what the worst input a peer can send costs this node.
 *
 *   deno task bench --only hostile [--quick]
 *
 * Certificate flood: the largest `blocks` answer a frame can carry (8 MiB), every block with a
 * maximum-size certificate (1,000 entries) that a cheap check refuses: copies of one member's
 * signature, or correct signatures by 1,000 strangers, or members' ids with garbage signatures
 * (which pass the cheap checks and cost one verification each before the batch stops). The row
 * is the CPU time of everything the node does with that answer: decoding the frame payload,
 * computing the certificates' sets, and checking each worker chunk (`VERIFY_CHUNK_BLOCKS`) as
 * a worker would, summed over the chunks (the work is spread over workers, the CPU is not
 * less). The note gives what the same answer cost when signatures were verified first.
 *
 * Free registrations: a 3-masternode devnet (real processes), its block rate over a window,
 * then 20 free-tier registrations sent by one raw peer, then the block rate again once they
 * are in the set. The row is the second rate as a percentage of the first.
 *
 * Owns: building those answers, the devnet run, and their rows. Must never: leave a process or
 * a data dir behind.
 */
import { cpuUsage } from "node:process";
import {
  CHAIN_LIMITS,
  type CommittedBlock,
  decodeCommittedBlock,
  encodeCommittedBlock,
} from "../chain/block.ts";
import { verifyCertificateSignatures } from "../chain/certificate.ts";
import {
  decodePayload,
  encodePayload,
  MAX_PAYLOAD_BYTES,
  MESSAGE_LIMITS,
} from "../network/messages.ts";

import { VERIFY_CHUNK_BLOCKS } from "../sync/constants.ts";
import { checkEncodedBlocks, signerContextFor } from "../sync/verify_worker.ts";
import { ChainBuilder } from "../tests/support/chain_builder.ts";
import { genesisValidatorSet } from "../tests/support/static_state.ts";
import {
  type HostileCertificate,
  hostileCertificate,
  strangerKey,
  withCertificate,
} from "../tests/support/hostile_blocks.ts";
import { type BenchOptions, type BenchRow, benchRow, errorRow, formatNumber } from "./table.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { genesisHash, loadGenesisFile } from "../chain/genesis.ts";
import { signRegistration } from "../state/records.ts";
import { addressOf } from "../state/address.ts";
import { heightOf, startDevnet, waitAllAtHeight } from "../tests/support/devnet.ts";
import { dialAsPeer } from "../tests/support/raw_peer.ts";

const SUITE = "hostile";
/** The bound on the CPU one hostile `blocks` answer may cost. */
const TARGET_MS = 50;
/**
 * Repetitions per answer after one warm-up; the median is reported. Measured as process CPU time
 * (user + system), not wall time: on a shared machine the wall clock mostly measures the wait for
 * a core.
 */
const RUNS = 7;
const QUICK_RUNS = 3;
/** Genesis validators of the chain the answers are built on: a small devnet. */
const VALIDATORS = 4;
/** The devnet's block interval for the registration run, and the measuring window. */
const REGISTRATION_INTERVAL_MS = 500;
const RATE_WINDOW_MS = 10_000;
const QUICK_RATE_WINDOW_MS = 4_000;
/** Free registrations the attacker sends: the figure. */
const FREE_REGISTRATIONS = 20;
/** The block rate with them must stay at 90% of the rate without. */
const RATE_TARGET_PERCENT = 90;

type Flood = HostileCertificate | "garbage-signatures";

/** Members' ids, in order, with signatures that do not verify: passes every cheap check. */
function garbageCertificate(cb: CommittedBlock): CommittedBlock["certificate"] {
  return {
    ...cb.certificate,
    signatures: cb.certificate.signatures.map((s) => ({
      validator: s.validator,
      signature: new Uint8Array(64).fill(7),
    })),
  };
}

/** As many blocks with a hostile certificate as one `blocks` payload holds. */
function worstAnswer(
  builder: ChainBuilder,
  kind: Flood,
): { fromHeight: number; payload: Uint8Array } {
  const strangers = Array.from({ length: CHAIN_LIMITS.maxValidators }, (_, i) => strangerKey(i));
  const first = builder.next();
  const cert = kind === "garbage-signatures"
    ? garbageCertificate(first.cb)
    : hostileCertificate(builder.genesisHash, first.cb, kind, undefined, strangers);
  const one = withCertificate(first.cb, cert);
  // Every block carries the same hostile certificate bytes: what a cheap check sees is the same,
  // and building 80 distinct floods would only slow the bench down.
  const perBlock = one.length + 4;
  const count = Math.min(
    Math.floor((MAX_PAYLOAD_BYTES.blocks - 64) / perBlock),
    MESSAGE_LIMITS.maxBlocksPerBatch,
  );
  const blocks = [one];
  for (let i = 1; i < count; i++) {
    const next = builder.next();
    const c = kind === "garbage-signatures"
      ? garbageCertificate(next.cb)
      : { ...cert, height: next.cb.certificate.height, blockHash: next.hash };
    blocks.push(encodeCommittedBlock({ block: next.cb.block, certificate: c }));
  }
  return {
    fromHeight: 1,
    payload: encodePayload({ kind: "blocks", fromHeight: 1, blocks }),
  };
}

function handleAnswer(builder: ChainBuilder, payload: Uint8Array): number {
  const set = genesisValidatorSet(builder.genesis);
  const m = decodePayload("blocks", payload);
  if (m.kind !== "blocks") throw new Error("not a blocks message");
  // The chain knows the sets of tip + 1 and tip + 2; everything above uses the superset rule.
  const signers = signerContextFor(
    (h) => (h <= 2 ? set : undefined),
    m.fromHeight,
    m.blocks.length,
  );
  let failures = 0;
  for (let i = 0; i < m.blocks.length; i += VERIFY_CHUNK_BLOCKS) {
    const check = checkEncodedBlocks(
      builder.genesisHash,
      m.fromHeight + i,
      m.blocks.slice(i, i + VERIFY_CHUNK_BLOCKS),
      { sets: signers.sets, perBlock: signers.perBlock.slice(i, i + VERIFY_CHUNK_BLOCKS) },
    );
    if (check.failure) failures++;
  }
  return failures;
}

export async function runHostileBenchmarks(opts: BenchOptions): Promise<BenchRow[]> {
  const rows = certificateFlood(opts);
  if (!opts.signal.aborted) rows.push(await freeRegistrations(opts));
  return rows;
}

async function freeRegistrations(opts: BenchOptions): Promise<BenchRow> {
  const name = `block rate with ${FREE_REGISTRATIONS} free registrations`;
  const windowMs = opts.quick ? QUICK_RATE_WINDOW_MS : RATE_WINDOW_MS;
  opts.progress("hostile: starting a 3-masternode devnet for the registration run");
  const devnet = await startDevnet(3, REGISTRATION_INTERVAL_MS);
  let peer: Awaited<ReturnType<typeof dialAsPeer>> | null = null;
  try {
    await waitAllAtHeight(devnet.nodes, 3, 60_000);
    const rate = async () => {
      const from = await heightOf(devnet.nodes[1]);
      const started = performance.now();
      await new Promise((r) => setTimeout(r, windowMs));
      return (await heightOf(devnet.nodes[1]) - from) / ((performance.now() - started) / 1000);
    };
    const before = await rate();
    const genesis = await loadGenesisFile(devnet.manifest.genesis);
    peer = await dialAsPeer(genesis, devnet.manifest.nodes[0].p2p);
    const tip = await heightOf(devnet.nodes[0]);
    for (let i = 0; i < FREE_REGISTRATIONS; i++) {
      const key = generateKeyPair();
      const record = signRegistration(key, {
        genesisHash: genesisHash(genesis),
        nonce: 0,
        expiresAt: tip + 100,
        rewardAddress: addressOf(genesis.network, key.publicKey),
        address: `203.0.113.${i + 1}:24100`,
      });
      await peer.send({ kind: "record", record });
    }
    opts.progress("hostile: waiting for the registrations to take effect");
    await devnet.nodes[1].waitFor(
      async () =>
        (await devnet.nodes[1].rpc<{ validators: unknown[] }>("getconsensusinfo")).validators
          .length === 3 + FREE_REGISTRATIONS,
      "the registrations in the set",
      60_000,
    );
    const after = await rate();
    return benchRow(
      SUITE,
      name,
      before > 0 ? 100 * after / before : 0,
      "%",
      { op: ">=", value: RATE_TARGET_PERCENT },
      `${formatNumber(after)} blocks/s with them, ${formatNumber(before)} without, ` +
        `${windowMs / 1000} s windows, 3 masternodes, ${REGISTRATION_INTERVAL_MS} ms interval`,
    );
  } catch (e) {
    return errorRow(SUITE, name, "%", e);
  } finally {
    await peer?.close();
    await devnet.stop();
  }
}

function certificateFlood(opts: BenchOptions): BenchRow[] {
  const rows: BenchRow[] = [];
  const runs = opts.quick ? QUICK_RUNS : RUNS;
  let worst = 0;
  let worstKind = "";
  const notes: string[] = [];
  for (const kind of ["copies-of-one", "strangers", "garbage-signatures"] as Flood[]) {
    if (opts.signal.aborted) break;
    try {
      const builder = ChainBuilder.create({ validators: VALIDATORS });
      opts.progress(`hostile: building the worst blocks answer (${kind})`);
      const answer = worstAnswer(builder, kind);
      const samples: number[] = [];
      for (let r = 0; r <= runs; r++) {
        const started = cpuUsage();
        const failures = handleAnswer(builder, answer.payload);
        const used = cpuUsage(started);
        if (r > 0) samples.push((used.user + used.system) / 1000);
        if (failures === 0) throw new Error(`${kind}: the hostile answer was accepted`);
      }
      const slowest = median(samples);
      const blocks = decodePayload("blocks", answer.payload);
      const count = blocks.kind === "blocks" ? blocks.blocks.length : 0;
      notes.push(`${kind} ${formatNumber(slowest)} ms`);
      if (slowest > worst) {
        worst = slowest;
        worstKind = `${kind}: ${count} blocks × 1,000-entry certificates, ` +
          `${(answer.payload.length / 1048576).toFixed(1)} MiB`;
      }
    } catch (e) {
      rows.push(errorRow(SUITE, `certificate flood (${kind})`, "ms", e));
    }
  }
  if (worst > 0) {
    rows.push(benchRow(
      SUITE,
      "CPU of the worst blocks answer (certificate flood)",
      worst,
      "ms",
      { op: "<=", value: TARGET_MS },
      `CPU time, median of ${runs} runs, ${worstKind}; ${notes.join(", ")}; ` +
        `signatures first: ${formatNumber(verifyFirstCost())} ms`,
    ));
  }
  return rows;
}

/**
 * What the strangers' flood cost when every signature was verified before the cheap checks:
 * one block's 1,000 correct signatures, measured, times the blocks of the answer (verifying
 * them all would take seconds).
 */
function verifyFirstCost(): number {
  const builder = ChainBuilder.create({ validators: VALIDATORS });
  const m = decodePayload("blocks", worstAnswer(builder, "strangers").payload);
  if (m.kind !== "blocks") return 0;
  const started = cpuUsage();
  const first = decodeCommittedBlock(m.blocks[0]);
  if (!verifyCertificateSignatures(builder.genesisHash, first.certificate)) {
    throw new Error("the strangers' signatures should verify");
  }
  const used = cpuUsage(started);
  return (used.user + used.system) / 1000 * m.blocks.length;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
