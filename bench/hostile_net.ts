/**
 * Hostile-network benchmarks: how much of a node an outsider with a few IPs can hold.
 *
 * "Inbound slots held by 4 IPs": a real `NetworkService` listens on a bridge address; four
 * hosts with their own IPs (network namespaces, tests/support/netns.ts) each open
 * `SOCKETS_PER_ATTACKER` sockets that never send a byte. The row is how many of the node's
 * `--max-inbound` slots those sockets hold (target 0: sockets in the handshake have their own
 * budget), with the handshake sockets they hold in the note. Needs root and iproute2; without
 * them the row says why it could not run.
 *
 * Owns: the attack scripts and their rows. Must never: touch addresses outside the test /24.
 */
import { builtinGenesis, genesisHash } from "../chain/genesis.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { NetworkService } from "../network/service.ts";
import { createNodeMetrics } from "../metrics/definitions.ts";
import { createTestHosts } from "../tests/support/netns.ts";
import { type IdleSockets, openIdleSockets } from "../tests/support/idle_sockets.ts";
import { type BenchOptions, type BenchRow, benchRow, errorRow } from "./table.ts";

const SUITE = "hostile";
const ATTACKER_IPS = 4;
/** Far more than the per-IP and total handshake budgets: the attacker tries to fill it all. */
const SOCKETS_PER_ATTACKER = 60;
const MAX_INBOUND = 117;

export async function runHostileNetBenchmarks(opts: BenchOptions): Promise<BenchRow[]> {
  try {
    return [await idleSlots(opts)];
  } catch (e) {
    return [errorRow(SUITE, "inbound slots held by 4 attacker IPs", "slots", e, {
      op: "<=",
      value: 0,
    })];
  }
}

async function idleSlots(opts: BenchOptions): Promise<BenchRow> {
  opts.progress("hostile: idle sockets from 4 IPs");
  const net = await createTestHosts(ATTACKER_IPS);
  const genesis = builtinGenesis("devnet");
  const gHash = genesisHash(genesis);
  const service = new NetworkService({
    key: generateKeyPair(),
    magic: genesis.magic,
    genesisHash: gHash,
    dataDir: null,
    listen: { host: net.bridgeIp, port: 0 },
    peers: [],
    maxInbound: MAX_INBOUND,
    maxOutbound: 0,
    pingIntervalMs: 60_000,
    pongTimeoutMs: 60_000,
    metrics: createNodeMetrics(),
    localTip: () => ({ height: 0, hash: gHash }),
  });
  const attackers: IdleSockets[] = [];
  try {
    await service.start();
    const port = Number(service.listenAddress.split(":").pop());
    for (const h of net.hosts) {
      attackers.push(await openIdleSockets(h.netns, net.bridgeIp, port, SOCKETS_PER_ATTACKER));
    }
    const opened = attackers.reduce((sum, a) => sum + a.opened, 0);
    // The accept loop has seen every connect once each attacker has reported.
    await new Promise((r) => setTimeout(r, 200));
    const info = service.info();
    return benchRow(
      SUITE,
      "inbound slots held by 4 attacker IPs",
      info.inbound,
      "slots",
      { op: "<=", value: 0 },
      `of ${MAX_INBOUND}; ${info.handshaking} sockets in the handshake budget; ` +
        `${opened} connects attempted`,
    );
  } finally {
    for (const a of attackers) await a.stop();
    await service.stop();
    await net.destroy();
  }
}
