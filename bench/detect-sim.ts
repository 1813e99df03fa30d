/**
 * Runaway detection on a simulated organization: alert latency, detection rate by size, false alerts.
 *
 *   npm run bench -- detect-sim [--keys 500] [--days 30] [--runaways 200] [--seed 1] [--verify 0] [--delay 0|5]
 *     [--oracle 0]
 *
 * Pure simulation, no emulator: the traffic model (below) produces each key's spend per minute over 5 weeks of
 * history and `days` evaluated days; the evaluation loop replays it minute by minute through the detector exactly
 * as the worker would (typicalRate from the hourly history, then production's plan, planDetection, with the state
 * carried between runs), for every key and every workspace, with usage data visible 0 and 5 minutes late (data for
 * minute m is visible at m + 1 + delay). The two halves only meet through `SimKey` / `Runaway` and a Float64Array of USD per minute, so the
 * traffic can later come from the emulator instead.
 *
 * Traffic model (per key; 25 workspaces of Zipf-like sizes):
 * - service (45%): peak $0.3–300/h (log-uniform); daily curve peaking between 08:00 and 20:00 UTC with a night
 *   trough of 5–70% of the peak; weekends at 15–100%; trend −10%..+40% a month; day-to-day drift (AR(1), ±16%);
 *   two natural busy spells on average (×1.5–3 for 1–6 h: launches, backfills).
 * - batch (10%): one job a day (or on weekdays) at a fixed time ± 10 min, 20–90 min at $2–150/h; a trickle between.
 * - dev (30%): sessions inside an 8-hour working day on weekdays (rarely at weekends), 25 min median, $0.1–4/h;
 *   15% of them are heavy users (longer, more frequent sessions at $3–15/h, like a coding agent).
 * - sparse (15%): 1–8 requests a day, some with long contexts.
 * Spend per minute is a compound Poisson process: requests at the expected rate, each costing a lognormal amount
 * (median 0.2–8 cents with σ 0.5–1 for services, σ 0.3–0.7 for jobs, 0.3–10 cents with σ 1 for developers, 5 cents
 * to $2 for sparse keys); sums of many requests are drawn as one lognormal with the same mean and variance
 * (Fenton–Wilkinson), which keeps the right skew that causes false alarms.
 *
 * Injected runaways (in the evaluated days; 20 more in the history, which must not raise the bar): 3 in 4 are steps
 * to ×3–×50 (log-uniform) of the key's expected rate at the start, lasting 30 min to 6 h; 1 in 4 are slow ramps from
 * ×1 to ×10–50 over 1–6 h, then a hold. A dev key's runaway starts during one of its sessions (someone runs a script).
 * The extra traffic re-sends the same request (cost σ 0.3), so a runaway on a key with expensive requests is noisy.
 * 15 keys are rotated during the evaluated days: over 30 minutes the traffic moves to a successor key with no
 * history, which must not be taken for a runaway.
 *
 * Figures: latency is measured from the runaway's first minute (for ramps: from the minute its rate crossed
 * max(factor × expected, min_hourly_usd)) to the clock minute at which the detector fired. "Above the floor" means
 * the runaway's rate reached min_hourly_usd; below it, policy says never alert. A false alert is a `fire` on a key
 * (or workspace) with no injected runaway running (or just ended), counted over all keys and all evaluated minutes.
 * Minutes whose last window holds no minute above half the threshold are not sent through the detector (it cannot
 * fire there); `--verify N` replays N keys without that shortcut and checks that the alerts are identical.
 * `--delay 5` replays one delay only, and `--oracle 0` leaves the oracle out (its figures depend on the simulation
 * and the seed, not on keywarden): keywarden's own figures in a third of the time, on a machine too busy for more.
 *
 * Beside keywarden, the oracle (bench/oracle.ts): per key, a CUSUM on the key's true law of spend per minute (the
 * simulator's expected rate of each minute, its sessions, jobs, busy spells and rotation fades included, and its
 * request sizes), on the same minutes with the same delay, its threshold tuned on other draws of every key's
 * change-free traffic to the same budget (≤ 1 false alert per 100 keys per 30 days). Per class it prints keywarden's
 * p50/p95 beside the oracle's and the ratio, and the oracle's false alarms on all keys.
 */

import {
  type Baseline,
  type HourlySpend,
  minuteFigures,
  typicalRate,
  type WorkspaceProfile,
} from '../src/anomaly/core/baseline.ts';
import {
  type DetectionInput,
  type JudgedScope,
  planDetection,
  type ScopeState,
  scopeKey,
} from '../src/anomaly/core/plan.ts';
import {
  type MinuteSpend,
  type RunawayEvidence,
  recentMinutesNeeded,
  runawayThresholdHourlyUsd,
} from '../src/anomaly/core/runaway.ts';
import { largestKeyShare } from '../src/anomaly/core/series.ts';
import { type AnomalyPolicy, policySchema } from '../src/config/policy.ts';
import { prng } from './_prng.ts';
import { quantile } from './_stats.ts';
import {
  ALTERNATIVES,
  type ClassLatencies,
  comparisonTable,
  compoundPoissonLaw,
  cusum,
  episodes,
  logLikelihoodRatios,
  type MinuteLaw,
  thresholdFor,
} from './oracle.ts';

const HOUR = 60;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const HISTORY_DAYS = 35;
/** Monday 2026-03-02 00:00 UTC: minute 0 of the simulation. */
const START_MS = Date.UTC(2026, 2, 2);
const WORKSPACES = 25;
const ROTATIONS = 15;
const HISTORY_RUNAWAYS = 20;
const DELAYS = [0, 5];

// ---------------------------------------------------------------------------------------------------------------
// Randomness

type Rand = () => number;

function normal(rand: Rand): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}
function uniform(rand: Rand, lo: number, hi: number): number {
  return lo + (hi - lo) * rand();
}
function logUniform(rand: Rand, lo: number, hi: number): number {
  return Math.exp(uniform(rand, Math.log(lo), Math.log(hi)));
}
function poisson(rand: Rand, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal(rand)));
  const limit = Math.exp(-lambda);
  let n = 0;
  let p = rand();
  while (p > limit) {
    n++;
    p *= rand();
  }
  return n;
}

/** Spend of one minute: Poisson(expected / mean cost) requests, each lognormal(median, sigma). */
function drawSpend(rand: Rand, expectedUsd: number, medianCost: number, sigma: number): number {
  if (expectedUsd <= 0) return 0;
  const meanCost = medianCost * Math.exp((sigma * sigma) / 2);
  const n = poisson(rand, expectedUsd / meanCost);
  if (n === 0) return 0;
  if (n <= 3) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += medianCost * Math.exp(sigma * normal(rand));
    return sum;
  }
  const mean = n * meanCost;
  const variance = n * meanCost * meanCost * (Math.exp(sigma * sigma) - 1);
  const s2 = Math.log(1 + variance / (mean * mean));
  return Math.exp(Math.log(mean) - s2 / 2 + Math.sqrt(s2) * normal(rand));
}

// ---------------------------------------------------------------------------------------------------------------
// Traffic model

export type KeyKind = 'service' | 'batch' | 'dev' | 'sparse';

interface Interval {
  from: number;
  to: number;
  usdPerMinute: number;
}

interface TrafficProfile {
  kind: KeyKind;
  requestUsd: number;
  requestSigma: number;
  /** Service: expected USD/minute at the daily peak, and its shape. */
  peak: number;
  nightShare: number;
  peakHour: number;
  sharpness: number;
  weekendFactor: number;
  growthPerDay: number;
  /** Multiplier per day (service drift). */
  drift: Float64Array;
  /** Busy spells (service): multiply the rate. */
  spells: Interval[];
  /** Jobs (batch) or sessions (dev): add their rate. */
  intervals: Interval[];
  /** Constant rate underneath (batch trickle, sparse requests). */
  background: number;
}

export interface SimKey {
  id: string;
  kind: KeyKind;
  workspace: number;
  profile: TrafficProfile;
  /** Seed of this key's own request noise. */
  seed: number;
  /** Minute from which the key exists (history and traffic), and the handover of a rotation. */
  existsFrom: number;
  /** Traffic share: 1 outside a rotation; the old key fades out and the successor fades in over 30 minutes. */
  fadeOutAt: number | null;
  fadeInAt: number | null;
}

export interface Runaway {
  key: number;
  shape: 'step' | 'ramp';
  start: number;
  end: number;
  /** Step: the multiple; ramp: the multiple reached at the end of the ramp. */
  multiple: number;
  rampMinutes: number;
  /** Expected USD/minute of the key at the start (the ×1 of the multiple). */
  base: number;
  requestUsd: number;
  evaluated: boolean;
}

export interface Organization {
  keys: SimKey[];
  runaways: Runaway[];
  totalMinutes: number;
  evalStart: number;
  policy: AnomalyPolicy;
}

function makeProfile(kind: KeyKind, rand: Rand, totalMinutes: number): TrafficProfile {
  const days = Math.ceil(totalMinutes / DAY);
  const profile: TrafficProfile = {
    kind,
    requestUsd: logUniform(rand, 0.002, 0.08),
    requestSigma: uniform(rand, 0.5, 1),
    peak: 0,
    nightShare: 0,
    peakHour: 0,
    sharpness: 1,
    weekendFactor: 1,
    growthPerDay: 0,
    drift: new Float64Array(days).fill(1),
    spells: [],
    intervals: [],
    background: 0,
  };
  if (kind === 'service') {
    profile.peak = logUniform(rand, 0.3, 300) / 60;
    profile.nightShare = uniform(rand, 0.05, 0.7);
    profile.peakHour = uniform(rand, 8, 20);
    profile.sharpness = uniform(rand, 1, 3);
    profile.weekendFactor = uniform(rand, 0.15, 1);
    profile.growthPerDay = Math.log(1 + uniform(rand, -0.1, 0.4)) / 30;
    let x = 0;
    for (let d = 0; d < days; d++) {
      x = 0.9 * x + 0.07 * normal(rand);
      profile.drift[d] = Math.exp(x);
    }
    const spells = poisson(rand, 2);
    for (let i = 0; i < spells; i++) {
      const from = Math.floor(rand() * totalMinutes);
      profile.spells.push({ from, to: from + Math.floor(uniform(rand, 60, 360)), usdPerMinute: uniform(rand, 1.5, 3) });
    }
  } else if (kind === 'batch') {
    const rate = logUniform(rand, 2, 150) / 60;
    const at = Math.floor(rand() * DAY);
    const length = uniform(rand, 20, 90);
    const weekdaysOnly = rand() < 0.5;
    profile.requestUsd = logUniform(rand, 0.005, 0.05);
    profile.requestSigma = uniform(rand, 0.3, 0.7);
    profile.background = rate * uniform(rand, 0, 0.02);
    for (let d = 0; d < days; d++) {
      if (weekdaysOnly && d % 7 >= 5) continue;
      const from = d * DAY + at + Math.round(10 * normal(rand));
      const to = from + Math.round(length * Math.exp(0.15 * normal(rand)));
      profile.intervals.push({ from, to, usdPerMinute: rate * Math.exp(0.1 * normal(rand)) });
    }
  } else if (kind === 'dev') {
    const heavy = rand() < 0.15;
    const rate = (heavy ? logUniform(rand, 3, 15) : logUniform(rand, 0.1, 4)) / 60;
    const perDay = heavy ? uniform(rand, 3, 6) : uniform(rand, 0.5, 4);
    const medianLength = heavy ? 60 : 25;
    const dayStart = Math.floor(uniform(rand, 6, 16) * HOUR);
    profile.requestSigma = 1;
    profile.requestUsd = logUniform(rand, 0.003, 0.1);
    for (let d = 0; d < days; d++) {
      const sessions = poisson(rand, d % 7 >= 5 ? perDay * 0.1 : perDay);
      for (let s = 0; s < sessions; s++) {
        const from = d * DAY + dayStart + Math.floor(rand() * 8 * HOUR);
        const to = from + Math.min(180, Math.round(medianLength * Math.exp(0.8 * normal(rand))));
        profile.intervals.push({ from, to, usdPerMinute: rate * Math.exp(0.3 * normal(rand)) });
      }
    }
  } else {
    profile.requestUsd = logUniform(rand, 0.05, 2);
    profile.requestSigma = 0.8;
    profile.background = (uniform(rand, 1, 8) * profile.requestUsd * Math.exp(0.32)) / DAY;
  }
  return profile;
}

/** Expected USD per minute of a profile, minute by minute (no request noise, no runaways, no rotation). */
function expectedRate(profile: TrafficProfile, totalMinutes: number): Float64Array {
  const rate = new Float64Array(totalMinutes).fill(profile.background);
  if (profile.kind === 'service') {
    for (let m = 0; m < totalMinutes; m++) {
      const day = Math.floor(m / DAY);
      const hour = (m % DAY) / HOUR;
      const wave = ((1 + Math.cos((2 * Math.PI * (hour - profile.peakHour)) / 24)) / 2) ** profile.sharpness;
      const daily = profile.nightShare + (1 - profile.nightShare) * wave;
      const weekly = day % 7 >= 5 ? profile.weekendFactor : 1;
      rate[m] = profile.peak * daily * weekly * profile.drift[day]! * Math.exp(profile.growthPerDay * day);
    }
    for (const s of profile.spells) {
      for (let m = Math.max(0, s.from); m < Math.min(totalMinutes, s.to); m++) rate[m]! *= s.usdPerMinute;
    }
  }
  for (const s of profile.intervals) {
    for (let m = Math.max(0, s.from); m < Math.min(totalMinutes, s.to); m++) rate[m]! += s.usdPerMinute;
  }
  return rate;
}

/**
 * The key's spend per minute (its traffic with rotation fades, plus its runaways' extra requests), and the expected
 * spend of its traffic alone (no request noise, no runaways): the ground truth false alerts are judged against.
 */
export function keySpend(org: Organization, index: number): { usd: Float64Array; expected: Float64Array } {
  const key = org.keys[index]!;
  const rand = prng(key.seed);
  const expected = expectedRate(key.profile, org.totalMinutes);
  const usd = new Float64Array(org.totalMinutes);
  const { requestUsd, requestSigma } = key.profile;
  for (let m = 0; m < org.totalMinutes; m++) {
    let share = m < key.existsFrom ? 0 : 1;
    if (key.fadeOutAt !== null) share = Math.min(share, Math.max(0, 1 - (m - key.fadeOutAt) / 30));
    if (key.fadeInAt !== null) share = Math.min(share, Math.max(0, (m - key.fadeInAt) / 30));
    expected[m]! *= share;
    usd[m] = drawSpend(rand, expected[m]!, requestUsd, requestSigma);
  }
  for (const r of org.runaways) {
    if (r.key !== index) continue;
    for (let m = r.start; m < Math.min(r.end, org.totalMinutes); m++) {
      usd[m]! += drawSpend(rand, (runawayMultiple(r, m) - 1) * r.base, r.requestUsd, 0.3);
    }
  }
  return { usd, expected };
}

function runawayMultiple(r: Runaway, minute: number): number {
  if (r.shape === 'step') return r.multiple;
  return 1 + (r.multiple - 1) * Math.min(1, (minute - r.start) / r.rampMinutes);
}

export function simulateOrganization(opts: {
  keys: number;
  days: number;
  runaways: number;
  seed: number;
}): Organization {
  const rand = prng(opts.seed);
  const totalMinutes = (HISTORY_DAYS + opts.days) * DAY;
  const evalStart = HISTORY_DAYS * DAY;
  const policy = policySchema.parse({}).anomaly;
  const keys: SimKey[] = [];
  // Zipf-like workspace sizes: a few big workspaces, many small ones.
  const weights = Array.from({ length: WORKSPACES }, (_, i) => 1 / (i + 1));
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const pickWorkspace = () => {
    let x = rand() * totalWeight;
    for (let i = 0; i < WORKSPACES; i++) {
      x -= weights[i]!;
      if (x <= 0) return i;
    }
    return WORKSPACES - 1;
  };
  for (let i = 0; i < opts.keys; i++) {
    const u = rand();
    const kind: KeyKind = u < 0.45 ? 'service' : u < 0.55 ? 'batch' : u < 0.85 ? 'dev' : 'sparse';
    const profile = makeProfile(kind, prng(opts.seed * 1000 + i), totalMinutes);
    keys.push({
      id: `key-${i}`,
      kind,
      workspace: pickWorkspace(),
      profile,
      seed: opts.seed * 7919 + i,
      existsFrom: 0,
      fadeOutAt: null,
      fadeInAt: null,
    });
  }
  // Rotations: service keys hand their traffic to a successor with no history.
  const services = keys.flatMap((k, i) => (k.kind === 'service' ? [i] : []));
  for (let r = 0; r < ROTATIONS && services.length > 0; r++) {
    const old = keys[services.splice(Math.floor(rand() * services.length), 1)[0]!]!;
    const at = evalStart + Math.floor(rand() * (opts.days - 1) * DAY);
    old.fadeOutAt = at;
    keys.push({
      ...old,
      id: `${old.id}-successor`,
      seed: old.seed + 104_729,
      existsFrom: at,
      fadeOutAt: null,
      fadeInAt: at,
    });
  }

  const runaways: Runaway[] = [];
  const candidates = keys.flatMap((k, i) => (k.fadeInAt === null && k.fadeOutAt === null ? [i] : []));
  const total = opts.runaways + HISTORY_RUNAWAYS;
  for (let n = 0; runaways.length < total && n < total * 50; n++) {
    const evaluated = runaways.length < opts.runaways;
    const index = candidates[Math.floor(rand() * candidates.length)]!;
    const key = keys[index]!;
    const ramp = rand() < 0.25;
    const rampMinutes = ramp ? Math.round(uniform(rand, 60, 360)) : 0;
    const length = ramp ? rampMinutes + Math.round(uniform(rand, 30, 120)) : Math.round(logUniform(rand, 30, 360));
    const from = evaluated ? evalStart : 7 * DAY;
    const until = evaluated ? totalMinutes : evalStart - DAY;
    const rate = expectedRate(key.profile, totalMinutes);
    let start = from + Math.floor(rand() * (until - from - length));
    if (key.kind === 'dev') {
      const sessions = key.profile.intervals.filter((s) => s.from >= from && s.to + length < until);
      if (sessions.length === 0) continue;
      const s = sessions[Math.floor(rand() * sessions.length)]!;
      start = s.from + Math.floor(rand() * (s.to - s.from));
    }
    const overlaps = runaways.some(
      (r) => r.key === index && r.start < start + length + 2 * HOUR && start < r.end + 2 * HOUR,
    );
    if (overlaps || rate[start]! <= 0) continue;
    runaways.push({
      key: index,
      shape: ramp ? 'ramp' : 'step',
      start,
      end: start + length,
      multiple: ramp ? logUniform(rand, 10, 50) : logUniform(rand, 3, 50),
      rampMinutes,
      base: rate[start]!,
      requestUsd: key.profile.requestUsd,
      evaluated,
    });
  }
  return { keys, runaways, totalMinutes, evalStart, policy };
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation loop: the detector as the worker runs it, once per clock minute

export interface Alert {
  /** Clock minute at which the detector said `fire`. */
  clock: number;
  /** Last complete minute it saw. */
  dataUntil: number;
  since: number;
  resolvedAt: number | null;
  evidence: RunawayEvidence;
}

interface SeriesInput {
  /** A key's series is judged as a key (its workspace not judged with it); a workspace's as a workspace. */
  scope: 'key' | 'workspace';
  usd: Float64Array;
  existsFrom: number;
  workspace: WorkspaceProfile | null;
}

const minuteDates: Date[] = [];
function minuteDate(m: number): Date {
  while (minuteDates.length <= m) minuteDates.push(new Date(START_MS + minuteDates.length * 60_000));
  return minuteDates[m]!;
}

/** Hourly rollups of a minute series, from the hour the key came into existence. */
function hourlyOf(usd: Float64Array, existsFrom: number): HourlySpend[] {
  const out: HourlySpend[] = [];
  for (let h = Math.floor(existsFrom / HOUR); (h + 1) * HOUR <= usd.length; h++) {
    out.push({ hour: minuteDate(h * HOUR), ...minuteFigures(usd, h * HOUR) });
  }
  return out;
}

const SERIES_ID = 'replayed';
const NONE = new Map();

/**
 * Alerts for one series and one data delay, through production's plan (planDetection) with its state carried from
 * minute to minute. `shortcut` skips minutes where the detector provably cannot fire.
 */
export function evaluateSeries(org: Organization, input: SeriesInput, delay: number, shortcut = true): Alert[] {
  const { policy } = org;
  const scope = scopeKey(input.scope, SERIES_ID);
  const lookback = recentMinutesNeeded(policy);
  const hourly = hourlyOf(input.usd, input.existsFrom);
  const firstHour = Math.floor(input.existsFrom / HOUR);
  const baselines = new Map<number, { baseline: Baseline; perMinute: number }>();
  // Highest minute of the look-back ending at each minute (sliding maximum over a monotonic queue).
  const lookbackMax = new Float64Array(input.usd.length);
  const queue: number[] = [];
  let head = 0;
  for (let m = 0; m < input.usd.length; m++) {
    while (queue.length > head && input.usd[queue.at(-1)!]! <= input.usd[m]!) queue.pop();
    queue.push(m);
    if (queue[head]! <= m - lookback) head++;
    lookbackMax[m] = input.usd[queue[head]!]!;
  }

  const alerts: Alert[] = [];
  let state: ScopeState | null = null;
  for (let clock = org.evalStart; clock < org.totalMinutes; clock++) {
    // Data for minute m is visible at m + 1 + delay and complete once visible: the settled watermark alone sets the
    // edge (the clock is taken 5 minutes on, past production's wait for completeness, which `detect` measures).
    const settled = minuteDate(clock - delay);
    const now = minuteDate(clock + 5);
    const dataUntil = clock - 1 - delay;
    if (dataUntil < input.existsFrom) continue;
    const hour = Math.floor(dataUntil / HOUR);
    let b = baselines.get(hour);
    if (!b) {
      const history = hourly.slice(Math.max(0, hour - 5 * 168 - firstHour), Math.max(0, hour - firstHour));
      const baseline = typicalRate(history, input.workspace, minuteDate(dataUntil), policy);
      b = { baseline, perMinute: runawayThresholdHourlyUsd(baseline, policy) / 60 };
      baselines.set(hour, b);
    }
    // Every run the detector judges has a minute at 70% of the threshold or more (steady) or a capped mean at the
    // threshold (window): with no minute above half of it in the whole look-back, nothing can fire.
    if (shortcut && !state?.runaway?.firing && lookbackMax[dataUntil]! < 0.5 * b.perMinute) {
      state = null;
      continue;
    }
    const recent: MinuteSpend[] = [];
    for (let m = Math.max(0, dataUntil - lookback + 1); m <= dataUntil; m++) {
      recent.push({ minute: minuteDate(m), usd: input.usd[m]! });
    }
    const series: DetectionInput['series'] =
      input.scope === 'key'
        ? { keys: new Map([[SERIES_ID, { workspaceScope: 'default', recent }]]), workspaces: NONE }
        : { keys: NONE, workspaces: new Map([[SERIES_ID, recent]]) };
    const judged: JudgedScope = planDetection(
      {
        settled,
        series,
        states: state ? new Map([[scope, state]]) : NONE,
        keys: NONE,
        workspaces: NONE,
        baselines: new Map([[scope, b.baseline]]),
      },
      policy,
      now,
    ).judged[0]!;
    state = judged.state;
    const result = judged.assessment;
    if (result.decision === 'fire') {
      const since = Math.round((result.startedAt!.getTime() - START_MS) / 60_000);
      alerts.push({ clock, dataUntil, since, resolvedAt: null, evidence: result.evidence! });
    } else if (result.decision === 'resolve') {
      alerts[alerts.length - 1]!.resolvedAt = clock;
    }
  }
  return alerts;
}

// ---------------------------------------------------------------------------------------------------------------
// The oracle (bench/oracle.ts): the fastest detection this data allows at keywarden's false alert budget

/** Log-sd of a runaway's requests: it re-sends the same request (see keySpend). */
const RUNAWAY_REQUEST_SIGMA = 0.3;
/** Relative change of a key's expected rate after which the oracle's laws are rebuilt. */
const RATE_STEP = 0.01;
/** Noise of the change-free traffic the oracle is tuned on: the same keys, other draws. */
const TUNING_SEED = 0x0c05;
/** An oracle alarm within this many minutes of the one before is the same episode (keywarden resolves after 30). */
const RESOLVE_MINUTES = 30;
/** ≤ 1 false alert per 100 keys per 30 days: key-days per false alert allowed. */
const KEY_DAYS_PER_FALSE_ALERT = 100 * 30;

/**
 * The oracle's minute-by-minute evidence on one key: its true law (the simulator's expected rate of the minute,
 * sessions, jobs, busy spells and rotation fades included, and its request sizes) against a runaway of ALTERNATIVES ×
 * its bar, max(factor × that rate, min_hourly_usd), made of re-sent requests as the simulator makes them.
 */
function oracleEvidence(org: Organization, key: SimKey, expected: Float64Array, usd: Float64Array) {
  const { policy } = org;
  const { requestUsd: median, requestSigma: sigma } = key.profile;
  let rate = Number.NaN;
  let pre: MinuteLaw = { zero: 1, parts: [] };
  let alts: MinuteLaw[] = [];
  return (m: number, out: Float64Array) => {
    // The laws change only with the expected rate: constant through a session, a job or a quiet night, and along a
    // service's daily curve rebuilt once it moved by RATE_STEP (a 1% error in the mean is lost in a minute's noise).
    if (!(Math.abs(expected[m]! - rate) <= RATE_STEP * rate)) {
      rate = expected[m]!;
      const own = { usdPerMinute: rate, median, sigma };
      const bar = Math.max(policy.factor * rate, policy.min_hourly_usd / 60);
      pre = compoundPoissonLaw([own]);
      alts = ALTERNATIVES.map((k) =>
        compoundPoissonLaw([own, { usdPerMinute: k * bar - rate, median, sigma: RUNAWAY_REQUEST_SIGMA }]),
      );
    }
    logLikelihoodRatios(alts, pre, usd[m]!, out);
  };
}

interface OracleRun {
  threshold: number;
  tuningKeyDays: number;
  allowed: number;
  seconds: number;
}

/**
 * The oracle's threshold: the lowest with at most the budget's false alarms on change-free traffic of every key
 * (its traffic with other noise draws and no runaways) over the evaluated days.
 */
function tuneOracle(org: Organization): OracleRun {
  const started = performance.now();
  const quiet: Organization = {
    ...org,
    keys: org.keys.map((k) => ({ ...k, seed: k.seed + TUNING_SEED })),
    runaways: [],
  };
  const peaks: number[] = [];
  for (let k = 0; k < quiet.keys.length; k++) {
    const { usd, expected } = keySpend(quiet, k);
    const evidence = oracleEvidence(quiet, quiet.keys[k]!, expected, usd);
    peaks.push(
      ...cusum(org.evalStart, org.totalMinutes, ALTERNATIVES.length, evidence, Number.POSITIVE_INFINITY).peaks,
    );
  }
  const tuningKeyDays = (org.keys.length * (org.totalMinutes - org.evalStart)) / DAY;
  const allowed = Math.floor(tuningKeyDays / KEY_DAYS_PER_FALSE_ALERT);
  return {
    threshold: thresholdFor(peaks, allowed),
    tuningKeyDays,
    allowed,
    seconds: (performance.now() - started) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Report

type Bucket = '×3–5' | '×5–10' | '×10–50' | 'ramp';

function bucketOf(r: Runaway): Bucket {
  if (r.shape === 'ramp') return 'ramp';
  return r.multiple < 5 ? '×3–5' : r.multiple < 10 ? '×5–10' : '×10–50';
}

/** First minute at which the runaway's rate is at least max(factor × expected, min_hourly_usd). */
function onsetOf(r: Runaway, policy: AnomalyPolicy): number | null {
  for (let m = r.start; m < r.end; m++) {
    const multiple = runawayMultiple(r, m);
    if (multiple >= policy.factor && multiple * r.base * 60 >= policy.min_hourly_usd) return m;
  }
  return null;
}

/** A step well clear of the bar: its multiple and its rate both at least 25% above what policy calls runaway. */
function isClear(r: Runaway, policy: AnomalyPolicy): boolean {
  return (
    r.shape === 'step' && r.multiple >= 1.25 * policy.factor && r.multiple * r.base * 60 >= 1.25 * policy.min_hourly_usd
  );
}

function parseArgs(args: string[]): {
  keys: number;
  days: number;
  runaways: number;
  seed: number;
  verify: number;
  delay: number;
  oracle: number;
} {
  const opts = { keys: 500, days: 30, runaways: 200, seed: 1, verify: 0, delay: -1, oracle: 1 };
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]?.replace(/^--/, '') ?? '';
    const value = Number(args[i + 1]);
    if (!(name in opts) || !Number.isFinite(value)) throw new Error(`unknown argument ${args[i]} ${args[i + 1] ?? ''}`);
    opts[name as keyof typeof opts] = value;
  }
  return opts;
}

interface Outcome {
  kind: KeyKind | 'workspace';
  successor: boolean;
  delay: number;
  alert: Alert;
  /** The runaway it belongs to; null for a false alert. */
  runaway: Runaway | null;
  /** False alerts on keys: the traffic itself (without request noise) was above the policy's bar. */
  trafficAboveBar: boolean;
}

/**
 * Whether the expected spend (no noise, no runaways) over the alert's run was above max(factor × the mean expected
 * rate of that hour of the week over the past weeks, min_hourly_usd): a natural excursion that policy itself calls
 * runaway (a heavy session at an unusual hour, a busy spell at five times the usual), not the detector's mistake.
 */
function trafficAboveBar(expected: Float64Array, alert: Alert, policy: AnomalyPolicy): boolean {
  let run = 0;
  for (let m = alert.since; m <= alert.dataUntil; m++) run += expected[m]!;
  run = (run / (alert.dataUntil - alert.since + 1)) * 60;
  const hour = Math.floor(alert.dataUntil / HOUR) * HOUR;
  let typical = 0;
  let weeks = 0;
  for (let k = 1; k <= 5 && hour - k * WEEK >= 0; k++, weeks++) {
    for (let m = hour - k * WEEK; m < hour - k * WEEK + HOUR; m++) typical += expected[m]!;
  }
  return weeks > 0 && run >= Math.max((policy.factor * typical) / weeks, policy.min_hourly_usd);
}

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  if (opts.delay !== -1 && !DELAYS.includes(opts.delay)) throw new Error(`--delay must be one of ${DELAYS.join(', ')}`);
  const delays = opts.delay === -1 ? DELAYS : [opts.delay];
  const started = performance.now();
  const org = simulateOrganization(opts);
  const { policy } = org;
  const window = policy.window_minutes;
  const evaluated = org.runaways.filter((r) => r.evaluated);
  const belongsTo = (keys: (k: number) => boolean, delay: number, alert: Alert) =>
    evaluated.find(
      (r) =>
        keys(r.key) &&
        alert.clock <= r.end + window + delay + 5 &&
        (alert.resolvedAt ?? Number.POSITIVE_INFINITY) > r.start,
    ) ?? null;

  const outcomes: Outcome[] = [];
  const oracle = opts.oracle ? tuneOracle(org) : null;
  /** Per key, the data minutes at which the oracle alarmed (it alarms at clock minute m + 1 + delay). */
  const oracleAlarms = new Map<number, number[]>();
  const evaluateKey = (k: number, usd: Float64Array, expected: Float64Array, workspace: WorkspaceProfile | null) => {
    const key = org.keys[k]!;
    if (oracle) {
      const evidence = oracleEvidence(org, key, expected, usd);
      oracleAlarms.set(
        k,
        cusum(org.evalStart, org.totalMinutes, ALTERNATIVES.length, evidence, oracle.threshold).alarms,
      );
    }
    for (const delay of delays) {
      for (const alert of evaluateSeries(org, { scope: 'key', usd, existsFrom: key.existsFrom, workspace }, delay)) {
        const runaway = belongsTo((i) => i === k, delay, alert);
        outcomes.push({
          kind: key.kind,
          successor: key.fadeInAt !== null,
          delay,
          alert,
          runaway,
          trafficAboveBar: !runaway && trafficAboveBar(expected, alert, policy),
        });
      }
    }
  };

  // Keys first (their spend also adds up to the workspaces), successors last: they need their workspace's profile.
  const workspaceUsd = Array.from({ length: WORKSPACES }, () => new Float64Array(org.totalMinutes));
  const historyTotals = Array.from({ length: WORKSPACES }, () => [] as number[]);
  const successors: number[] = [];
  org.keys.forEach((key, k) => {
    const { usd, expected } = keySpend(org, k);
    const ws = workspaceUsd[key.workspace]!;
    let total = 0;
    for (let m = 0; m < org.totalMinutes; m++) {
      ws[m]! += usd[m]!;
      if (m < org.evalStart) total += usd[m]!;
    }
    historyTotals[key.workspace]!.push(total);
    if (key.fadeInAt !== null) successors.push(k);
    else evaluateKey(k, usd, expected, null);
  });
  const workspaceHourly = workspaceUsd.map((usd) => hourlyOf(usd, 0));
  for (const k of successors) {
    const key = org.keys[k]!;
    const { usd, expected } = keySpend(org, k);
    evaluateKey(k, usd, expected, {
      history: workspaceHourly[key.workspace]!,
      largestKeyShare: largestKeyShare(historyTotals[key.workspace]!),
    });
  }
  for (let w = 0; w < WORKSPACES; w++) {
    for (const delay of delays) {
      for (const alert of evaluateSeries(
        org,
        { scope: 'workspace', usd: workspaceUsd[w]!, existsFrom: 0, workspace: null },
        delay,
      )) {
        const runaway = belongsTo((k) => org.keys[k]!.workspace === w, delay, alert);
        outcomes.push({ kind: 'workspace', successor: false, delay, alert, runaway, trafficAboveBar: false });
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;

  console.log(
    `detect-sim: ${opts.keys} keys (+${successors.length} rotation successors) in ${WORKSPACES} workspaces, ` +
      `${opts.days} days at 1-minute resolution after ${HISTORY_DAYS} days of history; ${evaluated.length} runaways ` +
      `injected (+${org.runaways.length - evaluated.length} in the history); policy factor ${policy.factor}, ` +
      `min_hourly_usd ${policy.min_hourly_usd}, window ${window} min; ${seconds.toFixed(1)} s ` +
      (oracle ? `(of which the oracle's tuning ${oracle.seconds.toFixed(1)} s)` : '(no oracle)'),
  );
  for (const delay of delays) {
    report(
      org,
      outcomes.filter((o) => o.delay === delay),
      delay,
      opts,
    );
    oracleReport(
      org,
      outcomes.filter((o) => o.delay === delay && o.kind !== 'workspace'),
      oracleAlarms,
      oracle,
      delay,
    );
  }

  if (opts.verify > 0) {
    let checked = 0;
    let mismatches = 0;
    for (let k = 0; k < Math.min(opts.verify, org.keys.length); k++) {
      const key = org.keys[k]!;
      if (key.fadeInAt !== null) continue;
      const { usd } = keySpend(org, k);
      for (const delay of delays) {
        const fast = evaluateSeries(
          org,
          { scope: 'key', usd, existsFrom: key.existsFrom, workspace: null },
          delay,
          true,
        );
        const full = evaluateSeries(
          org,
          { scope: 'key', usd, existsFrom: key.existsFrom, workspace: null },
          delay,
          false,
        );
        checked++;
        if (JSON.stringify(fast) !== JSON.stringify(full)) mismatches++;
      }
    }
    console.log(`\nverify: ${checked} key × delay replays without the shortcut, ${mismatches} differ`);
  }
}

function report(org: Organization, outcomes: Outcome[], delay: number, opts: { keys: number; days: number }): void {
  const { policy } = org;
  const keyOutcomes = outcomes.filter((o) => o.kind !== 'workspace');
  console.log(`\ndata delay ${delay} min (data for minute m visible at m+1+${delay})`);

  const latencyOf = (r: Runaway): number | 'missed' | 'already firing' => {
    const first = keyOutcomes.find((o) => o.runaway === r);
    if (!first) return 'missed';
    if (first.alert.clock < r.start) return 'already firing';
    const from = r.shape === 'ramp' ? (onsetOf(r, policy) ?? r.start) : r.start;
    return first.alert.clock - from;
  };
  const summary = (label: string, runaways: Runaway[]) => {
    const latencies = runaways.map(latencyOf);
    const times = latencies.filter((l): l is number => typeof l === 'number').sort((a, b) => a - b);
    const already = latencies.filter((l) => l === 'already firing').length;
    const detected = times.length + already;
    return (
      `${label}: ${detected}/${runaways.length} detected` +
      (times.length
        ? `, latency p50 ${quantile(times, 0.5)} / p95 ${quantile(times, 0.95)} / max ${times.at(-1)} min`
        : '') +
      (already ? ` (${already} already firing at the start)` : '')
    );
  };
  const evaluated = org.runaways.filter((r) => r.evaluated);
  const aboveFloor = (r: Runaway) => r.multiple * r.base * 60 >= policy.min_hourly_usd;
  const steps = evaluated.filter((r) => r.shape === 'step' && r.multiple >= policy.factor && aboveFloor(r));
  console.log(`  ${summary(`steps ×${policy.factor} or more above the floor`, steps)}`);
  console.log(
    `  ${summary(
      `  of which clear of the bar by 25% (×${policy.factor * 1.25}+, ${policy.min_hourly_usd * 1.25} $/h+)`,
      steps.filter((r) => isClear(r, policy)),
    )}`,
  );
  const rateOf = (r: Runaway) => r.multiple * r.base * 60;
  for (const [lo, hi] of [
    [0, 25],
    [25, 100],
    [100, Number.POSITIVE_INFINITY],
  ] as const) {
    const label = `    at ${lo}${hi === Number.POSITIVE_INFINITY ? '+' : `–${hi}`} $/h`;
    console.log(
      `  ${summary(
        label,
        steps.filter((r) => isClear(r, policy) && rateOf(r) >= lo && rateOf(r) < hi),
      )}`,
    );
  }
  for (const bucket of ['×3–5', '×5–10', '×10–50', 'ramp'] as Bucket[]) {
    const inBucket = evaluated.filter((r) => bucketOf(r) === bucket);
    const below = inBucket.filter((r) => !aboveFloor(r));
    const belowAlerted = below.filter((r) => keyOutcomes.some((o) => o.runaway === r)).length;
    console.log(
      `  ${summary(`${bucket.padEnd(7)} above the floor`, inBucket.filter(aboveFloor))}; ` +
        `below the floor: ${below.length} (${belowAlerted} alerted)`,
    );
  }
  console.log('  (ramp latency counts from the minute the ramp crossed max(factor × expected, min_hourly_usd))');

  const falseAlerts = keyOutcomes.filter((o) => !o.runaway);
  const onSuccessors = falseAlerts.filter((o) => o.successor).length;
  const natural = falseAlerts.filter((o) => o.trafficAboveBar).length;
  const byKind = new Map<string, number>();
  for (const o of falseAlerts) byKind.set(o.kind, (byKind.get(o.kind) ?? 0) + 1);
  const byEvidence = new Map<string, number>();
  for (const o of falseAlerts) byEvidence.set(o.alert.evidence, (byEvidence.get(o.alert.evidence) ?? 0) + 1);
  const per100 = (n: number) => ((n / opts.keys) * 100 * (30 / opts.days)).toFixed(2);
  console.log(
    `  false alerts on keys: ${falseAlerts.length} = ${per100(falseAlerts.length)} per 100 keys per 30 days ` +
      `(traffic itself above the policy bar: ${natural}, noise: ${falseAlerts.length - natural}; by kind: ` +
      `${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; by evidence: ` +
      `${[...byEvidence].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; on rotation successors: ${onSuccessors})`,
  );
  const workspaceOutcomes = outcomes.filter((o) => o.kind === 'workspace');
  const perRunaway = new Map<Runaway, number>();
  for (const o of keyOutcomes) if (o.runaway) perRunaway.set(o.runaway, (perRunaway.get(o.runaway) ?? 0) + 1);
  console.log(
    `  workspace alerts: ${workspaceOutcomes.length} (${workspaceOutcomes.filter((o) => !o.runaway).length} with no ` +
      `runaway in the workspace); alerts per detected runaway: ` +
      `${([...perRunaway.values()].reduce((a, b) => a + b, 0) / Math.max(1, perRunaway.size)).toFixed(2)}`,
  );
}

/**
 * Keywarden beside the oracle, per class: p50/p95 latency of each (over the runaways each caught) and their ratio,
 * on the same data with the same delay; and the oracle's false alarms on all keys, counted in episodes as keywarden's.
 */
function oracleReport(
  org: Organization,
  keyOutcomes: Outcome[],
  alarms: ReadonlyMap<number, number[]>,
  /** Null with `--oracle 0`: keywarden's columns only. */
  oracle: OracleRun | null,
  delay: number,
): void {
  const { policy } = org;
  const window = policy.window_minutes;
  const evaluated = org.runaways.filter((r) => r.evaluated);
  const from = (r: Runaway) => (r.shape === 'ramp' ? (onsetOf(r, policy) ?? r.start) : r.start);
  const belongs = (r: Runaway, clock: number) => clock >= r.start && clock <= r.end + window + delay + 5;
  const keywarden = (r: Runaway) => {
    const first = keyOutcomes.find((o) => o.runaway === r);
    return first && first.alert.clock >= r.start ? [Math.max(0, first.alert.clock - from(r))] : [];
  };
  const byOracle = (r: Runaway) => {
    const m = alarms.get(r.key)?.find((a) => belongs(r, a + 1 + delay));
    return m === undefined ? [] : [Math.max(0, m + 1 + delay - from(r))];
  };
  const row = (label: string, rs: Runaway[]): ClassLatencies => ({
    label,
    runaways: rs.length,
    keywarden: rs.flatMap(keywarden),
    oracle: rs.flatMap(byOracle),
  });
  const aboveFloor = (r: Runaway) => r.multiple * r.base * 60 >= policy.min_hourly_usd;
  const steps = evaluated.filter((r) => r.shape === 'step' && aboveFloor(r));
  const targeted = steps.filter((r) => r.multiple >= policy.factor);
  const kinds: KeyKind[] = ['service', 'batch', 'dev', 'sparse'];
  console.log(
    oracle
      ? `  against the oracle (bench/oracle.ts: CUSUM on each key's true law, threshold ${oracle.threshold.toFixed(1)}):`
      : '  per class (the oracle left out with --oracle 0: its columns are empty):',
  );
  const table = comparisonTable([
    row(`steps ×${policy.factor}+ above the floor`, targeted),
    row(
      '  clear of the bar by 25%',
      targeted.filter((r) => isClear(r, policy)),
    ),
    ...kinds.map((kind) =>
      row(
        `  on ${kind} keys`,
        targeted.filter((r) => org.keys[r.key]!.kind === kind),
      ),
    ),
    row(
      '×3–5 steps above the floor',
      steps.filter((r) => r.multiple < policy.factor),
    ),
    row(
      '×5–10 steps above the floor',
      targeted.filter((r) => r.multiple < 10),
    ),
    row(
      '×10–50 steps above the floor',
      targeted.filter((r) => r.multiple >= 10),
    ),
    row(
      'ramps above the floor (from the bar)',
      evaluated.filter((r) => r.shape === 'ramp' && aboveFloor(r)),
    ),
  ]);
  for (const line of table) console.log(line);
  if (!oracle) return;
  let falseAlarms = 0;
  for (const [k, list] of alarms) {
    for (const m of episodes(list, RESOLVE_MINUTES)) {
      if (!evaluated.some((r) => r.key === k && belongs(r, m + 1 + delay))) falseAlarms++;
    }
  }
  const keys = org.keys.length;
  const days = (org.totalMinutes - org.evalStart) / DAY;
  console.log(
    `  oracle false alarms on the ${keys} keys: ${falseAlarms} = ${((falseAlarms / keys) * 100 * (30 / days)).toFixed(2)} ` +
      `per 100 keys per 30 days (threshold tuned on ${oracle.tuningKeyDays} change-free key-days, other draws of the ` +
      `same keys: ${oracle.allowed} allowed)`,
  );
}
