/**
 * timenode entry point: parses the command line and runs one command.
 *
 * Owns: exit codes (0 ok, 1 runtime failure, 2 usage error; `rpc` and `status` add 3, no node
 * answered) and signal handling.
 * Must never: print a stack trace for an operator's mistake; usage errors are one line.
 */
import { getLogger } from "@logtape/logtape";
import { homeDir, parseCli, UsageError } from "./node/cli.ts";
import { readConfigFile } from "./node/config_file.ts";
import { setupLogging } from "./node/log.ts";
import { startNode } from "./node/node.ts";
import { runDevnet } from "./node/devnet.ts";
import { runGenesisCommand, runKeygenCommand } from "./node/commands.ts";
import { parseWalletArgs, runWalletCommand } from "./wallet/cli.ts";
import { versionLine } from "./node/build_info.ts";
import { shutdownSignals } from "./node/signals.ts";
import type { NodeConfig } from "./node/config.ts";
import { runRpcAuthCommand, runRpcCommand, runStatusCommand } from "./node/rpc_commands.ts";

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

async function main(argv: string[]): Promise<number> {
  try {
    return await runCommand(argv);
  } catch (e) {
    // A usage error found while running a command (a --key file that is not a key) is still
    // the operator's mistake: one line, status 2.
    if (e instanceof UsageError) {
      console.error(`timenode: ${e.message}`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

async function runCommand(argv: string[]): Promise<number> {
  // The wallet parses its own flags (wallet/cli.ts): it is a client of a running node.
  if (argv[0] === "wallet") {
    return await runWalletCommand(parseWalletArgs(argv.slice(1), homeDir()));
  }
  const command = parseCli(argv, { HOME: homeDir(), readConfigFile });
  switch (command.kind) {
    case "help":
    case "config":
      console.log(command.text);
      return 0;
    case "version":
      console.log(versionLine());
      return 0;
    case "keygen":
      return await runKeygenCommand(command);
    case "genesis":
      return await runGenesisCommand(command);
    case "rpc":
      return await runRpcCommand(command);
    case "status":
      return await runStatusCommand(command);
    case "rpcauth":
      return runRpcAuthCommand(command);
    case "devnet":
      setupLogging({ level: command.logLevel, format: command.logFormat });
      return await runDevnet(command);
    case "run":
      return await runNode(command.config);
  }
}

async function runNode(config: NodeConfig): Promise<number> {
  setupLogging({ level: config.logLevel, format: config.logFormat });
  const log = getLogger(["timenode", "node"]);
  // Installed before start-up and kept until the node has stopped: a Ctrl-C during either
  // becomes a clean stop, and a second one cannot cut the shutdown short.
  const signals = shutdownSignals();
  try {
    let node;
    try {
      node = await startNode(config);
    } catch (e) {
      log.fatal("cannot start: {error}", { error: e instanceof Error ? e.message : String(e) });
      return EXIT_FAILURE;
    }
    const stopWhen: Promise<unknown>[] = [signals.received, node.stopRequested];
    if (config.exitOnStdinClose) stopWhen.push(stdinClosed());
    const failure = await Promise.race([
      node.failed,
      Promise.race(stopWhen).then(() => null),
    ]);
    await node.stop();
    if (failure) {
      log.fatal("stopped after a fatal error: {error}", { error: failure.message });
      return EXIT_FAILURE;
    }
    return 0;
  } finally {
    signals.dispose();
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

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`timenode: fatal: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    Deno.exit(EXIT_FAILURE);
  }
}
