/**
 * Where a process's CPU time went, from a V8 CPU profile (`deno run --cpu-prof`, a
 * `.cpuprofile` file): self time summed by function and by source file, and inclusive time by
 * function (the time with that function anywhere on the stack), each as ms and as a share of
 * the busy (non-idle) time.
 *
 *   deno run -A bench/cpu_profile.ts FILE.cpuprofile [--last S | --first S] [--under TEXT]
 *     [--top N] [--json]
 *
 * `--last` keeps only the samples of the profile's last S seconds (a benchmark's measured window
 * after a long start-up; the bench that wrote the profile says how long its window was), and
 * `--first` only those of its first S seconds (the start-up). `--under TEXT` keeps only the
 * samples with a function whose name contains TEXT on the stack (`--under "#apply
 * chain/chain.ts"`): where that function's time went; shares are then of that function's time.
 * Profiles come from `bench/consensus.ts --profile-node` or the ledger bench's
 * `LEDGER_PROFILE_DIR`.
 *
 * Owns: reading the profile format and those sums. Must never: write anything, or guess: a
 * sample is charged to the frame V8 recorded, and the shares are of the samples kept.
 */

/** One frame of the profile's call tree, as V8 writes it. */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds since the previous sample (the first: since startTime). */
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the busy time, 0..1. */
  share: number;
}

export interface ProfileSummary {
  /** Wall time covered by the kept samples, ms. */
  spanMs: number;
  /** Time not idle (everything but V8's "(idle)" frame), ms. */
  busyMs: number;
  selfByFunction: ProfileEntry[];
  selfByFile: ProfileEntry[];
  inclusiveByFunction: ProfileEntry[];
}

/** Frames that are V8's own bookkeeping rather than code. */
const IDLE = "(idle)";

/** Short file name: the repository path of a source file, `npm:…` for a package, else as is. */
function fileOf(url: string): string {
  if (url === "") return "(native)";
  const npm = url.indexOf("/node_modules/");
  if (npm >= 0) return `npm:${url.slice(npm + "/node_modules/".length).replace(/^\.deno\//, "")}`;
  return url.replace(SOURCE_ROOT, "");
}

/** Everything before the repository's own folders in a file URL. */
const SOURCE_ROOT =
  /^file:\/\/.*?\/(?=(bench|chain|consensus|crypto|encoding|mempool|metrics|network|node|rpc|state|storage|sync|wallet)\/|main\.ts)/;

function functionKey(node: ProfileNode): string {
  const f = node.callFrame;
  const name = f.functionName || "(anonymous)";
  return f.url === "" ? name : `${name} ${fileOf(f.url)}:${f.lineNumber + 1}`;
}

/** Which samples to keep: the last or the first seconds of the profile; all when absent. */
export type ProfileSpan = { last: number } | { first: number };

/**
 * Sums a profile, keeping the samples of `span` when given, and only those with a frame whose
 * key contains `under` on the stack when given.
 */
export function summarize(
  profile: CpuProfile,
  span?: ProfileSpan,
  under?: string,
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample i lasts until sample i + 1; the last one gets the mean delta.
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas) times.push(t += d);
  const from = span && "last" in span ? profile.endTime - span.last * 1e6 : -Infinity;
  const to = span && "first" in span ? profile.startTime + span.first * 1e6 : Infinity;
  const self = new Map<string, number>();
  const file = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let spanUs = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    if (times[i] < from || times[i] > to) continue;
    const durationUs = i + 1 < times.length
      ? times[i + 1] - times[i]
      : (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
    spanUs += durationUs;
    const node = byId.get(profile.samples[i]);
    if (!node || node.callFrame.functionName === IDLE) continue;
    const onStack = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (frame.callFrame.functionName === "(root)") break;
      onStack.add(functionKey(frame));
    }
    if (under !== undefined && ![...onStack].some((k) => k.includes(under))) continue;
    busyUs += durationUs;
    const key = functionKey(node);
    self.set(key, (self.get(key) ?? 0) + durationUs);
    const f = fileOf(node.callFrame.url);
    file.set(f, (file.get(f) ?? 0) + durationUs);
    for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + durationUs);
  }
  const entries = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }))
      .sort((a, b) => b.ms - a.ms);
  return {
    spanMs: spanUs / 1000,
    busyMs: busyUs / 1000,
    selfByFunction: entries(self),
    selfByFile: entries(file),
    inclusiveByFunction: entries(inclusive),
  };
}

/** The summary as plain text: three ranked lists of `top` lines. */
export function formatSummary(s: ProfileSummary, top: number): string {
  const lines = [
    `span ${s.spanMs.toFixed(0)} ms, busy ${s.busyMs.toFixed(0)} ms ` +
    `(${((100 * s.busyMs) / Math.max(1, s.spanMs)).toFixed(1)}%)`,
  ];
  const list = (title: string, xs: ProfileEntry[]) => {
    lines.push("", title);
    for (const e of xs.slice(0, top)) {
      lines.push(
        `${e.ms.toFixed(1).padStart(10)} ms ${(100 * e.share).toFixed(1).padStart(5)}%  ${e.name}`,
      );
    }
  };
  list("self time by file", s.selfByFile);
  list("self time by function", s.selfByFunction);
  list("inclusive time by function", s.inclusiveByFunction);
  return lines.join("\n");
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      last: { type: "string" },
      first: { type: "string" },
      under: { type: "string" },
      top: { type: "string", default: "30" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) {
    console.error(
      "usage: bench/cpu_profile.ts FILE.cpuprofile [--last S | --first S] [--under TEXT] " +
        "[--top N] [--json]",
    );
    Deno.exit(2);
  }
  const profile = JSON.parse(await Deno.readTextFile(positionals[0])) as CpuProfile;
  const span = values.last !== undefined
    ? { last: Number(values.last) }
    : values.first !== undefined
    ? { first: Number(values.first) }
    : undefined;
  const summary = summarize(profile, span, values.under);
  console.log(
    values.json ? JSON.stringify(summary, null, 2) : formatSummary(summary, Number(values.top)),
  );
}
