import type { AnomalyPolicy } from '../../config/policy.ts';
import { HOUR_MS } from '../../time.ts';

/**
 * A key's (or workspace's) typical spend rate at a given time: the yardstick a runaway is measured against.
 *
 * The rate that matters is the one for the same hour of the week, because most traffic follows office hours and
 * weekdays: $40/h on Monday at 10:00 can be ordinary while the same rate on Sunday at 03:00 is a script gone wrong.
 * The statistic ignores the highest and the lowest week, so one earlier spike (or an earlier runaway) does not raise
 * the bar. Keys used irregularly by people are judged against their usual busy hour instead (see `isIrregular`). When
 * the history is too short the baseline falls back, in order, to the same hour of the recent days, to the recent
 * days' daily spend, to the workspace's profile, and finally to the policy's floor. With the 1-minute history of the
 * last days it also says how the key spends in time: its minute dispersion, share of active minutes and persistence.
 *
 * Tuned with `npm run bench -- detect` and `detect-sim`; the constants below say what they trade.
 */

/**
 * Spend of one complete UTC hour, USD as a float (statistics, not money). `hour` is the hour's first instant; one
 * entry per hour (the caller adds up models and token kinds first).
 */
export interface HourlySpend {
  hour: Date;
  usd: number;
  /**
   * Σ over the hour's minutes of (that minute's USD)², from the 1-minute buckets (sum per minute first, over all
   * models, then square). Optional: it tells how lumpy the key's spend is minute to minute (see `Baseline`).
   */
  sumOfSquares?: number;
  /**
   * How many of the hour's minutes had any spend, from the 1-minute buckets; optional like `sumOfSquares`. It tells
   * how the key spends in time: in every minute (a service) or in a few (a developer, a job that wakes up).
   */
  activeMinutes?: number;
  /**
   * How many of those minutes with spend followed a minute with spend (the minute before may be in the hour before):
   * whether its spend comes in runs (sessions, jobs) or in scattered minutes.
   */
  followingMinutes?: number;
}

/**
 * The workspace a key belongs to, for keys too new to have a profile of their own.
 *
 * Why not "workspace typical ÷ number of keys": a new key is often the successor of a rotated key and takes over
 * that key's whole traffic at once; a per-key average would flag every rotation of a workspace's main key. A new key
 * is therefore allowed what the workspace's biggest key typically carries: the workspace's typical rate × the
 * largest share one key had of the workspace's spend (1 for a workspace with one key, or when unknown).
 */
export interface WorkspaceProfile {
  /** The workspace's hourly spend, same conventions as a key's history. */
  history: readonly HourlySpend[];
  /** Largest fraction of the workspace's spend carried by one key over the history (0 < share ≤ 1). */
  largestKeyShare: number;
}

export type BaselineSource =
  | 'hour_of_week'
  | 'busy_hours'
  | 'session_rate'
  | 'expected'
  | 'recent_days'
  | 'workspace'
  | 'floor';

export interface Baseline {
  /** USD per hour considered normal at that time. */
  typicalHourlyUsd: number;
  source: BaselineSource;
  /** Number of hourly (or daily) samples the figure rests on; 0 for the floor. */
  samples: number;
  /**
   * How lumpy the spend is minute to minute, in USD: the variance of a minute's spend divided by its mean, within
   * the hour, over the recent days' hours with spend (their median). For spend made of requests of random size this
   * is the size of a large request (E[c²]/E[c]): a key making a $0.20 request now and then has a dispersion near
   * $0.20, and three such minutes in a row are ordinary; a key making 500 requests of $0.01 a minute has a
   * dispersion of cents, and three minutes at five times its rate are not. Null when the history carries no
   * `sumOfSquares` (or no spend); the detector then assumes lumps as large as a minute at the threshold.
   */
  minuteDispersionUsd: number | null;
  /**
   * The share of minutes with any spend, over the recent hours that had spend (their mean): about 1 for a service,
   * 0.05 for a key that spends in one minute of twenty. A run of minutes that all spend heavily is rare for such a
   * key (share^n, were its minutes independent; sessions make them less so, and raise the share measured), which is
   * what lets the detector tell a loop on a bursty key within minutes. Null when the history carries no
   * `activeMinutes` or no spend.
   */
  activeShare: number | null;
  /**
   * Of the recent minutes with spend, the share that followed a minute with spend: the odds that spend goes on into
   * the next minute. About the active share for a key whose bursts are scattered (0.05: five minutes in a row have
   * odds of 1 in 3 million), near 1 for a key that spends in sessions or every minute (long runs are what it does).
   * The loop rule (src/anomaly/core/runaway.ts) rests on it. Counted with one more run and one more break than the
   * minutes showed, so a key seen in a few dozen scattered minutes is not taken never to spend two in a row. Null
   * like `activeShare`.
   */
  persistence: number | null;
}

/** Weeks of history looked at for the hour-of-week profile; the caller should pass at least this much. */
export const BASELINE_WEEKS = 5;
const WEEK_HOURS = 168;
/**
 * Samples needed before a seasonal figure is trusted: with 3, one spike is still outvoted by two ordinary weeks; with
 * 2 one spike would decide.
 */
const MIN_SAMPLES = 3;
/** Days looked at when the hour-of-week profile is too short, and for the dispersion and busy-hour figures. */
const RECENT_DAYS = 7;
/**
 * Irregular keys (see `isIrregular`): their typical rate is at least this share of their usual busy hour, so with
 * the default factor of 5 they are runaway above twice their usual busy hour.
 */
const BUSY_HOUR_SHARE = 0.4;
/**
 * The rate while spending counts at most this many times the hour's total: a session filling a third of the hour.
 * Beyond that it measures the size of single requests (a key making one $2 request an hour "spends" at $120/h for a
 * minute), which says nothing about the rate its runaway would have.
 */
const BUSY_RATE_CAP = 3;
/**
 * Irregular keys that spend in sessions (see `sessionRate`): their typical rate is at least this share of their
 * usual session rate, so with the default factor of 5 a session runs away above three times its usual rate (a
 * developer's sessions vary by some 30% from one to the next; three times is beyond what they do).
 */
const SESSION_SHARE = 0.6;
/** The session rate is this quantile of the rates of the look-back's hours with spend. */
const SESSION_QUANTILE = 0.9;
/** Hours with spend needed before a session rate is trusted: a few sessions are not a habit. */
const SESSION_MIN_HOURS = 12;
/** Baselines of keys that spend in sessions: their minute dispersion is pooled over hours (see `dispersion`). */
const SESSION_SOURCES: ReadonlySet<BaselineSource> = new Set(['session_rate', 'busy_hours']);
/** A key is irregular when at least this share of its busy hour-of-week slots are busy in some weeks only. */
const IRREGULAR_SHARE = 0.5;

/**
 * The typical hourly rate at `at` (any instant inside the hour being judged), from complete hours strictly before
 * that hour.
 *
 * `history` holds one entry per hour the key existed, in any order, with 0 for hours without usage; hours before the
 * key existed are absent. That is how "no usage yet" (zeros: a dormant key whose typical rate is 0, so anything above
 * the floor is news) is told apart from "no data yet" (absent: fall back).
 *
 * A key without any usable history (and no workspace profile) gets the `floor`: its typical rate is taken to be
 * `min_hourly_usd`, so it is called runaway above `factor × min_hourly_usd` ($25/h by default). Taking the floor
 * itself as the bar would flag every new project, and every key on the day keywarden is installed without a
 * backfill, as soon as it spends $5/h; a fresh script looping at $100/h is still caught.
 */
export function typicalRate(
  history: readonly HourlySpend[],
  workspace: WorkspaceProfile | null,
  at: Date,
  policy: AnomalyPolicy,
): Baseline {
  const own = lookback(history, at);
  const rate = profileRate(own);
  const activeShare = activeShareOf(own);
  const persistence = persistenceOf(own);
  const minuteDispersionUsd = dispersion(own, rate !== null && SESSION_SOURCES.has(rate.source));
  const minutes = { minuteDispersionUsd, activeShare, persistence };
  // A key younger than a week is judged no stricter than a brand-new one: a successor is often created a day or two
  // before traffic moves to it, and its own few quiet days would make the handover look like a runaway.
  const young = rate === null || (rate.source === 'recent_days' && knownHours(own) < RECENT_DAYS * 24);
  const inherited = young && workspace ? workspaceRate(workspace, at) : null;
  if (rate && !(inherited && inherited.typicalHourlyUsd > rate.typicalHourlyUsd)) return { ...rate, ...minutes };
  if (inherited) return { ...inherited, ...minutes };
  return { typicalHourlyUsd: policy.min_hourly_usd, source: 'floor', samples: 0, ...minutes };
}

/** What the workspace's biggest key typically carries at this hour (see WorkspaceProfile); null without a profile. */
function workspaceRate(workspace: WorkspaceProfile, at: Date): Rate | null {
  // The workspace's own dispersion is not used: its minutes add up many keys and are smoother than one key's.
  const ws = profileRate(lookback(workspace.history, at));
  if (!ws) return null;
  const share = workspace.largestKeyShare > 0 && workspace.largestKeyShare <= 1 ? workspace.largestKeyShare : 1;
  return { typicalHourlyUsd: ws.typicalHourlyUsd * share, source: 'workspace', samples: ws.samples };
}

function knownHours(hours: Lookback): number {
  let n = 0;
  for (const v of hours.usd) if (!Number.isNaN(v)) n++;
  return n;
}

/**
 * The complete hours before the hour of `at`, by offset (index 1 = the hour just before, up to BASELINE_WEEKS weeks
 * and one hour back); NaN where the history has no entry. Squares are NaN where the entry carries none.
 */
interface Lookback {
  usd: Float64Array;
  squares: Float64Array;
  active: Float64Array;
  following: Float64Array;
}

/**
 * The minute figures of one hour, from its per-minute USD: `minutes[from]` is the hour's first minute, and
 * `minutes[from - 1]`, where there is one, the minute before it. What the shell's query (src/anomaly/load.ts) computes from the 1-minute
 * rows, for callers that hold the minutes themselves (the benchmarks).
 */
export function minuteFigures(
  minutes: ArrayLike<number>,
  from: number,
): Required<Pick<HourlySpend, 'usd' | 'sumOfSquares' | 'activeMinutes' | 'followingMinutes'>> {
  let usd = 0;
  let sumOfSquares = 0;
  let activeMinutes = 0;
  let followingMinutes = 0;
  for (let m = from; m < from + 60; m++) {
    const x = minutes[m]!;
    usd += x;
    sumOfSquares += x * x;
    if (x > 0) activeMinutes++;
    if (x > 0 && m > 0 && minutes[m - 1]! > 0) followingMinutes++;
  }
  return { usd, sumOfSquares, activeMinutes, followingMinutes };
}

/** The part of a baseline read from hourly totals. */
type Rate = Pick<Baseline, 'typicalHourlyUsd' | 'source' | 'samples'>;

function lookback(history: readonly HourlySpend[], at: Date): Lookback {
  const size = BASELINE_WEEKS * WEEK_HOURS + 2;
  const usd = new Float64Array(size).fill(Number.NaN);
  const squares = new Float64Array(size).fill(Number.NaN);
  const active = new Float64Array(size).fill(Number.NaN);
  const following = new Float64Array(size).fill(Number.NaN);
  const current = Math.floor(at.getTime() / HOUR_MS);
  // NaN (unknown) until a value arrives; several entries for one hour add up.
  const add = (into: Float64Array, offset: number, value: number | undefined) => {
    if (value !== undefined) into[offset] = (Number.isNaN(into[offset]!) ? 0 : into[offset]!) + value;
  };
  for (const h of history) {
    const offset = current - Math.floor(h.hour.getTime() / HOUR_MS);
    if (offset < 1 || offset >= size) continue;
    add(usd, offset, h.usd);
    add(squares, offset, h.sumOfSquares);
    add(active, offset, h.activeMinutes);
    add(following, offset, h.followingMinutes);
  }
  return { usd, squares, active, following };
}

/** The hour-of-week figure, else the recent days' figures; null when the history is too short for either. */
function profileRate(hours: Lookback): Rate | null {
  const weekly = seasonalTypical(hours.usd, WEEK_HOURS, BASELINE_WEEKS);
  if (weekly) {
    const usual = busyHour(hours);
    // A developer who codes two days a week has a usual (median) day of nothing: their sessions are their busy hours.
    const sessionUsd = sessionRate(hours);
    const irregular = isIrregular(hours.usd, Math.max(usual.totalUsd, sessionUsd));
    const busy = irregular ? BUSY_HOUR_SHARE * usual.hourlyRateUsd : 0;
    const session = irregular ? SESSION_SHARE * sessionUsd : 0;
    if (session > Math.max(busy, weekly.typicalHourlyUsd))
      return { typicalHourlyUsd: session, source: 'session_rate', samples: weekly.samples };
    if (busy > weekly.typicalHourlyUsd)
      return { typicalHourlyUsd: busy, source: 'busy_hours', samples: weekly.samples };
    return { ...weekly, source: 'hour_of_week' };
  }
  const daily = seasonalTypical(hours.usd, 24, RECENT_DAYS);
  if (daily) return { ...daily, source: 'recent_days' };
  // A key one or two days old: its daily spend spread over the day. Only whole 24-hour blocks count, so a key
  // created this morning does not look like a key that spends a morning's worth per day.
  const dailyTotals: number[] = [];
  for (let day = 0; day < RECENT_DAYS; day++) {
    let total = 0;
    for (let h = 1; h <= 24; h++) total += hours.usd[day * 24 + h]!;
    if (Number.isNaN(total)) break;
    dailyTotals.push(total);
  }
  if (dailyTotals.length > 0) {
    return { typicalHourlyUsd: median(dailyTotals) / 24, source: 'recent_days', samples: dailyTotals.length };
  }
  return null;
}

/**
 * The typical spend of this hour over past periods (weeks, or days): the mean of its samples without the highest and
 * the lowest, or that of the hour before or after if higher.
 *
 * The trimmed mean: one spike (an earlier runaway) is ignored, an hour busy in two of five weeks counts a third of its
 * busy level, and a key whose hours vary at random is judged against its mean, not its busy weeks. (The second-highest
 * sample, used before, sat about 20% above the mean on noisy keys, and with a factor of 5 a ×5.5 runaway stayed under
 * the bar: `npm run bench -- detect`.)
 * The neighbours: schedules drift (a nightly job starting or overrunning by a quarter of an hour, daylight saving
 * time moving office hours by an hour in UTC), and a job spilling into a quiet hour is not a runaway. The price is
 * sensitivity next to steep edges: in the hour before the morning rise, a runaway must reach five times the busier
 * hour after it.
 */
function seasonalTypical(
  usd: Float64Array,
  period: number,
  periods: number,
): { typicalHourlyUsd: number; samples: number } | null {
  const at = (shift: number) => {
    const out: number[] = [];
    for (let k = 1; k <= periods; k++) {
      const v = usd[k * period + shift];
      if (v !== undefined && !Number.isNaN(v)) out.push(v);
    }
    return out;
  };
  const same = at(0);
  if (same.length < MIN_SAMPLES) return null;
  const neighbours = [at(1), at(-1)].filter((s) => s.length >= MIN_SAMPLES).map(trimmedMean);
  const typicalHourlyUsd = Math.max(trimmedMean(same), ...neighbours);
  return { typicalHourlyUsd, samples: same.length };
}

/**
 * Keys used by people (a developer's sessions, a coding agent) are busy at a given hour of the week in some weeks
 * only, so the hour-of-week profile says little about them: judged by it, every session at an hour that happened to
 * be quiet before is a "runaway" at five times nothing. Such a key is told by its busy slots: of the hour-of-week
 * slots of the past weeks where it spent at least half its usual busy hour in some week, at least half were nearly
 * idle (under a quarter of that) in two or more of the others. A service with a daily curve, or a nightly job, is
 * busy in the same slots every week and keeps its seasonal profile; so does a key whose only irregular hours were
 * one runaway.
 */
function isIrregular(usd: Float64Array, busyUsd: number): boolean {
  if (!(busyUsd > 0)) return false;
  let busySlots = 0;
  let irregularSlots = 0;
  for (let slot = 1; slot <= WEEK_HOURS; slot++) {
    let count = 0;
    let highest = Number.NEGATIVE_INFINITY;
    let lowest = Number.POSITIVE_INFINITY;
    let secondLowest = Number.POSITIVE_INFINITY;
    for (let k = 0; k < BASELINE_WEEKS; k++) {
      const v = usd[slot + k * WEEK_HOURS]!;
      if (Number.isNaN(v)) continue;
      count++;
      if (v > highest) highest = v;
      if (v < lowest) {
        secondLowest = lowest;
        lowest = v;
      } else if (v < secondLowest) secondLowest = v;
    }
    if (count < MIN_SAMPLES || highest < busyUsd / 2) continue;
    busySlots++;
    if (secondLowest < highest / 4) irregularSlots++;
  }
  // A handful of busy slots is one or two episodes, not a way of working.
  return busySlots >= 5 && irregularSlots >= IRREGULAR_SHARE * busySlots;
}

/**
 * The key's usual busy hour: the median over the recent days of each day's highest hour, as an hourly total and as
 * a rate while spending. The rate counts: a developer's 20-minute session at $15/h is a $5 hour, and what should not
 * alarm is the $15/h. It is the spend-weighted mean of the hour's minutes (Σx²/Σx), known when squares are given.
 */
function busyHour(hours: Lookback): { totalUsd: number; hourlyRateUsd: number } {
  const totals: number[] = [];
  const rates: number[] = [];
  for (let day = 0; day < RECENT_DAYS; day++) {
    let total = Number.NaN;
    let rate = Number.NaN;
    for (let h = 1; h <= 24; h++) {
      const usd = hours.usd[day * 24 + h]!;
      if (Number.isNaN(usd)) continue;
      if (!(usd <= total)) total = usd;
      const squares = hours.squares[day * 24 + h]!;
      const whileSpending = Number.isNaN(squares) ? usd : (60 * squares) / usd;
      const hourRate = usd > 0 ? Math.min(Math.max(usd, whileSpending), BUSY_RATE_CAP * usd) : 0;
      if (!(hourRate <= rate)) rate = hourRate;
    }
    if (!Number.isNaN(total)) {
      totals.push(total);
      rates.push(rate);
    }
  }
  return totals.length > 0
    ? { totalUsd: median(totals), hourlyRateUsd: median(rates) }
    : { totalUsd: 0, hourlyRateUsd: 0 };
}

/**
 * The rate at which a key that spends in sessions (a developer, a coding agent) spends while it spends: the
 * SESSION_QUANTILE of the look-back's hours with spend, by their totals. Weeks, not days, so a quiet week or a
 * weekend does not make every session news; hours, not days, because a developer who codes two days a week has a
 * median day of nothing, and the busy-hour figure of such a key said "no usual rate" while its sessions were as
 * regular as anyone's. Totals, not the rate while spending: the hour's minutes are known for the last two days only,
 * and for a key of few large requests Σx²/Σx measures the request, not the session. A session filling the hour
 * makes an hour at the session's rate; shorter ones make less, hence a high quantile. 0 below SESSION_MIN_HOURS
 * hours with spend.
 */
function sessionRate(hours: Lookback): number {
  const totals: number[] = [];
  for (let offset = 1; offset <= BASELINE_WEEKS * WEEK_HOURS; offset++) {
    const usd = hours.usd[offset]!;
    if (usd > 0) totals.push(usd);
  }
  if (totals.length < SESSION_MIN_HOURS) return 0;
  totals.sort((a, b) => a - b);
  return totals[Math.floor(SESSION_QUANTILE * (totals.length - 1))]!;
}

/**
 * The minute spend's variance ÷ mean within each hour with spend over the recent days, the median over those hours:
 * within the hour so the daily curve does not count as noise, and the median so the hours where a job or a session
 * started or stopped (whose minutes vary because the rate changed) do not count either.
 *
 * `sessions`: a key that spends in sessions (see `isIrregular`) has mostly hours of a few requests, and the variance
 * of a few requests of random size rarely shows the large ones: with lognormal sizes (σ 1) the median of such hours
 * is half the large-request size or less on many developer keys (`npm run bench -- detect-sim`), and three of their
 * ordinary large requests in a row then read as a runaway. Its dispersion is at least the figure pooled over all
 * those hours (their variances added, over their spend added), which counts every large request the days held; the
 * session edges it also counts make it err on the side of fewer alerts.
 */
function dispersion(hours: Lookback, sessions: boolean): number | null {
  const perHour: number[] = [];
  let pooledVariance = 0;
  let pooledSpend = 0;
  for (let offset = 1; offset <= RECENT_DAYS * 24; offset++) {
    const total = hours.usd[offset]!;
    const squares = hours.squares[offset]!;
    if (!(total > 0) || Number.isNaN(squares)) continue;
    // Σx² − (Σx)²/60 is 60 × the variance of the hour's minutes; over Σx (60 × the mean) it is variance ÷ mean.
    const variance = Math.max(0, squares - (total * total) / 60);
    perHour.push(variance / total);
    pooledVariance += variance;
    pooledSpend += total;
  }
  if (perHour.length === 0) return null;
  const typical = median(perHour);
  return sessions ? Math.max(typical, pooledVariance / pooledSpend) : typical;
}

/** The mean share of active minutes over the recent days' hours with spend whose minutes are known. */
function activeShareOf(hours: Lookback): number | null {
  let sum = 0;
  let n = 0;
  for (let offset = 1; offset <= RECENT_DAYS * 24; offset++) {
    const active = hours.active[offset]!;
    if (!(hours.usd[offset]! > 0) || Number.isNaN(active)) continue;
    sum += Math.min(1, active / 60);
    n++;
  }
  return n > 0 ? sum / n : null;
}

/** Of the recent days' minutes with spend (where known), the share that followed a minute with spend. */
function persistenceOf(hours: Lookback): number | null {
  let active = 0;
  let following = 0;
  for (let offset = 1; offset <= RECENT_DAYS * 24; offset++) {
    const a = hours.active[offset]!;
    const f = hours.following[offset]!;
    if (Number.isNaN(a) || Number.isNaN(f)) continue;
    active += a;
    following += f;
  }
  // with one more run and one more break than seen (Laplace's rule): none in a few dozen minutes is not "never"
  return active > 0 ? (following + 1) / (active + 2) : null;
}

/** The mean without the highest and the lowest sample (of three samples, their median). */
function trimmedMean(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (let i = 1; i < sorted.length - 1; i++) sum += sorted[i]!;
  return sum / (sorted.length - 2);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
