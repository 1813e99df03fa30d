import { createRequire } from 'node:module';
import type { Chart as ChartClass, ChartConfiguration, Plugin } from 'chart.js';

/**
 * The finance digest's chart, drawn with chart.js on a @napi-rs/canvas canvas into PNG bytes: the month's cumulative
 * spend day by day, the projection's p10–p90 band and p50 line from today to the month's end, and the limit. Pure:
 * numbers in, PNG out; no clock, no I/O. The numbers are floats because a chart is a picture of money, never a sum.
 */

export interface SpendChart {
  /** e.g. `Acme AI: spend in November 2026`. */
  title: string;
  /** e.g. `November 2026`: names the day axis. */
  monthLabel: string;
  /** The organization's timezone: days are its calendar days. */
  timezone: string;
  daysInMonth: number;
  /** Cumulative USD at the end of each day from the 1st, the last entry being today so far. */
  cumulativeUsd: number[];
  /** Cumulative month-end percentiles; drawn from today's figure to the last day. Null: no projection yet. */
  projection: { p10: number; p50: number; p90: number } | null;
  limitUsd: number | null;
}

/** Drawn at 720×360 CSS pixels, twice as dense, so it stays sharp on high-density screens at its email width. */
const WIDTH = 720;
const HEIGHT = 360;
const PIXEL_RATIO = 2;
const FONT = 'Liberation Sans, DejaVu Sans, Arial, Helvetica, sans-serif';
const COLORS = {
  actual: '#175cd3',
  projection: '#7a5af8',
  band: 'rgba(122, 90, 248, 0.18)',
  limit: '#d92d20',
  text: '#344054',
  grid: '#eaecf0',
};

/** Mail clients in dark mode would show a transparent PNG on black: paint the background white first. */
const whiteBackground: Plugin<'line'> = {
  id: 'white-background',
  beforeDraw(chart) {
    const { ctx } = chart;
    ctx.save();
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

function checkChart(c: SpendChart): void {
  const problem = (what: string) => new Error(`spend chart: ${what}`);
  if (!Number.isInteger(c.daysInMonth) || c.daysInMonth < 28 || c.daysInMonth > 31) {
    throw problem(`daysInMonth = ${c.daysInMonth}: a month has 28 to 31 days`);
  }
  if (c.cumulativeUsd.length === 0 || c.cumulativeUsd.length > c.daysInMonth) {
    throw problem(`${c.cumulativeUsd.length} days of spend for a month of ${c.daysInMonth} days`);
  }
  const figures: [string, number | null][] = [
    ...c.cumulativeUsd.map((v, i) => [`cumulativeUsd[${i}]`, v] as [string, number]),
    ['projection.p10', c.projection?.p10 ?? null],
    ['projection.p50', c.projection?.p50 ?? null],
    ['projection.p90', c.projection?.p90 ?? null],
    ['limitUsd', c.limitUsd],
  ];
  for (const [name, v] of figures) {
    if (v !== null && !(Number.isFinite(v) && v >= 0)) throw problem(`${name} = ${v}: not an amount of USD`);
  }
}

/** `$1,234` (or `$12.50` below $100, where cents still matter on an axis). */
function axisUsd(v: number): string {
  return v.toLocaleString('en-US', {
    style: 'currency',
    currency: 'USD',
    maximumFractionDigits: Math.abs(v) < 100 && !Number.isInteger(v) ? 2 : 0,
  });
}

/** A straight path from `from` (today) to `to` (month end) over the remaining days; null before today. */
function pathFrom(days: number, today: number, from: number, to: number): (number | null)[] {
  const span = days - 1 - today;
  return Array.from({ length: days }, (_, i) =>
    i < today ? null : span === 0 ? to : from + ((to - from) * (i - today)) / span,
  );
}

export function spendChartConfig(c: SpendChart): ChartConfiguration<'line', (number | null)[], string> {
  checkChart(c);
  const days = c.daysInMonth;
  const today = c.cumulativeUsd.length - 1;
  const mtd = c.cumulativeUsd[today] ?? 0;
  const labels = Array.from({ length: days }, (_, i) => String(i + 1));
  const actual = labels.map((_, i) => (i <= today ? (c.cumulativeUsd[i] ?? null) : null));
  const datasets: ChartConfiguration<'line', (number | null)[], string>['data']['datasets'] = [
    {
      label: 'Spent so far',
      data: actual,
      borderColor: COLORS.actual,
      backgroundColor: COLORS.actual,
      borderWidth: 3,
      pointRadius: 2.5,
      pointStyle: 'circle',
      tension: 0,
    },
  ];
  if (c.projection) {
    const { p10, p50, p90 } = c.projection;
    // The projection stores month-end percentiles only: between today and the month's end the band is drawn
    // straight, which is what a reader takes from it anyway (where the month is likely to land).
    datasets.push(
      {
        label: 'Likely range (p10–p90)',
        data: pathFrom(days, today, mtd, p90),
        borderColor: 'rgba(0,0,0,0)',
        backgroundColor: COLORS.band,
        pointRadius: 0,
        pointStyle: 'rect',
        fill: '+1',
      },
      {
        label: 'p10',
        data: pathFrom(days, today, mtd, p10),
        borderColor: 'rgba(0,0,0,0)',
        backgroundColor: COLORS.band,
        pointRadius: 0,
        fill: false,
      },
      {
        label: 'Projected (p50)',
        data: pathFrom(days, today, mtd, p50),
        borderColor: COLORS.projection,
        backgroundColor: COLORS.projection,
        borderDash: [6, 4],
        borderWidth: 2,
        pointRadius: 0,
        pointStyle: 'line',
        fill: false,
      },
    );
  }
  if (c.limitUsd !== null) {
    datasets.push({
      label: `Monthly limit ${axisUsd(c.limitUsd)}`,
      data: labels.map(() => c.limitUsd),
      borderColor: COLORS.limit,
      backgroundColor: COLORS.limit,
      borderWidth: 2,
      pointRadius: 0,
      pointStyle: 'line',
      fill: false,
    });
  }
  const top = Math.max(mtd, c.projection?.p90 ?? 0, c.limitUsd ?? 0);
  return {
    type: 'line',
    data: { labels, datasets },
    plugins: [whiteBackground],
    options: {
      animation: false,
      responsive: false,
      devicePixelRatio: PIXEL_RATIO,
      font: { family: FONT, size: 12 },
      color: COLORS.text,
      layout: { padding: { top: 4, right: 16, bottom: 4, left: 4 } },
      plugins: {
        title: { display: true, text: c.title, font: { family: FONT, size: 16, weight: 'bold' }, color: COLORS.text },
        legend: {
          position: 'bottom',
          labels: {
            font: { family: FONT, size: 12 },
            color: COLORS.text,
            // each entry drawn like its line: a dot for the days spent, a dashed stroke, a filled band
            usePointStyle: true,
            boxHeight: 9,
            padding: 16,
            // the lower edge of the band is drawing machinery, not something to read
            filter: (item) => item.text !== 'p10',
          },
        },
      },
      scales: {
        x: {
          title: { display: true, text: `Day of ${c.monthLabel} (${c.timezone})`, color: COLORS.text },
          grid: { color: COLORS.grid },
          ticks: { color: COLORS.text, maxRotation: 0, autoSkip: true, autoSkipPadding: 6 },
        },
        y: {
          title: { display: true, text: 'Spend since the 1st (USD)', color: COLORS.text },
          beginAtZero: true,
          // room above the highest line so the limit never sits on the frame
          suggestedMax: top > 0 ? top * 1.08 : 1,
          grid: { color: COLORS.grid },
          ticks: { color: COLORS.text, callback: (v) => axisUsd(Number(v)) },
        },
      },
    },
  };
}

/**
 * chart.js and @napi-rs/canvas (a native Skia library, about 20 MB of resident memory) are loaded on the first
 * chart, not at start: only the finance digest draws one, and every other job of the worker would carry them.
 * Loaded with `require` so that rendering stays synchronous for its callers.
 */
let drawing: { Chart: typeof ChartClass; createCanvas: typeof import('@napi-rs/canvas').createCanvas } | null = null;

function loadDrawing(): NonNullable<typeof drawing> {
  if (drawing === null) {
    const require = createRequire(import.meta.url);
    const chartJs = require('chart.js') as typeof import('chart.js');
    const { Chart, LineController, LineElement, PointElement, LinearScale, CategoryScale, Filler, Legend, Title } =
      chartJs;
    // Only what a line chart with a filled band needs.
    Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Filler, Legend, Title);
    const { createCanvas } = require('@napi-rs/canvas') as typeof import('@napi-rs/canvas');
    drawing = { Chart, createCanvas };
  }
  return drawing;
}

/** The chart as PNG bytes. */
export function renderSpendChart(c: SpendChart): Buffer {
  const config = spendChartConfig(c);
  const { Chart, createCanvas } = loadDrawing();
  const canvas = createCanvas(WIDTH, HEIGHT); // chart.js scales it by devicePixelRatio
  // chart.js takes any object with getContext('2d'); @napi-rs/canvas's context implements the part it draws with.
  const chart = new Chart(canvas as unknown as ConstructorParameters<typeof Chart>[0], config);
  try {
    return canvas.toBuffer('image/png');
  } finally {
    chart.destroy();
  }
}
