/**
 * The client commands: `timenode rpc`, `timenode status` and `timenode rpcauth`.
 *
 * Owns: what they print and their exit codes (0 ok, 1 the node answered with an error or
 * refused, 3 no node answered; usage errors, 2, are main.ts's), and the hints that say which
 * address and which cookie were tried.
 * Must never: retry a call that acts (`stop`, `setban`, `registermasternode`) on its own.
 */
import type { RpcClientCommand } from "./cli.ts";
import {
  authorizationFor,
  callRpc,
  NodeUnreachableError,
  RpcCallError,
  RpcHttpError,
  type RpcTarget,
} from "./rpc_client.ts";
import { fetchStatus, renderStatus } from "./status.ts";
import { makeRpcAuth } from "../rpc/auth.ts";

export const EXIT_RPC_ERROR = 1;
export const EXIT_NO_NODE = 3;
/** `status --watch` refresh: fast enough to see blocks arrive, slow enough to cost nothing. */
const WATCH_INTERVAL_MS = 2_000;
/** Each status call; a node that needs longer is in trouble, which the screen should say. */
const STATUS_CALL_TIMEOUT_MS = 5_000;

export async function runRpcCommand(
  cmd: Extract<RpcClientCommand, { kind: "rpc" }>,
): Promise<number> {
  const auth = await authorizationFor(cmd.target);
  try {
    const result = await callRpc(
      cmd.target.url,
      auth.header,
      cmd.method,
      cmd.params,
      cmd.timeoutMs,
    );
    // Text results (help) print as text, like bitcoin-cli; everything else as indented JSON.
    console.log(typeof result === "string" ? result : JSON.stringify(result, null, 2));
    return 0;
  } catch (e) {
    return reportFailure(e, cmd.target, auth.source);
  }
}

export async function runStatusCommand(
  cmd: Extract<RpcClientCommand, { kind: "status" }>,
): Promise<number> {
  if (!cmd.watch) {
    const auth = await authorizationFor(cmd.target);
    try {
      console.log(renderStatus(await statusOf(cmd.target, auth.header)).join("\n"));
      return 0;
    } catch (e) {
      return reportFailure(e, cmd.target, auth.source);
    }
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const clear = Deno.stdout.isTerminal() ? "\x1b[2J\x1b[H" : "";
    while (!stop.signal.aborted) {
      // The cookie changes at every node restart: read it again each time.
      const auth = await authorizationFor(cmd.target);
      let lines: string[];
      try {
        lines = renderStatus(await statusOf(cmd.target, auth.header));
      } catch (e) {
        lines = [failureText(e, cmd.target, auth.source)];
      }
      console.log(`${clear}${cmd.target.url}  ${new Date().toISOString()}\n${lines.join("\n")}\n`);
      await sleep(WATCH_INTERVAL_MS, stop.signal);
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

export function runRpcAuthCommand(cmd: Extract<RpcClientCommand, { kind: "rpcauth" }>): number {
  const { line, password } = makeRpcAuth(cmd.user, cmd.password ?? undefined);
  console.log(`Add to the node's flags (quoted: the value contains "$"):
  --rpc-auth '${line}'
Password of ${cmd.user} (shown only now; the node keeps only a salted hash):
  ${password}`);
  return 0;
}

function statusOf(target: RpcTarget, authorization: string | null) {
  return fetchStatus((method) =>
    callRpc(target.url, authorization, method, [], STATUS_CALL_TIMEOUT_MS)
  );
}

function reportFailure(e: unknown, target: RpcTarget, source: string): number {
  console.error(failureText(e, target, source));
  if (e instanceof NodeUnreachableError) return EXIT_NO_NODE;
  if (e instanceof RpcCallError || e instanceof RpcHttpError) return EXIT_RPC_ERROR;
  throw e;
}

function failureText(e: unknown, target: RpcTarget, source: string): string {
  if (e instanceof RpcCallError) return `timenode: error ${e.code}: ${e.message}`;
  const login = source === "user"
    ? "--rpc-user"
    : source === "cookie"
    ? `the cookie ${target.cookieFile}`
    : `no credentials (no cookie at ${target.cookieFile || "(no data dir)"})`;
  if (e instanceof RpcHttpError) {
    return `timenode: ${target.url} refused the call: ${e.message} (logged in with ${login})`;
  }
  if (e instanceof NodeUnreachableError) {
    const cookie = source === "cookie"
      ? `a cookie exists at ${target.cookieFile}: the node of that data dir runs on another ` +
        "address (check --rpc), or was killed without cleaning up"
      : source === "none"
      ? `no cookie at ${target.cookieFile || "(no data dir)"}: no node runs with that data dir ` +
        "(check --network, --data-dir)"
      : "logging in with --rpc-user";
    return `timenode: no node answered at ${target.url} (${e.reason}); ${cookie}`;
  }
  return `timenode: ${e instanceof Error ? e.message : String(e)}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
