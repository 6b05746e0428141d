/**
 * Durable whole-file replacement: the one way timenode rewrites a small state file (sign guard,
 * lock evidence, address book, bans).
 *
 * Owns: write to a unique temp file, fsync it, rename it over the target (or, for a file that
 * must never be replaced such as the node key, hard-link it into place, which fails when the
 * target exists), fsync the directory. After a crash the file holds the old or the new content,
 * never a mix; once the promise resolves, the new content survives power loss.
 * Must never: leave its temp file behind when it fails.
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
