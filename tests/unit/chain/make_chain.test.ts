import assert from "node:assert/strict";
import { join } from "node:path";
import { fromHex, toHex } from "../../../encoding/binary.ts";
import { decodeKeyFile } from "../../../crypto/node_key.ts";
import { genesisHash, loadGenesisFile } from "../../../chain/genesis.ts";
import { Chain } from "../../../chain/chain.ts";
import { ChainStore } from "../../../chain/store.ts";
import { makeChain } from "../../support/make_chain.ts";
import { testValidatorKey } from "../../support/chain_builder.ts";
import { StaticStateMachine } from "../../support/static_state.ts";

const SCRIPT = new URL("../../support/make_chain.ts", import.meta.url).pathname;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "timenode-make-chain-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("make_chain: writes a genesis, keys and a data dir a node can open", () =>
  withDir(async (dir) => {
    const summary = await makeChain({ dir, blocks: 1_234, validators: 3, bodyBytes: 300 });
    assert.equal(summary.tipHeight, 1_234);
    const genesis = await loadGenesisFile(join(dir, "genesis.json"));
    assert.equal(summary.genesisHash, toHex(genesisHash(genesis)));
    assert.equal(genesis.masternodes.length, 3);
    const key = decodeKeyFile(await Deno.readTextFile(join(dir, "keys", "2.json")), "2.json");
    assert.deepEqual(key.publicKey, testValidatorKey(2).publicKey);

    const chain = new Chain({
      store: ChainStore.open(join(dir, "data"), genesisHash(genesis)),
      genesis,
      stateMachine: new StaticStateMachine(genesis),
    });
    try {
      assert.equal(chain.tip().height, 1_234);
      assert.deepEqual(chain.tip().hash, fromHex(summary.tipHash));
      assert.equal(chain.getEncodedBlocks(1, 500, 8 << 20).length, 500);
    } finally {
      chain.close();
    }
    await assert.rejects(() => makeChain({ dir, blocks: 5 }), /--force/);
    const again = await makeChain({ dir, blocks: 5, validators: 3, force: true });
    assert.equal(again.tipHeight, 5);
  }));

Deno.test("make_chain: the CLI prints a one-line JSON summary", () =>
  withDir(async (dir) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, "--dir", dir, "--blocks", "50", "--body-bytes", "10"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert.equal(lines.length, 1);
    const summary = JSON.parse(lines[0]);
    assert.equal(summary.tipHeight, 50);
    assert.match(summary.tipHash, /^[0-9a-f]{64}$/);
    assert.match(summary.genesisHash, /^[0-9a-f]{64}$/);

    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, "--dir", dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 1);
    assert.match(new TextDecoder().decode(bad.stderr), /usage/);
  }));
