/**
 * Line charts as SVG text, so a benchmark can draw its own numbers (docs/benchmarks.md embeds
 * the files it writes).
 *
 * Owns: the chart layout (axes, ticks, one polyline per series with its min–max band, legend).
 * Must never: measure anything or read files; callers pass numbers and write the text.
 */

/** One point: the median and, when known, the min and max of its runs. */
export interface PlotPoint {
  x: number;
  y: number;
  min?: number;
  max?: number;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
}

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 50 };
const TICKS = 5;
/** Colour-blind-safe (Okabe–Ito) colours, one per series in order. */
const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A round step near range / TICKS: 1, 2 or 5 times a power of ten. */
function niceStep(range: number): number {
  const raw = range / TICKS;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

function label(v: number): string {
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(+v.toPrecision(3));
}

/** The chart as an SVG document. Axes start at 0; an empty chart still renders its frame. */
export function lineChart(opts: PlotOptions): string {
  const all = opts.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p.x));
  const yMax = Math.max(1, ...all.map((p) => p.max ?? p.y));
  const xStep = niceStep(xMax);
  const yStep = niceStep(yMax);
  const xTop = Math.ceil(xMax / xStep) * xStep;
  const yTop = Math.ceil(yMax / yStep) * yStep;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => MARGIN.left + (x / xTop) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - (y / yTop) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
    `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14">${
      escapeXml(opts.title)
    }</text>`,
  ];
  for (let x = 0; x <= xTop + 1e-9; x += xStep) {
    out.push(
      `<line x1="${sx(x)}" y1="${sy(0)}" x2="${sx(x)}" y2="${sy(yTop)}" stroke="#eee"/>`,
      `<text x="${sx(x)}" y="${sy(0) + 16}" text-anchor="middle">${label(x)}</text>`,
    );
  }
  for (let y = 0; y <= yTop + 1e-9; y += yStep) {
    out.push(
      `<line x1="${sx(0)}" y1="${sy(y)}" x2="${sx(xTop)}" y2="${sy(y)}" stroke="#eee"/>`,
      `<text x="${sx(0) - 6}" y="${sy(y) + 4}" text-anchor="end">${label(y)}</text>`,
    );
  }
  out.push(
    `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(xTop)}" y2="${sy(0)}" stroke="black"/>`,
    `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(0)}" y2="${sy(yTop)}" stroke="black"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">${
      escapeXml(opts.xLabel)
    }</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" ` +
      `text-anchor="middle">${escapeXml(opts.yLabel)}</text>`,
  );
  opts.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    for (const p of pts) {
      if (p.min !== undefined && p.max !== undefined) {
        out.push(
          `<line x1="${sx(p.x)}" y1="${sy(p.min)}" x2="${sx(p.x)}" y2="${sy(p.max)}" ` +
            `stroke="${colour}" stroke-width="3" opacity="0.4"/>`,
        );
      }
      out.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="3" fill="${colour}"/>`);
    }
    const line = pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${line}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    const ly = MARGIN.top + 4 + i * 16;
    out.push(
      `<rect x="${MARGIN.left + 10}" y="${ly - 9}" width="10" height="10" fill="${colour}"/>`,
      `<text x="${MARGIN.left + 26}" y="${ly}">${escapeXml(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
