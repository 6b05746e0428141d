/** Shared fixtures of the ledger unit tests: a funded test network and signed transfers. */
import { sha256 } from "../../../crypto/hash.ts";
import { type KeyPair, keyPairFromSeed } from "../../../crypto/ed25519.ts";
import { DEFAULT_REWARDS, DEFAULT_TIER_POWER, type Genesis } from "../../../chain/genesis.ts";
import { genesisHash } from "../../../chain/genesis.ts";
import { toHex } from "../../../encoding/binary.ts";
import { addressHash, addressOf } from "../../../state/address.ts";
import { signTransfer } from "../../../state/transaction.ts";

export const NETWORK = "ledgertest";
const text = new TextEncoder();

export function walletKey(name: string): KeyPair {
  return keyPairFromSeed(sha256(text.encode(`ledger-test/${name}`)));
}
export const addr = (name: string) => addressOf(NETWORK, walletKey(name).publicKey);

export function ledgerGenesis(alloc: Record<string, string> = {}): Genesis {
  const mn = walletKey("mn");
  return {
    network: NETWORK,
    magic: 0x1ed6,
    genesisTime: 1_000_000,
    blockIntervalMs: 1_000,
    tierPower: DEFAULT_TIER_POWER,
    rewards: DEFAULT_REWARDS,
    masternodes: [{
      nodeId: toHex(mn.publicKey),
      tier: "bronze",
      rewardAddress: addr("mn"),
      address: "127.0.0.1:1",
    }],
    minFeePerByte: 10,
    maxBlockBytes: 64 * 1024,
    alloc,
  };
}

export const GENESIS = ledgerGenesis({ [addr("alice")]: "100", [addr("bob")]: "5" });
export const GENESIS_HASH = genesisHash(GENESIS);

export interface TransferOpts {
  nonce?: number;
  amount?: bigint;
  fee?: bigint;
  expiresAt?: number;
  memo?: Uint8Array;
  genesisHash?: Uint8Array;
}

/** A transfer from `from` to `to` (names of test wallets). */
export function transfer(from: string, to: string, o: TransferOpts = {}): Uint8Array {
  return signTransfer(walletKey(from), {
    genesisHash: o.genesisHash ?? GENESIS_HASH,
    nonce: o.nonce ?? 0,
    recipient: addressHash(walletKey(to).publicKey),
    amount: o.amount ?? 100_000_000n,
    fee: o.fee ?? 10_000n,
    expiresAt: o.expiresAt ?? 1_000,
    memo: o.memo,
  });
}
