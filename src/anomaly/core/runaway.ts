import type { AnomalyPolicy } from '../../config/policy.ts';
import { HOUR_MS, MINUTE_MS } from '../../time.ts';
import type { Baseline } from './baseline.ts';

/**
 * Runaway detection for one key (or one workspace): is the spend rate of the last minutes far above what is typical,
 * and has it stayed there? Run after every usage poll; the caller stores the returned state and passes it back next
 * time (the alert lifecycle turns `fire` / `still_firing` / `resolve` into messages).
 *
 * The bar is `threshold = max(factor × typical, min_hourly_usd)` per hour. A burst of one expensive minute is not a
 * runaway; a retry loop is, and it shows as spend in every minute. So the detector fires on any of four kinds of
 * evidence, read from minutes whose data is complete:
 *
 * - steady: each of the last n minutes (3 ≤ n ≤ three windows) at 70% of the threshold or more, their mean above it
 *   and passing the noise tests below. On a key of many small requests a loop is caught 3 minutes after its data
 *   appears; a noisier key takes the minutes its noise needs.
 * - loop: the last n minutes all with spend (30% of the threshold or more) and their mean above the threshold, where
 *   n is what makes such a run rare for this key: p^n < e^-16, with p its odds of spend going on into the next
 *   minute (`Baseline.persistence`). A key that spends in one minute of twenty takes 6 minutes; a key that spends in
 *   sessions or every minute never fires this way (runs are what it does). This is how a loop on a bursty key is
 *   told from its ordinary bursts, which can each be larger than a loop's minutes.
 * - window: over the last `window_minutes` (or two or three windows, for noisy runs that need longer to stand out),
 *   the mean above the threshold and each third of the run above it too: the rate "stays above through the
 *   window". This catches runaways made of few, expensive requests (some minutes empty) and slow ramps.
 * - sparse: on a key active in at most half its minutes (`Baseline.activeShare`), the last 3 minutes with spend
 *   within three windows each so large that the key's share of active minutes times it is twice the threshold, and
 *   together above the threshold over their span. Such a key's runaway can show in the size of its active minutes
 *   rather than in their number; this is a faster proof of "the rate stays above the threshold" (the rate being
 *   share × size), documented as such.
 *
 * A minute counts at most max(3 thresholds, 20 of the key's ordinary lumps, twice the run's lower quartile), so a
 * few giant minutes cannot carry a run on a smooth key, while a key that spends in a few large minutes an hour can
 * still show a runaway made of a few huge ones; the mean rate judged is above the threshold, hence above
 * `min_hourly_usd`: a key spending less never fires. Steady, window and sparse runs must pass two noise tests that
 * use the key's lump: its minute dispersion (`Baseline.minuteDispersionUsd`, about the size of its large requests),
 * or for a key active in at most half its minutes its typical active minute at this hour (typical ÷ share), if
 * larger. The mean clears the threshold by two standard errors, and the run holds far more spend than the typical
 * rate explains (at least 6 lumps' worth, Poisson tail below e^-16). On a key of many small requests both hold at
 * once; on a key whose requests are few and costly they take more minutes, because three $0.50 requests in three
 * minutes is what such a key does anyway. Why: across hundreds of keys and every minute of a month, "rare" noise
 * happens daily; these tests are what keeps the false alerts below one per hundred keys a month (see
 * `npm run bench -- detect`).
 *
 * The data edge: usage "typically appears within 5 minutes" and a minute's total grows as it arrives. `dataUntil` is
 * the last minute the caller believes complete; minutes after it may be passed too, partially filled. A partial
 * minute can only under-state spend, so it may prove a runaway (a run ending at a partial minute counts) but never
 * disprove one: resolution looks at complete minutes only.
 *
 * Resolution: once firing, a complete minute is abnormal while the mean rate of the window ending there is at or
 * above the threshold. The alert resolves when the last `RESOLVE_AFTER_MINUTES` complete minutes were all normal.
 */

/** One minute of spend, USD as a float (statistics, not money). Minutes without usage may be omitted or be 0. */
export interface MinuteSpend {
  /** The minute's first instant (UTC). */
  minute: Date;
  usd: number;
}

/** Carried between runs by the caller (stored in Postgres); null before the first run. */
export interface RunawayState {
  firing: boolean;
  /** First minute of the abnormal run, fixed when it fired; null when not firing. */
  since: Date | null;
  /** While firing: the last complete minute whose window rate was at or above the threshold. */
  lastAbnormal: Date | null;
  /** `dataUntil` of the run that produced this state: an older evaluation arriving late changes nothing. */
  evaluatedUntil: Date | null;
  /**
   * The last minute of the last episode (its resolve, or a mark that ended it): the sequential test counts from the
   * minute after it, so a new episode is judged on its own minutes. Absent or null: from the start of the hour.
   */
  clearedAt?: Date | null;
}

type RunawayDecision = 'fire' | 'still_firing' | 'resolve' | 'normal';

/**
 * What fired an alert (the four kinds of evidence above): `steady`: every minute of a short run was elevated;
 * `loop`: a run of minutes with spend too long to be one of the key's ordinary bursts (its persistence), their mean
 * above the threshold; `cusum`: the key's sequential test (a CUSUM of its minutes against the bar) crossed its
 * limit; `window`: the rate stayed above through the window; `sparse`: a sparsely active key's last active minutes
 * were each far too large; `ramp`: the rate has been climbing steadily and has reached the threshold.
 */
export type RunawayEvidence = 'steady' | 'cusum' | 'loop' | 'window' | 'sparse' | 'ramp';

interface RunawayInput {
  /**
   * Per-minute spend covering at least `recentMinutesNeeded(policy)` minutes up to `dataUntil`, and optionally the
   * minutes after it whose data is still arriving. Several entries for one minute are added up.
   */
  recent: readonly MinuteSpend[];
  /** The baseline of `dataUntil`'s hour (typicalRate at that hour): its bar is that hour's. */
  baseline: Baseline;
  previous: RunawayState | null;
  /** The last minute (its first instant) whose data is believed complete. */
  dataUntil: Date;
  policy: AnomalyPolicy;
}

export interface RunawayAssessment {
  state: RunawayState;
  decision: RunawayDecision;
  /** What fired it (only with `fire`). */
  evidence: RunawayEvidence | null;
  /** Rate since the run started, over at most the last window (USD/hour). */
  currentHourlyUsd: number;
  typicalHourlyUsd: number;
  /** max(factor × typical, min_hourly_usd): the rate above which spend counts as runaway (USD/hour). */
  thresholdHourlyUsd: number;
  /** First minute of the abnormal run (also on `resolve`, for the message); null when normal. */
  startedAt: Date | null;
  /** What the next 24 hours cost if the current rate continues (USD). */
  projected24hUsd: number;
  /**
   * With `auto_deactivate.enabled`: the key is firing and its rate stayed at or above `auto_deactivate.min_hourly_usd`
   * through the whole window. True on every run while that holds; the caller deactivates once (keyed in Postgres).
   * Meaningful for keys only: a workspace cannot be deactivated.
   */
  killSwitch: boolean;
}

const RESOLVE_AFTER_MINUTES = 30;
/** Minutes after `dataUntil` looked at for partial data: usage is "typically" complete within 5, sometimes later. */
const MAX_PARTIAL_MINUTES = 15;

// Tuned with `npm run bench -- detect` and `detect-sim` (p95 latency against false alerts); figures in the README.
/** Shortest steady run (and loop run) that fires. */
const STEADY_MINUTES = 3;
/** In a steady run, every minute is at least this fraction of the threshold. */
const STEADY_MIN_RATIO = 0.7;
/**
 * In a loop run, every minute is at least this fraction of the threshold: a loop leaves no empty minute, but its
 * minutes vary, and a run broken by one quieter minute would start its count again.
 */
const LOOP_MIN_RATIO = 0.3;
/** A minute counts at most this many times the threshold, so a single expensive minute cannot carry a run... */
const MINUTE_CAP_RATIO = 3;
/**
 * ...or this many of the key's ordinary lumps (its minute dispersion), if more. A key that spends in a few large
 * minutes an hour runs away in a few huge ones: capped at 3 thresholds, a key active in a fifth of its minutes could
 * never show a mean above the bar however far it ran away. Its noise tests (counted in lumps) still apply.
 */
const MINUTE_CAP_LUMPS = 20;
/**
 * The sparse rule (see fireEvidence) applies to keys active in at most this share of their minutes, and their lump
 * is at least their typical active minute...
 */
const SPARSE_MAX_SHARE = 0.5;
/** ...and needs this many of the last minutes with spend, within three windows, all of them large... */
const SPARSE_MINUTES = 3;
/**
 * ...each at least this many times the size at which share × size reaches the threshold. The share is measured over
 * the last days (nights and weekends included), or estimated as typical ÷ dispersion where the minutes are not known;
 * this margin and the three minutes are what keep its error from becoming false alerts.
 */
const SPARSE_SIZE = 2;
/** The window rule checks the window's mean and each of this many consecutive parts of it. */
const WINDOW_PARTS = 3;
/** Runs judged by the window rule: one window, and two or three for noisy runs that need longer to stand out. */
const WINDOW_MULTIPLES = [1, 2, 3];
/** Noise test: a run holds at least this many units of the key's minute dispersion... */
const MIN_LUMPS = 6;
/** ...and is this unlikely at the typical rate (natural log of a Chernoff bound on a Poisson tail; e^-16 ≈ 1e-7). */
const LOG_ALPHA = -16;
/**
 * The run's rate must clear the threshold by this many standard errors (from the dispersion): a key whose true rate
 * is half the bar crosses it by chance for a few minutes now and then, and thousands of keys make "now and then"
 * every day.
 */
const Z_ABOVE = 2;
/**
 * The ramp rule fits a line to the last n minutes (each capped as in capOf), for each of these multiples of the
 * window. A slow ramp is judged on its slope: over an hour or more, a climb from the key's ordinary rate to the bar
 * stands far out of its noise, while the rate's level just past the bar does not (the other rules wait until the
 * rate is clearly above the bar, which on a ramp of ×10 over six hours takes the better part of an hour)...
 */
const RAMP_MULTIPLES = [6, 9];
/**
 * ...and fires when the line's slope is this many standard errors above 0 (from the key's dispersion at the line's
 * level), the line has reached the threshold at the run's last minute, and so has the rate: the last window's mean.
 * A rate that wanders up to the bar by chance has no such slope; a climb that stops short of the bar never fires.
 */
const RAMP_Z = 3;
/** ...with spend (LOOP_MIN_RATIO of the bar or more) in at least this share of the last window's minutes: a loop's. */
const RAMP_ACTIVE_SHARE = 2 / 3;
/**
 * The sequential test: a CUSUM (Page's) of the key's capped minutes, in thresholds, for a shift of its rate from the
 * bar (1) to this multiple of it, with the key's own dispersion as the minutes' variance (lump × level). It adds up
 * evidence minute by minute with no window to fill, so a runaway somewhat above the bar is told as soon as its
 * minutes have said so, however many that takes; below the bar its drift is negative and it never fires...
 */
const CUSUM_SHIFT = 1.5;
/** ...once its log-likelihood ratio reaches this (a false alarm rate of about e^-LIMIT per minute at the bar)... */
const CUSUM_LIMIT = 9;
/** startedAt: the stretch carrying the most spend above this fraction of the threshold. */
const START_RATIO = 0.5;

/** Minutes of history (up to `dataUntil`) an assessment reads: windows for resolution and the run's start. */
export function recentMinutesNeeded(policy: AnomalyPolicy): number {
  const longest = Math.max(WINDOW_MULTIPLES.at(-1)!, RAMP_MULTIPLES.at(-1)!) * policy.window_minutes;
  return Math.max(longest, policy.window_minutes + RESOLVE_AFTER_MINUTES) + 10;
}

/** USD/hour above which a sustained rate counts as runaway. */
export function runawayThresholdHourlyUsd(baseline: Baseline, policy: AnomalyPolicy): number {
  return Math.max(policy.factor * baseline.typicalHourlyUsd, policy.min_hourly_usd);
}

export function assessRunaway(input: RunawayInput): RunawayAssessment {
  const { baseline, policy, previous, dataUntil } = input;
  const window = policy.window_minutes;
  const thresholdHourlyUsd = runawayThresholdHourlyUsd(baseline, policy);
  // With min_hourly_usd 0 and no typical spend, any sustained spend counts; a tiny positive bar keeps ratios finite.
  const perMinute = Math.max(thresholdHourlyUsd, 1e-9) / 60;
  const series = minuteSeries(input.recent, dataUntil, recentMinutesNeeded(policy));
  const { usd, complete } = series;
  const ratio = new Float64Array(usd.length);
  for (let i = 0; i < usd.length; i++) ratio[i] = usd[i]! / perMinute;
  const minuteAt = (i: number) => new Date(series.first + i * MINUTE_MS);

  const base = { typicalHourlyUsd: baseline.typicalHourlyUsd, thresholdHourlyUsd };
  const outcome = (
    state: RunawayState,
    decision: RunawayDecision,
    evidence: RunawayEvidence | null,
    startedAt: Date | null,
    end: number,
  ): RunawayAssessment => {
    const from = startedAt ? Math.max(0, Math.round((startedAt.getTime() - series.first) / MINUTE_MS)) : 0;
    const currentHourlyUsd = meanOf(usd, Math.max(from, end - window + 1), end) * 60;
    const firing = decision === 'fire' || decision === 'still_firing';
    const cap = policy.auto_deactivate.min_hourly_usd / 60;
    return {
      ...base,
      state,
      decision,
      evidence,
      currentHourlyUsd,
      startedAt,
      projected24hUsd: currentHourlyUsd * 24,
      killSwitch: firing && policy.auto_deactivate.enabled && staysAbove(usd, end, window, cap),
    };
  };

  // A late evaluation of older data must not undo what a newer one decided.
  if (previous?.evaluatedUntil && previous.evaluatedUntil.getTime() > dataUntil.getTime()) {
    return outcome(previous, previous.firing ? 'still_firing' : 'normal', null, previous.since, complete);
  }

  if (previous?.firing) {
    const lastAbnormal = latest(previous.lastAbnormal, lastAbnormalMinute(ratio, complete, window, minuteAt));
    const anchor = lastAbnormal ?? previous.since ?? dataUntil;
    if (dataUntil.getTime() - anchor.getTime() >= RESOLVE_AFTER_MINUTES * MINUTE_MS) {
      const state = { firing: false, since: null, lastAbnormal: null, evaluatedUntil: dataUntil, clearedAt: dataUntil };
      return outcome(state, 'resolve', null, previous.since, complete);
    }
    const state = { firing: true, since: previous.since, lastAbnormal: anchor, evaluatedUntil: dataUntil };
    return outcome(state, 'still_firing', null, previous.since, complete);
  }

  // In threshold units: the key's ordinary lump of spend, and its typical rate (at most 1 / factor).
  const dispersion = Math.max(baseline.minuteDispersionUsd ?? perMinute, 1e-12) / perMinute;
  const typical = baseline.typicalHourlyUsd / 60 / perMinute;
  // Measured when the history has the minutes; else estimated as typical ÷ dispersion (see SPARSE_SIZE for its bias).
  const share =
    baseline.activeShare ?? (baseline.minuteDispersionUsd !== null ? Math.min(1, typical / dispersion) : null);
  const noise: Noise = {
    // A sparse key's lump is at least its typical active minute at this hour (typical ÷ share): the dispersion is a
    // median over the last days' hours, nights and weekends included, and under-states the bursts of a busy hour.
    lump: share !== null && share > 0 && share <= SPARSE_MAX_SHARE ? Math.max(dispersion, typical / share) : dispersion,
    typical,
    share,
    persistence: baseline.persistence,
    // The sequential test starts after the last episode (its minutes are not evidence of a new one) and at the
    // start of the bar's hour: a minute of an earlier hour was judged against that hour's bar, which may have been
    // higher (a nightly job's hour), and counted against this one it is an excess that never happened.
    countFrom: Math.max(
      Math.floor((Math.floor(dataUntil.getTime() / HOUR_MS) * HOUR_MS - series.first) / MINUTE_MS),
      previous?.clearedAt ? Math.floor((previous.clearedAt.getTime() - series.first) / MINUTE_MS) + 1 : 0,
    ),
  };
  // Partial minutes can only grow, so a run ending at any of them that already reads as runaway proves one: the
  // latest such end first. (Requiring the run to reach back to dataUntil would wait for the 5-minute margin even
  // when the data is there.)
  let end = complete;
  let evidence: RunawayEvidence | null = null;
  for (let e = ratio.length - 1; e >= complete && !evidence; e--) {
    evidence = fireEvidence(ratio, e, window, noise);
    if (evidence) end = e;
  }
  if (!evidence) {
    const clearedAt = previous?.clearedAt ?? null;
    const state = { firing: false, since: null, lastAbnormal: null, evaluatedUntil: dataUntil, clearedAt };
    return outcome(state, 'normal', null, null, complete);
  }
  const since = minuteAt(runStart(ratio, end, Math.max(MINUTE_CAP_RATIO, MINUTE_CAP_LUMPS * noise.lump)));
  const state = { firing: true, since, lastAbnormal: dataUntil, evaluatedUntil: dataUntil };
  return outcome(state, 'fire', evidence, since, end);
}

/** What the key's ordinary minutes look like, in threshold units (see assessRunaway). */
interface Noise {
  lump: number;
  typical: number;
  /** Share of its minutes with spend; null when unknown. */
  share: number | null;
  /** Share of its minutes with spend that follow one with spend (Baseline.persistence); null when unknown. */
  persistence: number | null;
  /** The first minute (index) the sequential test counts: after the last episode, and in the bar's hour. */
  countFrom: number;
}

function fireEvidence(ratio: Float64Array, end: number, window: number, noise: Noise): RunawayEvidence | null {
  // steady: the last n minutes all elevated, from STEADY_MINUTES up to the longest such run (at most 3 windows).
  const longest = WINDOW_MULTIPLES.at(-1)! * window;
  const runAbove = (level: number) => {
    let run = 0;
    while (run < longest && end - run >= 0 && ratio[end - run]! >= level) run++;
    return run;
  };
  const steadyRun = runAbove(STEADY_MIN_RATIO);
  for (let n = Math.min(STEADY_MINUTES, window); n <= steadyRun; n++) {
    const from = end - n + 1;
    const mean = cappedMean(ratio, from, end, capOf(ratio, from, end, noise.lump));
    if (clearlyAbove(mean, n, noise) && unusual(mean * n, n, noise)) return 'steady';
  }
  if (cusumCrossed(ratio, end, noise)) return 'cusum';
  // loop: on a key whose spend goes on into the next minute with odds p, n minutes in a row with spend happen with
  // odds below p^n.
  if (noise.persistence !== null && noise.persistence < 1) {
    const n = Math.max(STEADY_MINUTES, Math.ceil(LOG_ALPHA / Math.log(noise.persistence)));
    const from = end - n + 1;
    if (
      n <= longest &&
      runAbove(LOOP_MIN_RATIO) >= n &&
      cappedMean(ratio, from, end, capOf(ratio, from, end, noise.lump)) >= 1
    )
      return 'loop';
  }
  for (const multiple of WINDOW_MULTIPLES) {
    const minutes = multiple * window;
    const from = end - minutes + 1;
    if (from < 0) break;
    const cap = capOf(ratio, from, end, noise.lump);
    const mean = cappedMean(ratio, from, end, cap);
    if (!clearlyAbove(mean, minutes, noise) || !unusual(mean * minutes, minutes, noise)) continue;
    if (partsOf(from, end).every(([a, b]) => cappedMean(ratio, a, b, cap) >= 1)) return 'window';
  }
  // ramp: the line through the last minutes has reached the bar and climbs (its slope far from noise).
  for (const multiple of RAMP_MULTIPLES) {
    const minutes = multiple * window;
    const from = end - minutes + 1;
    if (from < 0) break;
    const cap = capOf(ratio, from, end, noise.lump);
    const { mean, slope, sum, lastPartMean, lastPartActive, stepFits } = lineThrough(ratio, from, end, cap, window);
    const last = mean + (slope * (minutes - 1)) / 2;
    // the rate itself is at the bar (the last part's mean), not only the line: a step just under it is not a ramp
    if (last < 1 || lastPartMean < 1 || lastPartActive < RAMP_ACTIVE_SHARE || slope <= 0) continue;
    // nor is a step to just under it: a session starting at 80% of the bar tilts a line through it up to the bar
    if (stepFits) continue;
    // per-minute variance at the line's level, and the slope's standard error: σ² ÷ Σ(t − t̄)²
    const variance = Math.max(mean, last) * noise.lump;
    const slopeError = Math.sqrt((12 * variance) / (minutes * (minutes * minutes - 1)));
    if (slope >= RAMP_Z * slopeError && unusual(sum, minutes, noise)) return 'ramp';
  }
  // sparse: a key active in few of its minutes runs away in the size of its active minutes, not in their number, so
  // a window's thirds (each needing spend) can take an hour to fill. Its rate is (share of minutes active) × (size
  // of an active minute); its last three active minutes, each far above threshold ÷ share, prove it. Three, not one:
  // a burst of one expensive minute is not a runaway.
  if (noise.share !== null) {
    const share = noise.share;
    if (share > 0 && share <= SPARSE_MAX_SHARE) {
      const span = WINDOW_MULTIPLES.at(-1)! * window;
      let found = 0;
      let sum = 0;
      let first = end;
      for (let i = end; i >= 0 && i > end - span && found < SPARSE_MINUTES; i--) {
        if (!(ratio[i]! > 0)) continue;
        if (ratio[i]! * share < SPARSE_SIZE) return null;
        found++;
        sum += ratio[i]!;
        first = i;
      }
      const minutes = end - first + 1;
      if (found === SPARSE_MINUTES && sum >= minutes && unusual(sum, minutes, noise)) return 'sparse';
    }
  }
  return null;
}

/**
 * Page's CUSUM up to `end`, from `noise.countFrom`: S = max(0, S + (δ ÷ σ²)(x − 1 − δ/2)) with δ = CUSUM_SHIFT − 1
 * and σ² the variance of a minute at the shifted level (lump × CUSUM_SHIFT); it crosses when S ≥ CUSUM_LIMIT over a
 * run (since S last stood at 0) of STEADY_MINUTES minutes or more whose spend is more than the key's lumpiness
 * explains. Minutes are capped per run as in capOf, and each adds at most a third of the limit.
 */
function cusumCrossed(ratio: Float64Array, end: number, noise: Noise): boolean {
  const from = Math.max(0, noise.countFrom);
  if (end - from + 1 < STEADY_MINUTES) return false;
  const cap = capOf(ratio, from, end, noise.lump);
  const shift = CUSUM_SHIFT - 1;
  const weight = shift / (noise.lump * CUSUM_SHIFT);
  let score = 0;
  let runStart = from;
  for (let i = from; i <= end; i++) {
    // no minute adds more than a third of the limit: it takes three elevated minutes at least, never one or two
    score += Math.min(weight * (Math.min(ratio[i]!, cap) - 1 - shift / 2), CUSUM_LIMIT / STEADY_MINUTES);
    if (score <= 0) {
      score = 0;
      runStart = i + 1;
    }
  }
  const minutes = end - runStart + 1;
  if (score < CUSUM_LIMIT || minutes < STEADY_MINUTES) return false;
  return unusual(cappedMean(ratio, runStart, end, cap) * minutes, minutes, noise);
}

/** The mean rate (in thresholds) of `minutes` minutes is above 1 by Z_ABOVE standard errors of the key's noise. */
function clearlyAbove(mean: number, minutes: number, noise: { lump: number }): boolean {
  return mean - Z_ABOVE * Math.sqrt((mean * noise.lump) / minutes) >= 1;
}

/**
 * Whether `spend` (in threshold-minutes) over `minutes` is more than the key's ordinary lumpiness explains. Spend is
 * counted in lumps of the key's minute dispersion and compared with a Poisson count at the typical rate: a key that
 * spends in rare large requests needs more minutes before a run is news, a key of many small requests does not.
 */
function unusual(spend: number, minutes: number, noise: { lump: number; typical: number }): boolean {
  const lumps = spend / noise.lump;
  if (lumps < MIN_LUMPS) return false;
  const expected = (minutes * noise.typical) / noise.lump;
  if (expected <= 0) return true;
  if (lumps <= expected) return false;
  return lumps - expected - lumps * Math.log(lumps / expected) <= LOG_ALPHA;
}

/** The latest complete minute whose window (ending there) had a mean rate at or above the threshold. */
function lastAbnormalMinute(
  ratio: Float64Array,
  complete: number,
  window: number,
  minuteAt: (i: number) => Date,
): Date | null {
  for (let end = complete; end - window + 1 >= 0; end--) {
    if (meanOf(ratio, end - window + 1, end) >= 1) return minuteAt(end);
  }
  return null;
}

/**
 * Where the run began: the start of the stretch ending at `end` that carries the most (capped) spend above half the
 * threshold. A step starts at its first minute; a ramp where it crossed half the bar; empty minutes inside a noisy
 * run do not cut it short because the minutes around them pay for them (minutes capped as in capOf, without the
 * quartile, so a sparse key's large minutes pay for the gaps between them).
 */
function runStart(ratio: Float64Array, end: number, cap: number): number {
  let sum = 0;
  let best = Number.NEGATIVE_INFINITY;
  let start = end;
  for (let i = end; i >= 0; i--) {
    sum += Math.min(ratio[i]!, cap) - START_RATIO;
    if (sum > best) {
      best = sum;
      start = i;
    }
  }
  return start;
}

/** Every part of the window ending at `end` has a capped mean of at least `level` USD/minute. */
function staysAbove(usd: Float64Array, end: number, window: number, level: number): boolean {
  if (end - window + 1 < 0 || level <= 0) return false;
  return partsOf(end - window + 1, end).every(([a, b]) => {
    let sum = 0;
    for (let i = a; i <= b; i++) sum += Math.min(usd[i]!, MINUTE_CAP_RATIO * level);
    return sum / (b - a + 1) >= level;
  });
}

/** [from, to] split into up to WINDOW_PARTS consecutive, nearly equal, non-empty parts. */
function partsOf(from: number, to: number): [number, number][] {
  const length = to - from + 1;
  const parts = Math.min(WINDOW_PARTS, length);
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) {
    out.push([from + Math.floor((p * length) / parts), from + Math.floor(((p + 1) * length) / parts) - 1]);
  }
  return out;
}

/**
 * The least-squares line through the capped minutes from `from` to `to`, its largest minute counted as the run's
 * median (one expensive minute at the end would tilt the line up to the bar by itself: it is not a runaway): its
 * mean, its slope per minute, the capped sum, and of its last `lastMinutes` minutes the mean and the share of
 * minutes with spend. `stepFits`: one step (two levels, anywhere in the run) fits the minutes at least as well as
 * the line (its squared residuals no larger): the run jumped rather than climbed.
 */
function lineThrough(
  ratio: Float64Array,
  from: number,
  to: number,
  cap: number,
  lastMinutes: number,
): { mean: number; slope: number; sum: number; lastPartMean: number; lastPartActive: number; stepFits: boolean } {
  const n = to - from + 1;
  const values = Array.from(ratio.subarray(from, to + 1), (x) => Math.min(x, cap));
  const sum = values.reduce((a, b) => a + b, 0);
  let largest = 0;
  for (let i = 1; i < n; i++) if (values[i]! > values[largest]!) largest = i;
  values[largest] = [...values].sort((a, b) => a - b)[n >> 1]!;
  const centre = (n - 1) / 2;
  let total = 0;
  let moment = 0;
  for (let i = 0; i < n; i++) {
    total += values[i]!;
    moment += (i - centre) * values[i]!;
  }
  const lastPart = values.slice(Math.max(0, n - lastMinutes));
  const lastPartMean = lastPart.reduce((a, b) => a + b, 0) / lastPart.length;
  const lastPartActive = lastPart.filter((x) => x >= LOOP_MIN_RATIO).length / lastPart.length;
  const slope = (12 * moment) / (n * (n * n - 1));
  // What each model explains of Σ(x − x̄)²: the line through its slope, a step through its two levels (best split).
  const lineExplains = (slope * slope * n * (n * n - 1)) / 12;
  let stepExplains = 0;
  let head = 0;
  for (let k = 1; k < n; k++) {
    head += values[k - 1]!;
    const tail = total - head;
    stepExplains = Math.max(stepExplains, (head * head) / k + (tail * tail) / (n - k) - (total * total) / n);
  }
  return { mean: total / n, slope, sum, lastPartMean, lastPartActive, stepFits: stepExplains >= lineExplains };
}

/** Mean of the minutes from `from` to `to`, each counted at most `cap` (see capOf). */
function cappedMean(ratio: Float64Array, from: number, to: number, cap: number): number {
  let sum = 0;
  for (let i = from; i <= to; i++) sum += Math.min(ratio[i]!, cap);
  return sum / (to - from + 1);
}

/**
 * The most one minute of a run counts (in thresholds): max(MINUTE_CAP_RATIO, MINUTE_CAP_LUMPS of the key's lumps,
 * twice the run's lower-quartile minute). A few expensive minutes cannot carry a run, but a run that is high all
 * along is not cut down.
 */
function capOf(ratio: Float64Array, from: number, to: number, lump: number): number {
  const sorted = ratio.slice(from, to + 1).sort();
  return Math.max(MINUTE_CAP_RATIO, MINUTE_CAP_LUMPS * lump, 2 * sorted[Math.floor((sorted.length - 1) / 4)]!);
}

function meanOf(values: Float64Array, from: number, to: number): number {
  const a = Math.max(0, from);
  if (to < a) return 0;
  let sum = 0;
  for (let i = a; i <= to; i++) sum += values[i]!;
  return sum / (to - a + 1);
}

function latest(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() >= b.getTime() ? a : b;
}

/**
 * Dense per-minute USD: `count` complete minutes ending at `dataUntil` (index `complete`), then the partial minutes
 * given after it (at most MAX_PARTIAL_MINUTES). Entries outside that range are ignored.
 */
function minuteSeries(
  recent: readonly MinuteSpend[],
  dataUntil: Date,
  count: number,
): { first: number; complete: number; usd: Float64Array } {
  const until = Math.floor(dataUntil.getTime() / MINUTE_MS) * MINUTE_MS;
  const first = until - (count - 1) * MINUTE_MS;
  const complete = count - 1;
  let last = complete;
  for (const m of recent) {
    const i = Math.floor((m.minute.getTime() - first) / MINUTE_MS);
    if (i > last && i <= complete + MAX_PARTIAL_MINUTES && m.usd > 0) last = i;
  }
  const usd = new Float64Array(last + 1);
  for (const m of recent) {
    const i = Math.floor((m.minute.getTime() - first) / MINUTE_MS);
    if (i >= 0 && i <= last) usd[i] = (usd[i] ?? 0) + m.usd;
  }
  return { first, complete, usd };
}
