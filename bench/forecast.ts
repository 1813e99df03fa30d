/**
 * Backtest of the month-end projection against the straight line, on synthetic organization-months.
 *
 *   npm run bench -- forecast [--traces 1200] [--seed 1]
 *
 * Each trace is one organization's daily spend: two or three months of history, then the month being projected.
 * Spend = weekday level (trend ±20%/month) × weekday/weekend pattern (2–3×, or flat) × step change (some traces,
 * ×0.4–0.7 or ×1.5–2.5 from a day between three weeks before the month and day 20) × lognormal noise (CV 0.2–0.4)
 * × spikes (some traces: one or two days at 3–8×). Projections are made at the end of day 7, 15 and 25 (that many
 * complete days; today is the next day, nothing spent yet). Deterministic: one seeded PRNG per trace.
 *
 * The "oracle" line knows each day's true expected spend (level, trend, pattern and steps, but not the noise or
 * the spikes): its error is what no method can get under.
 */

import { type DailySpend, type Projection, projectMonthEnd, projectStraightLine } from '../src/spend/core/forecast.ts';
import { prng } from './_prng.ts';

const FORECAST_DAYS = [7, 15, 25] as const;
const QUANTILES = [0.1, 0.5, 0.9] as const;

interface Trace {
  /** Day number (days since 1970-01-01) of the first history day. */
  startDay: number;
  /** Index into `values` of the 1st of the projected month. */
  monthStart: number;
  daysInMonth: number;
  values: number[];
  /** Each day's expected spend, noise and spikes aside: what the oracle knows. */
  expected: number[];
  patterned: boolean;
  step: boolean;
  spikes: boolean;
}

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function uniform(rand: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rand();
}

function makeTrace(seed: number): Trace {
  const rand = prng(seed);
  const year = 2023 + Math.floor(rand() * 4);
  const month = 1 + Math.floor(rand() * 12);
  const priorMonths = rand() < 0.5 ? 2 : 3;
  const monthStartDay = Date.UTC(year, month - 1, 1) / 86_400_000;
  const startDay = Date.UTC(year, month - 1 - priorMonths, 1) / 86_400_000;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const monthStart = monthStartDay - startDay;
  const total = monthStart + daysInMonth;

  const level = Math.exp(uniform(rand, Math.log(5), Math.log(5000)));
  const patterned = rand() < 0.7;
  const weekendFactor = patterned ? 1 / uniform(rand, 2, 3) : 1;
  const growthPerDay = Math.log1p(uniform(rand, -0.2, 0.2)) / 30.4;
  const cv = uniform(rand, 0.2, 0.4);
  const sigma = Math.sqrt(Math.log1p(cv * cv));
  const step = rand() < 0.25;
  const stepAt = monthStart + Math.floor(uniform(rand, -21, 21));
  const stepFactor = rand() < 0.5 ? uniform(rand, 0.4, 0.7) : uniform(rand, 1.5, 2.5);
  const spikes = rand() < 0.3;
  const spikeDays = new Map<number, number>();
  if (spikes) {
    const count = rand() < 0.5 ? 1 : 2;
    for (let k = 0; k < count; k++) spikeDays.set(Math.floor(rand() * total), uniform(rand, 3, 8));
  }

  const values: number[] = [];
  const expected: number[] = [];
  for (let i = 0; i < total; i++) {
    const dow = (((startDay + i + 4) % 7) + 7) % 7;
    const weekly = dow === 0 || dow === 6 ? weekendFactor : 1;
    const mean = level * Math.exp(growthPerDay * (i - monthStart)) * weekly * (step && i >= stepAt ? stepFactor : 1);
    expected.push(mean);
    const noise = Math.exp(sigma * normal(rand) - (sigma * sigma) / 2);
    values.push(mean * noise * (spikeDays.get(i) ?? 1));
  }
  return { startDay, monthStart, daysInMonth, values, expected, patterned, step, spikes };
}

function isoDate(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

interface Outcome {
  trace: Trace;
  actual: number;
  keywarden: Projection;
  line: Projection;
  oracle: number;
}

function forecastAt(trace: Trace, day: number): Outcome {
  const history: DailySpend[] = [];
  const last = trace.monthStart + day; // exclusive: days 1..`day` of the month are complete
  for (let i = 0; i < last; i++) history.push({ date: isoDate(trace.startDay + i), usd: trace.values[i]! });
  let monthToDate = 0;
  for (let i = trace.monthStart; i < last; i++) monthToDate += trace.values[i]!;
  let actual = 0;
  let oracle = monthToDate;
  for (let i = trace.monthStart; i < trace.monthStart + trace.daysInMonth; i++) {
    actual += trace.values[i]!;
    if (i >= last) oracle += trace.expected[i]!;
  }
  const input = {
    history,
    today: { date: isoDate(trace.startDay + last), usdSoFar: 0, fractionElapsed: 0 },
    monthToDateUsd: monthToDate,
  };
  return { trace, actual, keywarden: projectMonthEnd(input), line: projectStraightLine(input), oracle };
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

const absPctError = (point: number, actual: number) => (100 * Math.abs(point - actual)) / actual;

/** Pinball (quantile) loss averaged over p10/p50/p90, in % of the actual total so traces of any size weigh alike. */
function pinball(p: Projection, actual: number): number {
  const quantile = [p.p10, p.p50, p.p90];
  let loss = 0;
  QUANTILES.forEach((q, k) => {
    const diff = actual - quantile[k]!;
    loss += Math.max(q * diff, (q - 1) * diff);
  });
  return (100 * loss) / QUANTILES.length / actual;
}

function parseArgs(args: string[]): { traces: number; seed: number } {
  const opts = { traces: 1200, seed: 1 };
  for (let i = 0; i < args.length; i++) {
    const name = args[i];
    const value = Number(args[i + 1]);
    if ((name === '--traces' || name === '--seed') && Number.isInteger(value) && value > 0) {
      opts[name === '--traces' ? 'traces' : 'seed'] = value;
      i++;
    } else {
      throw new Error(`bench forecast: unknown argument ${name} (usage: forecast [--traces N] [--seed S])`);
    }
  }
  return opts;
}

const fmt = (v: number, digits = 1) => (Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
const pad = (s: string, n: number) => s.padStart(n);

interface Group {
  id: string;
  label: string;
  keep: (o: Outcome) => boolean;
}

const GROUPS: Group[] = [
  { id: 'all', label: 'all traces', keep: () => true },
  { id: 'no-step', label: 'without step changes', keep: (o) => !o.trace.step },
  { id: 'weekly', label: 'weekday-patterned', keep: (o) => o.trace.patterned },
  { id: 'weekly-no-step', label: '  of which without steps', keep: (o) => o.trace.patterned && !o.trace.step },
  { id: 'flat', label: 'flat (no weekly pattern)', keep: (o) => !o.trace.patterned },
  { id: 'flat-no-step', label: '  of which without steps', keep: (o) => !o.trace.patterned && !o.trace.step },
  { id: 'step', label: 'with a step change', keep: (o) => o.trace.step },
];

interface Cell {
  kw: number;
  line: number;
  oracle: number;
}

/** One table: a row per group, and per forecast day keywarden / straight line / oracle. */
function table(
  title: string,
  outcomes: Map<number, Outcome[]>,
  figure: (os: Outcome[]) => Cell,
  digits: number,
): Map<string, Cell> {
  const cells = new Map<string, Cell>();
  console.log(`${title.padEnd(34)}${FORECAST_DAYS.map((d) => `|${pad(`day ${d}`, 9)}${pad('', 14)}`).join('')}`);
  console.log(
    `${''.padEnd(34)}${FORECAST_DAYS.map(() => `|${pad('keywarden', 9)}${pad('line', 7)}${pad('oracle', 7)}`).join('')}`,
  );
  for (const group of GROUPS) {
    const row = FORECAST_DAYS.map((d) => {
      const cell = figure(outcomes.get(d)!.filter(group.keep));
      cells.set(`${group.id}/${d}`, cell);
      return `|${pad(fmt(cell.kw, digits), 9)}${pad(fmt(cell.line, digits), 7)}${pad(fmt(cell.oracle, digits), 7)}`;
    });
    const n = outcomes.get(FORECAST_DAYS[0])!.filter(group.keep).length;
    console.log(`  ${`${group.label} (${n})`.padEnd(32)}${row.join('')}`);
  }
  console.log('');
  return cells;
}

export async function run(args: string[]): Promise<void> {
  const { traces: count, seed } = parseArgs(args);
  const started = performance.now();
  const traces = Array.from({ length: count }, (_, i) => makeTrace(seed * 1_000_003 + i));
  const outcomes = new Map<number, Outcome[]>(FORECAST_DAYS.map((d) => [d, traces.map((t) => forecastAt(t, d))]));
  const elapsed = performance.now() - started;

  const nPatterned = traces.filter((t) => t.patterned).length;
  console.log(
    `forecast backtest: ${count} synthetic organization-months (seed ${seed}): ${nPatterned} weekday-patterned, ` +
      `${count - nPatterned} flat, ${traces.filter((t) => t.step).length} with a step change, ` +
      `${traces.filter((t) => t.spikes).length} with spikes. Projected at the end of day ${FORECAST_DAYS.join(', ')}; ` +
      `${count * FORECAST_DAYS.length * 2} projections in ${elapsed.toFixed(0)} ms.`,
  );
  console.log("line = spend so far ÷ days elapsed × days in month; oracle = knows each day's expected spend.\n");

  const errors = table(
    'median |error| of month total, %',
    outcomes,
    (os) => ({
      kw: median(os.map((o) => absPctError(o.keywarden.p50, o.actual))),
      line: median(os.map((o) => absPctError(o.line.p50, o.actual))),
      oracle: median(os.map((o) => absPctError(o.oracle, o.actual))),
    }),
    2,
  );
  const coverage = table(
    'p10–p90 coverage, % (80% interval)',
    outcomes,
    (os) => ({
      kw: (100 * os.filter((o) => o.keywarden.p10 <= o.actual && o.actual <= o.keywarden.p90).length) / os.length,
      line: Number.NaN,
      oracle: Number.NaN,
    }),
    1,
  );
  table(
    'pinball loss, % of total',
    outcomes,
    (os) => ({
      kw: mean(os.map((o) => pinball(o.keywarden, o.actual))),
      line: mean(os.map((o) => pinball(o.line, o.actual))),
      oracle: Number.NaN,
    }),
    2,
  );
  const tails = FORECAST_DAYS.map((d) => {
    const os = outcomes.get(d)!;
    const below = (100 * os.filter((o) => o.actual < o.keywarden.p10).length) / os.length;
    const above = (100 * os.filter((o) => o.actual > o.keywarden.p90).length) / os.length;
    return `day ${d}: ${fmt(below)}% / ${fmt(above)}%`;
  });
  console.log(`all traces, actual below p10 / above p90: ${tails.join(', ')}`);
  console.log('(the line has no interval: its pinball loss uses the point for all three quantiles)\n');

  console.log('targets');
  const check = (ok: boolean, text: string) => console.log(`  ${ok ? 'met    ' : 'NOT MET'}  ${text}`);
  const limits: Record<number, number> = { 7: 8, 15: 4, 25: 1.5 };
  for (const d of FORECAST_DAYS) {
    const e = errors.get(`no-step/${d}`)!;
    check(
      e.kw <= limits[d]!,
      `day ${d}: median error without steps ${fmt(e.kw, 2)}% ≤ ${limits[d]}% (oracle: ${fmt(e.oracle, 2)}%)`,
    );
  }
  const gain = (id: string, d: number) => {
    const e = errors.get(`${id}/${d}`)!;
    return { kw: 100 * (1 - e.kw / e.line), oracle: 100 * (1 - e.oracle / e.line) };
  };
  for (const d of FORECAST_DAYS) {
    const all = gain('weekly', d);
    const clean = gain('weekly-no-step', d);
    check(
      all.kw >= 25,
      `day ${d}: weekday-patterned error ${fmt(all.kw)}% below the line (≥ 25%; without steps ${fmt(clean.kw)}%; ` +
        `oracle ${fmt(all.oracle)}%)`,
    );
  }
  for (const d of FORECAST_DAYS) {
    const all = -gain('flat', d).kw;
    const clean = -gain('flat-no-step', d).kw;
    check(all <= 5, `day ${d}: flat error ${fmt(all)}% vs the line (≤ +5%; without steps ${fmt(clean)}%)`);
  }
  for (const d of FORECAST_DAYS) {
    const c = coverage.get(`all/${d}`)!.kw;
    check(c >= 75 && c <= 85, `day ${d}: p10–p90 coverage ${fmt(c)}% within 75–85%`);
  }
}
