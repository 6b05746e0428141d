/**
 * The benchmark runner (`deno task bench`): runs each suite and prints one table of results.
 *
 *   deno task bench [--only network|sync|consensus|hostile|ledger] [--quick] [--json]
 *
 * `--quick` runs every suite in its short form; `--json` prints the rows as JSON on stdout
 * instead of the table (progress always goes to stderr). The exit code is 0 when every
 * benchmark produced a value, 1 when one could not run, 2 for a usage error. A missed target is
 * reported in the table, not in the exit code: timings on a shared machine are too noisy to gate
 * on. Ctrl-C stops every process the suites started before exiting.
 *
 * Owns: the list of suites, flag parsing and output. Must never: measure anything itself, or be
 * imported by tests.
 */
import { parseArgs } from "node:util";
import { type BenchOptions, type BenchRow, formatTable, summarize } from "./table.ts";
import { runNetworkBenchmarks } from "./network.ts";
import { runConsensusBenchmarks } from "./consensus.ts";
import { runSyncBenchmarks } from "./sync.ts";
import { runLedgerBenchmarks } from "./ledger.ts";
import { runHostileBenchmarks } from "./hostile.ts";
import { runHostileNetBenchmarks } from "./hostile_net.ts";
import { runAttackRateBenchmarks } from "./hostile_rates.ts";

interface Suite {
  name: string;
  run: (opts: BenchOptions) => Promise<BenchRow[]>;
}

// ---- SUITES: to add a suite, import its `run...Benchmarks` above and add one line here. -------
const SUITES: Suite[] = [
  { name: "network", run: runNetworkBenchmarks },
  { name: "sync", run: runSyncBenchmarks },
  { name: "consensus", run: runConsensusBenchmarks },
  {
    name: "hostile",
    run: async (opts) => [
      ...await runHostileBenchmarks(opts),
      ...await runAttackRateBenchmarks(opts),
      ...await runHostileNetBenchmarks(opts),
    ],
  },
  { name: "ledger", run: runLedgerBenchmarks },
];
/** Suite names `--only` accepts, including those not written yet (reported as unavailable). */
const KNOWN_SUITES = ["network", "sync", "consensus", "hostile", "ledger"];

const EXIT_ERRORS = 1;
const EXIT_USAGE = 2;

function usage(message: string): never {
  console.error(`bench: ${message}`);
  console.error(
    "usage: deno task bench [--only network|sync|consensus|hostile|ledger] [--quick] [--json]",
  );
  Deno.exit(EXIT_USAGE);
}

async function main(): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  if (values.help) usage("runs the benchmark suites and prints a table");
  let suites = SUITES;
  if (values.only !== undefined) {
    if (!KNOWN_SUITES.includes(values.only)) usage(`--only: unknown suite "${values.only}"`);
    suites = SUITES.filter((s) => s.name === values.only);
    if (suites.length === 0) usage(`--only: the ${values.only} suite is not written yet`);
  }

  const controller = new AbortController();
  const interrupt = () => {
    console.error("bench: interrupted, stopping everything that was started...");
    controller.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, interrupt);

  const started = performance.now();
  const rows: BenchRow[] = [];
  const opts: BenchOptions = {
    quick: values.quick,
    signal: controller.signal,
    progress: (line) => console.error(line),
  };
  try {
    for (const suite of suites) {
      if (controller.signal.aborted) break;
      rows.push(...await suite.run(opts));
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, interrupt);
  }
  const seconds = (performance.now() - started) / 1000;

  if (values.json) {
    console.log(JSON.stringify({ quick: values.quick, seconds, rows }, null, 2));
  } else {
    console.log(formatTable(rows));
    console.log(`\n${summarize(rows)} (${seconds.toFixed(1)} s${values.quick ? ", quick" : ""})`);
  }
  if (controller.signal.aborted) return EXIT_ERRORS;
  return rows.some((r) => r.value === null) ? EXIT_ERRORS : 0;
}

if (import.meta.main) Deno.exit(await main());
