/**
 * One process per data dir: an exclusive advisory lock (flock) on `<dataDir>/LOCK`, held for
 * the life of the node and released by the kernel however the process ends.
 *
 * Why it matters: two processes on one masternode's data dir would share one sign guard and
 * could sign conflicting votes; two writers would also fight over the chain database.
 * Must never: wait indefinitely; a held lock is reported at once as a start-up error.
 */
export const LOCK_FILE = "LOCK";
/** flock has no try-lock in Deno's API: a lock not granted within this is held by another. */
const LOCK_WAIT_MS = 1_000;

export interface DataDirLock {
  release(): void;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = `${dataDir}/${LOCK_FILE}`;
  const file = await Deno.open(path, { create: true, write: true, mode: 0o600 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const granted = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), LOCK_WAIT_MS))),
  ]);
  clearTimeout(timer);
  if (!granted) {
    // The pending lock request dies with this process, which is about to exit.
    throw new Error(
      `data dir ${dataDir} is in use by another timenode process (${path} is locked)`,
    );
  }
  await file.truncate();
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return {
    release() {
      try {
        file.close();
      } catch {
        // Already closed.
      }
    },
  };
}
