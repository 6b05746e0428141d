/**
 * What this build is: version, git commit and Deno version, for `timenode --version`, the start-up
 * log line and the `timenode_build_info` metric.
 *
 * Owns: finding the commit: the one embedded at build time (build_commit.ts), else `git` on the
 * source tree this module runs from, else "unknown".
 * Must never: fail. A missing git, a tree that is not a checkout or no permission to run
 * programs all give "unknown".
 */
import { TIMENODE_VERSION } from "../version.ts";
import { BUILD_COMMIT } from "../build_commit.ts";

/** Twelve hex digits name a commit uniquely in any repository of this size. */
const COMMIT_DIGITS = 12;

export interface BuildInfo {
  version: string;
  commit: string;
  deno: string;
}

let cached: BuildInfo | null = null;

export function buildInfo(): BuildInfo {
  cached ??= {
    version: TIMENODE_VERSION,
    commit: BUILD_COMMIT ?? commitFromGit() ?? "unknown",
    deno: Deno.version.deno,
  };
  return cached;
}

/** `timenode --version`: one line, easy to paste into a report. */
export function versionLine(): string {
  const b = buildInfo();
  return `timenode ${b.version} (commit ${b.commit}, deno ${b.deno})`;
}

function commitFromGit(): string | null {
  const root = new URL("../", import.meta.url);
  if (root.protocol !== "file:") return null;
  try {
    const out = new Deno.Command("git", {
      args: ["-C", root.pathname, "rev-parse", `--short=${COMMIT_DIGITS}`, "HEAD"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const commit = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{7,40}$/.test(commit) ? commit : null;
  } catch {
    return null; // no git, or no permission to run it
  }
}
