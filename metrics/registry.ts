/**
 * A small Prometheus registry: counters, gauges and histograms, rendered in the text format.
 *
 * Owns: metric storage and the exposition format. Gauges that describe live state take a
 * `collect` callback evaluated at scrape time, so a scrape can never report bookkeeping that
 * has drifted from the live objects (docs/lessons.md#4).
 * Must never: grow without bound. Label values come from small fixed sets (directions,
 * reasons, message kinds); callers must not use peer addresses or ids as labels.
 */

type Labels = Record<string, string>;

/** Distinct label sets per metric; a guard against a bug that would leak memory. */
const MAX_SERIES_PER_METRIC = 256;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",");
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

interface Metric {
  readonly name: string;
  render(): string;
}

export class Counter implements Metric {
  readonly #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    if (!this.#values.has(k) && this.#values.size >= MAX_SERIES_PER_METRIC) return;
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  get(labels?: Labels): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    if (this.#values.size === 0) out += `${this.name} 0\n`;
    for (const [k, v] of this.#values) {
      out += `${this.name}${k ? `{${k}}` : ""} ${formatValue(v)}\n`;
    }
    return out;
  }
}

export interface GaugeSample {
  labels?: Labels;
  value: number;
}

export class Gauge implements Metric {
  readonly #values = new Map<string, number>();
  #collect: (() => GaugeSample[] | number) | null = null;
  constructor(readonly name: string, readonly help: string) {}

  set(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    if (!this.#values.has(k) && this.#values.size >= MAX_SERIES_PER_METRIC) return;
    this.#values.set(k, value);
  }

  /** Computes the gauge from live state at every scrape; replaces any `set` values. */
  collectFrom(fn: () => GaugeSample[] | number): void {
    this.#collect = fn;
  }

  samples(): GaugeSample[] {
    if (this.#collect) {
      const r = this.#collect();
      return typeof r === "number" ? [{ value: r }] : r;
    }
    return [...this.#values].map(([k, value]) => ({ labels: k ? parseKey(k) : undefined, value }));
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    const samples = this.samples();
    if (samples.length === 0) out += `${this.name} 0\n`;
    for (const s of samples) {
      const k = labelKey(s.labels);
      out += `${this.name}${k ? `{${k}}` : ""} ${formatValue(s.value)}\n`;
    }
    return out;
  }
}

function parseKey(k: string): Labels {
  const out: Labels = {};
  for (const m of k.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

export class Histogram implements Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.#counts = new Array(buckets.length).fill(0);
  }

  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.#counts[i]++;
    this.#sum += v;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (let i = 0; i < this.buckets.length; i++) {
      out += `${this.name}_bucket{le="${formatValue(this.buckets[i])}"} ${this.#counts[i]}\n`;
    }
    out += `${this.name}_bucket{le="+Inf"} ${this.#count}\n`;
    out += `${this.name}_sum ${formatValue(this.#sum)}\n${this.name}_count ${this.#count}\n`;
    return out;
  }
}

export class Registry {
  readonly #metrics: Metric[] = [];

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.#add(new Gauge(name, help));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }

  #add<T extends Metric>(m: T): T {
    if (this.#metrics.some((x) => x.name === m.name)) throw new Error(`duplicate metric ${m.name}`);
    this.#metrics.push(m);
    return m;
  }

  render(): string {
    return this.#metrics.map((m) => m.render()).join("");
  }
}
