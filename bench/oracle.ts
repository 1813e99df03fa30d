/**
 * The oracle: the best detector the simulated data allows, the floor keywarden's latency is measured against
 * (`npm run bench -- detect` and `detect-sim`). Pure: laws and series in, alarms out.
 *
 * It knows what keywarden has to estimate: each key's true law of spend per minute before any change, read from the
 * simulator's parameters (rate, burstiness, daily curve, request sizes), minute by minute. It watches for the
 * runaways policy names, the rate going to `k` times the bar (max(factor × the key's true mean rate, min_hourly_usd))
 * for a bank of k (1, 2, 4, 10: the smallest runaway that counts and larger ones), each the way the simulator adds a
 * runaway's traffic. Per alternative it runs Page's CUSUM on the log-likelihood ratio of each minute,
 * W ← max(0, W + log(p_alt(x) / p_pre(x))), and alarms when any W reaches the threshold, then starts again from 0.
 * By Lorden's result no detector with the same false alarm rate is faster on a change to a known alternative; the
 * bank costs a little (a runaway between two alternatives is caught by the nearer one) and is as close to that
 * floor as a detector that does not know the runaway's size can be. The threshold is tuned by simulation on
 * change-free traffic to the same false alert budget keywarden has (see `thresholdFor`).
 *
 * Laws are a point mass at zero (no spend that minute) and a mixture of lognormals for the spend when there is some:
 * exact for the emulator's traffic (a lognormal flow on the active minutes), and for detect-sim's compound Poisson
 * (requests of lognormal cost) the Fenton–Wilkinson approximation the simulator itself uses for sums of requests.
 */

import { quantile } from './_stats.ts';

/** With probability `weight`, ln(spend) ~ N(mu, sigma²). */
interface LogNormalPart {
  weight: number;
  mu: number;
  sigma: number;
}

/** The law of one minute's spend: no spend with probability `zero`, else one of `parts` (weights add to 1 − zero). */
export interface MinuteLaw {
  zero: number;
  parts: readonly LogNormalPart[];
}

/** Multiples of the bar the oracle watches for: the smallest runaway policy names, and larger ones. */
export const ALTERNATIVES = [1, 2, 4, 10] as const;

/** An impossible value under one law and possible under the other moves the statistic by this much, not infinity. */
const LLR_LIMIT = 1e3;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Scratch for logDensity's terms (a law has at most MAX_PARTS parts). */
const MAX_PARTS = 64;
const terms = new Float64Array(MAX_PARTS);

/** Log of the law's density at `usd` (its mass, for 0). */
export function logDensity(law: MinuteLaw, usd: number): number {
  if (!(usd > 0)) return Math.log(law.zero);
  const y = Math.log(usd);
  // log-sum-exp over the parts, allocating nothing: this runs for every key-minute of a month, several times
  let max = Number.NEGATIVE_INFINITY;
  const n = law.parts.length;
  for (let i = 0; i < n; i++) {
    const p = law.parts[i]!;
    const z = (y - p.mu) / p.sigma;
    const t = p.weight > 0 ? Math.log(p.weight / p.sigma) - LOG_SQRT_2PI - 0.5 * z * z : Number.NEGATIVE_INFINITY;
    terms[i] = t;
    if (t > max) max = t;
  }
  if (max === Number.NEGATIVE_INFINITY) return max;
  if (n === 1) return max - y;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(terms[i]! - max);
  return max + Math.log(sum) - y;
}

/**
 * log(p_alt(x) / p_pre(x)) of each alternative into `out`, kept finite: an observation impossible under one law is
 * strong evidence, not an overflow.
 */
export function logLikelihoodRatios(alts: readonly MinuteLaw[], pre: MinuteLaw, usd: number, out: Float64Array): void {
  const base = logDensity(pre, usd);
  alts.forEach((alt, j) => {
    const r = logDensity(alt, usd) - base;
    out[j] = Number.isNaN(r) ? 0 : Math.max(-LLR_LIMIT, Math.min(LLR_LIMIT, r));
  });
}

/** The lognormal with this mean and variance. */
function lognormalPart(weight: number, mean: number, variance: number): LogNormalPart {
  const s2 = Math.log(1 + variance / (mean * mean));
  return { weight, mu: Math.log(mean) - s2 / 2, sigma: Math.sqrt(s2) };
}

/**
 * The emulator's minute (src/emulator/traffic.ts): on a share `active` of minutes the key spends mean ÷ active ×
 * L, where L = exp(noise · z − noise²/2) has mean 1; a runaway adds `extra` × L in every minute (a loop calls
 * whatever the key's rhythm), with the same L. `mean` and `extra` are USD per minute over all minutes.
 */
export function emulatorLaw(mean: number, active: number, noise: number, extra = 0): MinuteLaw {
  const sigma = Math.max(noise, 1e-6);
  const shift = -(sigma * sigma) / 2;
  const parts: LogNormalPart[] = [{ weight: active, mu: Math.log(mean / active + extra) + shift, sigma }];
  if (extra > 0 && active < 1) parts.push({ weight: 1 - active, mu: Math.log(extra) + shift, sigma });
  return { zero: extra > 0 ? 0 : 1 - active, parts };
}

/** Requests at a mean spend of `usdPerMinute`, each of lognormal cost (median `median`, log-sd `sigma`). */
interface RequestFlow {
  usdPerMinute: number;
  median: number;
  sigma: number;
}

/** Below this many requests a minute the law is a mixture over their number; above, one lognormal. */
const MIXTURE_MAX_REQUESTS = 8;

/**
 * detect-sim's minute: the sum of compound Poisson flows (Poisson many requests a minute, each of lognormal cost).
 * No spend with probability e^-Λ (Λ requests a minute expected). A single request has its flow's cost law exactly;
 * n requests are one lognormal with their sum's mean and variance (Fenton–Wilkinson, as the simulator draws them);
 * beyond MIXTURE_MAX_REQUESTS a minute the number of requests is folded into one lognormal of the same moments.
 */
export function compoundPoissonLaw(flows: readonly RequestFlow[]): MinuteLaw {
  let rate = 0;
  let mean = 0;
  let square = 0;
  const singles: Array<{ rate: number; median: number; sigma: number }> = [];
  for (const f of flows) {
    if (!(f.usdPerMinute > 0)) continue;
    const meanCost = f.median * Math.exp((f.sigma * f.sigma) / 2);
    const r = f.usdPerMinute / meanCost;
    rate += r;
    mean += f.usdPerMinute;
    square += r * meanCost * meanCost * Math.exp(f.sigma * f.sigma);
    singles.push({ rate: r, median: f.median, sigma: f.sigma });
  }
  if (rate === 0) return { zero: 1, parts: [] };
  const zero = Math.exp(-rate);
  if (rate > MIXTURE_MAX_REQUESTS) return { zero, parts: [lognormalPart(1 - zero, mean, square)] };
  // per request: mean cost and second moment
  const costMean = mean / rate;
  const costVariance = square / rate - costMean * costMean;
  const parts: LogNormalPart[] = singles.map((s) => ({
    weight: rate * zero * (s.rate / rate),
    mu: Math.log(s.median),
    sigma: Math.max(s.sigma, 1e-6),
  }));
  let p = rate * zero;
  let covered = p;
  for (let n = 2; 1 - zero - covered > 1e-9 && parts.length < MAX_PARTS; n++) {
    p *= rate / n;
    covered += p;
    parts.push(lognormalPart(p, n * costMean, n * costVariance));
  }
  return { zero, parts };
}

/**
 * Page's CUSUM over a bank of alternatives. `llr(m, out)` writes minute m's log-likelihood ratio of each
 * alternative into `out`. Returns the minutes at which the statistic reached `threshold` (it restarts from 0 after
 * each), and the peak of every excursion of the statistic above 0 (for tuning: see thresholdFor).
 */
export function cusum(
  from: number,
  to: number,
  alternatives: number,
  llr: (m: number, out: Float64Array) => void,
  threshold: number,
): { alarms: number[]; peaks: number[] } {
  const w = new Float64Array(alternatives);
  const out = new Float64Array(alternatives);
  const alarms: number[] = [];
  const peaks: number[] = [];
  let peak = 0;
  for (let m = from; m < to; m++) {
    llr(m, out);
    let s = 0;
    for (let j = 0; j < alternatives; j++) {
      w[j] = Math.max(0, w[j]! + out[j]!);
      if (w[j]! > s) s = w[j]!;
    }
    if (s > peak) peak = s;
    if (s >= threshold) {
      alarms.push(m);
      w.fill(0);
      s = 0;
    }
    if (s === 0 && peak > 0) {
      peaks.push(peak);
      peak = 0;
    }
  }
  if (peak > 0) peaks.push(peak);
  return { alarms, peaks };
}

/**
 * The alarms that start an episode: more than `gap` minutes after the one before. A change that lasts alarms again
 * each time the statistic refills; counted as keywarden counts its alerts (one until it resolves), it is one.
 */
export function episodes(alarms: readonly number[], gap: number): number[] {
  return alarms.filter((m, i) => i === 0 || m - alarms[i - 1]! > gap);
}

/**
 * The lowest threshold at which at most `allowed` of the excursions seen on change-free traffic (their peaks) would
 * have alarmed: each excursion above it alarms once. A threshold is never below 1 (a likelihood ratio of e).
 */
export function thresholdFor(peaks: readonly number[], allowed: number): number {
  const sorted = [...peaks].sort((a, b) => b - a);
  const next = sorted[allowed];
  return next === undefined ? 1 : Math.max(1, next * (1 + 1e-9));
}

/** One class of runaways: how many, and the latencies (minutes) of those each detector caught. */
export interface ClassLatencies {
  label: string;
  runaways: number;
  keywarden: number[];
  oracle: number[];
}

/**
 * The per-class table: keywarden's p50/p95 beside the oracle's, and keywarden's ÷ the oracle's (how far from the
 * floor it is; "—" where the oracle's is 0 or either caught none). Latencies are over the runaways each caught.
 */
export function comparisonTable(rows: readonly ClassLatencies[]): string[] {
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { n: sorted.length, p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95) };
  };
  const ratio = (a: number, b: number) => (Number.isFinite(a) && b > 0 ? `${(a / b).toFixed(1)}×` : '—');
  const cell = (s: ReturnType<typeof stats>, of: number) =>
    `${`${s.n}/${of}`.padStart(7)} ${fmt(s.p50).padStart(4)} ${fmt(s.p95).padStart(4)}`;
  const width = Math.max(...rows.map((r) => r.label.length), 5);
  const lines = [
    `  ${'class'.padEnd(width)}   keywarden: caught p50  p95 |    oracle: caught p50  p95 | ratio p50   p95`,
  ];
  for (const r of rows) {
    const k = stats(r.keywarden);
    const o = stats(r.oracle);
    lines.push(
      `  ${r.label.padEnd(width)}   ${cell(k, r.runaways).padStart(22)} | ${cell(o, r.runaways).padStart(22)} | ` +
        `${ratio(k.p50, o.p50).padStart(9)} ${ratio(k.p95, o.p95).padStart(5)}`,
    );
  }
  lines.push(
    '  (latency over the runaways each caught; the oracle alarms on a ramp before it reaches the bar when it can tell',
    '  ×3 from ×1 as surely: policy keeps keywarden from alerting below the bar, so there the floor is 0 and no ratio)',
  );
  return lines;
}

const fmt = (x: number) => (Number.isFinite(x) ? String(x) : '—');
