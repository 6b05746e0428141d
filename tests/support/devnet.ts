/**
 * A devnet of real masternode processes for integration tests, prepared by the same code as
 * `timenode devnet` (node/devnet.ts) and started through `NodeProcess`.
 */
import { type DevnetManifest, prepareDevnet } from "../../node/devnet.ts";
import { NodeProcess, pollUntil, tempDir } from "./cluster.ts";

/** A base port with `count` consecutive free ports above it (p2p and RPC per node). */
/** Lowest port a test range starts at: above the well-known and most registered services. */
const TEST_PORT_FLOOR = 10_000;
/** Linux's default first ephemeral port, when /proc does not say. */
const DEFAULT_EPHEMERAL_LOW = 32_768;

/**
 * The first port the kernel hands out for outgoing connections. Test ranges stay below it: a port
 * found free and then released can otherwise be taken by any outgoing connection (50 nodes
 * dialing each other hold thousands) before the node that should listen on it starts.
 */
function ephemeralLow(): number {
  try {
    const low = Number(
      Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > TEST_PORT_FLOOR ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

export function freePortRange(count: number): number {
  const span = Math.max(1, ephemeralLow() - TEST_PORT_FLOOR - count);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = TEST_PORT_FLOOR + Math.floor(Math.random() * span);
    const held: Deno.Listener[] = [];
    try {
      for (let i = 0; i < count; i++) {
        held.push(Deno.listen({ hostname: "127.0.0.1", port: base + i }));
      }
      return base;
    } catch {
      // One of them is taken: try another range.
    } finally {
      for (const l of held) l.close();
    }
  }
  throw new Error("no free port range found");
}

export interface TestDevnet {
  dir: string;
  manifest: DevnetManifest;
  nodes: NodeProcess[];
  /** A node process for masternode `i` (the same data dir and ports on every call). */
  processFor(i: number): NodeProcess;
  stop(): Promise<void>;
}

export async function startDevnet(
  count: number,
  blockIntervalMs: number,
  extra: string[] = [],
): Promise<TestDevnet> {
  const dir = await tempDir(`devnet${count}`);
  const basePort = await freePortRange(2 * count);
  const manifest = await prepareDevnet({ dir, nodes: count, basePort, blockIntervalMs });
  const processFor = (i: number) => {
    const n = manifest.nodes[i];
    return new NodeProcess({
      name: `mn${i}`,
      dataDir: n.dataDir,
      p2pPort: Number(n.p2p.split(":")[1]),
      rpcPort: Number(new URL(n.rpc).port),
      genesis: manifest.genesis,
      peers: manifest.nodes.filter((_, j) => j !== i).map((o) => o.p2p),
      extra,
      logLevel: Deno.env.get("DEVNET_LOG") ?? "info",
    });
  };
  const nodes = manifest.nodes.map((_, i) => processFor(i));
  for (const n of nodes) n.start();
  return {
    dir,
    manifest,
    nodes,
    processFor,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

export async function heightOf(n: NodeProcess): Promise<number> {
  return await n.rpc<number>("getblockcount");
}

/** Waits until every node in `nodes` is at `height` or above. */
export async function waitAllAtHeight(
  nodes: NodeProcess[],
  height: number,
  timeoutMs = 60_000,
): Promise<void> {
  await Promise.all(
    nodes.map((n) =>
      n.waitFor(async () => (await heightOf(n)) >= height, `height ${height}`, timeoutMs)
    ),
  );
}

/** `timenode devnet` itself, as an operator runs it (README's first command). */
export function spawnDevnetCommand(
  dir: string,
  nodes: number,
  basePort: number,
  output: "piped" | "null",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../main.ts", import.meta.url).pathname,
      "devnet",
      "--nodes",
      String(nodes),
      "--dir",
      dir,
      "--base-port",
      String(basePort),
    ],
    stdin: "null",
    stdout: output,
    stderr: output,
  }).spawn();
}

/** The devnet.json a devnet writes into `dir`, once it exists. */
export async function waitForManifest(dir: string): Promise<DevnetManifest> {
  return await pollUntil(
    async () => JSON.parse(await Deno.readTextFile(`${dir}/devnet.json`)) as DevnetManifest,
    "devnet.json",
  );
}

interface ConsensusPosition {
  height: number;
  round: number;
  step: string;
}

/**
 * "No progress", shown by the node's own round timeouts instead of a fixed sleep: waits until
 * the engine has reached `round` at one height, then until it has failed `moreRounds` further
 * rounds at that same height, and asserts that its tip stayed below that height all along.
 * Rounds only grow while a height is undecided, so each one is a full set of timeouts without a
 * commit. Returns the stalled height.
 */
export async function assertStalled(
  node: NodeProcess,
  round = 2,
  moreRounds = 2,
  timeoutMs = 120_000,
): Promise<number> {
  const position = () => node.rpc<ConsensusPosition>("getconsensusinfo");
  const stalled = await node.waitFor(
    async () => {
      const p = await position();
      return p.round >= round && p.step !== "commit" ? p : null;
    },
    `round ${round} at one height (a stalled engine)`,
    timeoutMs,
  );
  const tipAtStall = await heightOf(node);
  if (tipAtStall !== stalled.height - 1) {
    throw new Error(
      `${node.name}: tip ${tipAtStall} while the engine is in round ${stalled.round} of ` +
        `height ${stalled.height}`,
    );
  }
  const later = await node.waitFor(
    async () => {
      const p = await position();
      // A new height ends the wait at once: the assertion below reports it.
      return p.height !== stalled.height || p.round >= stalled.round + moreRounds ? p : null;
    },
    `${moreRounds} more failed rounds at height ${stalled.height}`,
    timeoutMs,
  );
  const tip = await heightOf(node);
  if (tip !== tipAtStall || later.height !== stalled.height) {
    throw new Error(`${node.name} progressed from ${tipAtStall} to ${tip} while stalled`);
  }
  return stalled.height;
}
