/**
 * Real node processes for integration tests: spawn `main.ts run` with flags, read its JSON log
 * lines as events, call its RPC, stop or kill it.
 *
 * Waiting is event-driven: `waitForLog` resolves on the log line that proves a thing happened,
 * and `waitFor` re-checks RPC state only when the node logs something or, at most, every
 * `POLL_MS`. Every wait has a deadline and fails with what it was waiting for.
 * Must never: leave a process, pipe or timer behind (the tests keep Deno's sanitizers on).
 */

import { RUN_PERMISSIONS } from "../../node/devnet.ts";
import { withTimeout } from "./deadline.ts";

export { withTimeout };
import { postJsonRpc } from "./rpc_batch.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** Upper bound between re-checks of RPC state when nothing is logged. */
const POLL_MS = 100;

export interface LogEvent {
  "@timestamp": string;
  level: string;
  logger: string;
  message: string;
  properties: Record<string, unknown>;
}

export function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export function tempDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ prefix: `timenode-${prefix}-` });
}

export interface NodeOptions {
  name: string;
  dataDir: string;
  p2pPort: number;
  rpcPort: number;
  peers?: string[];
  genesis?: string;
  network?: string;
  extra?: string[];
  /** Listen host for p2p and RPC (default 127.0.0.1). */
  host?: string;
  /** Run inside this network namespace (`ip netns exec`), as a host with its own IP. */
  netns?: string;
  /** The p2p listen address when it differs from `host:p2pPort` (an IPv6 "[addr]:port"). */
  listen?: string;
  /** Default debug: tests wait on debug-level events. */
  logLevel?: string;
}

type Waiter = { pred: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void };

export class NodeProcess {
  readonly name: string;
  readonly opts: NodeOptions;
  readonly logs: LogEvent[] = [];
  #child: Deno.ChildProcess | null = null;
  #waiters: Waiter[] = [];
  #readers: Promise<void>[] = [];
  #listeners = new Set<() => void>();
  #exit: Promise<Deno.CommandStatus> | null = null;
  /** How the last process ended (exit code or signal), once it has: for "why did it stop". */
  lastExit: Deno.CommandStatus | null = null;

  constructor(opts: NodeOptions) {
    this.name = opts.name;
    this.opts = opts;
  }

  get p2p(): string {
    return `${this.opts.host ?? "127.0.0.1"}:${this.opts.p2pPort}`;
  }

  get rpcUrl(): string {
    return `http://${this.opts.host ?? "127.0.0.1"}:${this.opts.rpcPort}`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** The node process's id while it runs (benches read its CPU time from /proc). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  args(): string[] {
    const o = this.opts;
    return [
      "run",
      ...RUN_PERMISSIONS,
      MAIN,
      "run",
      "--network",
      o.network ?? "devnet",
      "--data-dir",
      o.dataDir,
      "--listen",
      o.listen ?? this.p2p,
      "--rpc",
      `${o.host ?? "127.0.0.1"}:${o.rpcPort}`,
      "--log-format",
      "json",
      "--log-level",
      o.logLevel ?? "debug",
      ...(o.genesis ? ["--genesis", o.genesis] : []),
      ...(o.peers ?? []).flatMap((p) => ["--peer", p]),
      ...(o.extra ?? []),
    ];
  }

  start(): void {
    if (this.#child) throw new Error(`${this.name} already running`);
    // `ip netns exec` execs the command in place, so the child's pid is the node's own.
    const [cmd, prefix] = this.opts.netns
      ? ["ip", ["netns", "exec", this.opts.netns, Deno.execPath()]]
      : [Deno.execPath(), []];
    const child = new Deno.Command(cmd, {
      args: [...prefix, ...this.args()],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#child = child;
    this.lastExit = null;
    this.#exit = child.status.then((status) => this.lastExit = status);
    this.#readers = [this.#drain(child.stdout, false), this.#drain(child.stderr, true)];
  }

  async #drain(stream: ReadableStream<Uint8Array>, parse: boolean): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      if (!parse) continue;
      pending += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.#onLine(line);
      }
    }
  }

  #onLine(line: string): void {
    let e: LogEvent;
    try {
      e = JSON.parse(line);
    } catch {
      e = { "@timestamp": "", level: "RAW", logger: "", message: line, properties: {} };
    }
    if (Deno.env.get("TIMENODE_TEST_LOGS")) console.error(`[${this.name}] ${line}`);
    this.logs.push(e);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(e)) return true;
      w.resolve(e);
      return false;
    });
    for (const l of this.#listeners) l();
  }

  /** Resolves with the first log event (past or future) matching `pred`. */
  waitForLog(pred: (e: LogEvent) => boolean, what: string, timeoutMs = 20_000): Promise<LogEvent> {
    const past = this.logs.find(pred);
    if (past) return Promise.resolve(past);
    return withTimeout(
      new Promise<LogEvent>((resolve) => this.#waiters.push({ pred, resolve })),
      timeoutMs,
      `${this.name}: ${what}`,
      () => (this.#waiters = this.#waiters.filter((w) => w.pred !== pred)),
    );
  }

  /** Log events after index `from` that match. */
  logsMatching(pred: (e: LogEvent) => boolean, from = 0): LogEvent[] {
    return this.logs.slice(from).filter(pred);
  }

  rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    return rpcCall<T>({ rpc: this.rpcUrl, dataDir: this.opts.dataDir }, method, params);
  }

  async metrics(): Promise<string> {
    const res = await fetch(`${this.rpcUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return await res.text();
  }

  /**
   * Re-evaluates `check` whenever the node logs something (at most every POLL_MS) until it
   * returns a truthy value, or fails after `timeoutMs` naming `what`.
   */
  async waitFor<T>(
    check: () => Promise<T | undefined | false | null>,
    what: string,
    timeoutMs = 30_000,
  ): Promise<T> {
    return await pollUntil(
      check,
      `${this.name}: ${what}`,
      timeoutMs,
      (ms) => this.#nextActivity(ms),
    );
  }

  /** Resolves on the next log line or after `ms`, whichever comes first. */
  #nextActivity(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#listeners.delete(done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      this.#listeners.add(done);
    });
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(): Promise<number> {
    return await this.#terminate("SIGTERM");
  }

  async kill9(): Promise<void> {
    await this.#terminate("SIGKILL");
  }

  signal(sig: Deno.Signal): void {
    this.#child?.kill(sig);
  }

  async #terminate(sig: Deno.Signal): Promise<number> {
    const child = this.#child;
    if (!child) return 0;
    try {
      child.kill(sig);
    } catch {
      // Already exited.
    }
    const status = await this.#exit!;
    await Promise.all(this.#readers);
    this.#child = null;
    for (const w of this.#waiters) {
      w.resolve({ "@timestamp": "", level: "EXIT", logger: "", message: "exited", properties: {} });
    }
    this.#waiters = [];
    return status.code;
  }

  /** The exit of a process that ends by itself (e.g. refused to start). */
  async exited(timeoutMs = 30_000): Promise<number> {
    const status = await withTimeout(this.#exit!, timeoutMs, `${this.name} to exit`);
    await Promise.all(this.#readers);
    this.#child = null;
    return status.code;
  }
}

/** The samples of `name` in a Prometheus scrape whose labels include `labels`, and its type. */
function samplesOf(
  text: string,
  name: string,
  labels: Record<string, string>,
): { type: string | undefined; values: number[] } {
  let type: string | undefined;
  const values: number[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith(`# TYPE ${name} `)) type = line.slice(`# TYPE ${name} `.length).trim();
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-z_]+)(\{([^}]*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const ls: Record<string, string> = {};
    for (const kv of (m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)) ls[kv[1]] = kv[2];
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) values.push(Number(m[4]));
  }
  return { type, values };
}

/**
 * The sum of the `name{labels}` samples of a Prometheus scrape. Throws when the scrape has no
 * such sample: a renamed metric or label must fail the test, never read as 0. (An unlabelled
 * counter is always exported, as `name 0` before its first increment.)
 */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  const { type, values } = samplesOf(text, name, labels);
  if (values.length === 0) {
    throw new Error(
      type === undefined
        ? `metric ${name} is not exported at all`
        : `metric ${name} has no sample with labels ${JSON.stringify(labels)}`,
    );
  }
  return values.reduce((a, b) => a + b, 0);
}

/**
 * A labelled counter's value where "absent" legitimately means 0: the series of a label value
 * appears only once it is first incremented. The counter itself must be exported (its `# TYPE
 * … counter` line), so a renamed metric still fails the test.
 */
export function counterValue(
  text: string,
  name: string,
  labels: Record<string, string>,
): number {
  const { type, values } = samplesOf(text, name, labels);
  if (type !== "counter") {
    throw new Error(
      type === undefined ? `metric ${name} is not exported at all` : `${name} is a ${type}`,
    );
  }
  return values.reduce((a, b) => a + b, 0);
}

export async function stopAll(nodes: NodeProcess[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

/**
 * `NodeProcess.waitFor` for things no node process logs about (a file another process writes,
 * a process going away): re-checks every POLL_MS until truthy, or fails naming `what`.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined | false | null>,
  what: string,
  timeoutMs = 30_000,
  /** How to wait between checks, at most `ms`; a fixed POLL_MS pause unless told otherwise. */
  pause: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastError = (e as Error).message;
    }
    await pause(Math.max(0, Math.min(POLL_MS, deadline - Date.now())));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (${lastError})` : ""}`,
  );
}

/**
 * One JSON-RPC call to a node's RPC URL, without a `NodeProcess` (e.g. devnet children),
 * authenticated with the cookie in its data dir.
 */
export async function rpcCall<T = unknown>(
  node: { rpc: string; dataDir: string },
  method: string,
  params: unknown[] = [],
): Promise<T> {
  const { body } = await postJsonRpc(node, { jsonrpc: "2.0", id: 1, method, params }, 5_000) as {
    body: { result?: T; error?: { message: string } };
  };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

/** True when `e` is fetch failing because nothing listens on the port (the process is gone). */
export function isConnectionRefused(e: unknown): boolean {
  const cause = (e as { cause?: unknown })?.cause;
  return e instanceof TypeError && /Connection refused|ECONNREFUSED/.test(String(cause ?? e));
}

/**
 * True once `url` refuses connections: the process behind it is gone. Any other failure (a
 * timeout of a hung process, an HTTP or RPC error) is thrown, so `pollUntil` keeps waiting and
 * reports it instead of taking a hung node for a stopped one.
 */
export async function rpcRefused(node: { rpc: string; dataDir: string }): Promise<boolean> {
  try {
    await rpcCall(node, "getblockcount");
    return false;
  } catch (e) {
    if (isConnectionRefused(e)) return true;
    throw e;
  }
}
