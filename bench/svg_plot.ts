/**
 * Line charts as standalone SVG text, for the cost curves the benches draw from their own
 * numbers (docs/benchmarks.md).
 *
 * Owns: scaling the points to the plot area, axes with a few ticks, one polyline per series with
 * its min–max band as error bars, and a legend.
 * Must never: read or write files (the caller does), or draw a point it was not given.
 */

/** Plot area and margins, px. */
const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 50 };
/** Ticks per axis: enough to read a value, few enough to stay legible at this size. */
const TICKS = 5;
/** Series colours, in order (colour-blind-safe palette). */
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00"];

export interface PlotPoint {
  x: number;
  y: number;
  /** Run spread; drawn as a vertical bar when given. */
  min?: number;
  max?: number;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
}

export function svgLineChart(spec: PlotSpec): string {
  const all = spec.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p.x));
  const yMax = niceCeil(Math.max(1e-9, ...all.map((p) => p.max ?? p.y)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => MARGIN.left + (x / xMax) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - (y / yMax) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14">${esc(spec.title)}</text>`,
    axisLine(sx(0), sy(0), sx(xMax), sy(0)),
    axisLine(sx(0), sy(0), sx(0), sy(yMax)),
  ];
  for (let i = 0; i <= TICKS; i++) {
    const yv = (yMax * i) / TICKS;
    out.push(
      `<text x="${MARGIN.left - 6}" y="${sy(yv) + 4}" text-anchor="end">${label(yv)}</text>`,
      `<line x1="${sx(0)}" y1="${sy(yv)}" x2="${sx(xMax)}" y2="${sy(yv)}" stroke="#eee"/>`,
    );
  }
  const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  for (const xv of xs) {
    out.push(`<text x="${sx(xv)}" y="${sy(0) + 18}" text-anchor="middle">${label(xv)}</text>`);
  }
  out.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">` +
      `${esc(spec.xLabel)}</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" ` +
      `text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="` +
        pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ") + `"/>`,
    );
    for (const p of pts) {
      out.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="3" fill="${colour}"/>`);
      if (p.min !== undefined && p.max !== undefined) {
        out.push(
          `<line x1="${sx(p.x)}" y1="${sy(p.min)}" x2="${sx(p.x)}" y2="${sy(p.max)}" ` +
            `stroke="${colour}"/>`,
        );
      }
    }
    const ly = MARGIN.top + 14 * i;
    out.push(
      `<rect x="${MARGIN.left + 10}" y="${ly - 8}" width="10" height="10" fill="${colour}"/>`,
      `<text x="${MARGIN.left + 26}" y="${ly + 1}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function axisLine(x1: number, y1: number, x2: number, y2: number): string {
  return `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="black"/>`;
}

/** The smallest 1, 2 or 5 × 10^k at or above `v`, so the top tick is a round number. */
function niceCeil(v: number): number {
  const k = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * k >= v) return m * k;
  return 10 * k;
}

function label(v: number): string {
  if (v >= 1000) return Math.round(v).toLocaleString("en-US");
  return Number(v.toPrecision(3)).toString();
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
