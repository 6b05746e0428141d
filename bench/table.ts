/**
 * Benchmark results: the `BenchRow` every suite returns, the options every suite takes, and the
 * one table (or JSON document) the runner prints.
 *
 * Owns: the row shape, how a row is judged against its target, and the text layout.
 * Must never: measure anything or start anything; suites measure, this only formats.
 */

/** Significant digits shown for a value: timings are noisy, more digits would be fiction. */
const SIGNIFICANT_DIGITS = 3;
/** Notes longer than this are clipped in the table (the JSON output keeps them whole). */
const MAX_NOTE_CHARS = 90;

/** A goal a measured value should meet: at least (`>=`) or at most (`<=`) `value`. */
export interface Target {
  op: ">=" | "<=";
  value: number;
}

export interface BenchRow {
  /** The suite that produced the row: "network", "sync", "consensus". */
  suite: string;
  name: string;
  /** The measured value; null when the benchmark could not run (see `note`). */
  value: number | null;
  unit: string;
  target: Target | null;
  /** Whether `value` meets `target`; null for rows that are information only. */
  pass: boolean | null;
  /** How the value was obtained (runs, spread, samples) or why it is missing. */
  note: string;
}

export interface BenchOptions {
  /** A shorter run (fewer messages, samples and repetitions) that finishes in seconds. */
  quick: boolean;
  /** Aborted when the runner is interrupted: suites stop what they started and return. */
  signal: AbortSignal;
  /** Progress lines for a human; never part of the results. */
  progress: (line: string) => void;
}

export function meets(value: number, target: Target): boolean {
  return target.op === ">=" ? value >= target.value : value <= target.value;
}

/** A measured row, judged against its target when it has one. */
export function benchRow(
  suite: string,
  name: string,
  value: number,
  unit: string,
  target: Target | null = null,
  note = "",
): BenchRow {
  return { suite, name, value, unit, target, pass: target ? meets(value, target) : null, note };
}

/** A row for a benchmark that failed to produce a value: it counts as a failure. */
export function errorRow(
  suite: string,
  name: string,
  unit: string,
  error: unknown,
  target: Target | null = null,
): BenchRow {
  const message = error instanceof Error ? error.message : String(error);
  return { suite, name, value: null, unit, target, pass: false, note: `error: ${message}` };
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (abs >= 10 ** SIGNIFICANT_DIGITS) return Math.round(v).toLocaleString("en-US");
  if (abs === 0) return "0";
  return Number(v.toPrecision(SIGNIFICANT_DIGITS)).toString();
}

function formatTarget(t: Target | null): string {
  return t ? `${t.op} ${formatNumber(t.value)}` : "";
}

function verdict(r: BenchRow): string {
  if (r.value === null) return "ERROR";
  if (r.pass === null) return "-";
  return r.pass ? "pass" : "FAIL";
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** One aligned text table: name, value, unit, target, verdict, note. */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ["suite", "benchmark", "value", "unit", "target", "result", "note"];
  const body = rows.map((r) => [
    r.suite,
    r.name,
    r.value === null ? "-" : formatNumber(r.value),
    r.unit,
    formatTarget(r.target),
    verdict(r),
    clip(r.note, MAX_NOTE_CHARS),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  // Values read best right-aligned so their magnitudes line up.
  const numeric = new Set([2, 4]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(header), rule, ...body.map(line)].join("\n");
}

export function summarize(rows: readonly BenchRow[]): string {
  const judged = rows.filter((r) => r.target !== null);
  const met = judged.filter((r) => r.pass === true).length;
  const errors = rows.filter((r) => r.value === null).length;
  return `${met} of ${judged.length} targets met` + (errors > 0 ? `, ${errors} errors` : "");
}

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile, `p` in [0, 100], of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError("percentile of no values");
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}
