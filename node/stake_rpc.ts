/**
 * The stake RPC methods (docs/rpc.md#stake): the parameters, record nonces, the node key's half
 * of a collateral registration, this node's unjail, and submitting records signed elsewhere.
 *
 * Owns: parameter checks and the JSON shape of these methods. `timenode wallet register`,
 * `deregister` and `unjail` (wallet/stake.ts) are their client.
 * Must never: sign with the node key anything but a record naming this node (a collateral
 * registration still needs the owner's signature to lock any coins), or see a wallet key.
 */
import { fromHex, toHex } from "../encoding/binary.ts";
import { PUBLIC_KEY_LENGTH } from "../crypto/ed25519.ts";
import { signBytes } from "../crypto/ed25519.ts";
import type { KeyPair } from "../crypto/ed25519.ts";
import { CHAIN_LIMITS } from "../chain/block.ts";
import type { BlockRecord } from "../chain/block.ts";
import { type Genesis, stakeOf, TIERS } from "../chain/genesis.ts";
import type { Chain } from "../chain/chain.ts";
import type { ConsensusService } from "../consensus/service.ts";
import { recordNonceOf } from "../state/state.ts";
import { addressOf, checkAddress } from "../state/address.ts";
import { formatAmount } from "../state/amount.ts";
import { recordId } from "../state/record_pool.ts";
import { collateralRegistrationSignBytes, RecordType, signUnjail } from "../state/records.ts";
import { RpcError } from "../rpc/server.ts";
import type { MethodTable } from "../rpc/methods.ts";
import { parseHostPort } from "../network/peer_key.ts";

/**
 * Blocks a record signed here (or for a wallet) stays valid for: ample time to reach a
 * proposer, short enough that a record that never made it does not linger.
 */
export const STAKE_RECORD_TTL_BLOCKS = 100;
/** RPC error code of a refused record (as Bitcoin's "transaction rejected"). */
export const RECORD_REFUSED = -26;

export interface StakeRpcDeps {
  chain: Chain;
  consensus: Pick<ConsensusService, "submitRecord">;
  genesis: Genesis;
  key: KeyPair;
  /** The host:port this node announces (`--listen`), for its own registration. */
  listenAddress: () => string | null;
}

/** Offers a signed record to the record pool; the RPC answer, or a refusal. */
export function submitRecordRpc(d: Pick<StakeRpcDeps, "consensus">, record: BlockRecord) {
  const r = d.consensus.submitRecord(record, null);
  if (typeof r === "object") throw new RpcError(RECORD_REFUSED, `record refused: ${r.invalid}`);
  if (r === "full") throw new RpcError(RECORD_REFUSED, "record pool is full; try again later");
  return { id: recordId(record), status: r };
}

function hexParam(v: unknown, name: string, maxBytes: number): Uint8Array {
  if (typeof v !== "string" || v.length > 2 * maxBytes || !/^([0-9a-f]{2})+$/.test(v)) {
    throw new RpcError(-32602, `${name} must be lowercase hex of at most ${maxBytes} bytes`);
  }
  return fromHex(v);
}

function nodeIdParam(v: unknown): Uint8Array {
  const id = hexParam(v, "nodeId", PUBLIC_KEY_LENGTH);
  if (id.length !== PUBLIC_KEY_LENGTH) throw new RpcError(-32602, "nodeId must be 64 hex chars");
  return id;
}

export function stakeRpcMethods(d: StakeRpcDeps): MethodTable {
  const network = d.genesis.network;
  const stake = stakeOf(d.genesis);
  const address = (a: unknown, name: string): string => {
    if (typeof a !== "string") throw new RpcError(-32602, `${name} must be a string`);
    const c = checkAddress(network, a);
    if (!c.ok) throw new RpcError(-32602, `${name} ${JSON.stringify(a)}: ${c.why}`);
    return a;
  };
  return {
    getstakeparams: {
      category: "Masternode",
      summary: "The stake rules of this chain: collateral, power and weight per tier, periods.",
      params: [],
      result: "object (collateral in TIME)",
      handler: () => ({
        tierPower: d.genesis.tierPower,
        tierCollateral: Object.fromEntries(
          TIERS.map((t) => [t, formatAmount(stake.tierCollateral[t])]),
        ),
        tierRewardWeight: stake.tierRewardWeight,
        unbondingBlocks: stake.unbondingBlocks,
        signedBlocksWindow: stake.signedBlocksWindow,
        missedBlocksMax: stake.missedBlocksMax,
        jailBlocks: stake.jailBlocks,
        evidenceMaxAge: stake.evidenceMaxAge,
        slashPercent: stake.slashPercent,
      }),
    },
    getrecordnonce: {
      category: "Masternode",
      summary: "The nonce a node's next record must carry, and a suggested expiry.",
      params: [{ name: "nodeId", type: "string", required: true, description: "64 hex chars" }],
      result: "{nodeId, nonce, height, expiresAt}",
      handler: ({ nodeId }) => {
        const id = nodeIdParam(nodeId);
        const height = d.chain.tip().height;
        return {
          nodeId: toHex(id),
          nonce: recordNonceOf(d.chain.stateView(), id),
          height,
          expiresAt: height + STAKE_RECORD_TTL_BLOCKS,
        };
      },
    },
    signcollateralregistration: {
      category: "Masternode",
      summary: "The node key's signature of this node's collateral registration (the owner " +
        "signs the same bytes; submit with sendrawrecord).",
      params: [
        {
          name: "tier",
          type: "string",
          required: true,
          description: "bronze, silver or gold",
        },
        {
          name: "rewardAddress",
          type: "string",
          required: true,
          description: "where rewards go",
        },
        {
          name: "ownerKey",
          type: "string",
          required: true,
          description: "the owner wallet's public key, 64 hex chars",
        },
        {
          name: "address",
          type: "string",
          required: false,
          description: "the host:port other masternodes dial; default --listen",
        },
      ],
      result: "{nodeId, owner, nonce, expiresAt, address, nodeSignature}",
      handler: ({ tier, rewardAddress, ownerKey, address: p2p }) => {
        if (tier !== "bronze" && tier !== "silver" && tier !== "gold") {
          throw new RpcError(-32602, "tier must be bronze, silver or gold");
        }
        address(rewardAddress, "rewardAddress");
        const owner = nodeIdParam(ownerKey);
        const announced = p2p ?? d.listenAddress();
        if (typeof announced !== "string" || !parseHostPort(announced)) {
          throw new RpcError(-32602, "address must be the host:port other masternodes can dial");
        }
        const height = d.chain.tip().height;
        const params = {
          genesisHash: d.chain.genesisHash,
          nonce: recordNonceOf(d.chain.stateView(), d.key.publicKey),
          expiresAt: height + STAKE_RECORD_TTL_BLOCKS,
          tier,
          rewardAddress: rewardAddress as string,
          address: announced,
          owner: addressOf(network, owner),
          ownerKey: owner,
          nodeId: d.key.publicKey,
        } as const;
        return {
          nodeId: toHex(d.key.publicKey),
          owner: params.owner,
          nonce: params.nonce,
          expiresAt: params.expiresAt,
          address: announced,
          nodeSignature: toHex(signBytes(d.key, collateralRegistrationSignBytes(params))),
        };
      },
    },
    unjailmasternode: {
      category: "Masternode",
      summary: "Sign and submit this node's unjail (valid once jailBlocks have passed).",
      params: [],
      result: "{id, status, expiresAt}",
      handler: () => {
        const tip = d.chain.tip().height;
        const expiresAt = tip + STAKE_RECORD_TTL_BLOCKS;
        const record = signUnjail(d.key, {
          genesisHash: d.chain.genesisHash,
          nonce: recordNonceOf(d.chain.stateView(), d.key.publicKey),
          expiresAt,
        });
        return { ...submitRecordRpc(d, record), expiresAt };
      },
    },
    sendrawrecord: {
      category: "Masternode",
      summary: "Submit a signed record (registration, collateral registration, " +
        "deregistration, unjail): checked, pooled and relayed.",
      params: [
        { name: "type", type: "integer", required: true, description: "the record type" },
        { name: "hex", type: "string", required: true, description: "its data in hex" },
      ],
      result: "{id, status}",
      handler: ({ type, hex }) => {
        if (
          type !== RecordType.Registration && type !== RecordType.Deregistration &&
          type !== RecordType.CollateralRegistration && type !== RecordType.Unjail
        ) {
          throw new RpcError(-32602, "type must be 1, 2, 4 or 5 (docs/state.md)");
        }
        return submitRecordRpc(d, {
          type,
          data: hexParam(hex, "hex", CHAIN_LIMITS.maxRecordBytes),
        });
      },
    },
  };
}
