/**
 * The scrape readers integration tests assert with (tests/support/cluster.ts): a metric or label
 * that is not exported fails the test instead of reading as 0.
 */
import assert from "node:assert/strict";
import { counterValue, metricValue } from "../../support/cluster.ts";

const SCRAPE = `# HELP a_total labelled
# TYPE a_total counter
a_total{reason="x"} 2
a_total{reason="y"} 3
# HELP b_total never incremented
# TYPE b_total counter
b_total 0
# HELP g a gauge
# TYPE g gauge
g 7
`;

Deno.test("metricValue sums the matching samples", () => {
  assert.equal(metricValue(SCRAPE, "a_total"), 5);
  assert.equal(metricValue(SCRAPE, "a_total", { reason: "y" }), 3);
  assert.equal(metricValue(SCRAPE, "b_total"), 0);
  assert.equal(metricValue(SCRAPE, "g"), 7);
});

Deno.test("metricValue throws for a metric or a label value that is not exported", () => {
  assert.throws(() => metricValue(SCRAPE, "renamed_total"), /not exported at all/);
  assert.throws(() => metricValue(SCRAPE, "a_total", { reason: "z" }), /no sample/);
  // A prefix of a real name is another name.
  assert.throws(() => metricValue(SCRAPE, "a_tot"), /not exported/);
});

Deno.test("counterValue reads an unseen label value as 0, but only of an exported counter", () => {
  assert.equal(counterValue(SCRAPE, "a_total", { reason: "z" }), 0);
  assert.equal(counterValue(SCRAPE, "a_total", { reason: "x" }), 2);
  assert.throws(() => counterValue(SCRAPE, "renamed_total", { reason: "x" }), /not exported/);
  assert.throws(() => counterValue(SCRAPE, "g", {}), /is a gauge/);
});
