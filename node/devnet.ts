/**
 * `timenode devnet`: a local network of N masternodes on loopback, in one command.
 *
 * Owns: creating keys and a genesis in a directory, starting one node process per masternode
 * (fully meshed with --peer), showing a live status from their RPC, writing devnet.json for
 * tools and tests, and stopping everything cleanly on Ctrl-C.
 * Must never: leave child processes behind; every exit path stops them.
 */
import { getLogger } from "@logtape/logtape";
import { toHex } from "../encoding/binary.ts";
import { encodeKeyFile, NODE_KEY_FILE } from "../crypto/node_key.ts";
import { generateKeyPair } from "../crypto/ed25519.ts";
import { genesisHash } from "../chain/genesis.ts";
import { genesisToJson, makeDevnetGenesis } from "../chain/genesis_tool.ts";
import { createWallet, WALLET_FILE } from "../wallet/file.ts";
import type { CliCommand } from "./cli.ts";

const log = getLogger(["timenode", "node"]);

/** Status refresh: once a second matches the default 1 s block interval. */
const STATUS_INTERVAL_MS = 1_000;
/** How long nodes get to exit after SIGTERM before they are killed. */
const STOP_GRACE_MS = 10_000;

export interface DevnetNodeInfo {
  id: string;
  p2p: string;
  rpc: string;
  dataDir: string;
  log: string;
  /** The node's wallet file, funded in genesis; also its reward address. */
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
    await Deno.writeTextFile(`${dataDir}/${NODE_KEY_FILE}`, encodeKeyFile(key), { mode: 0o600 });
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
        `  timenode wallet send --network devnet --wallet ${sender.wallet} ` +
        `--rpc ${sender.rpc.replace("http://", "")} --to ${recipient.address} --amount 12.5 --wait`,
    );
  }
  console.log("Ctrl-C stops every node.");

  const stop = new Promise<void>((resolve) => {
    const handler = () => {
      Deno.removeSignalListener("SIGINT", handler);
      Deno.removeSignalListener("SIGTERM", handler);
      resolve();
    };
    Deno.addSignalListener("SIGINT", handler);
    Deno.addSignalListener("SIGTERM", handler);
  });
  const exited = Promise.race(children.map((c, i) => c.status.then((s) => ({ i, s }))));
  let running = true;
  const statusLoop = (async () => {
    while (running) {
      await printStatus(manifest);
      await new Promise((r) => setTimeout(r, STATUS_INTERVAL_MS));
    }
  })();
  const first = await Promise.race([stop.then(() => null), exited]);
  running = false;
  if (first) {
    log.error("node {i} exited with code {code}; stopping the devnet", {
      i: first.i,
      code: first.s.code,
    });
  }
  await statusLoop;
  await stopChildren(children);
  for (const f of logFiles) {
    try {
      f.close();
    } catch {
      // Closed by the pipe already.
    }
  }
  console.log("devnet stopped");
  return first ? 1 : 0;
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

async function stopChildren(children: Deno.ChildProcess[]): Promise<void> {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch {
      // Already exited.
    }
  }
  await Promise.all(children.map(async (c) => {
    const t = setTimeout(() => {
      try {
        c.kill("SIGKILL");
      } catch {
        // Exited in the meantime.
      }
    }, STOP_GRACE_MS);
    await c.status;
    clearTimeout(t);
  }));
}

async function rpcCall(url: string, method: string): Promise<unknown> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: [] }),
    signal: AbortSignal.timeout(800),
  });
  const body = await res.json();
  return body.result;
}

async function printStatus(m: DevnetManifest): Promise<void> {
  const rows = await Promise.all(m.nodes.map(async (n, i) => {
    try {
      const [chain, cons, peers] = await Promise.all([
        rpcCall(n.rpc, "getblockchaininfo") as Promise<
          { height: number; bestTime: number; syncState: string }
        >,
        rpcCall(n.rpc, "getconsensusinfo") as Promise<{ round: number; step: string }>,
        rpcCall(n.rpc, "getconnectioncount") as Promise<number>,
      ]);
      const age = chain.height > 0 ? ((Date.now() - chain.bestTime) / 1000).toFixed(1) + "s" : "-";
      return `node-${i} ${n.id.slice(0, 8)} height=${chain.height} peers=${peers} round=${
        cons?.round ?? "-"
      } ` +
        `step=${cons?.step ?? "-"} last-block=${age} ${chain.syncState}`;
    } catch {
      return `node-${i} ${n.id.slice(0, 8)} (starting)`;
    }
  }));
  console.log(`[${new Date().toISOString().slice(11, 19)}]\n  ${rows.join("\n  ")}`);
}
