/**
 * `deno task mutate [module…]`: mutation testing of the safety-critical modules with Stryker.
 *
 * Stryker changes one operator, condition or statement at a time ("a mutant") and runs the unit
 * tests that cover that module; a mutant that no test notices ("survived") is a behaviour the
 * tests do not pin. See docs/testing.md for how to read the report.
 *
 * Owns: the list of mutated modules, the fast unit tests each one runs per mutant, the pinned
 * Node install of Stryker under tools/mutate/ and the Stryker settings.
 * Must never: run in CI (one module takes minutes to an hour on two cores), write outside
 * `reports/mutation/` and Stryker's `.stryker-tmp/` sandbox, or use more than one core.
 */

/**
 * Module → the unit tests run for each of its mutants. Only fast unit tests: no integration
 * tests, no long simulations (tests/unit/consensus/simulation.test.ts takes ~40 s, so one run per
 * mutant would cost days). A test file belongs here if it exercises the module's behaviour,
 * directly or through the module that uses it (the handshake through the peer state machine).
 */
export const TARGETS: Readonly<Record<string, readonly string[]>> = {
  "chain/validators.ts": [
    "tests/unit/chain/chain.test.ts",
    "tests/unit/consensus/proposer.test.ts",
    "tests/unit/consensus/engine.test.ts",
    "tests/unit/chain/validator_set.test.ts",
    "tests/unit/consensus/vote_set_rules.test.ts",
  ],
  "chain/certificate.ts": [
    "tests/unit/chain/chain.test.ts",
    "tests/unit/consensus/engine.test.ts",
    "tests/unit/chain/certificate_rules.test.ts",
  ],
  "consensus/sign_position.ts": [
    "tests/unit/consensus/sign_guard.test.ts",
    "tests/unit/consensus/engine.test.ts",
    "tests/unit/consensus/engine_inputs.test.ts",
  ],
  "consensus/sign_guard.ts": [
    "tests/unit/consensus/sign_guard.test.ts",
    "tests/unit/consensus/sign_guard_rules.test.ts",
  ],
  "network/handshake.ts": [
    "tests/unit/network/peer.test.ts",
    "tests/unit/network/handshake_rules.test.ts",
  ],
  "network/frame.ts": [
    "tests/unit/network/frame_fuzz.test.ts",
    "tests/unit/network/messages.test.ts",
    "tests/unit/network/peer.test.ts",
    "tests/unit/network/frame_limits.test.ts",
  ],
  "consensus/vote_set.ts": [
    "tests/unit/consensus/engine.test.ts",
    "tests/unit/consensus/engine_inputs.test.ts",
    "tests/unit/consensus/lock_evidence.test.ts",
    "tests/unit/consensus/vote_set_rules.test.ts",
  ],
  "consensus/engine.ts": [
    "tests/unit/consensus/engine.test.ts",
    "tests/unit/consensus/engine_inputs.test.ts",
    "tests/unit/consensus/lock_evidence.test.ts",
    "tests/unit/consensus/engine_rules.test.ts",
  ],
  "chain/store.ts": [
    "tests/unit/chain/store.test.ts",
    "tests/unit/chain/chain.test.ts",
    "tests/unit/chain/store_rules.test.ts",
  ],
  "state/records.ts": [
    "tests/unit/state/records.test.ts",
    "tests/unit/state/state.test.ts",
    "tests/unit/state/record_rules.test.ts",
  ],
  "state/state.ts": [
    "tests/unit/state/state.test.ts",
    "tests/unit/state/rewards.test.ts",
    "tests/unit/state/record_rules.test.ts",
  ],
};

/** Two shared cores: one mutant at a time, at low priority, so the machine stays usable. */
const CONCURRENCY = 1;
const NICENESS = "10";
const REPORT_DIR = "reports/mutation";
const TOOL_DIR = "tools/mutate";
const STRYKER_BIN = `${TOOL_DIR}/node_modules/@stryker-mutator/core/bin/stryker.js`;
/** The same permissions as `deno task test`; `--no-check` because Stryker's rewritten copy is
 * not type-correct (and `deno task check` already checks the real code). */
const DENO_TEST = "deno test --no-check --quiet --allow-net --allow-read --allow-write " +
  "--allow-env --allow-sys --allow-run";

function slug(module: string): string {
  return module.replace(/\.ts$/, "").replaceAll("/", "_");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function run(cmd: string[], what: string): Promise<void> {
  const status = await new Deno.Command(cmd[0], { args: cmd.slice(1) }).spawn().status;
  if (!status.success) throw new Error(`${what} failed (exit ${status.code})`);
}

/** Installs the pinned Stryker from package-lock.json on a fresh machine (npm registry only). */
async function ensureStryker(): Promise<void> {
  if (await exists(STRYKER_BIN)) return;
  console.log("installing Stryker (npm ci in tools/mutate)…");
  await run(["npm", "ci", "--prefix", TOOL_DIR, "--no-audit", "--no-fund"], "npm ci");
}

function strykerConfig(module: string, tests: readonly string[]): Record<string, unknown> {
  const present = tests.filter((t) => {
    try {
      Deno.statSync(t);
      return true;
    } catch {
      return false;
    }
  });
  return {
    testRunner: "command",
    commandRunner: { command: `${DENO_TEST} ${present.join(" ")}` },
    mutate: [module],
    concurrency: CONCURRENCY,
    coverageAnalysis: "off",
    reporters: ["clear-text", "progress", "html", "json"],
    htmlReporter: { fileName: `${REPORT_DIR}/${slug(module)}.html` },
    jsonReporter: { fileName: `${REPORT_DIR}/${slug(module)}.json` },
    clearTextReporter: { allowColor: false, logTests: false, reportMutants: true },
    // The sandbox is a copy of the repo; leave out what no test needs.
    ignorePatterns: ["dist", "reports", "bench", "docs", ".stryker-tmp", "node_modules"],
    tempDirName: ".stryker-tmp",
    cleanTempDir: true,
    thresholds: { high: 90, low: 80, break: null },
  };
}

interface MutantResult {
  status: string;
  mutatorName: string;
  replacement?: string;
  location: { start: { line: number; column: number } };
}

/** Prints the score and one line per survivor from Stryker's JSON report. */
export function summarize(module: string, report: string): string {
  const files = JSON.parse(report).files as Record<string, { mutants: MutantResult[] }>;
  const mutants = Object.values(files).flatMap((f) => f.mutants);
  const count = (s: string) => mutants.filter((m) => m.status === s).length;
  const detected = count("Killed") + count("Timeout");
  const undetected = count("Survived") + count("NoCoverage");
  const valid = detected + undetected;
  const score = valid === 0 ? 100 : (100 * detected) / valid;
  const lines = [
    `${module}: ${score.toFixed(2)}% (${detected} of ${valid} detected; ` +
    `${count("Killed")} killed, ${count("Timeout")} timed out, ${undetected} survived)`,
  ];
  for (const m of mutants.filter((m) => m.status === "Survived" || m.status === "NoCoverage")) {
    const at = `${m.location.start.line}:${m.location.start.column}`;
    lines.push(`  survived ${module}:${at} ${m.mutatorName} → ${JSON.stringify(m.replacement)}`);
  }
  return lines.join("\n");
}

async function mutate(module: string): Promise<void> {
  const tests = TARGETS[module];
  const configPath = `${REPORT_DIR}/${slug(module)}.config.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(strykerConfig(module, tests), null, 2));
  const started = Date.now();
  await run(["nice", "-n", NICENESS, "node", STRYKER_BIN, "run", configPath], "stryker");
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const report = await Deno.readTextFile(`${REPORT_DIR}/${slug(module)}.json`);
  console.log(`\n${summarize(module, report)}\n  run took ${minutes} min`);
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      "usage: deno task mutate [module…]   (no module: all of them, smallest first)\n" +
        `modules: ${Object.keys(TARGETS).join(" ")}\n` +
        `reports: ${REPORT_DIR}/<module>.html and .json`,
    );
    return 0;
  }
  const unknown = args.filter((a) => !(a in TARGETS));
  if (unknown.length > 0) {
    console.error(`not a mutated module: ${unknown.join(", ")} (see --help)`);
    return 2;
  }
  const modules = args.length > 0 ? args : Object.keys(TARGETS);
  await ensureStryker();
  await Deno.mkdir(REPORT_DIR, { recursive: true });
  for (const module of modules) await mutate(module);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
