/**
 * `deno task mutate-by-hand LIST`: applies listed mutants one at a time and runs the module's
 * mutation test list (tools/mutate/run.ts `TARGETS`) against each, to check that a new test
 * kills the mutant it was written for without waiting for a full Stryker run.
 *
 * LIST has one mutant a line: `module<TAB>line<TAB>from<TAB>to`, where `from` is replaced by
 * `to` once on that line (`to` may be empty: a deleted condition or statement); blank lines and
 * lines starting with `#` are skipped. A mutant whose `from` is not on its line is reported as
 * "stale" (the code moved), never silently skipped.
 *
 * Owns: the by-hand check of a list of mutants.
 * Must never: touch the working tree. It mutates a private copy of the tracked files (under the
 * system temp dir, removed at the end), so a Stryker run that copies the tree meanwhile never
 * sees a mutated file.
 */
import { TARGETS } from "./run.ts";

interface Mutant {
  module: string;
  line: number;
  from: string;
  to: string;
}

/** Same permissions as the Stryker runs (tools/mutate/run.ts). */
const DENO_TEST_ARGS = [
  "test",
  "--no-check",
  "--quiet",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-run",
];

export function parseList(text: string): Mutant[] {
  const out: Mutant[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    if (raw.trim() === "" || raw.startsWith("#")) continue;
    const [module, line, from, to = ""] = raw.split("\t");
    if (!(module in TARGETS) || !/^\d+$/.test(line ?? "") || !from) {
      throw new Error(
        `line ${i + 1}: want module<TAB>line<TAB>from<TAB>to, got ${raw}`,
      );
    }
    out.push({ module, line: Number(line), from, to });
  }
  return out;
}

async function output(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stderr: "inherit" })
    .output();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return new TextDecoder().decode(r.stdout);
}

/** A copy of every tracked file (and the untracked new ones) in a fresh temp dir. */
async function copyTree(): Promise<string> {
  const files = (await output("git", [
    "ls-files",
    "--cached",
    "--others",
    "--exclude-standard",
  ]))
    .split("\n").filter((f) => f !== "");
  const dir = await Deno.makeTempDir({ prefix: "mutate-by-hand-" });
  for (const f of files) {
    const to = `${dir}/${f}`;
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(f, to).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e; // deleted but not yet staged
    });
  }
  return dir;
}

async function check(
  dir: string,
  m: Mutant,
): Promise<"killed" | "survived" | "stale"> {
  const path = `${dir}/${m.module}`;
  const original = await Deno.readTextFile(path);
  const lines = original.split("\n");
  const line = lines[m.line - 1];
  if (line === undefined || !line.includes(m.from)) return "stale";
  lines[m.line - 1] = line.replace(m.from, m.to);
  await Deno.writeTextFile(path, lines.join("\n"));
  try {
    // At low priority, like the Stryker runs: the machine is shared.
    const r = await new Deno.Command("nice", {
      args: ["-n", "10", "deno", ...DENO_TEST_ARGS, ...TARGETS[m.module]],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success ? "survived" : "killed";
  } finally {
    await Deno.writeTextFile(path, original);
  }
}

async function main(args: string[]): Promise<number> {
  if (args.length !== 1 || args[0] === "--help") {
    console.log(
      "usage: deno task mutate-by-hand LIST   (module<TAB>line<TAB>from<TAB>to a line)",
    );
    return args[0] === "--help" ? 0 : 2;
  }
  const mutants = parseList(await Deno.readTextFile(args[0]));
  const dir = await copyTree();
  let bad = 0;
  try {
    for (const m of mutants) {
      const result = await check(dir, m);
      if (result !== "killed") bad++;
      console.log(
        `${result.padEnd(8)} ${m.module}:${m.line} ${JSON.stringify(m.from)} → ` +
          JSON.stringify(m.to),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`${mutants.length - bad} of ${mutants.length} killed`);
  return bad === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
