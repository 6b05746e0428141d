/**
 * Durable whole-file replacement (storage/durable_file.ts): the target holds the old or the new
 * content, never a mix or nothing; the file's data is fsynced before the rename and the
 * directory after it; the mode is applied; a failure leaves the old file and no temp file.
 *
 * The fsync order is observed by wrapping `Deno.open` and `Deno.rename` for the duration of one
 * test (restored in `finally`); failures are injected through the bytes argument, so production
 * needs no hook.
 *
 * Mutations caught: dropping the data fsync or the directory fsync, renaming before the data
 * fsync, writing the target in place (no temp file), not removing the temp file on failure,
 * ignoring `mode`, a temp name shared by overlapping saves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { replaceFileDurably } from "../../../storage/durable_file.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-durable-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = async (path: string) => new TextDecoder().decode(await Deno.readFile(path));

Deno.test("durable file: creates, then replaces, with no temp file left", () =>
  withDir(async (dir) => {
    const path = join(dir, "state.bin");
    await replaceFileDurably(path, bytes("first"));
    assert.equal(await text(path), "first");
    await replaceFileDurably(path, bytes("second, longer than the first"));
    assert.equal(await text(path), "second, longer than the first");
    await replaceFileDurably(path, bytes(""));
    assert.equal(await text(path), "", "an empty file is a valid content");
    assert.deepEqual(await names(dir), ["state.bin"]);
  }));

Deno.test("durable file: mode 0600 by default, or the one asked for", () =>
  withDir(async (dir) => {
    const secret = join(dir, "secret");
    await replaceFileDurably(secret, bytes("k"));
    assert.equal((await Deno.stat(secret)).mode! & 0o777, 0o600);
    const shared = join(dir, "shared");
    await replaceFileDurably(shared, bytes("p"), 0o640);
    assert.equal((await Deno.stat(shared)).mode! & 0o777, 0o640);
    // A replacement takes the new mode: it is a new file, not the old one rewritten.
    await Deno.chmod(secret, 0o644);
    await replaceFileDurably(secret, bytes("k2"));
    assert.equal((await Deno.stat(secret)).mode! & 0o777, 0o600);
  }));

Deno.test("durable file: a failure while writing leaves the old file and no temp file", () =>
  withDir(async (dir) => {
    const path = join(dir, "guard.bin");
    await replaceFileDurably(path, bytes("old content"));
    // Fails after the temp file exists: the first write asks for a slice and gets an error.
    const failing = {
      length: 10,
      subarray() {
        throw new Error("injected write failure");
      },
    } as unknown as Uint8Array;
    await assert.rejects(replaceFileDurably(path, failing), /injected write failure/);
    assert.equal(await text(path), "old content");
    assert.deepEqual(await names(dir), ["guard.bin"], "the temp file is removed");
  }));

Deno.test("durable file: a failed rename (target is a directory) cleans up its temp file", () =>
  withDir(async (dir) => {
    const target = join(dir, "taken");
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "inside"), "x");
    await assert.rejects(replaceFileDurably(target, bytes("y")));
    assert.deepEqual(await names(dir), ["taken"]);
    assert.equal(await text(join(target, "inside")), "x");
  }));

Deno.test("durable file: data fsync, then rename, then directory fsync", () =>
  withDir(async (dir) => {
    const path = join(dir, "ordered.bin");
    const events: string[] = [];
    const open = Deno.open;
    const rename = Deno.rename;
    const label = (p: string | URL) => {
      const s = String(p);
      return s === path ? "target" : s === dir ? "dir" : s.endsWith(".tmp") ? "temp" : s;
    };
    // Test-only spies; both are restored below whatever happens.
    Deno.open = async (p: string | URL, options?: Deno.OpenOptions) => {
      const file = await open(p, options);
      const who = label(p);
      events.push(`open ${who}`);
      const syncData = file.syncData.bind(file);
      const sync = file.sync.bind(file);
      file.syncData = () => (events.push(`syncData ${who}`), syncData());
      file.sync = () => (events.push(`sync ${who}`), sync());
      return file;
    };
    Deno.rename = (from: string | URL, to: string | URL) => {
      events.push(`rename ${label(from)} -> ${label(to)}`);
      return rename(from, to);
    };
    try {
      await replaceFileDurably(path, bytes("payload"));
    } finally {
      Deno.open = open;
      Deno.rename = rename;
    }
    assert.deepEqual(events, [
      "open temp",
      "syncData temp",
      "rename temp -> target",
      "open dir",
      "sync dir",
    ]);
    assert.equal(await text(path), "payload");
  }));

Deno.test("durable file: overlapping saves of one file never mix and leave no temp", () =>
  withDir(async (dir) => {
    const path = join(dir, "peers.json");
    const contents = Array.from({ length: 8 }, (_, i) => String(i).repeat(50_000 + i));
    await Promise.all(contents.map((c) => replaceFileDurably(path, bytes(c))));
    const final = await text(path);
    assert.ok(contents.includes(final), "one whole save won");
    assert.deepEqual(await names(dir), ["peers.json"]);
  }));

Deno.test("durable file: a reader during a replace sees the old or the new content", () =>
  withDir(async (dir) => {
    const path = join(dir, "evidence.bin");
    const before = "a".repeat(200_000);
    const after = "b".repeat(300_000);
    await replaceFileDurably(path, bytes(before));
    const seen = new Set<string>();
    let done = false;
    const reader = (async () => {
      while (!done) {
        const t = await text(path);
        seen.add(t === before ? "old" : t === after ? "new" : `mixed ${t.length}`);
      }
    })();
    await replaceFileDurably(path, bytes(after));
    done = true;
    await reader;
    for (const s of seen) assert.ok(s === "old" || s === "new", s);
    assert.equal(await text(path), after);
  }));
