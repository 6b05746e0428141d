/**
 * Fixtures of the stake unit tests: a parsed genesis of four bronze members with owners and
 * small stake periods, and a chain harness that builds blocks with a chosen `lastCommit`.
 */
import assert from "node:assert/strict";
import { sha256 } from "../../../crypto/hash.ts";
import { type KeyPair, keyPairFromSeed, signBytes } from "../../../crypto/ed25519.ts";
import { toHex } from "../../../encoding/binary.ts";
import {
  type Block,
  type BlockRecord,
  payloadRoot,
  proposalSignBytes,
  type Vote,
  voteSignBytes,
  VoteType,
} from "../../../chain/block.ts";
import { type Genesis, genesisHash, parseGenesis, type Tier } from "../../../chain/genesis.ts";
import { genesisToJson, makeDevnetGenesis } from "../../../chain/genesis_tool.ts";
import { InvalidBlockError, type StateView } from "../../../chain/api.ts";
import { addressHash, addressOf } from "../../../state/address.ts";
import { createStateMachine, type MasternodeStateMachine } from "../../../state/state.ts";
import {
  signCollateralRegistration,
  signDeregistration,
  signRegistration,
  signUnjail,
} from "../../../state/records.ts";
import { signTransfer } from "../../../state/transaction.ts";

export const NETWORK = "staketest";
export const TIME = 100_000_000n;
const text = new TextEncoder();
const keys = new Map<string, KeyPair>();

export function key(name: string): KeyPair {
  let k = keys.get(name);
  if (!k) {
    k = keyPairFromSeed(sha256(text.encode(`stake-test/${name}`)));
    keys.set(name, k);
  }
  return k;
}
export const idOf = (name: string) => toHex(key(name).publicKey);
/** The address of a name's key: wallets ("own-g0") and reward addresses alike. */
export const addr = (name: string) => addressOf(NETWORK, key(name).publicKey);

/** Small periods so each rule shows within a few blocks. */
export const STAKE = {
  tierCollateral: { free: "0", bronze: "10", silver: "100", gold: "1000" },
  tierRewardWeight: { free: 0, bronze: 10, silver: 100, gold: 1000 },
  unbondingBlocks: 6,
  signedBlocksWindow: 10,
  missedBlocksMax: 3,
  jailBlocks: 5,
  evidenceMaxAge: 5,
  slashPercent: 10,
};

export const GENESIS_MEMBERS = ["g0", "g1", "g2", "g3"];

/** Four bronze members g0..g3; g_i's collateral is owned by wallet "own-g_i"; alice is rich. */
export function stakeGenesis(tiers: Tier[] = ["bronze", "bronze", "bronze", "bronze"]): Genesis {
  const g = makeDevnetGenesis({
    network: NETWORK,
    blockIntervalMs: 1_000,
    genesisTime: 1_000_000_000,
    nodes: GENESIS_MEMBERS.map((name, i) => ({
      publicKey: key(name).publicKey,
      address: `127.0.0.1:${30_000 + i}`,
      tier: tiers[i],
      rewardAddress: addr(`reward-${name}`),
      owner: addr(`own-${name}`),
    })),
    alloc: { [addr("alice")]: "5000", [addr("bob")]: "5" },
    stake: STAKE,
  });
  // Through the file format, as an operator's genesis would arrive.
  return parseGenesis(JSON.parse(genesisToJson(g)));
}

/** `undefined`: every voting member of height - 1 signed; `null`: no lastCommit at all. */
export type Signers = readonly string[] | null | undefined;

export class StakeChain {
  readonly entries = new Map<string, Uint8Array>();
  readonly view: StateView = { get: (k) => this.entries.get(k) };
  readonly sm: MasternodeStateMachine;
  readonly chainId: Uint8Array;
  tip = 0;

  constructor(readonly genesis: Genesis = stakeGenesis()) {
    this.sm = createStateMachine(genesis);
    this.chainId = genesisHash(genesis);
  }

  set(height: number) {
    return this.sm.validatorSetFor(this.view, this.tip, height)!;
  }

  power(name: string, height: number): number {
    return this.set(height).powerOf(idOf(name));
  }

  block(
    o: {
      records?: BlockRecord[];
      transactions?: Uint8Array[];
      proposer?: string;
      signers?: Signers;
    } = {},
  ): Block {
    const height = this.tip + 1;
    const set = this.set(height);
    const proposer = o.proposer ? key(o.proposer).publicKey : set.voting[0].nodeId;
    const records = o.records ?? [];
    const transactions = o.transactions ?? [];
    const block: Block = {
      header: {
        version: 2,
        chainId: this.chainId,
        height,
        prevHash: new Uint8Array(32),
        timestamp: this.genesis.genesisTime + height * 1000,
        proposer,
        round: 0,
        payloadRoot: payloadRoot(records, transactions),
        validatorSetHash: set.hash,
      },
      records,
      transactions,
    };
    if (height >= 2 && o.signers !== null) {
      const ids = o.signers === undefined
        ? this.set(height - 1).voting.map((v) => v.nodeId)
        : o.signers.map((n) => key(n).publicKey);
      // The state machine reads who signed; certificate checks are chain/verify.ts's.
      block.lastCommit = {
        height: height - 1,
        round: 0,
        blockHash: new Uint8Array(32),
        signatures: ids.map((validator) => ({ validator, signature: new Uint8Array(64) })),
      };
    }
    return block;
  }

  apply(o: Parameters<StakeChain["block"]>[0] = {}): void {
    const writes = this.sm.apply(this.view, this.block(o));
    for (const [k, v] of writes) v === null ? this.entries.delete(k) : this.entries.set(k, v);
    this.tip++;
  }

  /** Applies `n` empty blocks signed by `signers`. */
  run(n: number, signers?: Signers): void {
    for (let i = 0; i < n; i++) this.apply({ signers });
  }

  /** The reason the next block with these contents is refused; "accepted" when it applies. */
  refusal(o: Parameters<StakeChain["block"]>[0] = {}): string {
    try {
      this.sm.apply(this.view, this.block(o));
    } catch (e) {
      assert.ok(e instanceof InvalidBlockError, String(e));
      return e.message;
    }
    return "accepted";
  }

  /** The keys the next block with these contents would write, without applying it. */
  writtenKeys(o: Parameters<StakeChain["block"]>[0] = {}): string[] {
    return [...this.sm.apply(this.view, this.block(o)).keys()];
  }

  account(name: string) {
    return this.sm.accountOf(this.view, addr(name));
  }

  info(name: string) {
    return this.sm.masternodeList(this.view, this.tip).find((m) => m.nodeId === idOf(name));
  }

  nonce(name: string): number {
    return this.sm.recordNonceOf(this.view, key(name).publicKey);
  }

  bond(
    node: string,
    owner: string,
    o: { tier?: "bronze" | "silver" | "gold"; ownerKey?: KeyPair; ownerAddress?: string } = {},
  ): BlockRecord {
    return signCollateralRegistration(key(node), o.ownerKey ?? key(owner), {
      genesisHash: this.chainId,
      nonce: this.nonce(node),
      expiresAt: this.tip + 100,
      tier: o.tier ?? "bronze",
      rewardAddress: addr(`reward-${node}`),
      address: `10.0.0.1:${node.length}`,
      owner: o.ownerAddress ?? addr(owner),
    });
  }

  freeReg(node: string): BlockRecord {
    return signRegistration(key(node), {
      genesisHash: this.chainId,
      nonce: this.nonce(node),
      expiresAt: this.tip + 100,
      rewardAddress: addr(`reward-${node}`),
      address: `10.0.0.1:${node.length}`,
    });
  }

  dereg(node: string): BlockRecord {
    return signDeregistration(key(node), {
      genesisHash: this.chainId,
      nonce: this.nonce(node),
      expiresAt: this.tip + 100,
    });
  }

  unjail(node: string): BlockRecord {
    return signUnjail(key(node), {
      genesisHash: this.chainId,
      nonce: this.nonce(node),
      expiresAt: this.tip + 100,
    });
  }

  vote(node: string, height: number, blockByte: number, type: VoteType = VoteType.Precommit): Vote {
    const blockHash = new Uint8Array(32).fill(blockByte);
    return {
      type,
      height,
      round: 0,
      blockHash,
      validator: key(node).publicKey,
      signature: signBytes(key(node), voteSignBytes(this.chainId, type, height, 0, blockHash)),
    };
  }

  proposalSignature(node: string, height: number, blockByte: number): Uint8Array {
    return signBytes(
      key(node),
      proposalSignBytes(this.chainId, height, 0, -1, new Uint8Array(32).fill(blockByte)),
    );
  }

  transfer(from: string, to: string, amount: bigint, nonce = 0): Uint8Array {
    return signTransfer(key(from), {
      genesisHash: this.chainId,
      nonce,
      recipient: addressHash(key(to).publicKey),
      amount,
      fee: 10_000n,
      expiresAt: this.tip + 100,
    });
  }
}
