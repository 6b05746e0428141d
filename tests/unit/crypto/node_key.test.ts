import assert from "node:assert/strict";
import {
  checkKeyFileMode,
  createKeyFile,
  loadOrCreateNodeKey,
  NODE_KEY_FILE,
  NodeKeyError,
} from "../../../crypto/node_key.ts";
import { generateKeyPair } from "../../../crypto/ed25519.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "node-key-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a new key file is created with mode 0600, whole, and leaves no temp file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/${NODE_KEY_FILE}`;
    const first = await loadOrCreateNodeKey(path);
    assert.equal(first.created, true);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [NODE_KEY_FILE]);
    const again = await loadOrCreateNodeKey(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.key.publicKey, first.key.publicKey);
  });
});

Deno.test("the key file is 0600 even under a permissive umask", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/${NODE_KEY_FILE}`;
    const old = Deno.umask(0);
    try {
      await createKeyFile(path, generateKeyPair());
    } finally {
      Deno.umask(old);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  });
});

Deno.test("an existing key is never overwritten", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/${NODE_KEY_FILE}`;
    const { key } = await loadOrCreateNodeKey(path);
    const before = await Deno.readTextFile(path);
    await assert.rejects(createKeyFile(path, generateKeyPair()), Deno.errors.AlreadyExists);
    assert.equal(await Deno.readTextFile(path), before);
    assert.deepEqual((await loadOrCreateNodeKey(path)).key.publicKey, key.publicKey);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [NODE_KEY_FILE]);
  });
});

for (const mode of [0o644, 0o640, 0o604, 0o660, 0o601]) {
  Deno.test(`a key file with mode ${mode.toString(8)} is refused with the chmod fix`, async () => {
    await withDir(async (dir) => {
      const path = `${dir}/${NODE_KEY_FILE}`;
      await loadOrCreateNodeKey(path);
      await Deno.chmod(path, mode);
      await assert.rejects(
        loadOrCreateNodeKey(path),
        (e: Error) =>
          e instanceof NodeKeyError && e.message.includes(`chmod 600 ${path}`) &&
          e.message.includes("readable by group or others"),
      );
      await Deno.chmod(path, 0o600);
      assert.equal((await loadOrCreateNodeKey(path)).created, false);
    });
  });
}

Deno.test("owner-only modes pass the check; Windows (no mode) is not checked", () => {
  checkKeyFileMode("k", 0o100600);
  checkKeyFileMode("k", 0o100400);
  checkKeyFileMode("k", null);
  assert.throws(() => checkKeyFileMode("k", 0o100644), NodeKeyError);
});
