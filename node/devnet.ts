/**
 * `timenode devnet`: a local network of N masternodes on loopback, in one command.
 *
 * Owns: creating keys and a genesis in a directory, starting one node process per masternode
 * (fully meshed with --peer), showing each node's `timenode status` screen (node/status.ts),
 * read over their RPC with their cookies, writing devnet.json for
 * tools and tests, and stopping everything cleanly on Ctrl-C.
 * Must never: leave child processes behind; every exit path stops them.
 */
import { getLogger } from "@logtape/logtape";
import { toHex } from "../encoding/binary.ts";
import { createKeyFile, NODE_KEY_FILE } from "../crypto/node_key.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { genesisHash } from "../chain/genesis.ts";
import { genesisToJson, makeDevnetGenesis } from "../chain/genesis_tool.ts";
import { createWallet, WALLET_FILE } from "../wallet/file.ts";
import type { CliCommand } from "./cli.ts";
import { shutdownSignals } from "./signals.ts";
import { callRpc, cookieAuthorization } from "./rpc_client.ts";
import { fetchStatus, renderStatus } from "./status.ts";

const log = getLogger(["timenode", "node"]);

/** Status refresh on a terminal (redrawn in place): once a second, the default block interval. */
const STATUS_INTERVAL_MS = 1_000;
/** Into a file or pipe every screen is kept, so less often. */
const STATUS_INTERVAL_NOT_TTY_MS = 10_000;
/** How long nodes get to exit after SIGTERM before they are killed. */
const STOP_GRACE_MS = 10_000;

export interface DevnetNodeInfo {
  id: string;
  p2p: string;
  rpc: string;
  dataDir: string;
  log: string;
  /**
   * The node's wallet file, funded in genesis; also its reward address and the owner of its
   * collateral (makeDevnetGenesis adds the collateral to this wallet's allocation and block 1
   * locks it).
   */
  wallet?: string;
  /** The wallet's address. */
  address?: string;
}

/** What each devnet wallet holds at genesis: plenty for floods of test transfers. */
export const DEVNET_WALLET_FUNDS = "1000000";

export interface DevnetManifest {
  genesis: string;
  genesisHash: string;
  nodes: DevnetNodeInfo[];
}

/**
 * The permissions timenode runs with (the same as deno.json's `start` task): network, its data
 * dir, env and system info for defaults and metrics, and run for the devnet's child nodes.
 */
export const RUN_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-run",
];

/** The command that starts this same program: the compiled binary, or deno running main.ts. */
export function selfCommand(): string[] {
  const exec = Deno.execPath();
  const main = new URL("../main.ts", import.meta.url);
  const isDeno = /(^|\/)deno(\.exe)?$/.test(exec);
  if (!isDeno) return [exec];
  return [
    exec,
    "run",
    ...RUN_PERMISSIONS,
    main.protocol === "file:" ? main.pathname : main.href,
  ];
}

/**
 * Creates keys, genesis and devnet.json in `dir`; a `dir` that already holds a devnet.json is
 * reused as it is, so the same devnet (keys, genesis, chains) can be stopped and restarted.
 */
export async function prepareDevnet(opts: {
  dir: string;
  nodes: number;
  basePort: number;
  blockIntervalMs: number;
}): Promise<DevnetManifest> {
  await Deno.mkdir(opts.dir, { recursive: true, mode: 0o700 });
  try {
    const existing = JSON.parse(
      await Deno.readTextFile(`${opts.dir}/devnet.json`),
    ) as DevnetManifest;
    log.info(
      "restarting the devnet in {dir} ({n} nodes; --nodes and ports come from devnet.json)",
      {
        dir: opts.dir,
        n: existing.nodes.length,
      },
    );
    return existing;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const nodes: DevnetNodeInfo[] = [];
  const keys = [];
  for (let i = 0; i < opts.nodes; i++) {
    const dataDir = `${opts.dir}/node-${i}`;
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const key = generateKeyPair();
    await createKeyFile(`${dataDir}/${NODE_KEY_FILE}`, key);
    keys.push(key);
    const walletFile = `${dataDir}/${WALLET_FILE}`;
    const wallet = await createWallet(walletFile, "devnet");
    nodes.push({
      id: toHex(key.publicKey),
      p2p: `127.0.0.1:${opts.basePort + 2 * i}`,
      rpc: `http://127.0.0.1:${opts.basePort + 2 * i + 1}`,
      dataDir,
      log: `${dataDir}/node.log`,
      wallet: walletFile,
      address: wallet.address,
    });
  }
  const genesis = makeDevnetGenesis({
    network: "devnet",
    blockIntervalMs: opts.blockIntervalMs,
    nodes: keys.map((k, i) => ({
      publicKey: k.publicKey,
      address: nodes[i].p2p,
      rewardAddress: nodes[i].address,
    })),
    alloc: Object.fromEntries(nodes.map((n) => [n.address!, DEVNET_WALLET_FUNDS])),
  });
  const genesisPath = `${opts.dir}/genesis.json`;
  await Deno.writeTextFile(genesisPath, genesisToJson(genesis));
  const manifest: DevnetManifest = {
    genesis: genesisPath,
    genesisHash: toHex(genesisHash(genesis)),
    nodes,
  };
  await Deno.writeTextFile(`${opts.dir}/devnet.json`, JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/** Flags that start node `i` of a devnet. */
export function devnetNodeArgs(m: DevnetManifest, i: number, extra: string[] = []): string[] {
  const n = m.nodes[i];
  return [
    "run",
    "--network",
    "devnet",
    "--genesis",
    m.genesis,
    "--data-dir",
    n.dataDir,
    "--listen",
    n.p2p,
    "--rpc",
    n.rpc.replace("http://", ""),
    ...m.nodes.filter((_, j) => j !== i).flatMap((o) => ["--peer", o.p2p]),
    "--exit-on-stdin-close",
    ...extra,
  ];
}

export async function runDevnet(cmd: Extract<CliCommand, { kind: "devnet" }>): Promise<number> {
  // From the first moment to the last: Ctrl-C reaches this runner and every node at once, and
  // `deno task` forwards it a second time; neither may cut the shutdown short.
  const signals = shutdownSignals();
  try {
    return await runDevnetUntilStopped(cmd, signals.received);
  } finally {
    signals.dispose();
  }
}

async function runDevnetUntilStopped(
  cmd: Extract<CliCommand, { kind: "devnet" }>,
  stopSignal: Promise<Deno.Signal>,
): Promise<number> {
  const dir = cmd.dir ?? await Deno.makeTempDir({ prefix: "timenode-devnet-" });
  const manifest = await prepareDevnet({ ...cmd, dir });
  log.info("devnet of {n} masternodes in {dir} (genesis {hash})", {
    n: manifest.nodes.length,
    dir,
    hash: manifest.genesisHash.slice(0, 16),
  });
  const self = selfCommand();
  const children: Deno.ChildProcess[] = [];
  const logFiles: Deno.FsFile[] = [];
  for (let i = 0; i < manifest.nodes.length; i++) {
    const file = await Deno.open(manifest.nodes[i].log, {
      create: true,
      append: true,
      write: true,
    });
    logFiles.push(file);
    const child = new Deno.Command(self[0], {
      args: [
        ...self.slice(1),
        ...devnetNodeArgs(manifest, i, [
          "--log-level",
          cmd.logLevel,
          "--log-format",
          cmd.logFormat,
        ]),
      ],
      // The node exits when this pipe closes, i.e. when this runner is gone, however it died.
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Both streams go to one file; a WritableStream takes one pipe at a time, so copy by hand.
    copyInto(child.stdout, file);
    copyInto(child.stderr, file);
    children.push(child);
  }
  console.log(`devnet.json: ${dir}/devnet.json — node logs in ${dir}/node-*/node.log`);
  const [sender, recipient] = manifest.nodes;
  if (sender?.wallet && recipient?.address) {
    console.log(
      `Each node has a funded wallet (node-*/wallet.json). Send a transfer:\n` +
        `  timenode wallet send --network devnet --data-dir ${sender.dataDir} ` +
        `--rpc ${sender.rpc.replace("http://", "")} --to ${recipient.address} --amount 12.5 --wait`,
    );
  }
  console.log("Ctrl-C stops every node.");

  const exited = Promise.race(children.map((c, i) => c.status.then((s) => ({ i, s }))));
  let running = true;
  const tty = Deno.stdout.isTerminal();
  const statusLoop = (async () => {
    while (running) {
      await printStatus(manifest, tty);
      const until = Date.now() + (tty ? STATUS_INTERVAL_MS : STATUS_INTERVAL_NOT_TTY_MS);
      // Short naps, so a Ctrl-C is not kept waiting for a whole interval.
      while (running && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const first = await Promise.race([stopSignal.then(() => null), exited]);
  running = false;
  // A node that exits 0 on its own was told to stop (a Ctrl-C reaches the nodes too, and may
  // be handled there first): the devnet stops with it, and that is not a failure.
  if (first && !first.s.success) {
    log.error("node {i} exited with code {code}; stopping the devnet", {
      i: first.i,
      code: first.s.code,
    });
  } else {
    log.info("stopping the devnet");
  }
  await statusLoop;
  const statuses = await stopChildren(children);
  for (const f of logFiles) {
    try {
      f.close();
    } catch {
      // Closed by the pipe already.
    }
  }
  const unclean = statuses.flatMap((s, i) => s.success ? [] : [{ i, s }]);
  for (const { i, s } of unclean) {
    log.error("node {i} did not stop cleanly: exit code {code}, signal {signal}", {
      i,
      code: s.code,
      signal: s.signal,
    });
  }
  console.log(unclean.length === 0 ? "devnet stopped" : "devnet stopped, not cleanly");
  return unclean.length === 0 ? 0 : 1;
}

async function copyInto(stream: ReadableStream<Uint8Array>, file: Deno.FsFile): Promise<void> {
  try {
    for await (const chunk of stream) {
      let off = 0;
      while (off < chunk.length) off += await file.write(chunk.subarray(off));
    }
  } catch {
    // The node exited or the file was closed at shutdown: nothing more to copy.
  }
}

/** SIGTERM to every node, SIGKILL to any still running after the grace period. */
async function stopChildren(children: Deno.ChildProcess[]): Promise<Deno.CommandStatus[]> {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch {
      // Already exited.
    }
  }
  return await Promise.all(children.map(async (c) => {
    const t = setTimeout(() => {
      try {
        c.kill("SIGKILL");
      } catch {
        // Exited in the meantime.
      }
    }, STOP_GRACE_MS);
    const status = await c.status;
    clearTimeout(t);
    return status;
  }));
}

/** Every node's `timenode status` screen (node/status.ts), one after another. */
async function printStatus(m: DevnetManifest, tty: boolean): Promise<void> {
  const blocks = await Promise.all(m.nodes.map(async (n, i) => {
    const title = `node-${i} ${n.rpc}`;
    try {
      const authorization = await cookieAuthorization(n.dataDir);
      const s = await fetchStatus((method) => callRpc(n.rpc, authorization, method, [], 800));
      return [title, ...renderStatus(s).map((l) => `  ${l}`)].join("\n");
    } catch {
      return `${title}\n  (starting)`;
    }
  }));
  const clear = tty ? "\x1b[2J\x1b[H" : "";
  console.log(
    `${clear}[${new Date().toISOString().slice(11, 19)}] Ctrl-C stops every node\n` +
      blocks.join("\n"),
  );
}
