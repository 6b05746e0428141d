/**
 * A TCP proxy that delays every byte by a fixed time per direction, keeping order: a node behind
 * it sits on a slow link while staying online. Run as a program inside a test network namespace
 * (tests/integration/stake_latency.test.ts), where no `tc netem` is available:
 *   deno run -A tests/support/delay_proxy.ts LISTEN TARGET TO_TARGET_MS TO_CLIENT_MS [...]
 * (one quadruple per proxied address; it prints "ready" once all of them listen).
 *
 * Must never: drop, reorder or alter bytes, or listen outside the test's own addresses.
 */

/** Copies `from` to `to`, each chunk released `delayMs` after it was read, in order. */
async function pipeDelayed(from: Deno.Conn, to: Deno.Conn, delayMs: number): Promise<void> {
  let last = Promise.resolve();
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      const due = performance.now() + delayMs;
      last = last.then(async () => {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        let off = 0;
        while (off < chunk.length) off += await to.write(chunk.subarray(off));
      }).catch(() => {
        // The other side is gone: the read side ends on the close that follows.
      });
    }
  } catch {
    // Reset by either side.
  }
  await last;
  try {
    to.closeWrite();
  } catch {
    // Already closed.
  }
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // Closed already.
  }
}

/**
 * Listens on `listen` ("host:port") and forwards each connection to `target`, delaying bytes
 * toward the target by `toTargetMs` and back by `toClientMs`. Runs until the process ends.
 */
export function startDelayProxy(
  listen: string,
  target: string,
  toTargetMs: number,
  toClientMs: number,
): void {
  const [hostname, port] = target.split(":");
  const [listenHost, listenPort] = listen.split(":");
  const listener = Deno.listen({ hostname: listenHost, port: Number(listenPort) });
  (async () => {
    for await (const inbound of listener) {
      (async () => {
        let outbound: Deno.Conn;
        try {
          outbound = await Deno.connect({ hostname, port: Number(port) });
        } catch {
          closeQuietly(inbound);
          return;
        }
        await Promise.all([
          pipeDelayed(inbound, outbound, toTargetMs),
          pipeDelayed(outbound, inbound, toClientMs),
        ]);
        closeQuietly(inbound);
        closeQuietly(outbound);
      })();
    }
  })();
}

if (import.meta.main) {
  const args = Deno.args;
  for (let i = 0; i + 3 < args.length; i += 4) {
    startDelayProxy(args[i], args[i + 1], Number(args[i + 2]), Number(args[i + 3]));
  }
  console.log("ready");
}
