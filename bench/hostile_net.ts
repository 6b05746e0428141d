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
import { type BenchOptions, type BenchRow, benchRow, errorRow } from "./table.ts";

const SUITE = "hostile";
const ATTACKER_IPS = 4;
/** Far more than the per-IP and total handshake budgets: the attacker tries to fill it all. */
const SOCKETS_PER_ATTACKER = 60;
const MAX_INBOUND = 117;

/** Opens N sockets to the target and holds them, silent, until stdin closes. */
const IDLE_ATTACKER = `
const [host, port, n] = Deno.args;
const held = [];
for (let i = 0; i < Number(n); i++) {
  try { held.push(await Deno.connect({ hostname: host, port: Number(port) })); } catch { /* refused */ }
}
console.log(JSON.stringify({ opened: held.length }));
for await (const _ of Deno.stdin.readable) { /* hold until the parent is done */ }
`;

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
  const children: Deno.ChildProcess[] = [];
  try {
    await service.start();
    const port = Number(service.listenAddress.split(":").pop());
    for (const h of net.hosts) {
      children.push(
        new Deno.Command("ip", {
          args: ["netns", "exec", h.netns, Deno.execPath(), "eval", IDLE_ATTACKER, "--"]
            .concat([net.bridgeIp, String(port), String(SOCKETS_PER_ATTACKER)]),
          stdin: "piped",
          stdout: "piped",
          stderr: "null",
        }).spawn(),
      );
    }
    let opened = 0;
    for (const c of children) {
      const reader = c.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const { value } = await reader.read();
      opened += JSON.parse(value ?? "{}").opened ?? 0;
      reader.releaseLock();
    }
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
    for (const c of children) {
      await c.stdin.close().catch(() => {});
      await c.stdout.cancel().catch(() => {});
      c.kill();
      await c.status;
    }
    await service.stop();
    await net.destroy();
  }
}
