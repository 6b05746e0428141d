/**
 * Release builds: `deno task release` cross-compiles timenode for every shipped target, writes
 * `dist/SHA256SUMS`, and runs the `--version` of the binary this machine can execute;
 * `deno task compile` builds `dist/timenode` for this machine only.
 *
 * Owns: the target list, binary names (`dist/timenode-<version>-<target>`), the commit embedded
 * in the binaries (build_commit.ts, rewritten for the build and restored afterwards) and the
 * smoke check.
 * Must never: leave build_commit.ts changed, or report success for a binary it did not run.
 *
 * `deno compile` needs Deno's runtime (denort) for each target, which it downloads from Deno's
 * servers the first time and caches in DENO_DIR. On a machine that cannot reach them, this script
 * stops with a message that says so (DENORT_BIN can point at a local runtime of the host target).
 */
import { TIMENODE_VERSION } from "../version.ts";
// The binary runs with exactly the permissions of the `start` task.
import { RUN_PERMISSIONS } from "../node/devnet.ts";

/** What timenode ships for: Linux servers on both common architectures. */
const RELEASE_TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;
/** Loaded by path at run time (a Worker), so `deno compile` must be told to embed it. */
const EXTRA_MODULES = ["sync/verify_worker.ts"];
const ROOT = new URL("../", import.meta.url).pathname;
const DIST = `${ROOT}dist`;
const BUILD_COMMIT_FILE = `${ROOT}build_commit.ts`;
const COMMIT_DIGITS = 12;

class ReleaseError extends Error {}

async function main(args: string[]): Promise<number> {
  const hostOnly = args.includes("--host-only");
  const unknown = args.filter((a) => a !== "--host-only");
  if (unknown.length > 0) {
    console.error(`release: unknown argument ${JSON.stringify(unknown[0])} (only --host-only)`);
    return 2;
  }
  const host = Deno.build.target;
  const commit = await currentCommit();
  await Deno.mkdir(DIST, { recursive: true });
  const builds = hostOnly
    ? [{ target: host, file: `${DIST}/timenode` }]
    : RELEASE_TARGETS.map((target) => ({
      target,
      file: `${DIST}/timenode-${TIMENODE_VERSION}-${target}`,
    }));

  const original = await Deno.readTextFile(BUILD_COMMIT_FILE);
  try {
    await Deno.writeTextFile(BUILD_COMMIT_FILE, embedCommit(original, commit));
    for (const b of builds) await compile(b.target, b.file);
  } finally {
    await Deno.writeTextFile(BUILD_COMMIT_FILE, original);
  }

  if (!hostOnly) {
    const sums = await Promise.all(
      builds.map(async (b) => `${await sha256(b.file)}  ${basename(b.file)}`),
    );
    await Deno.writeTextFile(`${DIST}/SHA256SUMS`, sums.join("\n") + "\n");
    console.log(`release: wrote ${DIST}/SHA256SUMS`);
  }
  const runnable = builds.find((b) => b.target === host);
  if (!runnable) {
    console.log(`release: no binary for this machine (${host}); nothing could be smoke-checked`);
    return 0;
  }
  await smokeCheck(runnable.file, commit);
  return 0;
}

/** The commit of the checkout, with "-dirty" when it has uncommitted changes. */
async function currentCommit(): Promise<string> {
  const head = await git(["rev-parse", `--short=${COMMIT_DIGITS}`, "HEAD"]);
  if (head === null) throw new ReleaseError("not a git checkout: a release must name its commit");
  const status = await git(["status", "--porcelain", "--untracked-files=no"]);
  return status === "" ? head : `${head}-dirty`;
}

async function git(args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", { args: ["-C", ROOT, ...args], stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

function embedCommit(source: string, commit: string): string {
  const line = "export const BUILD_COMMIT: string | null = null;";
  if (!source.includes(line)) {
    throw new ReleaseError(`${BUILD_COMMIT_FILE} does not hold "${line}"; restore it from git`);
  }
  return source.replace(
    line,
    `export const BUILD_COMMIT: string | null = ${JSON.stringify(commit)};`,
  );
}

async function compile(target: string, output: string): Promise<void> {
  console.log(`release: compiling ${basename(output)} (${target})`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      ...RUN_PERMISSIONS,
      ...EXTRA_MODULES.flatMap((m) => ["--include", m]),
      "--target",
      target,
      "--output",
      output,
      "main.ts",
    ],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.success) return;
  await Deno.stderr.write(out.stderr);
  const runtime = /denort-[\w-]+\.zip|Setting up base binary|dl\.deno\.land/.exec(stderr);
  if (runtime) {
    throw new ReleaseError(
      `cannot build for ${target}: deno compile needs Deno's runtime for that target ` +
        `(denort ${Deno.version.deno}), downloads it from dl.deno.land the first time, and ` +
        "could not. Run this on a machine that can reach dl.deno.land (it is cached in DENO_DIR " +
        "afterwards), or, for the host target, set DENORT_BIN to a local denort binary.",
    );
  }
  throw new ReleaseError(`deno compile failed for ${target} (exit ${out.code}); see above`);
}

/** Runs the binary: it must start and report this version and commit. */
async function smokeCheck(file: string, commit: string): Promise<void> {
  const out = await new Deno.Command(file, { args: ["--version"], stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const expected = `timenode ${TIMENODE_VERSION} (commit ${commit}, deno ${Deno.version.deno})`;
  if (!out.success || text !== expected) {
    throw new ReleaseError(
      `smoke check of ${basename(file)} failed: exit ${out.code}, printed ${
        JSON.stringify(text)
      }, ` +
        `expected ${JSON.stringify(expected)}`,
    );
  }
  console.log(`release: ${basename(file)} --version: ${text}`);
}

async function sha256(file: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(file));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (!(e instanceof ReleaseError)) throw e;
    console.error(`release: ${e.message}`);
    Deno.exit(1);
  }
}
