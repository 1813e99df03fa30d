/**
 * Month-end spend projection with an honest interval.
 *
 * For each scope (the organization, a workspace, a key) keywarden projects the month total as the spend so far
 * plus a forecast of the days left, with a 10–90% interval, and the day-by-day path that says when a limit is
 * expected to be reached. The usual tools draw a straight line (spend so far ÷ days elapsed × days in the month):
 * it is biased whenever the days elapsed hold more or fewer weekends than the days left, it lags behind a level that
 * grows or has just changed, it rests on a handful of noisy days in the first week, and it says nothing about how
 * sure it is. keywarden's method (this file and model.ts):
 *
 * 1. History: up to 16 weeks of complete days before today, earlier months included, so the projection made on
 *    the 1st rests on last month. A day without recorded spend counts as zero.
 * 2. Weekday factors: each day's ratio to its centred 7-day average (free of level and trend) is averaged per
 *    weekday (robustly: a spike is pulled in to 3 robust sds), then shrunk toward its group (Mon–Fri or Sat–Sun),
 *    and the group toward 1, by how noisy the ratios are (empirical Bayes). Calm weeks show a pattern; erratic
 *    ones, a key used on a few random days, or less than two weekends of history show none.
 * 3. Spikes and outages: the spend divided by the factors is clipped to 4 robust sds around its ±3-day median, so a
 *    single spike day does not move the level.
 * 4. Level shifts: for each of the last 42 days, the log level is regressed on a line plus a step from that day.
 *    A step of at least 25% with t ≥ 3.5 (the line absorbs steady growth, so growth is not taken for a step) means
 *    the level is fitted on the days since the shift only. Not looked for in a scope with over 20% zero days.
 * 5. Level and trend: weighted least squares of level · e^(growth · t), weights halving every 35 days (recent level
 *    counts more than old level), with a ridge prior on the growth (sd 20%/month: a trend has to show itself in the
 *    data before it is extrapolated). The day-to-day noise comes from the residuals, robustly.
 * 6. Projection: each remaining day is level · e^(growth · days ahead) · its weekday factor. Today counts for the
 *    part not yet elapsed, and its own rate so far is blended in with weight (fraction elapsed)².
 * 7. Interval: the variance of the remaining spend adds (a) the fit's sampling covariance of level and trend, one
 *    error shared by every remaining day, which is why many days left do not make the total relatively surer;
 *    (b) a random walk of the level of 2.5% per √day, for trends that bend and shifts still to come; (c) the
 *    independent noise of each day; (d) when the last week sits off the fit by more than noise explains (a shift too
 *    young to detect), that gap as extra level variance. The remaining spend is lognormal with that variance (never
 *    negative, skewed toward surges); its 90th percentile also allows for spikes at the rate and size seen in the
 *    history. p10 / p50 / p90 = month-to-date actual + those percentiles, so p10 is never below what is spent.
 * 8. Fallbacks: no history but spend today → today's rate so far, with a very wide interval (level sd 80%); no
 *    history and nothing spent (or a scope idle for 16 weeks) → the month-to-date amount.
 *
 * Backtest (`npm run bench -- forecast`: 1200 synthetic organization-months with weekday/weekend ratios of 2–3×,
 * daily noise CV 0.2–0.4, trends of ±20%/month, level shifts and spikes): the figures are in bench/forecast.ts's
 * output. The drift (2.5%/√day) was calibrated there, on other seeds than the one reported.
 */

import { type CalendarMonth, dayNumber, dayOfWeek, daysInMonth, firstDayOf, formatDay } from './calendar.ts';
import { type DailyModel, fitDailyModel, WINDOW_DAYS } from './model.ts';

/** One day of one scope's spend, in USD, on a calendar day in the organization's timezone. */
export interface DailySpend {
  date: string;
  usd: number;
}

export interface ProjectionInput {
  /**
   * Complete days before today, oldest first, earlier months included when known (up to 16 weeks are used).
   * A date missing between the first one given and yesterday counts as a day with no spend. Empty for a new key.
   */
  history: readonly DailySpend[];
  /** The day in progress (organization timezone); its month is the month projected. */
  today: { date: string; usdSoFar: number; fractionElapsed: number };
  /** Actual spend since the 1st, today so far included: the caller's exact sum (money.ts), as a number. */
  monthToDateUsd: number;
  /**
   * The last day projected (`YYYY-MM-DD`, today or later); default the month's last day. A daily or weekly limit
   * projects its own period: then `monthToDateUsd` is the spend since that period's first day.
   */
  lastDay?: string;
}

/** Cumulative spend of the month at the end of `date`. */
export interface ProjectedDay {
  date: string;
  p10: number;
  p50: number;
  p90: number;
}

/**
 * `weekday-level-trend`: the model above. `today-rate`: no history, today's rate so far. `month-to-date`: nothing
 * to extrapolate (no history and no spend today, or idle for 16 weeks). `straight-line`: the comparison baseline.
 */
export type ProjectionMethod = 'weekday-level-trend' | 'today-rate' | 'month-to-date' | 'straight-line';

export interface Projection {
  /** `YYYY-MM` of the month projected. */
  month: string;
  monthToDateUsd: number;
  /** Month total (month-to-date actual + the remaining days), 10th / 50th / 90th percentile. */
  p10: number;
  p50: number;
  p90: number;
  method: ProjectionMethod;
  /** From the end of today to the end of the month, one entry a day; the last entry is the month total. */
  path: ProjectedDay[];
  /** What the projection rested on, for the record and for explaining an alert. */
  basis: {
    /** Expected USD/day of an average day of the week, as of yesterday (before the day-of-week factor). */
    dailyLevelUsd: number;
    /** The fitted trend, as a fraction per 30 days. */
    trendPerMonth: number;
    /** Relative sd of a single day's spend. */
    noiseCv: number;
    /** Day-of-week factors, Sunday first, averaging 1. */
    weekdayFactors: number[];
    /** First day of a detected level shift (the level rests only on the days since), or null. */
    levelShiftOn: string | null;
    /** Complete days of history used (at most 16 weeks). */
    historyDays: number;
  };
}

/** Relative random-walk sd of the level per √day ahead: trends bend and levels shift after the fit. */
const LEVEL_DRIFT_PER_DAY = 0.025;
/** Relative sd of the daily rate of a scope seen for part of one day only: it could be anything, and it is. */
const TODAY_RATE_LEVEL_SD = 0.8;
/** Below this fraction of a day, today's spend is too little to extrapolate a daily rate from. */
const MIN_FRACTION_FOR_RATE = 1 / 24;
const Z90 = 1.2815515655446004;
const NO_PATTERN = [1, 1, 1, 1, 1, 1, 1];

type Basis = Omit<DailyModel, 'stepDay'> & {
  /** Weight of today's own rate so far against the model's expectation for today. */
  todayWeight: number;
};

/**
 * Projects the month-end total of one scope (organization, workspace or key) with a 10–90% interval and the
 * day-by-day cumulative path. Pure: the same input always gives the same projection.
 */
export function projectMonthEnd(input: ProjectionInput): Projection {
  const { todayDay, month, fraction } = checkInput(input);
  const series = historySeries(input.history, todayDay);
  const model = series.length > 0 ? fitDailyModel(series, todayDay - 1) : null;
  let method: ProjectionMethod;
  let basis: Basis | null;
  if (model && model.level > 0) {
    method = 'weekday-level-trend';
    // Today's partial spend says little early in the day (and business hours are not spread evenly over it);
    // by evening it says most of what there is to know about today.
    basis = { ...model, todayWeight: fraction ** 2 };
  } else if (fraction >= MIN_FRACTION_FOR_RATE && input.today.usdSoFar > 0) {
    method = 'today-rate';
    const rate = Math.max(0, input.today.usdSoFar) / fraction;
    basis = {
      factors: NO_PATTERN,
      level: rate,
      growth: 0,
      cov: [(TODAY_RATE_LEVEL_SD * rate) ** 2, 0, 0],
      noiseCv: 0,
      spikeRate: 0,
      spikeSize: 0,
      todayWeight: 1,
    };
  } else {
    method = 'month-to-date';
    basis = null;
  }

  const end = lastDayOf(input, todayDay, month);
  const path = basis
    ? projectPath(basis, input, todayDay, end, fraction)
    : flatPath(input.monthToDateUsd, todayDay, end);
  return {
    ...totals(month, input.monthToDateUsd, path),
    method,
    path,
    basis: {
      dailyLevelUsd: basis?.level ?? 0,
      trendPerMonth: basis ? Math.expm1(basis.growth * 30) : 0,
      noiseCv: basis?.noiseCv ?? 0,
      weekdayFactors: basis?.factors ?? NO_PATTERN,
      levelShiftOn: model?.stepDay != null ? formatDay(model.stepDay) : null,
      historyDays: series.length,
    },
  };
}

/**
 * The usual tools' projection, for comparison: month-to-date spend ÷ days elapsed × days in the month. It has no
 * interval, so all three percentiles are the point.
 */
export function projectStraightLine(input: ProjectionInput): Projection {
  const { todayDay, month, fraction } = checkInput(input);
  const first = firstDayOf(month);
  const elapsed = todayDay - first + fraction;
  const rate = elapsed > 0 ? input.monthToDateUsd / elapsed : 0;
  const path: ProjectedDay[] = [];
  for (let day = todayDay; day <= lastDayOf(input, todayDay, month); day++) {
    const total = input.monthToDateUsd + rate * (day - todayDay + 1 - fraction);
    path.push({ date: formatDay(day), p10: total, p50: total, p90: total });
  }
  return {
    ...totals(month, input.monthToDateUsd, path),
    method: 'straight-line',
    path,
    basis: {
      dailyLevelUsd: rate,
      trendPerMonth: 0,
      noiseCv: 0,
      weekdayFactors: NO_PATTERN,
      levelShiftOn: null,
      historyDays: todayDay - first,
    },
  };
}

/**
 * When the month's cumulative spend is expected to reach `limitUsd`: on the median path (`p50`) and at the earliest
 * plausible date (`p90`: the day the 90th-percentile path reaches it). Null when not expected this month; a limit
 * already reached gives today.
 */
export function expectedCrossingDate(
  projection: Projection,
  limitUsd: number,
): { p50: string | null; p90: string | null } {
  // The path is float arithmetic: a total a billionth short of the limit has reached it.
  const reached = (usd: number) => usd >= limitUsd - 1e-9 * Math.max(1, Math.abs(limitUsd));
  return {
    p50: projection.path.find((d) => reached(d.p50))?.date ?? null,
    p90: projection.path.find((d) => reached(d.p90))?.date ?? null,
  };
}

function totals(month: CalendarMonth, monthToDateUsd: number, path: readonly ProjectedDay[]) {
  const last = path[path.length - 1]!;
  return {
    month: `${month.year}-${String(month.month).padStart(2, '0')}`,
    monthToDateUsd,
    p10: last.p10,
    p50: last.p50,
    p90: last.p90,
  };
}

function checkInput(input: ProjectionInput): { todayDay: number; month: CalendarMonth; fraction: number } {
  const todayDay = dayNumber(input.today.date);
  const { fractionElapsed: fraction, usdSoFar } = input.today;
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new Error(`forecast: today.fractionElapsed is ${fraction}; it is the elapsed part of today, from 0 to 1`);
  }
  if (!Number.isFinite(usdSoFar) || !Number.isFinite(input.monthToDateUsd)) {
    throw new Error(
      `forecast: today.usdSoFar (${usdSoFar}) and monthToDateUsd (${input.monthToDateUsd}) must be finite`,
    );
  }
  const [year, month] = input.today.date.split('-').map(Number) as [number, number];
  return { todayDay, month: { year, month }, fraction };
}

/** History as contiguous daily values ending yesterday (missing days are zero), at most WINDOW_DAYS long. */
function historySeries(history: readonly DailySpend[], todayDay: number): number[] {
  if (history.length === 0) return [];
  const start = todayDay - WINDOW_DAYS;
  let previous = Number.NEGATIVE_INFINITY;
  let first: number | null = null;
  const byDay = new Map<number, number>();
  for (const { date, usd } of history) {
    const day = dayNumber(date);
    if (day <= previous) throw new Error(`forecast: history is not in ascending date order at ${date}`);
    if (day >= todayDay) throw new Error(`forecast: history day ${date} is not before today`);
    if (!Number.isFinite(usd)) throw new Error(`forecast: history day ${date} has spend ${usd}`);
    previous = day;
    if (day < start) continue;
    first ??= day;
    byDay.set(day, usd);
  }
  // When everything given is older than the window, the scope has been idle for the whole window.
  const values: number[] = [];
  for (let day = first ?? start; day < todayDay; day++) values.push(byDay.get(day) ?? 0);
  return values;
}

/** The day number of the last day projected: the input's `lastDay`, or the month's last day. */
function lastDayOf(input: ProjectionInput, todayDay: number, month: CalendarMonth): number {
  if (input.lastDay === undefined) return firstDayOf(month) + daysInMonth(month) - 1;
  const end = dayNumber(input.lastDay);
  if (end < todayDay) throw new Error(`forecast: lastDay ${input.lastDay} is before today (${input.today.date})`);
  return end;
}

function flatPath(monthToDate: number, todayDay: number, end: number): ProjectedDay[] {
  const path: ProjectedDay[] = [];
  for (let day = todayDay; day <= end; day++) {
    path.push({ date: formatDay(day), p10: monthToDate, p50: monthToDate, p90: monthToDate });
  }
  return path;
}

/**
 * Cumulative spend from today to the end of each remaining day of the month (step 7 of the method above).
 */
function projectPath(
  basis: Basis,
  input: ProjectionInput,
  todayDay: number,
  end: number,
  fraction: number,
): ProjectedDay[] {
  const count = end - todayDay + 1;
  const driftScale = (LEVEL_DRIFT_PER_DAY * basis.level) ** 2;
  const sensitivity: number[] = [];
  const path: ProjectedDay[] = [];
  let mean = 0;
  let days = 0;
  let v0 = 0;
  let v1 = 0;
  let noise = 0;
  let floor = { p10: 0, p50: 0, p90: 0 };
  for (let j = 0; j < count; j++) {
    const day = todayDay + j;
    const ahead = j + 1;
    const share = j === 0 ? 1 - fraction : 1;
    const factor = basis.factors[dayOfWeek(day)]!;
    const compound = Math.exp(basis.growth * ahead);
    let expected = basis.level * compound * factor;
    if (j === 0 && fraction > 0) {
      const todayRate = Math.max(0, input.today.usdSoFar) / fraction;
      expected = (1 - basis.todayWeight) * expected + basis.todayWeight * todayRate;
    }
    mean += share * expected;
    days += share;
    const g = share * factor * compound;
    sensitivity.push(g);
    v0 += g;
    v1 += g * ahead;
    noise += share * (basis.noiseCv * expected) ** 2;
    // Random walk: the level on day `ahead` carries every step up to it, so step t is shared by all later days.
    let drift = 0;
    let tail = 0;
    for (let k = j; k >= 0; k--) {
      tail += sensitivity[k]!;
      drift += tail * tail;
    }
    const [c00, c01, c11] = basis.cov;
    const variance = v0 * v0 * c00 + 2 * v0 * v1 * c01 + v1 * v1 * c11 + driftScale * drift + noise;
    const spikeUsd = days > 0 ? (basis.spikeSize * mean) / days : 0;
    const q = quantiles(mean, variance, basis.spikeRate * days, spikeUsd);
    // A cumulative sum of non-negative days cannot fall, so neither can its percentiles; the approximations
    // above could dip by a hair when a low weekend day joins the sum.
    floor = { p10: Math.max(floor.p10, q.p10), p50: Math.max(floor.p50, q.p50), p90: Math.max(floor.p90, q.p90) };
    path.push({
      date: formatDay(day),
      p10: input.monthToDateUsd + floor.p10,
      p50: input.monthToDateUsd + floor.p50,
      p90: input.monthToDateUsd + floor.p90,
    });
  }
  return path;
}

/**
 * 10/50/90th percentiles of the remaining spend: a lognormal whose median is `center` and whose variance is about
 * `variance`; the 90th also allows a Poisson number (mean `expectedSpikes`) of spikes of `spikeUsd` each.
 */
function quantiles(
  center: number,
  variance: number,
  expectedSpikes: number,
  spikeUsd: number,
): { p10: number; p50: number; p90: number } {
  if (!(center > 0)) return { p10: 0, p50: 0, p90: 0 };
  // sd / center rather than variance / center², which underflows for sub-cent amounts.
  const s = Math.sqrt(Math.log1p((Math.sqrt(Math.max(0, variance)) / center) ** 2));
  const lognormal = { p10: center * Math.exp(-Z90 * s), p50: center, p90: center * Math.exp(Z90 * s) };
  if (!(expectedSpikes > 0 && spikeUsd > 0)) return lognormal;
  const weights: number[] = [];
  let p = Math.exp(-expectedSpikes);
  let covered = 0;
  for (let k = 0; covered < 0.9999 && k < 200; k++) {
    weights.push(p);
    covered += p;
    p *= expectedSpikes / (k + 1);
  }
  const cdf = (x: number) => {
    let total = 0;
    weights.forEach((w, k) => {
      const base = x - k * spikeUsd;
      if (base > 0) total += w * (s > 0 ? normalCdf(Math.log(base / center) / s) : base >= center ? 1 : 0);
    });
    return total;
  };
  // Bisection on the mixture's CDF; `hi` is past the 90th percentile of every term that matters.
  let lo = 0;
  let hi = lognormal.p90 * Math.exp(2 * Z90 * s) + weights.length * spikeUsd;
  for (let iteration = 0; iteration < 50; iteration++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) < 0.9) lo = mid;
    else hi = mid;
  }
  // Spikes are rare days: the median and the lower bound of a month come from its typical days.
  return { ...lognormal, p90: (lo + hi) / 2 };
}

/** Standard normal CDF (Abramowitz & Stegun 26.2.17, absolute error below 7.5e-8). */
function normalCdf(z: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(z));
  const poly = t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  const tail = 0.3989422804014327 * Math.exp((-z * z) / 2) * poly;
  return z >= 0 ? 1 - tail : tail;
}
