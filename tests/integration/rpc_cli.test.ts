/**
 * `timenode rpc`, `timenode status` and `deno task timenode` as an operator runs them, against
 * a real devnet: output, exit codes (0, 1, 2, 3) and the hints when no node answers.
 */
import assert from "node:assert/strict";
import { startDevnet, waitAllAtHeight } from "../support/devnet.ts";
import { pollUntil } from "../support/cluster.ts";
import type { DevnetNodeInfo } from "../../node/devnet.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function timenode(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The flags that point the client at devnet node `n`. */
function at(n: DevnetNodeInfo): string[] {
  return ["--network", "devnet", "--data-dir", n.dataDir, "--rpc", n.rpc.replace("http://", "")];
}

Deno.test("timenode rpc and status against a devnet: results, errors, usage, and a node that is down", async () => {
  const devnet = await startDevnet(2, 400);
  const n0 = devnet.manifest.nodes[0];
  try {
    await waitAllAtHeight(devnet.nodes, 2);

    const count = await timenode("rpc", ...at(n0), "getblockcount");
    assert.equal(count.code, 0, count.stderr);
    assert.ok(Number(count.stdout.trim()) >= 2);

    // Positional JSON, pretty printed.
    const block = await timenode("rpc", ...at(n0), "getblock", "1");
    assert.equal(block.code, 0, block.stderr);
    assert.equal(JSON.parse(block.stdout).height, 1);
    assert.match(block.stdout, /^{\n {2}"height": 1,/);
    // Named params.
    const named = await timenode("rpc", ...at(n0), "getbalance", "address=nobody");
    assert.deepEqual(JSON.parse(named.stdout), { address: "nobody", balance: "0" });
    // Text results print as text.
    const help = await timenode("rpc", ...at(n0), "help", "getblock");
    assert.match(help.stdout, /^getblock block\n/);

    const missing = await timenode("rpc", ...at(n0), "getblock", "999999");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error -5: block not found/);
    assert.equal(missing.stdout, "");

    const usage = await timenode("rpc", ...at(n0));
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /METHOD required/);

    const status = await timenode("status", ...at(n0));
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^network {5}devnet, genesis /m);
    assert.match(status.stdout, /^chain {7}height \d+, last block [\d.]+ s ago/m);
    assert.match(status.stdout, /^peers {7}1 \(/m);
    assert.match(status.stdout, /^masternode {2}validator, power 1 of 2$/m);
    assert.match(status.stdout, /^warnings {4}none$/m);

    // --watch redraws until Ctrl-C, then exits 0.
    const watch = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "status", "--watch", ...at(n0)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = watch.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let screen = "";
    while (!/^warnings/m.test(screen)) {
      const { value, done } = await reader.read();
      if (done) break;
      screen += value;
    }
    assert.match(screen, /^consensus {3}height \d+, round \d+, step /m);
    watch.kill("SIGINT");
    while (!(await reader.read()).done) { /* drain */ }
    assert.equal((await watch.status).code, 0);

    // `stop` over RPC stops the node cleanly, like SIGTERM.
    const stop = await timenode("rpc", ...at(n0), "stop");
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout.trim(), "timenode stopping");
    assert.equal(await devnet.nodes[0].exited(), 0);
    await assert.rejects(Deno.stat(`${n0.dataDir}/.cookie`), Deno.errors.NotFound);
    assert.ok(devnet.nodes[0].logs.some((e) => e.message === "stopped cleanly"));

    const down = await timenode("rpc", ...at(n0), "getblockcount");
    assert.equal(down.code, 3);
    assert.match(down.stderr, new RegExp(`no node answered at ${n0.rpc}`));
    assert.match(down.stderr, /no cookie at .*node-0\/\.cookie/);
    const downStatus = await timenode("status", ...at(n0));
    assert.equal(downStatus.code, 3);

    // The other node notices its only peer is gone.
    const n1 = devnet.manifest.nodes[1];
    const alone = await pollUntil(async () => {
      const s = await timenode("status", ...at(n1));
      return s.stdout.includes("no peers") ? s : null;
    }, "node-1's status to warn about no peers");
    assert.match(alone.stdout, /^warnings {4}no peers/m);
  } finally {
    await devnet.stop();
  }
});

Deno.test("deno task timenode runs any command with the node's permissions", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "timenode", "help", "keygen"],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(new TextDecoder().decode(out.stdout), /^Create a node key/);
});
