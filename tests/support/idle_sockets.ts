/**
 * The idle-socket attacker: a process inside a network namespace (its own IP) that keeps TCP
 * connections to a target open and never sends a byte. Used by the hostile-network integration test
 * and benchmark.
 *
 * Must never: outlive its caller (`stop` closes its stdin, which ends it, then kills it).
 */

/**
 * Keeps N sockets to the target open and silent until stdin closes: a socket the node closes
 * is reopened half a second later, as a real attacker would.
 */
const IDLE_ATTACKER = `
const [host, port, n] = Deno.args;
let stopping = false;
const open = new Set();
async function hold() {
  if (stopping) return;
  let c;
  try {
    c = await Deno.connect({ hostname: host, port: Number(port) });
  } catch {
    setTimeout(hold, 500);
    return false;
  }
  open.add(c);
  (async () => {
    const b = new Uint8Array(64);
    try { while ((await c.read(b)) !== null) { /* the node talks first; never answer */ } } catch { /* reset */ }
    open.delete(c);
    try { c.close(); } catch { /* closed */ }
    setTimeout(hold, 500);
  })();
  return true;
}
let opened = 0;
for (let i = 0; i < Number(n); i++) if (await hold()) opened++;
console.log(JSON.stringify({ opened }));
for await (const _ of Deno.stdin.readable) { /* hold until the parent is done */ }
stopping = true;
for (const c of open) { try { c.close(); } catch { /* closed */ } }
Deno.exit(0);
`;

export interface IdleSockets {
  /** Connects that succeeded at the TCP level (the node may have closed them since). */
  opened: number;
  stop(): Promise<void>;
}

/** Opens `count` silent sockets from inside `netns` to `host:port`; resolves once all tried. */
export async function openIdleSockets(
  netns: string,
  host: string,
  port: number,
  count: number,
): Promise<IdleSockets> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, Deno.execPath(), "eval", IDLE_ATTACKER, "--", host]
      .concat([String(port), String(count)]),
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const opened = Number(JSON.parse(value ?? "{}").opened ?? 0);
  return {
    opened,
    async stop() {
      await child.stdin.close().catch(() => {});
      await child.stdout.cancel().catch(() => {});
      try {
        child.kill();
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}
