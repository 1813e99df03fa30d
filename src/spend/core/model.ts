/**
 * The statistical model behind the month-end projection: a fit of one scope's recent daily spend as
 *
 *     spend(day) = level · e^(growth · days_ahead) · factor(weekday of day) · noise,   noise: mean 1, sd `noiseCv`
 *
 * The method and the reasons for each constant are described in forecast.ts; this file holds the arithmetic.
 * Everything is in USD as floats: this is statistics, never money.
 */

import { dayOfWeek } from './calendar.ts';

/** Days of history the fit looks at. Sixteen weeks: enough for weekday factors and a trend, short enough to forget. */
export const WINDOW_DAYS = 112;
/** Weight of a day in the level/trend fit halves every this many days: recent level matters more than old level. */
const HALF_LIFE_DAYS = 35;
/** Prior sd of the trend, as a fraction of the level per month: a trend must show itself before it is extrapolated. */
const TREND_PRIOR_PER_MONTH = 0.2;
/** Noise level assumed before the data says otherwise, and how many days of data it is worth. */
const NOISE_PRIOR_CV = 0.35;
const NOISE_PRIOR_DAYS = 7;
/** How far a group's factor (Mon–Fri, Sat–Sun) is expected to sit from 1, and a weekday's from its group: the
 *  priors that noisy ratios are shrunk toward (empirical Bayes), so a few Tuesdays do not make Tuesdays special. */
const GROUP_FACTOR_SD = 0.5;
const DAY_FACTOR_SD = 0.1;
/** Weekend days with a full week around them needed before any weekly pattern is believed (two weekends). */
const MIN_WEEKEND_RATIOS = 4;
/** Deseasonalized days further than this many robust sds from the local median are clipped (spikes, outages). */
const CLIP_SDS = 4;
/** A day this many noise sds above its neighbourhood is a spike: not level, but allowed for in the upper tail. */
const SPIKE_SDS = 4;
/** A level shift is believed when it is at least this big (in log terms: 0.22 ≈ 25%) with at least this
 *  t-statistic: a high bar, because ~40 candidate days are tested and a false shift throws history away. */
const STEP_MIN_LOG_RATIO = 0.22;
const STEP_MIN_T = 3.5;
const STEP_LOOKBACK_DAYS = 42;
const STEP_MIN_BEFORE_DAYS = 14;
const STEP_MIN_AFTER_DAYS = 3;
/** Above this share of zero days, a scope spends on some days only and level shifts are not looked for. */
const MAX_ZERO_SHARE_FOR_STEPS = 0.2;
/** The last days whose disagreement with the fit widens the interval (see recentDisagreement). */
const RECENT_DAYS = 7;
/** A weekday whose factor is below this carries no information about the level (a key idle at weekends). */
const MIN_FACTOR_FOR_LEVEL = 0.05;

export interface DailyModel {
  /** Multiplicative day-of-week factors, index 0 = Sunday; they average to 1. */
  factors: number[];
  /** Deseasonalized USD/day at `lastDay`, and its relative growth per day: `level · e^(growth · days)` ahead. */
  level: number;
  growth: number;
  /** Sampling covariance of (level, level · growth): [var, cov, var]; the second is the USD/day-per-day slope. */
  cov: [number, number, number];
  /** Relative sd of one day's spend around its expectation. */
  noiseCv: number;
  /** Spikes per day seen in the window, and their mean size as a multiple of the day's expected spend. */
  spikeRate: number;
  spikeSize: number;
  /** Day number where a level shift was detected and the level fitted on the days since only, or null. */
  stepDay: number | null;
}

/**
 * Fits the model to contiguous daily values (oldest first, the last one on `lastDay`). Negative values (credits)
 * count as zero. Returns a model even for one day of data; the covariance then says how little it knows.
 */
export function fitDailyModel(values: readonly number[], lastDay: number): DailyModel {
  const raw = values.slice(-WINDOW_DAYS).map((v) => Math.max(0, v));
  // Fitted on a 0–1 scale: the arithmetic squares amounts, which would underflow for a key spending fractions of
  // a cent. Level and covariance are scaled back at the end.
  const scale = Math.max(0, ...raw) || 1;
  // Below a trillionth of the largest day is zero: denormal amounts would overflow the ratios.
  const x = raw.map((v) => (v / scale < 1e-12 ? 0 : v / scale));
  const n = x.length;
  const firstDay = lastDay - n + 1;
  const dows = x.map((_, i) => dayOfWeek(firstDay + i));

  const factors = weekdayFactors(x, dows);
  const valid = x.map((_, i) => factors[dows[i]!]! >= MIN_FACTOR_FOR_LEVEL);
  const deseasonalized = x.map((v, i) => (valid[i] ? v / factors[dows[i]!]! : Number.NaN));
  const { clipped, local, roughCv } = clipOutliers(deseasonalized);

  // A level shift is a change of level; in a key that spends on only some days, it is indistinguishable from luck.
  const step = zeroShare(clipped) <= MAX_ZERO_SHARE_FOR_STEPS ? detectStep(clipped) : null;
  const start = step ?? 0;
  // The clipping cv is rough (it compares days with their neighbours); the residuals of a first fit give the
  // noise level that the covariance needs, and the second fit uses it.
  const first = fitLevelAndTrend(clipped, start, roughCv);
  const noiseCv = residualCv(deseasonalized, start, first.level, first.growth);
  const fit = fitLevelAndTrend(clipped, start, noiseCv);
  fit.cov[0] += recentDisagreement(clipped, fit.level, fit.growth, noiseCv) * fit.level ** 2;

  return {
    factors,
    level: fit.level * scale,
    growth: fit.growth,
    cov: [fit.cov[0] * scale ** 2, fit.cov[1] * scale ** 2, fit.cov[2] * scale ** 2],
    noiseCv,
    ...spikeHistory(deseasonalized, local, noiseCv),
    stepDay: step === null ? null : firstDay + step,
  };
}

/**
 * Day-of-week factors from each day's ratio to its centred 7-day mean (a full week, so the ratio is free of the
 * level and of a linear trend). Big spikes are capped first so one day cannot skew its weekday. Each weekday's
 * robust mean ratio is shrunk toward its group's (Mon–Fri, Sat–Sun), and each group toward 1, by how noisy the
 * ratios are: three calm weeks show a pattern, three erratic ones (or a key used on a few days) show none.
 */
function weekdayFactors(x: readonly number[], dows: readonly number[]): number[] {
  const n = x.length;
  const capped = x.map((v, i) => {
    const m = median(windowValues(x, i, 3));
    return m > 0 ? Math.min(v, 5 * m) : v;
  });
  const ratios: number[][] = [[], [], [], [], [], [], []];
  for (let i = 3; i + 3 < n; i++) {
    let sum = 0;
    for (let k = i - 3; k <= i + 3; k++) sum += capped[k]!;
    if (sum > 0) ratios[dows[i]!]!.push((capped[i]! * 7) / sum);
  }
  const weekend = [...ratios[0]!, ...ratios[6]!];
  const weekday = ratios.slice(1, 6).flat();
  if (weekend.length < MIN_WEEKEND_RATIOS) return [1, 1, 1, 1, 1, 1, 1];
  const noise = ratioNoise([weekend, weekday]);
  const weekendFactor = shrunkMean(weekend, 1, GROUP_FACTOR_SD, noise);
  const weekdayFactor = shrunkMean(weekday, 1, GROUP_FACTOR_SD, noise);
  const raw = ratios.map((r, dow) =>
    shrunkMean(r, dow === 0 || dow === 6 ? weekendFactor : weekdayFactor, DAY_FACTOR_SD, noise),
  );
  const mean = raw.reduce((a, b) => a + b, 0) / 7;
  return mean > 0 ? raw.map((f) => f / mean) : [1, 1, 1, 1, 1, 1, 1];
}

/**
 * Clips each deseasonalized day to within CLIP_SDS robust sds of the median of its ±3-day neighbourhood, so a
 * spike (a batch job, a runaway hour) or an outage day does not move the level. Days whose neighbourhood median is
 * zero (a scope that spends on few days) are left alone: clipping them would erase the spend entirely.
 */
function clipOutliers(d: readonly number[]): { clipped: number[]; local: number[]; roughCv: number } {
  const local = d.map((v, i) => (Number.isNaN(v) ? Number.NaN : median(windowValues(d, i, 3))));
  const rel: number[] = [];
  d.forEach((v, i) => {
    const l = local[i]!;
    if (!Number.isNaN(v) && l > 0) rel.push(v / l - 1);
  });
  // 1.4826 · MAD estimates the sd of a normal; the floor keeps near-constant series from clipping their own noise.
  const roughCv = rel.length >= 3 ? Math.max(0.05, 1.4826 * median(rel.map(Math.abs))) : NOISE_PRIOR_CV;
  const clipped = d.map((v, i) => {
    const l = local[i]!;
    if (Number.isNaN(v) || !(l > 0)) return v;
    return Math.min(Math.max(v, l * (1 - CLIP_SDS * roughCv)), l * (1 + CLIP_SDS * roughCv));
  });
  return { clipped, local, roughCv };
}

/**
 * Spikes seen in the window: days more than SPIKE_SDS noise sds above their neighbourhood. The level ignores them,
 * but they are real spend and they recur (batch jobs, evaluations, a runaway hour), so the projection's upper
 * percentiles allow for them at the rate and mean size they were seen.
 */
function spikeHistory(
  d: readonly number[],
  local: readonly number[],
  cv: number,
): { spikeRate: number; spikeSize: number } {
  let days = 0;
  const sizes: number[] = [];
  d.forEach((v, i) => {
    const l = local[i]!;
    if (Number.isNaN(v) || !(l > 0)) return;
    days++;
    if (v > l * (1 + SPIKE_SDS * cv)) sizes.push(v / l - 1);
  });
  return sizes.length === 0
    ? { spikeRate: 0, spikeSize: 0 }
    : { spikeRate: sizes.length / days, spikeSize: mean(sizes) };
}

/**
 * Looks for one level shift in the last STEP_LOOKBACK_DAYS. For each candidate day, the log of the deseasonalized
 * spend is regressed on a line plus a step starting that day; the step is believed when the best candidate's
 * t-statistic and size both pass their thresholds. The line is there so that steady growth is never mistaken for a
 * step; logs make a doubling and a halving equally visible (the small offset keeps zero days finite).
 * Returns the index where the new level starts, or null.
 */
function detectStep(d: readonly number[]): number | null {
  const pts: { i: number; u: number; y: number }[] = [];
  const known = d.filter((v) => !Number.isNaN(v));
  if (known.length < STEP_MIN_BEFORE_DAYS + STEP_MIN_AFTER_DAYS) return null;
  const offset = 0.05 * median(known) + 1e-12;
  const n = d.length;
  d.forEach((v, i) => {
    if (!Number.isNaN(v)) pts.push({ i, u: i - (n - 1), y: Math.log(v + offset) });
  });
  // Ordinary least squares of y on (1, u): the model without a step.
  const m = pts.length;
  const mu = mean(pts.map((p) => p.u));
  const my = mean(pts.map((p) => p.y));
  let suu = 0;
  let suy = 0;
  for (const p of pts) {
    suu += (p.u - mu) ** 2;
    suy += (p.u - mu) * (p.y - my);
  }
  const b = suu > 0 ? suy / suu : 0;
  const residual = pts.map((p) => p.y - my - b * (p.u - mu));
  const rssLine = residual.reduce((acc, r) => acc + r * r, 0);

  let best: { t: number; index: number } | null = null;
  // Candidates from the newest backwards: k = number of points in the new regime.
  let sumAfterU = 0;
  let sumAfterR = 0;
  for (let k = 1; k <= m - STEP_MIN_BEFORE_DAYS; k++) {
    const p = pts[m - k]!;
    sumAfterU += p.u - mu;
    sumAfterR += residual[m - k]!;
    if (p.i < n - STEP_LOOKBACK_DAYS) break;
    if (k < STEP_MIN_AFTER_DAYS) continue;
    // The step indicator with (1, u) projected out: z = s − k/m − ((Σ_after (u−ū)) / suu)·(u − ū).
    // Σz² and Σz·y follow from sums over the new regime, so each candidate costs O(1).
    const zz = k - (k * k) / m - (suu > 0 ? sumAfterU ** 2 / suu : 0);
    if (!(zz > 0)) continue;
    const step = sumAfterR / zz;
    if (Math.abs(step) < STEP_MIN_LOG_RATIO) continue;
    const rss = rssLine - step * step * zz;
    const sd = Math.sqrt(Math.max(rss, 1e-12) / Math.max(1, m - 3));
    const t = (Math.abs(step) * Math.sqrt(zz)) / sd;
    if (t >= STEP_MIN_T && (best === null || t > best.t)) best = { t, index: p.i };
  }
  return best?.index ?? null;
}

/**
 * Weighted least squares of the deseasonalized spend on an exponential trend, level · e^(growth · u) with u the
 * days before the end (≤ 0): growth compounds, and a straight line through a compounding series under-projects
 * both a growing and a shrinking scope. Solved by a few Gauss–Newton steps from zero growth (the first is an
 * ordinary linear fit). Weights decay exponentially with age, and a ridge prior pulls the growth toward zero.
 * The covariance of (level, level · growth) is the sandwich: the estimator's sampling variance when days are
 * independent with sd cv · level; how much the level moves after the fit is added by the projection.
 */
function fitLevelAndTrend(
  d: readonly number[],
  start: number,
  cv: number,
): { level: number; growth: number; cov: [number, number, number] } {
  const n = d.length;
  const pts: { u: number; v: number; w: number }[] = [];
  for (let i = start; i < n; i++) {
    const v = d[i]!;
    if (Number.isNaN(v)) continue;
    const u = i - (n - 1);
    pts.push({ u, v, w: 2 ** (u / HALF_LIFE_DAYS) });
  }
  const none = { level: 0, growth: 0, cov: [0, 0, 0] as [number, number, number] };
  if (pts.length === 0) return none;
  let sw = 0;
  let swv = 0;
  for (const p of pts) {
    sw += p.w;
    swv += p.w * p.v;
  }
  let level = swv / sw;
  if (!(level > 0)) return none;

  const noiseVar = (cv * level) ** 2;
  const growthPriorPrecision = 1 / (TREND_PRIOR_PER_MONTH / 30) ** 2;
  let growth = 0;
  let cov: [number, number, number] = [noiseVar / sw, 0, 0];
  for (let iteration = 0; iteration < 4; iteration++) {
    // Linearised at the current growth g: v ≈ level·e^(g·u) + beta·u·e^(g·u), beta = level · (growth − g).
    let a00 = 0;
    let a01 = 0;
    let a11 = 0;
    let r0 = 0;
    let r1 = 0;
    let b00 = 0;
    let b01 = 0;
    let b11 = 0;
    for (const p of pts) {
      const e = Math.exp(growth * p.u);
      const x1 = p.u * e;
      const w = p.w / noiseVar;
      a00 += w * e * e;
      a01 += w * e * x1;
      a11 += w * x1 * x1;
      r0 += w * e * p.v;
      r1 += w * x1 * p.v;
      const w2 = (p.w * p.w) / noiseVar;
      b00 += w2 * e * e;
      b01 += w2 * e * x1;
      b11 += w2 * x1 * x1;
    }
    // Prior growth ~ N(0, sd): on beta that is N(−level·g, (level·sd)²).
    const priorPrecision = growthPriorPrecision / level ** 2;
    a11 += priorPrecision;
    r1 += priorPrecision * -level * growth;
    const det = a00 * a11 - a01 * a01;
    const i00 = a11 / det;
    const i01 = -a01 / det;
    const i11 = a00 / det;
    const newLevel = i00 * r0 + i01 * r1;
    const beta = i01 * r0 + i11 * r1;
    // Sandwich A⁻¹ B A⁻¹.
    const m00 = i00 * b00 + i01 * b01;
    const m01 = i00 * b01 + i01 * b11;
    const m10 = i01 * b00 + i11 * b01;
    const m11 = i01 * b01 + i11 * b11;
    cov = [m00 * i00 + m01 * i01, m00 * i01 + m01 * i11, m10 * i01 + m11 * i11];
    if (!(newLevel > 0)) return { ...none, cov };
    growth += beta / newLevel;
    level = newLevel;
  }
  return { level, growth, cov };
}

/**
 * How far the last RECENT_DAYS sit from the fitted curve beyond what noise explains, as a relative variance: the
 * footprint of a level shift too young (or too small) to be detected. It widens the interval instead of moving the
 * projection, so a noisy week costs some width, not a wrong number.
 */
function recentDisagreement(d: readonly number[], level: number, growth: number, cv: number): number {
  if (!(level > 0)) return 0;
  const n = d.length;
  const rel: number[] = [];
  for (let i = n - 1; i >= 0 && rel.length < RECENT_DAYS; i--) {
    const v = d[i]!;
    if (!Number.isNaN(v)) rel.push(v / (level * Math.exp(growth * (i - (n - 1)))) - 1);
  }
  if (rel.length === 0) return 0;
  return Math.max(0, mean(rel) ** 2 - cv ** 2 / rel.length);
}

/**
 * Relative sd of single days around the fitted curve, with residuals beyond 4 robust sds clipped so a spike does
 * not widen every interval, shrunk toward NOISE_PRIOR_CV when only a few days are known.
 */
function residualCv(d: readonly number[], start: number, level: number, growth: number): number {
  const rel: number[] = [];
  const n = d.length;
  for (let i = Math.max(start, n - 56); i < n; i++) {
    const v = d[i]!;
    const fitted = level * Math.exp(growth * (i - (n - 1)));
    if (!Number.isNaN(v) && fitted > 0) rel.push(v / fitted - 1);
  }
  if (rel.length === 0) return NOISE_PRIOR_CV;
  // Around zero (the fit is of the mean), clipped at 4 robust sds but never below 1: a key that spends on a few
  // days has mostly −100% residuals, a MAD of zero around their median, and a very large noise that must show.
  const bound = Math.max(1, 4 * 1.4826 * median(rel.map(Math.abs)));
  const sample = rel.reduce((acc, r) => acc + Math.min(Math.abs(r), bound) ** 2, 0) / rel.length;
  const k = rel.length;
  return Math.sqrt((k * sample + NOISE_PRIOR_DAYS * NOISE_PRIOR_CV ** 2) / (k + NOISE_PRIOR_DAYS));
}

function zeroShare(d: readonly number[]): number {
  const known = d.filter((v) => !Number.isNaN(v));
  return known.length === 0 ? 0 : known.filter((v) => v === 0).length / known.length;
}

function windowValues(values: readonly number[], center: number, radius: number): number[] {
  const out: number[] = [];
  for (let k = Math.max(0, center - radius); k <= Math.min(values.length - 1, center + radius); k++) {
    const v = values[k]!;
    if (!Number.isNaN(v)) out.push(v);
  }
  return out;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * Relative variance of one day's ratio around its group's mean, pooled over the groups and with NOISE_PRIOR_CV
 * worth two days: the noise that factor estimates are judged by. A key used on a few days has ratios of 0 and 7,
 * a huge value here, and so no weekly pattern.
 */
function ratioNoise(groups: readonly number[][]): number {
  let sum = 0;
  let count = 0;
  for (const g of groups) {
    if (g.length < 2) continue;
    const m = mean(g);
    if (!(m > 0)) continue;
    for (const r of g) sum += (r / m - 1) ** 2;
    count += g.length - 1;
  }
  return (sum + 2 * NOISE_PRIOR_CV ** 2) / (count + 2);
}

/**
 * Empirical-Bayes mean: the robust mean of `values` pulled toward `prior` by the ratio of its sampling variance
 * (`relativeNoise` per value, relative to the prior) to the prior's own (`priorSd`²).
 */
function shrunkMean(values: readonly number[], prior: number, priorSd: number, relativeNoise: number): number {
  const n = values.length;
  if (n === 0) return prior;
  const samplingVariance = (relativeNoise * prior ** 2) / n;
  return prior + (robustMean(values) - prior) * (priorSd ** 2 / (priorSd ** 2 + samplingVariance));
}

/** Median and MAD-based sd (1.4826 · MAD estimates a normal's sd). */
function robustCenter(values: readonly number[]): { center: number; sd: number } {
  const center = median(values);
  return { center, sd: 1.4826 * median(values.map((v) => Math.abs(v - center))) };
}

/** Mean with values beyond 3 robust sds of the median pulled in to that bound: a spike counts, but only so much. */
function robustMean(values: readonly number[]): number {
  const { center, sd } = robustCenter(values);
  if (!(sd > 0)) return mean(values);
  return mean(values.map((v) => Math.min(Math.max(v, center - 3 * sd), center + 3 * sd)));
}
