/**
 * Durable whole-file replacement: the one way timenode rewrites a small state file (sign guard,
 * lock evidence, address book, bans).
 *
 * Owns: write to a unique temp file, fsync it, rename it over the target, fsync the directory.
 * After a crash the file holds the old or the new content, never a mix; once the promise
 * resolves, the new content survives power loss.
 * Must never: leave its temp file behind when it fails.
 */

let tempCounter = 0;

function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

export async function replaceFileDurably(
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): Promise<void> {
  // Unique per call: two saves of one file may overlap (a timer and a ban change).
  const tmp = `${path}.${Deno.pid}.${++tempCounter}.tmp`;
  try {
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  // The rename lives in the directory entry; without this fsync it can be lost on power loss.
  const dir = await Deno.open(dirOf(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}
