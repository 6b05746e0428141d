import assert from "node:assert/strict";
import {
  type ConfigSpec,
  parseConfigText,
  readConfigFile,
  topLevelKeyLines,
} from "../../../node/config_file.ts";
import {
  type CliCommand,
  type CliEnv,
  parseCli,
  RUN_CONFIG_SPEC,
  UsageError,
} from "../../../node/cli.ts";

const SPEC: ConfigSpec = {
  network: { kind: "string", multiple: false },
  peer: { kind: "string", multiple: true },
  "max-inbound": { kind: "integer", multiple: false },
  "ping-interval": { kind: "seconds", multiple: false },
  "exit-on-stdin-close": { kind: "boolean", multiple: false },
};

/** Asserts a ConfigFileError whose one-line message starts with `prefix` and matches `re`. */
function fileError(text: string, prefix: string, re?: RegExp): void {
  assert.throws(() => parseConfigText(text, "t.toml", SPEC), (e: unknown) => {
    assert.ok(e instanceof Error && e.name === "ConfigFileError", String(e));
    assert.ok(!e.message.includes("\n"), e.message);
    assert.ok(e.message.startsWith(prefix), `"${e.message}" starts with "${prefix}"`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

Deno.test("config file: values in command-line form, each with its line", () => {
  const f = parseConfigText(
    [
      "# a comment",
      'network = "testnet" # trailing comment',
      "",
      "peer = [",
      '  "10.0.0.1:24200",',
      '  "[2001:db8::1]:24200", # the v6 one',
      "]",
      "max-inbound = 40",
      "ping-interval = 0.5",
      "exit-on-stdin-close = true",
    ].join("\n"),
    "t.toml",
    SPEC,
  );
  assert.deepEqual(Object.fromEntries(f.entries), {
    network: { value: "testnet", line: 2 },
    peer: { value: ["10.0.0.1:24200", "[2001:db8::1]:24200"], line: 4 },
    "max-inbound": { value: "40", line: 8 },
    "ping-interval": { value: "0.5", line: 9 },
    "exit-on-stdin-close": { value: true, line: 10 },
  });
  assert.equal(f.path, "t.toml");
  assert.deepEqual(
    Object.fromEntries(parseConfigText("ping-interval = 30\n", "t", SPEC).entries),
    { "ping-interval": { value: "30", line: 1 } },
  );
  assert.equal(parseConfigText("", "t", SPEC).entries.size, 0);
});

Deno.test("config file: unknown keys and wrong types name the file, line and key", () => {
  fileError(
    'network = "x"\n\nmax_inbound = 4\n',
    "t.toml:3: max_inbound:",
    /did you mean "max-inbound"/,
  );
  fileError("\nlisten = 1\n", "t.toml:2: listen:", /unknown key/);
  fileError('max-inbound = "40"\n', "t.toml:1: max-inbound:", /whole number, got a string/);
  fileError("max-inbound = 4.5\n", "t.toml:1: max-inbound:", /got a float/);
  fileError('ping-interval = "1"\n', "t.toml:1: ping-interval:", /seconds/);
  fileError("network = true\n", "t.toml:1: network:", /a string, got a boolean/);
  fileError('peer = "1.2.3.4:5"\n', "t.toml:1: peer:", /array/);
  fileError('network = ["a"]\n', "t.toml:1: network:", /got an array/);
  fileError("peer = [1]\n", "t.toml:1: peer[0]:", /a string, got an integer/);
  fileError('exit-on-stdin-close = "yes"\n', "t.toml:1: exit-on-stdin-close:", /true or false/);
  fileError("network = 1979-05-27\n", "t.toml:1: network:", /a date/);
  fileError('\n[network]\nx = "y"\n', "t.toml:2: network:", /table/);
  fileError('a.b = "c"\n', "t.toml:1: a:", /unknown key/);
  fileError('network = "x"\nnetwork = "y"\n', "t.toml:2:", /not valid TOML/);
  fileError('network = "x\n', "t.toml:1:", /not valid TOML/);
});

Deno.test("config file: key lines skip strings, arrays and multi-line strings", () => {
  const text = [
    'network = """',
    "peer = not a key",
    '"""',
    "peer = [",
    '  "max-inbound = 1", # max-inbound = 2',
    "]",
    "'quoted key' = 1",
    "max-inbound = 3",
  ].join("\n");
  assert.deepEqual(
    Object.fromEntries(topLevelKeyLines(text)),
    { network: 1, peer: 4, "quoted key": 7, "max-inbound": 8 },
  );
});

Deno.test("readConfigFile: null when absent, errors for what cannot be a config file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "timenode-config-" });
  try {
    assert.equal(readConfigFile(`${dir}/none.toml`), null);
    await Deno.writeTextFile(`${dir}/a.toml`, 'network = "devnet"\n');
    assert.equal(readConfigFile(`${dir}/a.toml`), 'network = "devnet"\n');
    assert.throws(() => readConfigFile(dir), /not a regular file/);
    await Deno.writeFile(`${dir}/bin.toml`, new Uint8Array([0xff, 0xfe]));
    assert.throws(() => readConfigFile(`${dir}/bin.toml`), /not UTF-8/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The CLI over a config file (a fake reader: no disk)

function envWith(files: Record<string, string>): CliEnv {
  return { HOME: "/home/op", readConfigFile: (path) => files[path] ?? null };
}

function command(env: CliEnv, ...argv: string[]): CliCommand {
  return parseCli(argv, env);
}

function runConfig(env: CliEnv, ...argv: string[]) {
  const c = command(env, ...argv);
  assert.equal(c.kind, "run");
  return (c as Extract<CliCommand, { kind: "run" }>).config;
}

Deno.test("every run flag but help, version and config has a key of the right kind", () => {
  assert.deepEqual(Object.keys(RUN_CONFIG_SPEC).sort(), [
    "data-dir",
    "exit-on-stdin-close",
    "genesis",
    "listen",
    "log-format",
    "log-level",
    "max-inbound",
    "max-outbound",
    "network",
    "peer",
    "ping-interval",
    "pong-timeout",
    "rpc",
    "rpc-allow-host",
    "rpc-allow-ip",
    "rpc-auth",
    "rpc-auth-metrics",
    "stall-blocks",
  ]);
  assert.deepEqual(RUN_CONFIG_SPEC.peer, { kind: "string", multiple: true });
  assert.deepEqual(RUN_CONFIG_SPEC["rpc-allow-ip"], { kind: "string", multiple: true });
  assert.deepEqual(RUN_CONFIG_SPEC["rpc-auth-metrics"], { kind: "boolean", multiple: false });
  assert.deepEqual(RUN_CONFIG_SPEC["max-inbound"], { kind: "integer", multiple: false });
  assert.deepEqual(RUN_CONFIG_SPEC["exit-on-stdin-close"], { kind: "boolean", multiple: false });
});

Deno.test("config file: the command line wins, lists included; the file beats defaults", () => {
  const env = envWith({
    "/etc/t.toml": [
      'network = "testnet"',
      'peer = ["10.0.0.1:24200", "10.0.0.2:24200"]',
      "max-inbound = 40",
      "ping-interval = 10",
      "exit-on-stdin-close = true",
    ].join("\n"),
  });
  const fromFile = runConfig(env, "--config", "/etc/t.toml");
  assert.equal(fromFile.network, "testnet");
  assert.equal(fromFile.dataDir, "/home/op/.timenode/testnet", "the file's network picks the dir");
  assert.deepEqual(fromFile.peers, ["10.0.0.1:24200", "10.0.0.2:24200"]);
  assert.equal(fromFile.maxInbound, 40);
  assert.equal(fromFile.pingIntervalMs, 10_000);
  assert.equal(fromFile.pongTimeoutMs, 30_000, "follows the file's ping interval");
  assert.equal(fromFile.exitOnStdinClose, true);
  assert.equal(fromFile.maxOutbound, 8, "default");

  const overridden = runConfig(
    env,
    "--config",
    "/etc/t.toml",
    "--peer",
    "10.0.0.9:1",
    "--max-inbound",
    "5",
  );
  assert.deepEqual(overridden.peers, ["10.0.0.9:1"], "a flag replaces the file's list");
  assert.equal(overridden.maxInbound, 5);
  assert.equal(overridden.network, "testnet");
});

Deno.test("config file: DATA_DIR/timenode.toml is read when present, --config must exist", () => {
  const env = envWith({ "/home/op/.timenode/mainnet/timenode.toml": "max-outbound = 3\n" });
  assert.equal(runConfig(env).maxOutbound, 3);
  assert.equal(runConfig(env, "--data-dir", "/elsewhere").maxOutbound, 8, "no file there");
  assert.equal(runConfig(envWith({}), "--network", "testnet").maxOutbound, 8);
  assert.throws(
    () => command(env, "--config", "/none.toml"),
    (e: unknown) =>
      e instanceof UsageError && /^--config: "\/none.toml": no such file/.test(e.message),
  );
});

Deno.test("config file: a bad value names the file, the line and the key, like a flag", () => {
  const env = envWith({ "/t.toml": 'network = "devnet"\n\nmax-inbound = 99999\n' });
  assert.throws(
    () => command(env, "--config", "/t.toml"),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message === '/t.toml:3: max-inbound: expected a whole number from 0 to 4096, got "99999"',
  );
  // The same value as a flag is named as a flag, and wins over the file.
  assert.throws(
    () => command(env, "--config", "/t.toml", "--max-inbound", "x"),
    (e: unknown) => e instanceof UsageError && e.message.startsWith("--max-inbound:"),
  );
  assert.equal(runConfig(env, "--config", "/t.toml", "--max-inbound", "7").maxInbound, 7);
  const unknown = envWith({ "/u.toml": "\nverbose = true\n" });
  assert.throws(
    () => command(unknown, "--config", "/u.toml"),
    (e: unknown) =>
      e instanceof UsageError && e.message.startsWith("/u.toml:2: verbose: unknown key"),
  );
});

Deno.test("timenode config: every setting with its value and source; valid TOML", () => {
  const env = envWith({ "/t.toml": 'network = "devnet"\npeer = ["127.0.0.1:24302"]\n' });
  const c = command(env, "config", "--config", "/t.toml", "--max-inbound", "12");
  assert.equal(c.kind, "config");
  const { text, config } = c as Extract<CliCommand, { kind: "config" }>;
  assert.equal(config.maxInbound, 12);
  const lines = text.split("\n");
  const line = (key: string) =>
    lines.find((l) => l.startsWith(`${key} `) || l.startsWith(`# ${key} `));
  assert.match(line("network")!, /^network = "devnet" +# file \/t\.toml:1$/);
  assert.match(line("peer")!, /^peer = \["127\.0\.0\.1:24302"\] +# file \/t\.toml:2$/);
  assert.match(line("max-inbound")!, /^max-inbound = 12 +# flag --max-inbound$/);
  assert.match(line("data-dir")!, /^data-dir = "\/home\/op\/\.timenode\/devnet" +# default$/);
  assert.match(line("listen")!, /^listen = "0\.0\.0\.0:24300" +# default$/);
  assert.match(line("genesis")!, /^# genesis is not set +# default$/);
  assert.match(text, /# config file: \/t\.toml/);
  for (const key of Object.keys(RUN_CONFIG_SPEC)) assert.ok(line(key), key);
  // The output is a config file that gives the same configuration.
  const again = envWith({ "/again.toml": text });
  assert.deepEqual(runConfig(again, "--config", "/again.toml"), config);
});
