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
    "tests/unit/chain/verify.test.ts",
    "tests/unit/consensus/engine.test.ts",
    "tests/unit/chain/certificate_rules.test.ts",
    "tests/unit/chain/certificate_cheap_checks.test.ts",
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
    "tests/unit/network/frame_buffer.test.ts",
  ],
  "consensus/vote_set.ts": [
    "tests/unit/consensus/vote_set.test.ts",
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
    "tests/unit/consensus/engine_quorum.test.ts",
    "tests/unit/consensus/engine_pins.test.ts",
    "tests/unit/consensus/engine_timeouts.test.ts",
    "tests/unit/consensus/engine_intake.test.ts",
    "tests/unit/consensus/engine_restart.test.ts",
    "tests/unit/consensus/engine_rules_edges.test.ts",
    "tests/unit/consensus/quorum_ahead.test.ts",
  ],
  // The apply path through chain/chain.ts is chain.test.ts's, but the store's own tests pin
  // every store rule and run in half the time.
  "chain/store.ts": [
    "tests/unit/chain/store.test.ts",
    "tests/unit/chain/store_rules.test.ts",
    "tests/unit/chain/store_txs_rules.test.ts",
  ],
  "state/records.ts": [
    "tests/unit/state/records.test.ts",
    "tests/unit/state/state.test.ts",
    "tests/unit/state/record_codec_rules.test.ts",
  ],
  // The set, record, stake and ledger rules of the state machine; stake_random.test.ts (4 s of
  // random histories) is left out to keep one mutant under ten seconds.
  "state/state.ts": [
    "tests/unit/state/state.test.ts",
    "tests/unit/state/state_rules.test.ts",
    "tests/unit/state/transfers.test.ts",
    "tests/unit/state/stake.test.ts",
    "tests/unit/state/record_check.test.ts",
    "tests/unit/state/stake_rules.test.ts",
    "tests/unit/state/ledger_edges.test.ts",
    "tests/unit/state/state_edges.test.ts",
  ],
  // The transaction codec and signature rules; the mempool and the state machine use them.
  "state/transaction.ts": [
    "tests/unit/state/transaction.test.ts",
    "tests/unit/state/transaction_rules.test.ts",
  ],
  // The balance and nonce rules of one transfer, directly and through the mempool and the state;
  // the stake half of an account (locked, unbonding, release, burns) through the stake rules.
  "state/accounts.ts": [
    "tests/unit/state/transaction.test.ts",
    "tests/unit/state/transfers.test.ts",
    "tests/unit/mempool/pool.test.ts",
    "tests/unit/state/accounts_rules.test.ts",
    "tests/unit/state/stake.test.ts",
    "tests/unit/state/stake_rules.test.ts",
    "tests/unit/state/state_edges.test.ts",
    "tests/unit/state/ledger_edges.test.ts",
  ],
};

/**
 * Two shared cores: by default one mutant at a time, at low priority, so the machine stays
 * usable. On an otherwise idle machine `--concurrency 2` halves a long run (engine.ts).
 */
const DEFAULT_CONCURRENCY = 1;
const MAX_CONCURRENCY = 8;
let concurrency = DEFAULT_CONCURRENCY;
const NICENESS = "10";
const REPORT_DIR = "reports/mutation";
const TOOL_DIR = "tools/mutate";
const STRYKER_BIN = `${TOOL_DIR}/node_modules/@stryker-mutator/core/bin/stryker.js`;
/** The same permissions as `deno task test`; `--no-check` because Stryker's rewritten copy is
 * not type-correct (and `deno task check` already checks the real code). */
const DENO_TEST = "deno test --no-check --quiet --allow-net --allow-read --allow-write " +
  "--allow-env --allow-sys --allow-run";

/** "chain/store.ts" → "chain_store"; "consensus/engine.ts:1-300" → "consensus_engine.1-300". */
function slug(target: string): string {
  const [module, lines] = target.split(":");
  const base = module.replace(/\.ts$/, "").replaceAll("/", "_");
  return lines === undefined ? base : `${base}.${lines}`;
}

/**
 * A target is a module, or a module and a line range ("consensus/engine.ts:1-300") so a big
 * module can be done in parts whose reports survive an interrupted session.
 */
function parseTarget(arg: string): { module: string; target: string } | null {
  const m = /^([^:]+)(?::(\d+)-(\d+))?$/.exec(arg);
  if (!m || !(m[1] in TARGETS)) return null;
  return { module: m[1], target: arg };
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
  const status = await new Deno.Command(cmd[0], { args: cmd.slice(1) }).spawn()
    .status;
  if (!status.success) throw new Error(`${what} failed (exit ${status.code})`);
}

/** Installs the pinned Stryker from package-lock.json on a fresh machine (npm registry only). */
async function ensureStryker(): Promise<void> {
  if (await exists(STRYKER_BIN)) return;
  console.log("installing Stryker (npm ci in tools/mutate)…");
  await run(
    ["npm", "ci", "--prefix", TOOL_DIR, "--no-audit", "--no-fund"],
    "npm ci",
  );
}

function strykerConfig(
  tests: readonly string[],
  mutate: readonly string[],
  reportName: string,
): Record<string, unknown> {
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
    mutate,
    concurrency,
    coverageAnalysis: "off",
    reporters: ["clear-text", "progress", "html", "json"],
    htmlReporter: { fileName: `${REPORT_DIR}/${reportName}.html` },
    jsonReporter: { fileName: `${REPORT_DIR}/${reportName}.json` },
    clearTextReporter: {
      allowColor: false,
      logTests: false,
      reportMutants: true,
    },
    // The sandbox is a copy of the repo; leave out what no test needs.
    ignorePatterns: [
      "dist",
      "reports",
      "bench",
      "docs",
      ".stryker-tmp",
      "node_modules",
    ],
    tempDirName: ".stryker-tmp",
    cleanTempDir: true,
    thresholds: { high: 90, low: 80, break: null },
    // A mutant that makes the tests hang is "Timeout" (counted as detected). On a loaded shared
    // machine a merely slow run must not pass for a hang: wait twice the clean run plus 10 s.
    timeoutFactor: 2,
    timeoutMS: 10_000,
  };
}

interface Position {
  line: number;
  column: number;
}

interface MutantResult {
  status: string;
  mutatorName: string;
  replacement?: string;
  location: { start: Position; end: Position };
}

function mutantsOf(report: string): MutantResult[] {
  const files = JSON.parse(report).files as Record<
    string,
    { mutants: MutantResult[] }
  >;
  return Object.values(files).flatMap((f) => f.mutants);
}

function undetected(m: MutantResult): boolean {
  return m.status === "Survived" || m.status === "NoCoverage";
}

/**
 * What a `--survivors` run tries again: the undetected mutants, and with `--timeouts` also the
 * timed-out ones. On a loaded machine a mutant whose tests were merely slow is reported as a
 * timeout (counted as detected); re-running it when the load is low tells a real hang (it times
 * out again) from a survivor.
 */
function rerunnable(m: MutantResult, timeouts: boolean): boolean {
  return undetected(m) || (timeouts && m.status === "Timeout");
}

/**
 * `--survivors`: the module's full report with every survivor replaced by its result in the
 * re-run of the survivors only. Valid while the production code and the existing tests are
 * unchanged since the full run (added tests can only kill more), which is the loop of writing
 * tests against a report; re-run the whole module before quoting a final score.
 */
export function mergeSurvivorRun(
  full: readonly MutantResult[],
  rerun: string,
  timeouts = false,
): MutantResult[] {
  const key = (m: MutantResult) =>
    `${m.location.start.line}:${m.location.start.column}-${m.location.end.line}:` +
    `${m.location.end.column}/${m.mutatorName}/${m.replacement}`;
  const again = new Map(mutantsOf(rerun).map((m) => [key(m), m]));
  return full.map((
    m,
  ) => (rerunnable(m, timeouts) ? again.get(key(m)) ?? m : m));
}

/** Prints the score and one line per survivor. */
export function summarize(
  module: string,
  mutants: readonly MutantResult[],
): string {
  const count = (s: string) => mutants.filter((m) => m.status === s).length;
  const detected = count("Killed") + count("Timeout");
  const survived = count("Survived") + count("NoCoverage");
  const valid = detected + survived;
  const score = valid === 0 ? 100 : (100 * detected) / valid;
  const lines = [
    `${module}: ${score.toFixed(2)}% (${detected} of ${valid} detected; ` +
    `${count("Killed")} killed, ${count("Timeout")} timed out, ${survived} survived)`,
  ];
  for (const m of mutants.filter(undetected)) {
    const at = `${m.location.start.line}:${m.location.start.column}`;
    lines.push(
      `  survived ${module.split(":")[0]}:${at} ${m.mutatorName} → ${
        JSON.stringify(m.replacement)
      }`,
    );
  }
  return lines.join("\n");
}

async function mutate(
  module: string,
  target: string,
  onlySurvivors: boolean,
  timeouts: boolean,
): Promise<void> {
  const tests = TARGETS[module];
  const fullReport = `${REPORT_DIR}/${slug(target)}.json`;
  // The full report with every later survivors run merged in, so survivors runs can repeat.
  const mergedReport = `${REPORT_DIR}/${slug(target)}.merged.json`;
  let mutate = [target];
  let reportName = slug(target);
  let current: MutantResult[] | null = null;
  if (onlySurvivors) {
    if (!(await exists(fullReport))) {
      throw new Error(
        `no full report ${fullReport}: run \`deno task mutate ${target}\` first`,
      );
    }
    current = await exists(mergedReport)
      ? JSON.parse(await Deno.readTextFile(mergedReport)) as MutantResult[]
      : mutantsOf(await Deno.readTextFile(fullReport));
    const left = current.filter((m) => rerunnable(m, timeouts));
    if (left.length === 0) {
      console.log(summarize(target, current));
      return;
    }
    // Stryker takes "file:line:column-line:column" ranges; columns here are 1-based as in
    // the report, Stryker's are 0-based.
    mutate = left.map((m) => {
      const { start, end } = m.location;
      return `${module}:${start.line}:${start.column - 1}-${end.line}:${end.column - 1}`;
    });
    reportName = `${slug(target)}.survivors`;
  } else {
    await Deno.remove(mergedReport).catch(() => {});
  }
  const configPath = `${REPORT_DIR}/${reportName}.config.json`;
  const config = strykerConfig(tests, mutate, reportName);
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
  const started = Date.now();
  await run(
    ["nice", "-n", NICENESS, "node", STRYKER_BIN, "run", configPath],
    "stryker",
  );
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const report = await Deno.readTextFile(`${REPORT_DIR}/${reportName}.json`);
  let mutants = mutantsOf(report);
  if (current !== null) {
    mutants = mergeSurvivorRun(current, report, timeouts);
    await Deno.writeTextFile(mergedReport, JSON.stringify(mutants));
  }
  console.log(`\n${summarize(target, mutants)}\n  run took ${minutes} min`);
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(
      "usage: deno task mutate [--concurrency N] [--survivors [--timeouts]] [module[:from-to]…]" +
        "   (none: all)\n" +
        "  --concurrency N: mutants run at once (default 1; 2 on an idle 2-core machine)\n" +
        "  module:from-to: only the mutants on those lines (a big module in parts)\n" +
        "  --survivors: re-run only the mutants still surviving since the last full run\n" +
        "  --timeouts: with --survivors, re-run the timed-out mutants too (after a loaded run)\n" +
        `modules: ${Object.keys(TARGETS).join(" ")}\n` +
        `reports: ${REPORT_DIR}/<module>.html and .json`,
    );
    return 0;
  }
  const c = args.indexOf("--concurrency");
  if (c >= 0) {
    const n = Number(args[c + 1]);
    if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY) {
      console.error(
        `--concurrency takes an integer from 1 to ${MAX_CONCURRENCY}`,
      );
      return 2;
    }
    concurrency = n;
    args = args.filter((_, i) => i !== c && i !== c + 1);
  }
  const onlySurvivors = args.includes("--survivors");
  const timeouts = args.includes("--timeouts");
  if (timeouts && !onlySurvivors) {
    console.error("--timeouts goes with --survivors");
    return 2;
  }
  args = args.filter((a) => a !== "--survivors" && a !== "--timeouts");
  const unknown = args.filter((a) => parseTarget(a) === null);
  if (unknown.length > 0) {
    console.error(`not a mutated module: ${unknown.join(", ")} (see --help)`);
    return 2;
  }
  const targets = (args.length > 0 ? args : Object.keys(TARGETS)).map((a) => parseTarget(a)!);
  await ensureStryker();
  await Deno.mkdir(REPORT_DIR, { recursive: true });
  for (const { module, target } of targets) {
    await mutate(module, target, onlySurvivors, timeouts);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
