/**
 * A `ChainApi` over memory for sync tests, and the chain it is seeded from.
 *
 * `chainFixture` is a chain made by the one chain builder (support/chain_builder.ts): 4 equal
 * validators, about 1 KB bodies, cached per (length, seed) because signing dominates small
 * tests. `FakeChain` validates like the real chain (height, chain id, link, timestamp, payload
 * root, last commit, validator set, certificate quorum and, unless told they were checked, signatures) but
 * keeps blocks in memory and tells waiting tests when a height is reached.
 *
 * Owns: nothing production uses. Must never: accept a block the real chain would refuse for
 * one of the reasons above.
 */
import {
  type Block,
  blockHash,
  blockPayloadRoot,
  type CommittedBlock,
  decodeCommittedBlock,
  encodeCommittedBlock,
} from "../../chain/block.ts";
import {
  type ChainApi,
  type ChainTip,
  InvalidBlockError,
  type StateView,
} from "../../chain/api.ts";
import { checkCertificateQuorum, verifyCertificateSignatures } from "../../chain/certificate.ts";
import type { Genesis } from "../../chain/genesis.ts";
import { checkLastCommitPlacement } from "../../chain/verify.ts";
import type { ValidatorSet } from "../../chain/validators.ts";
import { bytesEqual } from "../../encoding/binary.ts";
import {
  type BuiltBlock,
  ChainBuilder,
  type Corruption,
  truncatedEncoding,
} from "./chain_builder.ts";

export interface ChainFixture {
  builder: ChainBuilder;
  genesis: Genesis;
  genesisHash: Uint8Array;
  validatorSet: ValidatorSet;
  /** blocks[h - 1] is block h. */
  blocks: BuiltBlock[];
  /** encoded[h - 1] is block h. */
  encoded: Uint8Array[];
  hashes: Uint8Array[];
}

/** Body bytes per block: big enough that byte budgets cut batches in tests. */
const FIXTURE_BODY_BYTES = 1_000;

const fixtures = new Map<string, ChainFixture>();

/**
 * A chain of `length` blocks. Deterministic; a different `seed` is a different network (a
 * different genesis hash), so blocks of two seeds never fit one chain.
 */
export function chainFixture(length: number, seed = 1): ChainFixture {
  const id = `${length}/${seed}`;
  const cached = fixtures.get(id);
  if (cached) return cached;
  const builder = ChainBuilder.create({ network: `sync-${seed}`, bodyBytes: FIXTURE_BODY_BYTES });
  const validatorSet = builder.stateMachine.validatorSetFor({ get: () => undefined }, 0, 1);
  if (!validatorSet) throw new Error("the builder's state machine has no genesis set");
  const blocks = builder.build(length);
  const f: ChainFixture = {
    builder,
    genesis: builder.genesis,
    genesisHash: builder.genesisHash,
    validatorSet,
    blocks,
    encoded: blocks.map((b) => b.encoded),
    hashes: blocks.map((b) => b.hash),
  };
  fixtures.set(id, f);
  return f;
}

/** A corruption of the builder, or the encoding cut short ("truncated"). */
export type FixtureCorruption = Corruption | "truncated";

/** The encoding of block `height` of the fixture, spoiled as `how` says (chain_builder.ts). */
export function corruptAt(f: ChainFixture, height: number, how: FixtureCorruption): Uint8Array {
  const item = f.blocks[height - 1];
  return how === "truncated" ? truncatedEncoding(item) : f.builder.corrupt(item, how).encoded;
}

/** A `ChainApi` over memory that validates like the real one. */
export class FakeChain implements ChainApi {
  readonly genesis: Genesis;
  readonly genesisHash: Uint8Array;
  readonly #set: ValidatorSet;
  readonly #blocks: { encoded: Uint8Array; hash: Uint8Array; timestamp: number }[] = [];
  readonly #handlers: ((cb: CommittedBlock, hash: Uint8Array) => void)[] = [];
  /** How many applyBlocks calls claimed verified signatures (the pool's work was used). */
  verifiedApplies = 0;
  applyCalls = 0;

  constructor(f: ChainFixture, initialHeight = 0) {
    this.genesis = f.genesis;
    this.genesisHash = f.genesisHash;
    this.#set = f.validatorSet;
    for (let h = 1; h <= initialHeight; h++) {
      const cb = decodeCommittedBlock(f.encoded[h - 1]);
      this.#blocks.push({
        encoded: f.encoded[h - 1],
        hash: f.hashes[h - 1],
        timestamp: cb.block.header.timestamp,
      });
    }
  }

  tip(): ChainTip {
    const last = this.#blocks[this.#blocks.length - 1];
    if (!last) {
      return { height: 0, hash: this.genesisHash, timestamp: this.genesis.genesisTime };
    }
    return { height: this.#blocks.length, hash: last.hash, timestamp: last.timestamp };
  }

  getBlock(height: number): CommittedBlock | undefined {
    const b = this.#blocks[height - 1];
    return b ? decodeCommittedBlock(b.encoded) : undefined;
  }

  getHeightOfHash(hash: Uint8Array): number | undefined {
    const i = this.#blocks.findIndex((b) => bytesEqual(b.hash, hash));
    return i < 0 ? undefined : i + 1;
  }

  getEncodedBlocks(from: number, count: number, maxBytes: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    for (let h = Math.max(1, from); h < from + count && h <= this.#blocks.length; h++) {
      const e = this.#blocks[h - 1].encoded;
      if (out.length > 0 && bytes + e.length > maxBytes) break;
      out.push(e);
      bytes += e.length;
    }
    return out;
  }

  validatorSetFor(_height: number): ValidatorSet | undefined {
    return this.#set;
  }

  stateView(): StateView {
    return { get: () => undefined };
  }

  /** Sync never judges proposals; consensus tests use the real chain. */
  checkProposal(_block: Block): void {
    throw new Error("FakeChain does not judge proposals");
  }

  applyBlock(cb: CommittedBlock, encoded?: Uint8Array, opts?: { signaturesVerified?: boolean }) {
    const tip = this.tip();
    const h = cb.block.header;
    const fail = (reason: ConstructorParameters<typeof InvalidBlockError>[0], m: string) => {
      throw new InvalidBlockError(reason, m);
    };
    if (h.height !== tip.height + 1) fail("bad-height", `height ${h.height}, tip ${tip.height}`);
    if (!bytesEqual(h.chainId, this.genesisHash)) fail("wrong-chain", "chain id");
    if (!bytesEqual(h.prevHash, tip.hash)) fail("bad-link", "prevHash");
    if (h.timestamp <= tip.timestamp) fail("bad-timestamp", "timestamp");
    if (!bytesEqual(h.payloadRoot, blockPayloadRoot(cb.block))) {
      fail("bad-payload-root", "payload root");
    }
    const lastCommit = checkLastCommitPlacement(cb.block.lastCommit, h.height, tip.hash);
    if (lastCommit) {
      const lq = checkCertificateQuorum(lastCommit, tip.height, tip.hash, this.#set);
      if (!lq.ok) fail("bad-last-commit", lq.why);
    }
    if (!bytesEqual(h.validatorSetHash, this.#set.hash)) fail("bad-validator-set", "set");
    const hash = blockHash(h);
    const q = checkCertificateQuorum(cb.certificate, h.height, hash, this.#set);
    if (!q.ok) fail("bad-certificate", q.why);
    if (
      !opts?.signaturesVerified && !verifyCertificateSignatures(this.genesisHash, cb.certificate)
    ) {
      fail("bad-signature", "signature");
    }
    this.#blocks.push({
      encoded: encoded ?? encodeCommittedBlock(cb),
      hash,
      timestamp: h.timestamp,
    });
    for (const handler of this.#handlers) handler(cb, hash);
  }

  applyBlocks(
    items: readonly { cb: CommittedBlock; encoded: Uint8Array }[],
    opts?: { signaturesVerified?: boolean },
  ): { applied: number; error?: InvalidBlockError } {
    this.applyCalls++;
    if (opts?.signaturesVerified) this.verifiedApplies++;
    let applied = 0;
    for (const item of items) {
      try {
        this.applyBlock(item.cb, item.encoded, opts);
      } catch (e) {
        if (e instanceof InvalidBlockError) return { applied, error: e };
        throw e;
      }
      applied++;
    }
    return { applied };
  }

  /** Test helper: applies fixture blocks up to `height` as consensus would. */
  applyFromFixture(f: ChainFixture, height: number): void {
    for (let h = this.tip().height + 1; h <= height; h++) {
      this.applyBlock(decodeCommittedBlock(f.encoded[h - 1]), f.encoded[h - 1]);
    }
  }

  onBlockApplied(handler: (cb: CommittedBlock, hash: Uint8Array) => void): void {
    this.#handlers.push(handler);
  }

  /** Resolves once the tip reaches `height` (no polling, no sleeps). */
  reached(height: number): Promise<void> {
    if (this.tip().height >= height) return Promise.resolve();
    return new Promise((resolve) => {
      this.onBlockApplied(() => {
        if (this.tip().height >= height) resolve();
      });
    });
  }

  close(): void {}
}
