/**
 * timenode entry point: parses the command line and runs one command.
 *
 * Owns: exit codes (0 ok, 1 runtime failure, 2 usage error) and signal handling.
 * Must never: print a stack trace for an operator's mistake; usage errors are one line.
 */
import { getLogger } from "@logtape/logtape";
import { parseCli, UsageError } from "./node/cli.ts";
import { setupLogging } from "./node/log.ts";
import { startNode } from "./node/node.ts";
import { runDevnet } from "./node/devnet.ts";
import { runGenesisCommand, runKeygenCommand } from "./node/commands.ts";
import { parseWalletArgs, runWalletCommand } from "./wallet/cli.ts";

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

async function main(argv: string[]): Promise<number> {
  // The wallet parses its own flags (wallet/cli.ts): it is a client of a running node.
  if (argv[0] === "wallet") {
    try {
      return await runWalletCommand(parseWalletArgs(argv.slice(1), Deno.env.get("HOME")));
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      console.error(`timenode: ${e.message}`);
      return EXIT_USAGE;
    }
  }
  let command;
  try {
    command = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`timenode: ${e.message}`);
      return EXIT_USAGE;
    }
    throw e;
  }
  switch (command.kind) {
    case "help":
    case "version":
      console.log(command.text);
      return 0;
    case "keygen":
      return await runKeygenCommand(command.keyFile);
    case "genesis":
      return await runGenesisCommand(command);
    case "devnet":
      setupLogging({ level: command.logLevel, format: command.logFormat });
      return await runDevnet(command);
    case "run": {
      setupLogging({ level: command.config.logLevel, format: command.config.logFormat });
      const log = getLogger(["timenode", "node"]);
      let node;
      try {
        node = await startNode(command.config);
      } catch (e) {
        log.fatal("cannot start: {error}", { error: e instanceof Error ? e.message : String(e) });
        return EXIT_FAILURE;
      }
      await (command.config.exitOnStdinClose
        ? Promise.race([waitForShutdownSignal(), stdinClosed()])
        : waitForShutdownSignal());
      await node.stop();
      return 0;
    }
  }
}

/** Resolves when standard input reaches end of file (the parent that holds it went away). */
async function stdinClosed(): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    while ((await Deno.stdin.read(buf)) !== null) {
      // Nothing is expected on stdin; anything sent is ignored.
    }
  } catch {
    // An unreadable stdin counts as closed.
  }
}

/** Resolves on the first SIGINT or SIGTERM; removes its listeners so nothing lingers. */
export function waitForShutdownSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handler = () => {
      for (const s of signals) Deno.removeSignalListener(s, handler);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, handler);
  });
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`timenode: fatal: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    Deno.exit(EXIT_FAILURE);
  }
}
