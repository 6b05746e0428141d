/**
 * Would Ed25519 batch verification raise the verify bound? (issue 12, item 2; docs/benchmarks.md
 * "Ed25519 batch verification"). Not a suite: it pulls two npm packages the node does not depend
 * on, fetched on first run; `--no-lock` keeps them out of deno.lock.
 *
 *   deno run -A --no-lock bench/ed25519_batch.ts [--signatures 67] [--certificates 100] [--runs 5]
 *
 * Verifies certificates of `--signatures` signatures of one 77-byte message, four ways, and
 * prints µs per signature (median of the runs, min–max) beside node:crypto's:
 *  - node:crypto (OpenSSL), one by one: what the verify workers use;
 *  - ed25519-dalek compiled to WASM (`@typeberry/native`), one by one and as one batch;
 *  - pure JavaScript (`@noble/curves`), one by one.
 *
 * Owns: this comparison. Must never: be imported by the node or the tests.
 */
import { parseArgs } from "node:util";
import { generateKeyPair, signBytes, verifySignature } from "../crypto/ed25519.ts";

/** The only batch verifier on npm found; its `verify_ed25519_batch` is not ZIP-215. */
const DALEK_WASM = "npm:@typeberry/native@0.5.1-4e90642";
const NOBLE = "npm:@noble/curves@2.4.0/ed25519.js";
/** A vote's signed bytes are about this long. */
const MESSAGE_BYTES = 77;

interface DalekModule {
  initAll(): Promise<void>;
  ed25519: {
    verify_ed25519(packed: Uint8Array): Uint8Array;
    verify_ed25519_batch(packed: Uint8Array): boolean;
  };
}
interface NobleModule {
  ed25519: { verify(sig: Uint8Array, msg: Uint8Array, key: Uint8Array): boolean };
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    signatures: { type: "string", default: "67" },
    certificates: { type: "string", default: "100" },
    runs: { type: "string", default: "5" },
  },
});
const signatures = Number(values.signatures);
const certificates = Number(values.certificates);
const runs = Number(values.runs);

// Specifiers in variables: `deno check` of bench/ must not resolve (or lock) these packages.
const dalek = await import(DALEK_WASM) as DalekModule;
const noble = await import(NOBLE) as NobleModule;
await dalek.initAll();

const message = new Uint8Array(MESSAGE_BYTES).map((_, i) => i * 7);
const keys = Array.from({ length: signatures }, () => generateKeyPair());
const sigs = keys.map((k) => signBytes(k, message));
// The WASM module's input: per signature, key (32), signature (64), message length (1), message.
const entry = 32 + 64 + 1 + MESSAGE_BYTES;
const packed = new Uint8Array(entry * signatures);
keys.forEach((k, i) => {
  packed.set(k.publicKey, i * entry);
  packed.set(sigs[i], i * entry + 32);
  packed[i * entry + 96] = MESSAGE_BYTES;
  packed.set(message, i * entry + 97);
});

const verifiers: Record<string, () => boolean> = {
  "node:crypto, one by one": () =>
    keys.every((k, i) => verifySignature(k.publicKey, message, sigs[i])),
  "WASM dalek, one by one": () => dalek.ed25519.verify_ed25519(packed).every((b) => b === 1),
  [`WASM dalek, batch of ${signatures}`]: () => dalek.ed25519.verify_ed25519_batch(packed),
  "pure JS @noble/curves, one by one": () =>
    keys.every((k, i) => noble.ed25519.verify(sigs[i], message, k.publicKey)),
};

/** µs per signature over all certificates. */
function measure(verify: () => boolean): number {
  const start = performance.now();
  for (let c = 0; c < certificates; c++) {
    if (!verify()) throw new Error("a valid certificate failed to verify");
  }
  return (performance.now() - start) * 1000 / (certificates * signatures);
}

for (const verify of Object.values(verifiers)) measure(verify); // warm-up (JIT, WASM tiers)
const samples = new Map<string, number[]>();
for (let r = 0; r < runs; r++) {
  for (const [name, verify] of Object.entries(verifiers)) {
    samples.set(name, [...(samples.get(name) ?? []), measure(verify)]);
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const baseline = median(samples.get("node:crypto, one by one")!);
console.log(
  `${signatures} signatures per certificate, ${certificates} certificates, median of ${runs} ` +
    `(min–max), µs per signature; load average ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
    }`,
);
for (const [name, v] of samples) {
  console.log(
    `${name.padEnd(38)} ${median(v).toFixed(1).padStart(8)}  (${Math.min(...v).toFixed(1)}–${
      Math.max(...v).toFixed(1)
    })  ${(baseline / median(v)).toFixed(2)}× node:crypto`,
  );
}
