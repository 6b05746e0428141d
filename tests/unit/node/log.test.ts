import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import {
  LOG_CATEGORIES,
  logger,
  type LoggingOptions,
  resetLogging,
  setupLogging,
} from "../../../node/log.ts";

/** Runs `body` with logging captured into an array; always resets afterwards. */
function captured(opts: Omit<LoggingOptions, "write">, body: () => void): string[] {
  const lines: string[] = [];
  setupLogging({ ...opts, write: (l) => lines.push(l) });
  try {
    body();
  } finally {
    resetLogging();
  }
  return lines;
}

const TIME = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;

Deno.test("text: time, level, category, message, then key=value properties", () => {
  const lines = captured({ level: "info", format: "text" }, () => {
    logger("net").info("peer connected", { key: "127.0.0.1:24100", dir: "outbound" });
  });
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    new RegExp(
      `^${TIME} INFO  net       peer connected key=127\\.0\\.0\\.1:24100 dir=outbound\\n$`,
    ),
  );
});

Deno.test("text: placeholders are filled in and not repeated as properties", () => {
  const [line] = captured({ level: "info", format: "text" }, () => {
    logger("sync").info("synced to {height}", { height: 42, peers: 3 });
  });
  assert.ok(line.endsWith(" sync      synced to 42 peers=3\n"), line);
});

Deno.test("text: values are rendered compactly and unambiguously", () => {
  const [line] = captured({ level: "info", format: "text" }, () => {
    logger("chain").info("applied", {
      hash: new Uint8Array([0xab, 0x01]),
      big: 2n ** 70n,
      reason: "pong overdue by 5 ms",
      ok: true,
      none: null,
      err: new RangeError("height out of range"),
      obj: { a: 1, b: [2n] },
    });
  });
  assert.ok(line.includes(" hash=ab01 "), line);
  assert.ok(line.includes(` big=${2n ** 70n} `), line);
  assert.ok(line.includes(' reason="pong overdue by 5 ms" '), line);
  assert.ok(line.includes(" ok=true none=null "), line);
  assert.ok(line.includes(' err="RangeError: height out of range" '), line);
  assert.ok(line.includes(' obj={"a":1,"b":["2"]}'), line);
  assert.ok(!line.includes("at "), "no stack trace");
});

Deno.test("text: hostile values cannot forge lines or hide text", () => {
  const [line] = captured({ level: "info", format: "text" }, () => {
    logger("net").warning("goodbye from {agent}", {
      agent: "evil\n2026-01-01T00:00:00.000Z INFO  node      fake",
      reason: "\x1b[31mred\x1b[0m",
      bidi: "abc\u202Edef",
      long: "x".repeat(100_000),
      "bad key": 1,
    });
  });
  assert.equal(line.indexOf("\n"), line.length - 1, "exactly one line");
  assert.ok(!line.includes("\x1b"), "no raw escape sequences");
  assert.ok(!line.includes("\u202E") && line.includes("\\u202e"), "bidi override escaped");
  assert.ok(line.includes('"evil\\n2026'), line.slice(0, 120));
  assert.ok(line.length < 3_000, "long values are clipped");
  assert.ok(line.includes('"bad key"=1'), "odd keys are quoted");
});

Deno.test("json: one parseable object per line", () => {
  const lines = captured({ level: "debug", format: "json" }, () => {
    logger("consensus").debug("committed {height}", {
      height: 9,
      hash: new Uint8Array([1, 2, 3]),
      amount: 10n ** 20n,
      err: new Error("boom"),
      text: "line1\nline2",
    });
  });
  assert.equal(lines.length, 1);
  assert.equal(lines[0].indexOf("\n"), lines[0].length - 1);
  const o = JSON.parse(lines[0]);
  assert.match(o["@timestamp"], new RegExp(`^${TIME}$`));
  assert.equal(o.level, "DEBUG");
  assert.equal(o.logger, "timenode.consensus");
  assert.equal(o.message, "committed 9");
  assert.deepEqual(o.properties, {
    height: 9,
    hash: "010203",
    amount: "100000000000000000000",
    err: "boom",
    text: "line1\nline2",
  });
});

Deno.test("json: unserializable properties still give a valid line", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const [line] = captured({ level: "info", format: "json" }, () => {
    logger("rpc").info("odd", { cyclic });
  });
  const o = JSON.parse(line);
  assert.equal(o.message, "odd");
  assert.ok(o.properties.logError);
});

Deno.test("the level filters records; warning is written WARN", () => {
  const lines = captured({ level: "warning", format: "text" }, () => {
    const log = logger("node");
    log.trace("t");
    log.debug("d");
    log.info("i");
    log.warning("w");
    log.error("e");
    log.fatal("f");
  });
  assert.deepEqual(lines.map((l) => l.split(" ")[1]), ["WARN", "ERROR", "FATAL"]);

  const all = captured({ level: "trace", format: "text" }, () => logger("node").trace("t"));
  assert.equal(all.length, 1);
  assert.match(all[0], / TRACE node {6}t\n$/);
});

Deno.test("every timenode category is logged; other categories are not", () => {
  const lines = captured({ level: "info", format: "text" }, () => {
    for (const c of LOG_CATEGORIES) getLogger(["timenode", c]).info("hello");
    getLogger(["some-library"]).error("not ours");
  });
  assert.deepEqual(lines.map((l) => l.split(/ +/)[2]), [...LOG_CATEGORIES]);
});

Deno.test("setup twice replaces the first setup; reset silences", () => {
  const first: string[] = [];
  const second: string[] = [];
  setupLogging({ level: "info", format: "text", write: (l) => first.push(l) });
  setupLogging({ level: "info", format: "json", write: (l) => second.push(l) });
  logger("net").info("once");
  resetLogging();
  logger("net").info("after reset");
  assert.equal(first.length, 0);
  assert.equal(second.length, 1);
  assert.equal(JSON.parse(second[0]).message, "once");
});

Deno.test("the default sink writes to stderr, not stdout", async () => {
  const script = `
    import { logger, setupLogging } from ${
    JSON.stringify(new URL("../../../node/log.ts", import.meta.url).href)
  };
    setupLogging({ level: "info", format: "text" });
    logger("node").info("to stderr", { n: 1 });
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    cwd: new URL("../../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(new TextDecoder().decode(out.stdout), "");
  assert.match(stderr, new RegExp(`^${TIME} INFO  node      to stderr n=1\\n$`));
});
