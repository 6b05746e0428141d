/**
 * SIGINT and SIGTERM for a process that needs time to stop cleanly (a node, the devnet runner).
 *
 * Owns: the signal listeners from before start-up until shutdown has completed. A terminal's
 * Ctrl-C reaches every process of the foreground group, and `deno task` forwards it to its child
 * once more, so a process sees two SIGINTs within milliseconds. A listener removed after the first
 * would let the second one kill the process half-way through saving its state.
 * Must never: stop anything itself, or act on a repeated signal: the first one starts the
 * shutdown, later ones are only logged.
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["timenode", "node"]);
const SHUTDOWN_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

export interface ShutdownSignals {
  /** Resolves with the first SIGINT or SIGTERM. */
  readonly received: Promise<Deno.Signal>;
  /** Removes the listeners; call once shutdown has completed, just before exiting. */
  dispose(): void;
}

export function shutdownSignals(): ShutdownSignals {
  let resolve!: (s: Deno.Signal) => void;
  const received = new Promise<Deno.Signal>((r) => (resolve = r));
  let first: Deno.Signal | null = null;
  const handlers = SHUTDOWN_SIGNALS.map((signal) => {
    const handler = () => {
      if (first === null) {
        first = signal;
        resolve(signal);
      } else {
        log.info("{signal} received while stopping; the shutdown continues", { signal });
      }
    };
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  let disposed = false;
  return {
    received,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const { signal, handler } of handlers) Deno.removeSignalListener(signal, handler);
    },
  };
}
