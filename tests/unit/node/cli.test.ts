import assert from "node:assert/strict";
import {
  type CliCommand,
  type CliEnv,
  helpText,
  parseCli,
  RUN_CONFIG_SPEC,
  UsageError,
} from "../../../node/cli.ts";
import { DEFAULTS, type NodeConfig } from "../../../node/config.ts";

const ENV: CliEnv = { HOME: "/home/op" };

function run(...argv: string[]): NodeConfig {
  const cmd = parseCli(argv, ENV);
  assert.equal(cmd.kind, "run");
  return (cmd as Extract<CliCommand, { kind: "run" }>).config;
}

function cmd<K extends CliCommand["kind"]>(kind: K, ...argv: string[]) {
  const c = parseCli(argv, ENV);
  assert.equal(c.kind, kind);
  return c as Extract<CliCommand, { kind: K }>;
}

/** Asserts a UsageError whose message is one line, starts with `prefix` and matches `re`. */
function usageError(argv: string[], prefix: string, re?: RegExp, env = ENV): void {
  assert.throws(
    () => parseCli(argv, env),
    (e: unknown) => {
      assert.ok(e instanceof UsageError, `expected UsageError for ${JSON.stringify(argv)}`);
      assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
      assert.ok(e.message.startsWith(prefix), `"${e.message}" starts with "${prefix}"`);
      if (re) assert.match(e.message, re);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// run

Deno.test("run: no flags gives the mainnet defaults", () => {
  const expected: NodeConfig = {
    network: "mainnet",
    genesisFile: null,
    dataDir: "/home/op/.timenode/mainnet",
    listen: { host: "0.0.0.0", port: 24100 },
    peers: [],
    rpc: { host: "127.0.0.1", port: 24101 },
    rpcAuth: [],
    rpcAllowIps: [],
    rpcAllowHosts: [],
    rpcAuthMetrics: false,
    maxInbound: 117,
    maxOutbound: 8,
    pingIntervalMs: DEFAULTS.pingIntervalMs,
    pongTimeoutMs: DEFAULTS.pongTimeoutMs,
    stallBlocks: 10,
    logLevel: "info",
    logFormat: "text",
    exitOnStdinClose: false,
  };
  assert.deepEqual(run(), expected);
  assert.deepEqual(run("run"), expected, "the run word is optional");
});

Deno.test("run: --network picks the network, its data dir and its ports", () => {
  const t = run("--network", "testnet");
  assert.equal(t.network, "testnet");
  assert.equal(t.dataDir, "/home/op/.timenode/testnet");
  assert.deepEqual(t.listen, { host: "0.0.0.0", port: 24200 });
  assert.deepEqual(t.rpc, { host: "127.0.0.1", port: 24201 });
  assert.equal(run("--network=devnet").network, "devnet");
  usageError(["--network", "moonnet"], "--network:", /mainnet, testnet, devnet.*"moonnet"/);
  usageError(["--network"], "--network:", /missing value/);
});

Deno.test("run: --genesis", () => {
  assert.equal(run("--genesis", "./g.json").genesisFile, "./g.json");
  usageError(["--genesis", ""], "--genesis:", /non-empty/);
  usageError(["--genesis"], "--genesis:", /missing value/);
});

Deno.test("run: --data-dir, with ~ expanded and HOME required only for the default", () => {
  assert.equal(run("--data-dir", "/var/lib/timenode").dataDir, "/var/lib/timenode");
  assert.equal(run("--data-dir=~/tn").dataDir, "/home/op/tn");
  assert.equal(run("--data-dir", "~").dataDir, "/home/op");
  assert.equal(run("--data-dir", "rel/dir").dataDir, "rel/dir");
  const noHome = parseCli(["--data-dir", "/d"], {});
  assert.equal(noHome.kind === "run" && noHome.config.dataDir, "/d");
  usageError([], "--data-dir:", /HOME is not set/, {});
  usageError(["--data-dir=~/x"], "--data-dir:", /HOME/, {});
  usageError(["--data-dir", ""], "--data-dir:", /non-empty/);
});

Deno.test("run: --listen takes IPv4, bracketed IPv6, hostnames, port 0 and off", () => {
  assert.deepEqual(run("--listen", "127.0.0.1:24100").listen, { host: "127.0.0.1", port: 24100 });
  assert.deepEqual(run("--listen", "[::1]:24100").listen, { host: "::1", port: 24100 });
  assert.deepEqual(run("--listen", "[::]:1").listen, { host: "::", port: 1 });
  assert.deepEqual(run("--listen", "localhost:65535").listen, { host: "localhost", port: 65535 });
  assert.deepEqual(run("--listen", "127.0.0.1:0").listen, { host: "127.0.0.1", port: 0 });
  assert.equal(run("--listen", "off").listen, null);
  usageError(["--listen", "127.0.0.1"], "--listen:", /HOST:PORT.*missing :PORT/);
  usageError(["--listen", "127.0.0.1:65536"], "--listen:", /port must be 0\.\.65535/);
  usageError(["--listen", "127.0.0.1:-1"], "--listen:", /port/);
  usageError(["--listen", "127.0.0.1:80x"], "--listen:", /port/);
  usageError(["--listen", "::1:24100"], "--listen:", /IPv6 addresses need brackets/);
  usageError(["--listen", "[::1]24100"], "--listen:", /\[IPv6\]:PORT/);
  usageError(["--listen", "[zz::1]:1"], "--listen:", /not a valid IPv6/);
  usageError(["--listen", "300.1.1.1:1"], "--listen:", /not a valid IPv4/);
  usageError(["--listen", "1.2.3:1"], "--listen:", /not a valid IPv4/);
  usageError(["--listen", "bad_host!:1"], "--listen:", /not a valid hostname/);
  usageError(["--listen", ":24100"], "--listen:", /missing HOST/);
  usageError(["--listen", "Off"], "--listen:", /"Off"/);
});

Deno.test("run: --rpc like --listen, defaulting to loopback", () => {
  assert.deepEqual(run("--rpc", "0.0.0.0:9000", "--rpc-allow-ip", "10.0.0.0/8").rpc, {
    host: "0.0.0.0",
    port: 9000,
  });
  assert.deepEqual(run("--rpc", "127.0.0.1:0").rpc, { host: "127.0.0.1", port: 0 });
  assert.deepEqual(run("--rpc", "[::1]:24101").rpc, { host: "::1", port: 24101 });
  assert.equal(run("--rpc", "off").rpc, null);
  usageError(["--rpc", "nowhere"], "--rpc:", /HOST:PORT/);
  usageError(["--rpc", "127.0.0.1:70000"], "--rpc:", /port/);
});

Deno.test("run: --peer is repeatable, normalized and needs a real port", () => {
  assert.deepEqual(
    run("--peer", "10.0.0.1:24100", "--peer", "[2001:db8::1]:24100", "--peer=node.example:1").peers,
    ["10.0.0.1:24100", "[2001:db8::1]:24100", "node.example:1"],
  );
  usageError(["--peer", "10.0.0.1:0"], "--peer:", /port must be 1\.\.65535/);
  usageError(["--peer", "10.0.0.1"], "--peer:", /HOST:PORT/);
  usageError(["--peer", "--rpc"], "--peer:", /missing value/);
  const many = Array.from({ length: 65 }, (_, i) => ["--peer", `10.0.0.${i + 1}:1`]).flat();
  usageError(many, "--peer:", /at most 64/);
});

Deno.test("run: --max-inbound and --max-outbound are bounded whole numbers", () => {
  assert.equal(run("--max-inbound", "0").maxInbound, 0);
  assert.equal(run("--max-inbound", "500").maxInbound, 500);
  assert.equal(run("--max-outbound", "16").maxOutbound, 16);
  assert.equal(run("--max-outbound", "0").maxOutbound, 0);
  usageError(["--max-inbound", "x"], "--max-inbound:", /whole number.*"x"/);
  usageError(["--max-inbound", "-1"], "--max-inbound:", /missing value/);
  usageError(["--max-inbound=-1"], "--max-inbound:", /whole number/);
  usageError(["--max-inbound", "1.5"], "--max-inbound:", /whole number/);
  usageError(["--max-inbound", "4097"], "--max-inbound:", /0 to 4096/);
  usageError(["--max-inbound", ""], "--max-inbound:", /whole number/);
  usageError(["--max-outbound", "1e3"], "--max-outbound:", /whole number/);
  usageError(["--max-outbound", "257"], "--max-outbound:", /0 to 256/);
});

Deno.test("run: --ping-interval and --pong-timeout take seconds, fractions allowed", () => {
  const c = run("--ping-interval", "0.5", "--pong-timeout", "2");
  assert.equal(c.pingIntervalMs, 500);
  assert.equal(c.pongTimeoutMs, 2000);
  assert.equal(run("--ping-interval", ".25").pingIntervalMs, 250);
  assert.equal(run("--pong-timeout", "120").pongTimeoutMs, 120_000);
  usageError(["--ping-interval", "0"], "--ping-interval:", /seconds/);
  usageError(["--ping-interval", "abc"], "--ping-interval:", /"abc"/);
  usageError(["--ping-interval", "1e2"], "--ping-interval:", /seconds/);
  usageError(["--ping-interval", "Infinity"], "--ping-interval:", /seconds/);
  usageError(["--ping-interval", "7200"], "--ping-interval:", /3600/);
  usageError(["--pong-timeout", "0"], "--pong-timeout:", /seconds/);
});

Deno.test("run: the pong timeout must exceed the ping interval", () => {
  usageError(["--pong-timeout", "10"], "--pong-timeout:", /greater than --ping-interval \(30 s\)/);
  usageError(
    ["--ping-interval", "5", "--pong-timeout", "5"],
    "--pong-timeout:",
    /greater than --ping-interval/,
  );
  // Only the interval given: the timeout follows it (three missed pings), so no conflict.
  const c = run("--ping-interval", "60");
  assert.equal(c.pongTimeoutMs, 180_000);
});

Deno.test("run: --log-level and --log-format", () => {
  for (const level of ["trace", "debug", "info", "warning", "error", "fatal"] as const) {
    assert.equal(run("--log-level", level).logLevel, level);
  }
  assert.equal(run("--log-format", "json").logFormat, "json");
  assert.equal(run("--log-format", "text").logFormat, "text");
  usageError(["--log-level", "warn"], "--log-level:", /trace, debug, info, warning, error, fatal/);
  usageError(["--log-format", "xml"], "--log-format:", /text, json/);
});

Deno.test("run: unknown flags, stray arguments and repeated flags are refused", () => {
  usageError(["--max-inbund", "3"], "--max-inbund:", /unknown flag/);
  usageError(["-x"], "-x:", /unknown flag/);
  usageError(["run", "extra"], "unexpected argument", /"extra"/);
  usageError(["frobnicate"], "unknown command", /"frobnicate"/);
  usageError(["--network", "testnet", "--network", "mainnet"], "--network:", /more than once/);
  usageError(["--help=yes"], "--help:", /takes no value/);
});

Deno.test("run: a hostile value is echoed on one line, clipped", () => {
  usageError(["--network", "a\nb"], "--network:", /"a\\nb"/);
  assert.throws(
    () => parseCli(["--network", "x".repeat(10_000)], ENV),
    (e: Error) => e.message.length < 300,
  );
});

// ---------------------------------------------------------------------------------------------
// help and version

Deno.test("--help, -h and help show the overview; help CMD and CMD --help that command", () => {
  for (const argv of [["--help"], ["-h"], ["help"]]) {
    const h = cmd("help", ...argv);
    assert.equal(h.topic, null);
    assert.equal(h.text, helpText(null));
  }
  assert.equal(cmd("help", "run", "--help").topic, "run");
  for (const topic of ["run", "config", "keygen", "genesis", "devnet", "help"] as const) {
    assert.equal(cmd("help", "help", topic).text, helpText(topic));
    assert.equal(cmd("help", topic, "--help").topic, topic);
  }
  // --help wins over invalid values, so a confused operator still gets help.
  assert.equal(cmd("help", "--max-inbound", "x", "--help").topic, null);
  usageError(["help", "nope"], "help:", /unknown command "nope"/);
  usageError(["help", "run", "devnet"], "help:", /at most one/);
});

Deno.test("help texts document every flag with its default", () => {
  const overview = helpText(null);
  // Every flag that has a config key, so a flag added later must be documented too.
  for (const flag of [...Object.keys(RUN_CONFIG_SPEC).map((k) => `--${k}`), "--version"]) {
    assert.ok(overview.includes(flag), flag);
  }
  for (const d of ["0.0.0.0:24100", "127.0.0.1:24101", "117", "~/.timenode/<network>"]) {
    assert.ok(overview.includes(d), d);
  }
  for (const flag of ["--key", "--out", "--address", "--block-interval", "--force"]) {
    assert.ok(helpText("genesis").includes(flag), flag);
  }
  assert.ok(helpText("keygen").includes("--show"));
  for (const flag of ["--nodes", "--dir", "--base-port", "--block-interval"]) {
    assert.ok(helpText("devnet").includes(flag), flag);
  }
  for (const topic of [null, "run", "config", "keygen", "genesis", "devnet"] as const) {
    assert.ok(helpText(topic).includes("Example"), `${topic} has examples`);
    const wide = helpText(topic).split("\n").filter((l) => l.length > 80);
    assert.deepEqual(wide, [], `${topic} fits an 80-column terminal`);
  }
});

Deno.test("--version", () => {
  assert.deepEqual(parseCli(["--version"], ENV), { kind: "version" });
  assert.equal(cmd("version", "run", "--version").kind, "version");
});

// ---------------------------------------------------------------------------------------------
// keygen

Deno.test("keygen: data dir, network default dir, or --out", () => {
  assert.equal(cmd("keygen", "keygen").keyFile, "/home/op/.timenode/mainnet/node_key.json");
  assert.equal(
    cmd("keygen", "keygen", "--network", "testnet").keyFile,
    "/home/op/.timenode/testnet/node_key.json",
  );
  assert.equal(cmd("keygen", "keygen", "--data-dir", "/d/").keyFile, "/d/node_key.json");
  assert.equal(cmd("keygen", "keygen", "--out", "k.json").keyFile, "k.json");
  assert.equal(cmd("keygen", "keygen").show, false);
  assert.deepEqual(cmd("keygen", "keygen", "--show", "--out", "k.json"), {
    kind: "keygen",
    keyFile: "k.json",
    show: true,
  });
  usageError(["keygen", "--out", "k", "--data-dir", "d"], "--out:", /not both/);
  usageError(["keygen", "--out", "k", "--network", "testnet"], "--network:");
  usageError(["keygen", "--out", ""], "--out:", /non-empty/);
  usageError(["keygen", "--network", "x"], "--network:");
  usageError(["keygen", "--listen", "1.2.3.4:5"], "--listen:", /unknown flag for keygen/);
  usageError(["keygen"], "--data-dir:", /HOME/, {});
});

// ---------------------------------------------------------------------------------------------
// genesis

const ID_A = "a".repeat(64);
const ID_B = "0123456789ABCDEF".repeat(4);

Deno.test("genesis: keys as hex ids or key files, with matching addresses", () => {
  const g = cmd(
    "genesis",
    "genesis",
    "--key",
    ID_A,
    "--key",
    ID_B,
    "--key",
    "mn3.key.json",
    "--out",
    "genesis.json",
    "--network",
    "mynet",
    "--block-interval",
    "2.5",
    "--address",
    "10.0.0.1:24100",
    "--address",
    "[2001:db8::2]:24100",
    "--address",
    "mn3.example:24100",
  );
  assert.deepEqual(g, {
    kind: "genesis",
    keys: [
      { kind: "hex", nodeId: ID_A },
      { kind: "hex", nodeId: ID_B.toLowerCase() },
      { kind: "file", path: "mn3.key.json" },
    ],
    out: "genesis.json",
    force: false,
    network: "mynet",
    blockIntervalMs: 2500,
    addresses: ["10.0.0.1:24100", "[2001:db8::2]:24100", "mn3.example:24100"],
    alloc: {},
  });
});

Deno.test("genesis: defaults for network, interval and addresses", () => {
  const g = cmd("genesis", "genesis", "--key", ID_A, "--out", "g.json");
  assert.equal(g.network, "mainnet", "the same default network as run");
  assert.equal(run().network, g.network);
  assert.equal(g.blockIntervalMs, 600_000, "the built-in mainnet interval");
  assert.equal(g.force, false);
  assert.equal(cmd("genesis", "genesis", "--key", ID_A, "--out", "g", "--force").force, true);
  assert.deepEqual(g.addresses, []);
  const t = cmd("genesis", "genesis", "--key", ID_A, "--out", "g.json", "--network", "testnet");
  assert.equal(t.blockIntervalMs, 60_000);
  const c = cmd("genesis", "genesis", "--key", ID_A, "--out", "g.json", "--network", "custom");
  assert.equal(c.blockIntervalMs, 60_000);
});

Deno.test("genesis: errors name the flag", () => {
  usageError(["genesis", "--out", "g"], "--key:", /at least one/);
  usageError(["genesis", "--key", ID_A], "--out:", /required/);
  usageError(
    ["genesis", "--key", "abcdef0123456789abcdef0123456789", "--out", "g"],
    "--key:",
    /64 hex/,
  );
  usageError(
    ["genesis", "--key", ID_A, "--key", ID_A.toUpperCase(), "--out", "g"],
    "--key:",
    /twice/,
  );
  usageError(["genesis", "--key", ID_A, "--out", "g", "--network", "My Net"], "--network:");
  usageError(["genesis", "--key", ID_A, "--out", "g", "--network", "x".repeat(33)], "--network:");
  usageError(
    ["genesis", "--key", ID_A, "--out", "g", "--block-interval", "0.05"],
    "--block-interval:",
  );
  usageError(
    ["genesis", "--key", ID_A, "--out", "g", "--block-interval", "x"],
    "--block-interval:",
  );
  usageError(
    ["genesis", "--key", ID_A, "--key", ID_B, "--out", "g", "--address", "1.2.3.4:5"],
    "--address:",
    /1 given for 2 --key/,
  );
  usageError(["genesis", "--key", ID_A, "--out", "g", "--address", "1.2.3.4:0"], "--address:");
  usageError(
    ["genesis", "--key", ID_A, "--out", "g", "--address", `${"a".repeat(60)}.example:1`],
    "--address:",
    /at most 64/,
  );
  usageError(["genesis", "--key", ID_A, "--out", "g", "--peer", "1.2.3.4:5"], "--peer:", /unknown/);
});

// ---------------------------------------------------------------------------------------------
// devnet

Deno.test("devnet: defaults and every flag", () => {
  assert.deepEqual(cmd("devnet", "devnet"), {
    kind: "devnet",
    nodes: 3,
    dir: null,
    basePort: 24300,
    blockIntervalMs: 1_000,
    logLevel: "info",
    logFormat: "text",
  });
  assert.deepEqual(
    cmd(
      "devnet",
      "devnet",
      "--nodes",
      "16",
      "--dir",
      "/tmp/dn",
      "--base-port",
      "30000",
      "--block-interval",
      "0.5",
      "--log-level",
      "debug",
      "--log-format",
      "json",
    ),
    {
      kind: "devnet",
      nodes: 16,
      dir: "/tmp/dn",
      basePort: 30000,
      blockIntervalMs: 500,
      logLevel: "debug",
      logFormat: "json",
    },
  );
  assert.equal(cmd("devnet", "devnet", "--nodes", "1").nodes, 1);
});

Deno.test("devnet: errors name the flag", () => {
  usageError(["devnet", "--nodes", "0"], "--nodes:", /1 to 16/);
  usageError(["devnet", "--nodes", "17"], "--nodes:", /1 to 16/);
  usageError(["devnet", "--nodes", "three"], "--nodes:");
  usageError(["devnet", "--dir", ""], "--dir:");
  usageError(["devnet", "--base-port", "0"], "--base-port:");
  // The last node's RPC port (base + 2·(n-1) + 1) must still be a valid port.
  usageError(["devnet", "--nodes", "3", "--base-port", "65531"], "--base-port:", /1 to 65530/);
  assert.equal(cmd("devnet", "devnet", "--nodes", "3", "--base-port", "65530").basePort, 65530);
  usageError(["devnet", "--block-interval", "0"], "--block-interval:");
  usageError(["devnet", "--log-level", "loud"], "--log-level:");
  usageError(["devnet", "--log-format", "yaml"], "--log-format:");
  usageError(["devnet", "--network", "testnet"], "--network:", /unknown flag for devnet/);
});

Deno.test("run: a --peer the network layer cannot dial is a usage error", () => {
  usageError(["run", "--peer", "example.org.:24300"], "--peer:", /not a valid hostname/);
  usageError(["run", "--peer", "10.0.0.1:080"], "--peer:", /port must be 1\.\.65535/);
});

Deno.test("run: a non-loopback --rpc needs --rpc-allow-ip; the RPC security flags", () => {
  usageError(["--rpc", "0.0.0.0:9000"], "--rpc:", /--rpc-allow-ip/);
  usageError(["--rpc", "[::]:9000"], "--rpc:", /--rpc-allow-ip/);
  usageError(["--rpc", "node.example:9000"], "--rpc:", /--rpc-allow-ip/);
  assert.equal(run("--rpc", "localhost:9000").rpcAllowIps.length, 0);
  assert.equal(run("--rpc", "127.0.0.2:9000").rpcAllowIps.length, 0);
  const c = run(
    "--rpc=[::]:9000",
    "--rpc-allow-ip",
    "10.0.0.0/8",
    "--rpc-allow-ip",
    "2001:db8::/32",
    "--rpc-allow-ip",
    "192.0.2.7",
    "--rpc-allow-host",
    "node1.example.org",
    "--rpc-auth",
    "alice:00112233445566778899aabbccddeeff$" + "ab".repeat(32),
    "--rpc-auth-metrics",
  );
  assert.deepEqual(c.rpcAllowIps, [
    { address: "10.0.0.0", prefix: 8, family: "ipv4" },
    { address: "2001:db8::", prefix: 32, family: "ipv6" },
    { address: "192.0.2.7", prefix: 32, family: "ipv4" },
  ]);
  assert.deepEqual(c.rpcAllowHosts, ["node1.example.org"]);
  assert.equal(c.rpcAuth[0].user, "alice");
  assert.equal(c.rpcAuthMetrics, true);
  usageError(["--rpc-allow-ip", "10.0.0.0/33"], "--rpc-allow-ip:", /prefix/);
  usageError(["--rpc-allow-ip", "ten"], "--rpc-allow-ip:");
  usageError(["--rpc-allow-host", "bad host"], "--rpc-allow-host:");
  usageError(["--rpc-auth", "alice"], "--rpc-auth:", /USER:SALT\$HASH/);
  usageError(["--rpc-auth", "alice:zz$00"], "--rpc-auth:");
});

Deno.test("rpc: flags before METHOD find the node; words after it are its params", () => {
  const c = cmd("rpc", "rpc", "--network", "devnet", "getblock", "12");
  assert.equal(c.target.url, "http://127.0.0.1:24301");
  assert.equal(c.target.cookieFile, "/home/op/.timenode/devnet/.cookie");
  assert.equal(c.target.user, null);
  assert.equal(c.method, "getblock");
  assert.deepEqual(c.params, [12]);
  const d = cmd("rpc", "rpc", "--data-dir", "/srv/tn", "--rpc", "0.0.0.0:9000", "setban", "-1");
  assert.equal(d.target.url, "http://127.0.0.1:9000", "a wildcard bind is reached on loopback");
  assert.equal(d.target.cookieFile, "/srv/tn/.cookie");
  assert.deepEqual(d.params, [-1], "a negative number after METHOD is a param, not a flag");
  const named = cmd("rpc", "rpc", "setban", "key=203.0.113.9", "seconds=60");
  assert.deepEqual(named.params, { key: "203.0.113.9", seconds: 60 });
  const user = cmd("rpc", "rpc", "--rpc-user", "alice", "--rpc-password", "pw", "uptime");
  assert.equal(user.target.user, "alice");
  assert.equal(user.target.password, "pw");
  assert.equal(cmd("rpc", "rpc", "--timeout", "2.5", "uptime").timeoutMs, 2_500);
  usageError(["rpc"], "rpc: METHOD required");
  usageError(["rpc", "--bogus", "uptime"], "--bogus:");
  usageError(["rpc", "get-block"], "rpc:");
  usageError(["rpc", "setban", "key=1.2.3.4", "60"], "rpc: mixes");
  usageError(["rpc", "--rpc-password", "x", "uptime"], "--rpc-password:");
});

Deno.test("status and rpcauth", () => {
  const s = cmd("status", "status", "--network", "testnet", "--watch");
  assert.equal(s.watch, true);
  assert.equal(s.target.url, "http://127.0.0.1:24201");
  assert.equal(cmd("status", "status").watch, false);
  usageError(["status", "extra"], "unexpected argument");
  assert.deepEqual(cmd("rpcauth", "rpcauth", "alice"), {
    kind: "rpcauth",
    user: "alice",
    password: null,
  });
  assert.equal(cmd("rpcauth", "rpcauth", "alice", "pw").password, "pw");
  usageError(["rpcauth"], "rpcauth: USER required");
  usageError(["rpcauth", "a:b"], "rpcauth: user");
  usageError(["rpcauth", "a", "b", "c"], "rpcauth:");
  for (const topic of ["rpc", "status", "rpcauth"] as const) {
    assert.ok(helpText(topic).includes("Example"), topic);
    assert.deepEqual(helpText(topic).split("\n").filter((l) => l.length > 80), [], topic);
  }
  for (const flag of ["--rpc-auth", "--rpc-allow-ip", "--rpc-allow-host", "--rpc-auth-metrics"]) {
    assert.ok(helpText(null).includes(flag), flag);
  }
});
