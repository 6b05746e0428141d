/**
 * Durable whole-file replacement: the one way timenode rewrites a small state file (sign guard,
 * lock evidence, address book, bans).
 *
 * Owns: write to a unique temp file, fsync it, rename it over the target (or, for a file that
 * must never be replaced such as the node key, hard-link it into place, which fails when the
 * target exists), fsync the directory. After a crash the file holds the old or the new content,
 * never a mix; once the promise resolves, the new content survives power loss. Also the bounded
 * read of a small JSON state file written this way.
 * Must never: leave its temp file behind when it fails, or read an unbounded file into memory.
 */

let tempCounter = 0;

function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

export function replaceFileDurably(
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): Promise<void> {
  return writeDurably(path, bytes, mode, (tmp) => Deno.rename(tmp, path));
}

/**
 * Like `replaceFileDurably`, but never replaces: throws `Deno.errors.AlreadyExists` when `path`
 * exists, leaving it untouched. The content appears whole or not at all.
 */
export function createFileDurably(path: string, bytes: Uint8Array, mode = 0o600): Promise<void> {
  return writeDurably(path, bytes, mode, async (tmp) => {
    // link(2) refuses an existing target atomically, where rename(2) would replace it.
    await Deno.link(tmp, path);
    await Deno.remove(tmp);
  });
}

async function writeDurably(
  path: string,
  bytes: Uint8Array,
  mode: number,
  moveIntoPlace: (tmp: string) => Promise<void>,
): Promise<void> {
  // Unique per call: two saves of one file may overlap (a timer and a ban change).
  const tmp = `${path}.${Deno.pid}.${++tempCounter}.tmp`;
  try {
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode });
    try {
      // The mode of open(2) is filtered by the umask; a secret must not depend on it.
      if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.syncData();
    } finally {
      file.close();
    }
    await moveIntoPlace(tmp);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  // The new name lives in the directory entry; without this fsync it can be lost on power loss.
  const dir = await Deno.open(dirOf(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/**
 * Reads the small JSON file at `path`, parsed: null when it does not exist. A file over
 * `maxBytes`, unreadable or not JSON throws `fail(message)`, the message naming `what` and the
 * path, so the caller can log it and go on without the file.
 */
export async function readJsonFile(
  path: string,
  maxBytes: number,
  what: string,
  fail: (message: string) => Error,
): Promise<unknown | null> {
  let size: number;
  let text = "";
  try {
    size = (await Deno.stat(path)).size;
    // Checked before reading: a huge file must not be read into memory to find that out.
    if (size <= maxBytes) text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw fail(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  if (size > maxBytes) throw fail(`${what} ${path} is ${size} bytes, over the limit`);
  try {
    return JSON.parse(text);
  } catch {
    throw fail(`${what} ${path} is not valid JSON`);
  }
}
