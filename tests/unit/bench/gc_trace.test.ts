import assert from "node:assert/strict";
import { gcEvents, overlapsGc, parseTraceLine } from "../../../bench/gc_trace.ts";

// Lines as `deno run --v8-flags=--trace-gc` prints them (V8 12/13).
const FORCED =
  "[9003:0x55fe6bd32000]      468 ms: Mark-Compact 2.3 (2.8) -> 2.2 (2.8) MB, pooled: 0.0 MB, " +
  "1.70 / 0.00 ms (average mu = 0.900, current mu = 0.900) testing; GC in old space requested";
const SCAVENGE =
  "[9003:0x55fe6bd32000]      590 ms: Scavenge 3.2 (4.2) -> 2.8 (4.8) MB, pooled: 0.0 MB, " +
  "0.50 / 0.00 ms (average mu = 0.900, current mu = 0.900) allocation failure; ";
const OLD_FORMAT =
  "[77:0x1]   1200 ms: Scavenge 3.2 (4.2) -> 2.8 (4.8) MB, 0.25 / 0.00 ms  (average mu = 1.000) " +
  "allocation failure;";

Deno.test("gc trace: a line gives V8's time, the kind and the pause; other lines nothing", () => {
  assert.deepEqual(parseTraceLine(SCAVENGE), {
    v8EndMs: 590,
    kind: "Scavenge",
    pauseMs: 0.5,
    forced: false,
  });
  assert.equal(parseTraceLine(FORCED)?.forced, true);
  assert.equal(parseTraceLine(OLD_FORMAT)?.pauseMs, 0.25);
  assert.equal(parseTraceLine('{"event":"rtt"}'), null);
});

Deno.test("gc trace: collections land on the wall clock through the forced one", () => {
  // gc() was called at epoch 10,000 ms; V8 printed it ending at 468 ms after a 1.7 ms pause.
  const events = gcEvents([FORCED, "noise", SCAVENGE], 10_000);
  assert.ok(events);
  assert.equal(events.length, 1, "the forced collection is the mark, not an event");
  assert.equal(events[0].kind, "Scavenge");
  // 590 ms ended, 0.5 ms pause: started 590 - 0.5 - (468 - 1.7) ms after the mark.
  assert.ok(Math.abs(events[0].startMs - (10_000 + 590 - 0.5 - 466.3)) < 1e-9);
  assert.equal(gcEvents([SCAVENGE], 10_000), null, "without a mark there is no clock");
});

Deno.test("gc trace: overlap within the trace's millisecond", () => {
  const events = [{ kind: "Scavenge", startMs: 1_000, pauseMs: 0.5 }];
  assert.ok(overlapsGc(events, 999.8, 1_000.2));
  assert.ok(overlapsGc(events, 1_001.2, 1_001.4), "printed ms may be late by under 1 ms");
  assert.ok(!overlapsGc(events, 1_002, 1_003));
  assert.ok(!overlapsGc(events, 990, 998.9));
});
