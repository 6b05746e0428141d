/**
 * The operator's side of real timenode processes: the config file and `timenode config`, the
 * one-shot commands' errors, start-up errors that name their flag, `/health` on a stalled chain,
 * and a devnet stopped by Ctrl-C in a terminal (SIGINT to the whole process group, twice).
 */
import assert from "node:assert/strict";
import { freePort, NodeProcess, pollUntil, rpcCall, tempDir } from "../support/cluster.ts";
import { freePortRange, startDevnet, waitAllAtHeight, waitForManifest } from "../support/devnet.ts";
import { RUN_PERMISSIONS } from "../../node/devnet.ts";
import { TIMENODE_VERSION } from "../../version.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `timenode ARGS` to completion (for commands that exit by themselves). */
async function timenode(args: string[], cwd?: string): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...RUN_PERMISSIONS, MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Exit 2 with exactly one line on stderr that matches `re`, and no stack trace. */
function assertUsageError(r: Result, re: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

// ---------------------------------------------------------------------------------------------
// Config file

Deno.test("config file: the command line beats the file, the file beats defaults; errors name key and line", async () => {
  const dir = await tempDir("config");
  const [p2p, rpcFile, rpcFlag] = [freePort(), freePort(), freePort()];
  const file = `${dir}/node.toml`;
  await Deno.writeTextFile(
    file,
    [
      "# a node of the devnet",
      'network = "devnet"',
      `data-dir = "${dir}/data"`,
      `listen = "127.0.0.1:${p2p}"`,
      `rpc = "127.0.0.1:${rpcFile}"`,
      "max-inbound = 40",
      'log-format = "json"',
    ].join("\n") + "\n",
  );
  const node = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...RUN_PERMISSIONS,
      MAIN,
      "run",
      "--config",
      file,
      "--rpc",
      `127.0.0.1:${rpcFlag}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(node.stderr).text();
  try {
    // The flag's RPC address answers; the file's listen address and log format are in use.
    const info = await pollUntil(
      () =>
        rpcCall<{ listen: string; network: string }>(
          { rpc: `http://127.0.0.1:${rpcFlag}`, dataDir: `${dir}/data` },
          "getnetworkinfo",
        ),
      "the node's RPC on the flag's address",
    );
    assert.equal(info.network, "devnet");
    assert.equal(info.listen, `127.0.0.1:${p2p}`);
    await assert.rejects(
      fetch(`http://127.0.0.1:${rpcFile}/health`, { signal: AbortSignal.timeout(2_000) }),
      "nothing on the file's RPC address",
    );
  } finally {
    node.kill("SIGTERM");
    assert.equal((await node.status).code, 0);
    const log = await stderr;
    assert.match(log.split("\n")[0], /^\{.*"message":/, "JSON lines, as the file says");
  }

  // `timenode config` says the same, with where each value came from.
  const shown = await timenode(["config", "--config", file, "--rpc", `127.0.0.1:${rpcFlag}`]);
  assert.equal(shown.code, 0, shown.stderr);
  const line = (key: string) => shown.stdout.split("\n").find((l) => l.startsWith(`${key} =`));
  assert.match(line("network")!, new RegExp(`# file ${file}:2$`));
  assert.match(line("listen")!, new RegExp(`= "127\\.0\\.0\\.1:${p2p}" +# file ${file}:4$`));
  assert.match(line("rpc")!, new RegExp(`= "127\\.0\\.0\\.1:${rpcFlag}" +# flag --rpc$`));
  assert.match(line("max-inbound")!, /= 40 +# file .*:6$/);
  assert.match(line("max-outbound")!, /= 8 +# default$/);
  assert.match(shown.stdout, new RegExp(`# config file: ${file}`));

  // DATA_DIR/timenode.toml is read without --config.
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  await Deno.writeTextFile(`${dir}/data/timenode.toml`, "max-outbound = 3\n");
  const implicit = await timenode(["config", "--data-dir", `${dir}/data`]);
  assert.equal(implicit.code, 0, implicit.stderr);
  assert.match(implicit.stdout, new RegExp(`max-outbound = 3 +# file ${dir}/data/timenode.toml:1`));

  // Unknown keys, wrong types and bad values: exit 2, one line naming file, line and key.
  await Deno.writeTextFile(file, 'network = "devnet"\n\nmax_inbound = 4\n');
  assertUsageError(
    await timenode(["run", "--config", file]),
    /node\.toml:3: max_inbound: unknown key/,
  );
  await Deno.writeTextFile(file, 'network = "devnet"\nmax-inbound = "4"\n');
  assertUsageError(
    await timenode(["config", "--config", file]),
    /node\.toml:2: max-inbound: expected a whole number, got a string/,
  );
  await Deno.writeTextFile(file, '\npeer = ["10.0.0.1"]\n');
  assertUsageError(
    await timenode(["run", "--config", file]),
    /node\.toml:2: peer: .*missing :PORT/,
  );
  assertUsageError(
    await timenode(["run", "--config", `${dir}/none.toml`]),
    /--config: .*no such file/,
  );
  await Deno.remove(dir, { recursive: true });
});

// ---------------------------------------------------------------------------------------------
// One-shot commands

Deno.test("genesis and keygen: one-line errors with exit 2, --force to overwrite, --show", async () => {
  const dir = await tempDir("commands");
  try {
    const made = await timenode(["keygen", "--out", `${dir}/mn1.json`]);
    assert.equal(made.code, 0, made.stderr);
    const { nodeId } = JSON.parse(made.stdout);
    const shown = await timenode(["keygen", "--show", "--out", `${dir}/mn1.json`]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).nodeId, nodeId);
    assert.equal((await timenode(["keygen", "--show", "--out", `${dir}/none.json`])).code, 1);
    const again = await timenode(["keygen", "--out", `${dir}/mn1.json`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /refusing to overwrite/);

    assertUsageError(
      await timenode(["genesis", "--key", "deadbeef", "--out", `${dir}/g.json`]),
      /^timenode: --key: "deadbeef" is not a node id \(64 hex characters, got 8\) nor a key file$/,
    );
    assertUsageError(
      await timenode([
        "genesis",
        "--key",
        `${dir}/mn1.json`,
        "--key",
        nodeId,
        "--out",
        `${dir}/g.json`,
      ]),
      /^timenode: --key: masternode [0-9a-f]{16}… given twice/,
    );
    const out = `${dir}/g.json`;
    const first = await timenode(["genesis", "--key", `${dir}/mn1.json`, "--out", out]);
    assert.equal(first.code, 0, first.stderr);
    const written = await Deno.readTextFile(out);
    assert.equal(JSON.parse(written).network, "mainnet", "the same default network as run");
    assertUsageError(
      await timenode(["genesis", "--key", nodeId, "--out", out, "--network", "other"]),
      /--out: .*g\.json exists; pass --force to replace it/,
    );
    assert.equal(await Deno.readTextFile(out), written, "left untouched");
    const forced = await timenode([
      "genesis",
      "--key",
      nodeId,
      "--out",
      out,
      "--network",
      "other",
      "--force",
    ]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(await Deno.readTextFile(out)).network, "other");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--version names the version, the commit and the Deno version", async () => {
  const r = await timenode(["--version"]);
  assert.equal(r.code, 0);
  assert.match(
    r.stdout.trim(),
    new RegExp(
      `^timenode ${
        TIMENODE_VERSION.replaceAll(".", "\\.")
      } \\(commit ([0-9a-f]{12}|unknown), deno ${Deno.version.deno.replaceAll(".", "\\.")}\\)$`,
    ),
  );
});

// ---------------------------------------------------------------------------------------------
// Start-up errors

Deno.test("a busy port or an unusable data dir names the flag and the fix", async () => {
  const dir = await tempDir("busy");
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busy = (held.addr as Deno.NetAddr).port;
  try {
    const base = ["run", "--network", "devnet", "--data-dir", `${dir}/d`];
    const p2p = await timenode([...base, "--listen", `127.0.0.1:${busy}`, "--rpc", "off"]);
    assert.equal(p2p.code, 1);
    assert.match(
      p2p.stderr,
      new RegExp(
        `--listen 127\\.0\\.0\\.1:${busy}: address already in use.*give --listen another port`,
      ),
    );
    const rpc = await timenode([...base, "--listen", "off", "--rpc", `127.0.0.1:${busy}`]);
    assert.equal(rpc.code, 1);
    assert.match(
      rpc.stderr,
      new RegExp(`--rpc 127\\.0\\.0\\.1:${busy}: address already in use.*give --rpc another port`),
    );
    await Deno.writeTextFile(`${dir}/a-file`, "not a directory\n");
    const file = await timenode(["run", "--network", "devnet", "--data-dir", `${dir}/a-file`]);
    assert.equal(file.code, 1);
    assert.match(file.stderr, /--data-dir .*a-file: exists and is not a directory/);
    for (const r of [p2p, rpc, file]) assert.doesNotMatch(r.stderr, /os error \d+\)"?$/m);
  } finally {
    held.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// A stalled chain

interface Health {
  ok: boolean;
  problems: string[];
  peers: number;
}

async function health(n: NodeProcess): Promise<{ status: number; body: Health }> {
  const res = await fetch(`${n.rpcUrl}/health`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.json() };
}

Deno.test("/health answers 503 naming the missing voters when a 3-member chain stalls with peers connected", async () => {
  const stall = ["--stall-blocks", "3"];
  const devnet = await startDevnet(3, 1_000, stall);
  const ids = devnet.manifest.nodes.map((n) => n.id);
  // A non-member connected to node 0: the survivor keeps a peer once the others are gone.
  const follower = new NodeProcess({
    name: "follower",
    dataDir: `${devnet.dir}/follower`,
    p2pPort: freePort(),
    rpcPort: freePort(),
    genesis: devnet.manifest.genesis,
    peers: [devnet.manifest.nodes[0].p2p],
    extra: stall,
    logLevel: "info",
  });
  follower.start();
  const survivor = devnet.nodes[0];
  try {
    await waitAllAtHeight([...devnet.nodes, follower], 2, 60_000);
    await survivor.waitFor(async () => (await health(survivor)).status === 200, "healthy");
    const validator = await survivor.waitForLog(
      (e) => e.message.startsWith("this node is a validator from height"),
      "becoming a validator is logged",
    );
    assert.equal(validator.level, "INFO");

    await Promise.all([devnet.nodes[1].stop(), devnet.nodes[2].stop()]);
    // Reported as soon as no block came for 3 intervals; the missing voters are named once the
    // round owes votes (past its propose step).
    const missing = ids.slice(1).map((id) => id.slice(0, 16));
    const reason = await survivor.waitFor(
      async () => {
        const h = await health(survivor);
        const stall = h.body.problems.find((p) => p.startsWith("chain stalled"));
        assert.ok(stall === undefined || h.body.peers >= 1, "a stall is only reported with peers");
        return h.status === 503 && stall && missing.every((m) => stall.includes(m)) && stall;
      },
      "/health 503 naming both stopped members",
      60_000,
    );
    assert.ok(!reason.includes(ids[0].slice(0, 16)), "the survivor itself is not missing");

    const info = await survivor.rpc<{ missingVotes: string[] }>("getconsensusinfo");
    assert.deepEqual([...info.missingVotes].sort(), ids.slice(1).sort());
    await survivor.waitForLog(
      (e) =>
        e.level === "WARN" && /chain stalled/.test(e.message) &&
        [...(e.properties.missingVotes as string[])].sort().join() === ids.slice(1).sort().join(),
      "the stall warning naming both stopped members",
    );
  } finally {
    await follower.stop();
    await devnet.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// Ctrl-C in a terminal

Deno.test("deno task devnet: Ctrl-C to the process group (twice) stops every node cleanly and exits 0", async () => {
  const dir = await tempDir("ctrlc");
  const basePort = freePortRange(6);
  // setsid: its own process group, as a shell gives a foreground job; the group's id is its pid.
  const runner = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "devnet", "--dir", dir, "--base-port", String(basePort)],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = Promise.all([
    new Response(runner.stdout).text(),
    new Response(runner.stderr).text(),
  ]);
  let status: Deno.CommandStatus | null = null;
  try {
    const manifest = await waitForManifest(dir);
    for (const n of manifest.nodes) {
      await pollUntil(
        async () => (await rpcCall<number>(n, "getblockcount")) >= 2,
        `${n.p2p} producing blocks`,
        60_000,
      );
    }
    // The terminal signals the whole group; `deno task` forwards one more to the runner.
    Deno.kill(-runner.pid, "SIGINT");
    Deno.kill(-runner.pid, "SIGINT");
    status = await runner.status;
    const [out, err] = await output;
    assert.equal(status.code, 0, `${out}\n${err}`);
    assert.match(out, /^devnet stopped$/m);
    for (const n of manifest.nodes) {
      const log = await Deno.readTextFile(n.log);
      assert.match(log, /stopped cleanly/, n.log);
      assert.doesNotMatch(log, / (ERROR|FATAL) /, n.log);
    }
  } finally {
    if (status === null) {
      try {
        Deno.kill(-runner.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
      await runner.status;
      await output;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
