/**
 * V8 `--trace-gc` lines, read back and placed on the wall clock, so a benchmark can tell which of
 * its samples a garbage collection overlapped.
 *
 * Owns: the trace line format it reads and the clock alignment (a forced GC whose start is known
 * on `performance.now()`'s clock, see net_peer.ts `markGcClock`). Must never: run or measure
 * anything; it only reads lines.
 */

/** One traced collection: which kind, and when (epoch ms) it ran. */
export interface GcEvent {
  kind: string;
  startMs: number;
  pauseMs: number;
}

/**
 * "[pid:0x…]   468 ms: Mark-Compact 2.3 (2.8) -> 2.2 (2.8) MB, pooled: 0.0 MB, 41.70 / 0.00 ms
 * (…) testing; …": V8's ms since the isolate started (printed when the pause ends), the kind,
 * and the pause.
 */
const TRACE_LINE =
  /\]\s+(\d+(?:\.\d+)?) ms: ([A-Za-z-]+).*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;
/** V8 prints whole milliseconds: every traced time is this uncertain. */
const TRACE_RESOLUTION_MS = 1;
/** The reason V8 gives a collection forced by `gc()`: the clock mark. */
const FORCED_REASON = "testing";

interface TraceLine {
  v8EndMs: number;
  kind: string;
  pauseMs: number;
  forced: boolean;
}

export function parseTraceLine(line: string): TraceLine | null {
  const m = TRACE_LINE.exec(line);
  if (!m) return null;
  return {
    v8EndMs: Number(m[1]),
    kind: m[2],
    pauseMs: Number(m[3]),
    forced: line.includes(FORCED_REASON),
  };
}

/**
 * The collections of one process on the wall clock. `mark` is when (epoch ms) the process
 * called `gc()`; the first forced collection in the trace is that call. Null without a mark.
 */
export function gcEvents(lines: readonly string[], markEpochMs: number): GcEvent[] | null {
  const parsed = lines.map(parseTraceLine).filter((l): l is TraceLine => l !== null);
  const forced = parsed.find((l) => l.forced);
  if (!forced) return null;
  // V8's clock = epoch - offset: the forced collection started at the mark.
  const offset = markEpochMs - (forced.v8EndMs - forced.pauseMs);
  return parsed.filter((l) => l !== forced).map((l) => ({
    kind: l.kind,
    startMs: l.v8EndMs - l.pauseMs + offset,
    pauseMs: l.pauseMs,
  }));
}

/** Whether any collection ran during [fromMs, toMs] (epoch ms), within the trace's resolution. */
export function overlapsGc(events: readonly GcEvent[], fromMs: number, toMs: number): boolean {
  return events.some((e) =>
    e.startMs <= toMs + TRACE_RESOLUTION_MS &&
    e.startMs + e.pauseMs + TRACE_RESOLUTION_MS >= fromMs
  );
}
