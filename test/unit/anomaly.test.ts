import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Baseline, type HourlySpend, minuteFigures, typicalRate } from '../../src/anomaly/core/baseline.ts';
import { runawayContributors } from '../../src/anomaly/core/contributors.ts';
import { assessHeadroom, limiterLabel, type TokenUsageMinute } from '../../src/anomaly/core/headroom.ts';
import {
  assessRunaway,
  type MinuteSpend,
  type RunawayAssessment,
  type RunawayState,
  recentMinutesNeeded,
} from '../../src/anomaly/core/runaway.ts';
import { type AnomalyPolicy, policySchema } from '../../src/config/policy.ts';
import { usdToPico } from '../../src/money.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;
/** A Monday. */
const MONDAY = Date.parse('2026-06-08T00:00:00Z');

function anomalyPolicy(over: Record<string, unknown> = {}): AnomalyPolicy {
  return policySchema.parse({ anomaly: over }).anomaly;
}
const policy = anomalyPolicy(); // factor 5, min_hourly_usd 5, window 10

/**
 * Hourly history for the `weeks` weeks before `until`, from a rate function of the hour's start ($/h). Spend inside
 * each hour is smooth: requests of `lumpUsd` (the squares follow from variance ÷ mean = lumpUsd).
 */
function history(until: number, weeks: number, rate: (hour: Date) => number, lumpUsd = 0.01): HourlySpend[] {
  const out: HourlySpend[] = [];
  for (let t = until - weeks * 7 * 24 * HOUR; t < until; t += HOUR) {
    const usd = rate(new Date(t));
    out.push({ hour: new Date(t), usd, sumOfSquares: (usd * usd) / 60 + lumpUsd * usd });
  }
  return out;
}

function baseline(
  typicalHourlyUsd: number,
  minuteDispersionUsd: number | null = 0.01,
  activeShare: number | null = null,
  // By default scattered minutes: spend goes on into the next minute as often as any minute has spend.
  persistence: number | null = activeShare,
): Baseline {
  return { typicalHourlyUsd, source: 'hour_of_week', samples: 5, minuteDispersionUsd, activeShare, persistence };
}

/** $/h for each minute from `start`; the detector sees minute i at dataUntil = start + i. */
type Series = number[];
const flat = (minutes: number, hourly: number): Series => Array(minutes).fill(hourly);

interface Step extends RunawayAssessment {
  /** Index of the minute that was the last complete one. */
  at: number;
}

/**
 * Replays a series minute by minute as the worker would, carrying the state. `b` may be a baseline per hour (by the
 * hour of the minute judged, from `start`'s hour 0), as the worker computes one each hour.
 */
function replay(
  series: Series,
  b: Baseline | ((hour: number) => Baseline),
  p: AnomalyPolicy = policy,
  start = MONDAY,
): Step[] {
  const lookback = recentMinutesNeeded(p);
  const steps: Step[] = [];
  let state: RunawayState | null = null;
  for (let i = 0; i < series.length; i++) {
    const recent: MinuteSpend[] = [];
    for (let j = Math.max(0, i - lookback + 1); j <= i; j++) {
      recent.push({ minute: new Date(start + j * MINUTE), usd: series[j]! / 60 });
    }
    const result = assessRunaway({
      recent,
      baseline: typeof b === 'function' ? b(Math.floor(i / 60)) : b,
      previous: state,
      dataUntil: new Date(start + i * MINUTE),
      policy: p,
    });
    state = result.state;
    steps.push({ ...result, at: i });
  }
  return steps;
}

const fired = (steps: Step[]) => steps.filter((s) => s.decision === 'fire');
const firstFire = (steps: Step[]) => fired(steps)[0];

describe('runaway detection on hand-made series', () => {
  it('steady traffic at its typical rate never fires', () => {
    const steps = replay(flat(240, 10), baseline(10));
    expect(fired(steps)).toEqual([]);
  });

  it('a step to ×10 fires within the window, 3 minutes after it starts, and reports what the alert needs', () => {
    const steps = replay([...flat(60, 10), ...flat(60, 100)], baseline(10));
    const fire = firstFire(steps)!;
    expect(fire.at).toBe(62); // the step's third minute: 3 minutes of data
    expect(fire.evidence).toBe('steady');
    expect(fire.startedAt).toEqual(new Date(MONDAY + 60 * MINUTE));
    expect(fire.currentHourlyUsd).toBeCloseTo(100);
    expect(fire.typicalHourlyUsd).toBe(10);
    expect(fire.thresholdHourlyUsd).toBe(50);
    expect(fire.projected24hUsd).toBeCloseTo(2400);
    expect(fired(steps)).toHaveLength(1);
    expect(steps.slice(63).every((s) => s.decision === 'still_firing')).toBe(true);
  });

  it('a step to ×3 (below factor × typical) does not fire', () => {
    expect(fired(replay([...flat(60, 10), ...flat(120, 30)], baseline(10)))).toEqual([]);
  });

  it('a slow ramp fires once it is above factor × typical, within a window of crossing it', () => {
    // From $10/h up by $1/h each minute: above the $50/h bar from minute 41 on.
    const ramp = Array.from({ length: 150 }, (_, i) => 10 + i);
    const fire = firstFire(replay(ramp, baseline(10)))!;
    expect(fire.at).toBeGreaterThanOrEqual(41);
    expect(fire.at).toBeLessThanOrEqual(41 + policy.window_minutes);
    // The run starts where the ramp crossed half the bar, not at the first minute of the series.
    expect(fire.startedAt!.getTime()).toBeGreaterThanOrEqual(MONDAY + 15 * MINUTE);
  });

  it('a slow ramp on a noisy key is judged on its slope: it fires soon after reaching the bar, as a ramp', () => {
    // From $10/h up by $0.25/h a minute, on a key whose minutes vary by ±45% (lumps of $0.10): the bar ($50/h) is
    // reached at minute 160. Its level there is within its noise for a long while; its climb is not.
    const noisy = baseline(10, 0.1);
    const ramp = Array.from({ length: 260 }, (_, i) => (10 + 0.25 * i) * (1 + 0.45 * Math.sin(i * 2.7)));
    const fire = firstFire(replay(ramp, noisy))!;
    expect(fire.evidence).toBe('ramp');
    expect(fire.at).toBeGreaterThanOrEqual(160);
    // 15 minutes after it reached the bar; the window rule alone took 41
    expect(fire.at).toBeLessThanOrEqual(160 + 15);
  });

  it('a runaway whose minutes dip now and then is told by the sequential test, before a window fills', () => {
    // Typical $10/h (bar $50/h, lumps of $0.05); the runaway runs at $100/h with every third minute at $32.50/h:
    // each dip below 70% of the bar restarts the steady rule's count, the sequential test keeps its evidence.
    const b = baseline(10, 0.05);
    const runaway = Array.from({ length: 60 }, (_, i) => (i % 3 === 2 ? 32.5 : 100));
    const fire = firstFire(replay([...flat(60, 10), ...runaway], b))!;
    expect(fire.evidence).toBe('cusum');
    expect(fire.at).toBeLessThan(60 + policy.window_minutes);
    expect(fire.startedAt).toEqual(new Date(MONDAY + 60 * MINUTE));
  });

  it('the sequential test counts from the end of the last episode, not before', () => {
    const recent: MinuteSpend[] = Array.from({ length: recentMinutesNeeded(policy) }, (_, i) => ({
      minute: new Date(MONDAY + i * MINUTE),
      usd: (i % 3 === 2 ? 32.5 : 100) / 60,
    }));
    const dataUntil = new Date(MONDAY + (recent.length - 1) * MINUTE);
    const evidence = (clearedAt: Date | null) =>
      assessRunaway({
        recent,
        baseline: baseline(10, 0.05),
        previous: { firing: false, since: null, lastAbnormal: null, evaluatedUntil: null, clearedAt },
        dataUntil,
        policy,
      }).evidence;
    expect(evidence(null)).toBe('cusum');
    // an episode that resolved two minutes ago: its minutes are not the next one's evidence (a window still is)
    expect(evidence(new Date(dataUntil.getTime() - 2 * MINUTE))).toBe('window');
  });

  it("the sequential test counts a minute against its own hour's bar: a nightly job is not re-scored at 03:00", () => {
    // A job key: a trickle of $0.50/h, and every night a job at $60/h from 02:00 to 02:50 inside its baseline's job
    // hour (typical $20/h there, bar $100/h); the next hour's bar is the trickle's, $10/h. Counted against 03:00's
    // bar, the job's 50 minutes were six bars each, and the test's evidence outlasted the ten quiet minutes after.
    const job = (hour: number) => (hour === 2 ? baseline(20) : baseline(2));
    const night = [...flat(120, 0.5), ...flat(50, 60), ...flat(130, 0.5)];
    expect(fired(replay(night, job))).toEqual([]);
  });

  it("a runaway inside one hour, or across an hour's turn, is still told by the sequential test", () => {
    // Typical $10/h (bar $50/h, lumps of $0.05): $100/h with every third minute at $32.50/h (see above).
    const b = baseline(10, 0.05);
    const dipping = (minutes: number) => Array.from({ length: minutes }, (_, i) => (i % 3 === 2 ? 32.5 : 100));
    // inside hour 1: from 01:10
    const inside = firstFire(replay([...flat(70, 10), ...dipping(60)], b))!;
    expect(inside.evidence).toBe('cusum');
    expect(inside.at).toBeLessThan(70 + policy.window_minutes);
    expect(inside.startedAt).toEqual(new Date(MONDAY + 70 * MINUTE));
    // from 00:57, across 01:00: the test counts again from 01:00 (the bar may have changed) and would fire at 01:07;
    // the window rule, whose minutes are all above the bar, tells it at its tenth minute, 01:06
    const across = firstFire(replay([...flat(57, 10), ...dipping(60)], b))!;
    expect(across.at).toBeGreaterThanOrEqual(60);
    expect(across.at).toBeLessThan(57 + policy.window_minutes);
    expect(across.startedAt).toEqual(new Date(MONDAY + 57 * MINUTE));
    // from 00:57 on a job key whose bar falls at 01:00: still a runaway against the new bar, and told
    const falling = (hour: number) => (hour === 0 ? baseline(20, 0.05) : b);
    const fromJobHour = firstFire(replay([...flat(57, 10), ...dipping(60)], falling))!;
    expect(fromJobHour.at).toBeLessThan(60 + policy.window_minutes);
  });

  it('a rate rising to just under the bar is not a runaway, however steadily it rises', () => {
    const ramp = Array.from({ length: 240 }, (_, i) => Math.min(48, 10 + 0.25 * i));
    expect(fired(replay(ramp, baseline(10, 0.1)))).toEqual([]);
  });

  it('a session that starts just under the bar is a step, not a ramp, even when its last minutes cross the bar', () => {
    // Typical $1/h (bar $5/h) on a noisy key: idle, then a session at $4.20/h whose last 10 minutes run at $5.20/h.
    // A line through the idle minutes and the session climbs to the bar; one step fits them better.
    const session = [...flat(50, 0), ...flat(30, 4.2), ...flat(10, 5.2)];
    expect(fired(replay(session, baseline(1, 0.05)))).toEqual([]);
    // A climb from the same start through the same level is a ramp, and fires.
    const climb = [...flat(50, 0), ...Array.from({ length: 70 }, (_, i) => 0.15 * i)];
    expect(firstFire(replay(climb, baseline(1, 0.05)))?.evidence).toBe('ramp');
  });

  it('one expensive minute at the end of a rising run is not a ramp', () => {
    // a quiet rise from $5/h to $20/h, then one $400 minute: the line would reach the bar only through that minute
    const rise = [...Array.from({ length: 30 }, (_, i) => 5 + 0.5 * i), 400 * 60, ...flat(30, 20)];
    expect(fired(replay(rise, baseline(10, 0.5)))).toEqual([]);
  });

  it('one expensive minute is not a runaway, on a steady key or a dormant one', () => {
    const spike = [...flat(60, 10), 3000, ...flat(60, 10)];
    expect(fired(replay(spike, baseline(10)))).toEqual([]);
    const dormant = [...flat(60, 0), 3000, ...flat(60, 0)];
    expect(fired(replay(dormant, baseline(0)))).toEqual([]);
  });

  it('a key whose spend comes in large requests needs more than three of them to fire', () => {
    // Typical $1/h in requests of about $0.50: three in three minutes ($30/h) is ordinary for this key...
    const lumpy = baseline(1, 0.5);
    const three = [...flat(60, 0), 30, 30, 30, ...flat(60, 0)];
    expect(fired(replay(three, lumpy))).toEqual([]);
    // ...a loop sending one every minute for half an hour is not.
    const loop = [...flat(60, 0), ...flat(30, 30), ...flat(30, 0)];
    const fire = firstFire(replay(loop, lumpy))!;
    expect(fire.at).toBeGreaterThan(62);
    expect(fire.at).toBeLessThan(90);
    // The same three minutes on a key of many small requests are a loop.
    expect(firstFire(replay(three, baseline(1, 0.01)))?.at).toBe(62);
  });

  it('a key active one minute in five is caught when those minutes grow twentyfold, not while they are ordinary', () => {
    // Typical $6/h as one $0.50 minute in five (lumps of about $0.40): the bar is $30/h, i.e. $0.50 a minute.
    const sparse = (minutes: number, activeHourly: number): Series =>
      Array.from({ length: minutes }, (_, i) => (i % 5 === 0 ? activeHourly : 0));
    const b = baseline(6, 0.4);
    expect(fired(replay(sparse(240, 30), b))).toEqual([]);
    // ×20: $10 minutes, $120/h on average. Counted at 3 thresholds a minute (the cap for smooth keys), these minutes
    // would average 0.6 thresholds and never fire; the key's own lumps set its cap.
    const runaway = [...sparse(60, 30), ...sparse(60, 600)];
    const fire = firstFire(replay(runaway, b))!;
    expect(fire.at).toBeGreaterThanOrEqual(60);
    expect(fire.at).toBeLessThan(60 + 30);
    expect(fire.startedAt!.getTime()).toBe(MONDAY + 60 * MINUTE);
  });

  it('a key active one minute in twelve is caught at its third oversized minute, not by two of them or by ×5', () => {
    // Typical $3/h as one $0.25 minute in twelve: the bar is $15/h, so at its share of minutes an active minute
    // above $1.25 runs the key above the bar; the sparse rule asks three of them at $2.50 or more.
    const sparse = (minutes: number, activeUsd: number): Series =>
      Array.from({ length: minutes }, (_, i) => (i % 12 === 0 ? activeUsd * 60 : 0));
    const b = baseline(3, 0.25);
    expect(fired(replay(sparse(24 * 60, 0.25), b))).toEqual([]);
    // ×5 puts the rate at the bar, not clearly above it.
    expect(fired(replay([...sparse(60, 0.25), ...sparse(240, 1.25)], b))).toEqual([]);
    // Two $7.50 minutes, then ordinary again: not a runaway.
    expect(fired(replay([...sparse(60, 0.25), ...sparse(24, 7.5), ...sparse(120, 0.25)], b))).toEqual([]);
    // ×30, its active minutes at 60, 61, 75, 90...: it fires at 75, from 60. The window rule, which wants spend in
    // each third of the window, has to wait for a stretch without a gap of 10 minutes (there is none here).
    const runaway = Array.from({ length: 120 }, (_, i) => ([0, 1, 15].includes(i % 30) ? 7.5 * 60 : 0));
    const fire = firstFire(replay([...sparse(60, 0.25), ...runaway], b))!;
    expect(fire.at).toBe(75);
    expect(fire.evidence).toBe('sparse');
    expect(fire.startedAt!.getTime()).toBe(MONDAY + 60 * MINUTE);
  });

  it('a loop on a key active one minute in sixteen fires after six minutes of spend in a row, not at three bursts', () => {
    // Typical $6/h as one $1.60 minute in sixteen: the bar is $30/h ($0.50 a minute), and each of its ordinary
    // minutes is three times that. Three of them in a row happen (1 in 4,000 minutes): not a runaway.
    const b = baseline(6, 1.6, 1 / 16);
    const bursts = (minutes: number): Series =>
      Array.from({ length: minutes }, (_, i) => (i % 16 === 0 ? 1.6 * 60 : 0));
    expect(fired(replay([...bursts(64), 96, 96, 96, ...bursts(64)], b))).toEqual([]);
    // A loop at ×10 ($60/h, $1 every minute) on top of its bursts: six minutes in a row have odds of 1 in 16^6.
    const loop = Array.from({ length: 60 }, (_, i) => 60 + (i % 16 === 0 ? 96 : 0));
    const fire = firstFire(replay([...bursts(64), ...loop], b))!;
    expect(fire.at).toBe(64 + 5);
    expect(fire.evidence).toBe('loop');
    expect(fire.startedAt!.getTime()).toBe(MONDAY + 64 * MINUTE);
    // The same share of active minutes in sessions (spend goes on into the next minute 97% of the time): runs are
    // what this key does, so the run alone proves nothing, and only the steady rule's noise tests decide, later.
    const sessions = firstFire(replay([...bursts(64), ...loop], baseline(6, 1.6, 1 / 16, 0.97)))!;
    expect(sessions.evidence).toBe('steady');
    expect(sessions.at).toBeGreaterThan(64 + 5);
  });

  it('resolves after 30 minutes of normal rate, not before', () => {
    const steps = replay([...flat(60, 10), ...flat(30, 100), ...flat(90, 10)], baseline(10));
    const resolve = steps.find((s) => s.decision === 'resolve')!;
    // The runaway's last minute is 89; minutes 90..118 are 29 normal minutes.
    expect(steps[118]!.decision).toBe('still_firing');
    expect(resolve.at).toBeGreaterThanOrEqual(90 + 29);
    expect(resolve.at).toBeLessThanOrEqual(90 + 30 + policy.window_minutes);
    expect(resolve.startedAt).toEqual(new Date(MONDAY + 60 * MINUTE));
    expect(steps.slice(resolve.at + 1).every((s) => s.decision === 'normal')).toBe(true);
  });

  it('never fires below min_hourly_usd, however far above the typical rate', () => {
    // A dormant key (typical 0) at $4.50/h for two hours: far above 5 × 0, under the $5/h floor.
    expect(fired(replay([...flat(30, 0), ...flat(120, 4.5)], baseline(0)))).toEqual([]);
    expect(firstFire(replay([...flat(30, 0), ...flat(120, 8)], baseline(0)))).toBeDefined();
  });

  it('the kill switch trips only when enabled, and only above the hard cap through a whole window', () => {
    const runaway = (hourly: number) => [...flat(60, 10), ...flat(30, hourly)];
    const off = replay(runaway(1000), baseline(10));
    expect(off.some((s) => s.killSwitch)).toBe(false);

    const on = anomalyPolicy({ auto_deactivate: { enabled: true, min_hourly_usd: 200 } });
    expect(replay(runaway(150), baseline(10), on).some((s) => s.killSwitch)).toBe(false);
    const above = replay(runaway(300), baseline(10), on);
    const fire = firstFire(above)!;
    expect(fire.killSwitch).toBe(false); // fired after 3 minutes: too early to switch a key off
    const tripped = above.find((s) => s.killSwitch)!;
    expect(tripped.at).toBeGreaterThan(fire.at);
    expect(tripped.at).toBeLessThanOrEqual(60 + on.window_minutes - 1);
    expect(tripped.decision).toBe('still_firing');
  });

  it('partial minutes after dataUntil can prove a runaway early but never resolve one', () => {
    const recent = (values: Series, from: number): MinuteSpend[] =>
      values.map((hourly, i) => ({ minute: new Date(MONDAY + (from + i) * MINUTE), usd: hourly / 60 }));
    const dataUntil = new Date(MONDAY + 59 * MINUTE);
    const complete = recent(flat(60, 10), 0);
    // Minutes 60..62 are still arriving but already show $100/h: the loop is proven 3 minutes early.
    const early = assessRunaway({
      recent: [...complete, ...recent(flat(3, 100), 60)],
      baseline: baseline(10),
      previous: null,
      dataUntil,
      policy,
    });
    expect(early.decision).toBe('fire');
    expect(early.startedAt).toEqual(new Date(MONDAY + 60 * MINUTE));
    expect(
      assessRunaway({ recent: complete, baseline: baseline(10), previous: null, dataUntil, policy }).decision,
    ).toBe('normal');
    // Empty partial minutes after a firing run do not count as normal minutes.
    const firing = recent([...flat(60, 10), ...flat(20, 100)], 0);
    const until = new Date(MONDAY + 79 * MINUTE);
    const previous = {
      firing: true,
      since: new Date(MONDAY + 60 * MINUTE),
      lastAbnormal: until,
      evaluatedUntil: until,
    };
    const later = assessRunaway({
      recent: [...firing, ...recent(flat(15, 0), 80)],
      baseline: baseline(10),
      previous,
      dataUntil: until,
      policy,
    });
    expect(later.decision).toBe('still_firing');
  });

  it('a runaway whose data is already in the partial minutes fires before dataUntil reaches it', () => {
    // dataUntil lags the data edge by 5 minutes (the completeness margin); the step's minutes are all in.
    const start = MONDAY + 60 * MINUTE;
    const recent: MinuteSpend[] = [];
    for (let i = -60; i < 3; i++) recent.push({ minute: new Date(start + i * MINUTE), usd: (i < 0 ? 10 : 100) / 60 });
    const result = assessRunaway({
      recent,
      baseline: baseline(10),
      previous: null,
      dataUntil: new Date(start - 3 * MINUTE),
      policy,
    });
    expect(result.decision).toBe('fire');
    expect(result.startedAt).toEqual(new Date(start));
  });

  it('a late run over older data does not undo a newer decision', () => {
    const steps = replay([...flat(60, 10), ...flat(20, 100)], baseline(10));
    const newest = steps.at(-1)!.state;
    const stale = assessRunaway({
      recent: [],
      baseline: baseline(10),
      previous: newest,
      dataUntil: new Date(MONDAY + 30 * MINUTE),
      policy,
    });
    expect(stale.decision).toBe('still_firing');
    expect(stale.state).toEqual(newest);
  });
});

describe('typical rate', () => {
  /** Office hours on weekdays at $40/h, $2/h otherwise. */
  const weekly = (hour: Date) => {
    const day = hour.getUTCDay();
    const h = hour.getUTCHours();
    return day >= 1 && day <= 5 && h >= 9 && h < 17 ? 40 : 2;
  };
  const monday10 = MONDAY + 10 * HOUR;
  const sunday03 = MONDAY - 21 * HOUR;

  it('a busy Monday 10:00 that is normal for that hour does not fire; the same rate at Sunday 03:00 does', () => {
    const atMonday = typicalRate(history(monday10, 5, weekly), null, new Date(monday10), policy);
    expect(atMonday).toMatchObject({ typicalHourlyUsd: 40, source: 'hour_of_week', samples: 5 });
    expect(fired(replay(flat(120, 40), atMonday, policy, monday10))).toEqual([]);

    const atSunday = typicalRate(history(sunday03, 5, weekly), null, new Date(sunday03), policy);
    expect(atSunday).toMatchObject({ typicalHourlyUsd: 2, source: 'hour_of_week' });
    expect(firstFire(replay(flat(120, 40), atSunday, policy, sunday03))?.at).toBe(2);
  });

  it('one old spike in the history does not raise the bar: a later ×6 run still fires', () => {
    const at = MONDAY + 10 * HOUR;
    const spikeWeek = at - 3 * 7 * 24 * HOUR;
    const withSpike = history(at, 5, (hour) => (hour.getTime() === spikeWeek ? 600 : 10));
    const b = typicalRate(withSpike, null, new Date(at), policy);
    expect(b.typicalHourlyUsd).toBe(10);
    expect(firstFire(replay(flat(60, 60), b, policy, at))).toBeDefined();
  });

  it('a nightly job overrunning into the next hour is not a runaway', () => {
    // $60/h from 02:00 to 02:50 every night, nothing otherwise; tonight it runs on past 03:00.
    const job = (hour: Date) => (hour.getUTCHours() === 2 ? 50 : 0);
    const at = MONDAY + 3 * HOUR;
    const b = typicalRate(history(at, 5, job), null, new Date(at), policy);
    expect(b.typicalHourlyUsd).toBe(50);
    expect(fired(replay(flat(15, 60), b, policy, at))).toEqual([]);
  });

  it('a key used in sessions at changing hours is judged against its usual busy hour', () => {
    // Half-hour sessions at $15/h, at an hour that moves from day to day: any given hour of the week was busy in
    // one week at most, so its hour-of-week figure is 0.
    const sessionHours = new Set<number>();
    for (let day = 0; day < 35; day++) {
      const dayStart = MONDAY - (35 - day) * 24 * HOUR;
      for (const h of [9 + (day % 7), 14 + ((day * 3) % 5)]) sessionHours.add(dayStart + h * HOUR);
    }
    const hours: HourlySpend[] = [];
    for (let t = MONDAY - 35 * 24 * HOUR; t < MONDAY + 20 * HOUR; t += HOUR) {
      // 30 minutes at $0.25 per minute: $7.50 in the hour.
      hours.push(
        sessionHours.has(t)
          ? { hour: new Date(t), usd: 7.5, sumOfSquares: 30 * 0.25 ** 2 }
          : { hour: new Date(t), usd: 0, sumOfSquares: 0 },
      );
    }
    const at = MONDAY + 20 * HOUR;
    const b = typicalRate(hours, null, new Date(at), policy);
    expect(b.source).toBe('busy_hours');
    expect(b.typicalHourlyUsd).toBeCloseTo(6); // 40% of the usual $15/h: runaway above $30/h
    expect(fired(replay([...flat(30, 15), ...flat(30, 0)], b, policy, at))).toEqual([]);
    expect(firstFire(replay(flat(30, 60), b, policy, at))).toBeDefined();
  });

  it('a developer who codes two days a week is judged against their usual session, not the floor', () => {
    // Sessions filling an hour at $4/h on Tuesdays and Thursdays, at an hour that moves: the usual (median) day is
    // one of nothing, and every hour of the week was busy in one week at most.
    const sessionHours = new Set<number>();
    for (let day = 0; day < 35; day++) {
      const dayStart = MONDAY - (35 - day) * 24 * HOUR;
      if (day % 7 !== 1 && day % 7 !== 3) continue;
      for (const h of [9 + (day % 5), 13 + ((day * 3) % 4), 16 + (day % 3)]) sessionHours.add(dayStart + h * HOUR);
    }
    const hours: HourlySpend[] = [];
    for (let t = MONDAY - 35 * 24 * HOUR; t < MONDAY + 20 * HOUR; t += HOUR) {
      hours.push({ hour: new Date(t), usd: sessionHours.has(t) ? 4 : 0 });
    }
    const at = MONDAY + 20 * HOUR;
    const b = typicalRate(hours, null, new Date(at), policy);
    expect(b.source).toBe('session_rate');
    expect(b.typicalHourlyUsd).toBeCloseTo(2.4); // 60% of the usual $4/h session: runaway above $12/h
    // a session at twice the usual rate is a busy afternoon (the floor alone called it a runaway at $5/h)
    expect(fired(replay([...flat(60, 8), ...flat(30, 0)], b, policy, at))).toEqual([]);
    expect(firstFire(replay(flat(30, 40), b, policy, at))).toBeDefined();
  });

  it('falls back to recent days, then the workspace, then the floor', () => {
    const at = MONDAY + 10 * HOUR;
    const fiveDays = history(at, 5 / 7, () => 12);
    expect(typicalRate(fiveDays, null, new Date(at), policy)).toMatchObject({
      typicalHourlyUsd: 12,
      source: 'recent_days',
      samples: 5,
    });
    const thirtyHours = history(at, 30 / 168, () => 12);
    expect(typicalRate(thirtyHours, null, new Date(at), policy)).toMatchObject({ typicalHourlyUsd: 12, samples: 1 });

    // A new key in a workspace spending $100/h, whose biggest key carries 60%: allowed what that key carries.
    const workspace = { history: history(at, 5, () => 100), largestKeyShare: 0.6 };
    expect(typicalRate([], workspace, new Date(at), policy)).toMatchObject({
      typicalHourlyUsd: 60,
      source: 'workspace',
    });
  });

  it("a successor key two days old taking over its workspace's main traffic is judged like a new key, not as a runaway", () => {
    const at = MONDAY + 10 * HOUR;
    // Created two days ago, idle until the handover three hours ago, now at $40/h: its own quiet days say ~$0.
    const own = history(at, 2 / 7, (h) => (h.getTime() >= at - 3 * HOUR ? 40 : 0));
    const workspace = { history: history(at, 5, () => 60), largestKeyShare: 0.9 };
    const b = typicalRate(own, workspace, new Date(at), policy);
    expect(b).toMatchObject({ source: 'workspace' });
    expect(b.typicalHourlyUsd).toBeCloseTo(54);
    expect(fired(replay(flat(60, 40), b))).toEqual([]);
    // Without a workspace profile it keeps its own (short) figure, and $40/h is news.
    expect(typicalRate(own, null, new Date(at), policy).source).toBe('recent_days');
    // A key with three weeks of its own history is judged by it, whatever its workspace does.
    const settled = history(at, 3, () => 2);
    expect(typicalRate(settled, workspace, new Date(at), policy)).toMatchObject({ typicalHourlyUsd: 2 });
  });

  it('a new key with no history anywhere gets the floor: runaway above factor × min_hourly_usd', () => {
    const b = typicalRate([], null, new Date(MONDAY), policy);
    expect(b).toEqual({
      typicalHourlyUsd: 5,
      source: 'floor',
      samples: 0,
      minuteDispersionUsd: null,
      activeShare: null,
      persistence: null,
    });
    // A new project starting at $20/h is not news; a fresh script looping at $40/h is.
    expect(fired(replay(flat(60, 20), b))).toEqual([]);
    expect(firstFire(replay(flat(60, 40), b))).toBeDefined();
  });

  it('a dormant key (zeros, not missing hours) has a typical rate of 0: above the floor is news', () => {
    const at = MONDAY + 10 * HOUR;
    const b = typicalRate(
      history(at, 5, () => 0),
      null,
      new Date(at),
      policy,
    );
    expect(b).toMatchObject({ typicalHourlyUsd: 0, source: 'hour_of_week', minuteDispersionUsd: null });
  });

  it('the share of active minutes and their persistence come from the hours whose minutes are known', () => {
    const at = MONDAY + 10 * HOUR;
    const hours = history(at, 5, () => 6).map((h, i, all) =>
      i >= all.length - 48 ? { ...h, activeMinutes: 6, followingMinutes: 3 } : h,
    );
    // An hour without spend counts for persistence (no minutes) but not for the share of an hour with spend.
    hours[hours.length - 1] = {
      hour: hours.at(-1)!.hour,
      usd: 0,
      sumOfSquares: 0,
      activeMinutes: 0,
      followingMinutes: 0,
    };
    const b = typicalRate(hours, null, new Date(at), policy);
    expect(b.activeShare).toBeCloseTo(0.1);
    expect(b.persistence).toBeCloseTo(0.5);
    expect(
      typicalRate(
        history(at, 5, () => 6),
        null,
        new Date(at),
        policy,
      ).activeShare,
    ).toBeNull();
  });

  it("an hour's minute figures: totals, active minutes, and those following spend, the hour before's last included", () => {
    const minutes = new Array(121).fill(0);
    minutes[59] = 1; // the last minute of the hour before
    for (const [m, usd] of [
      [60, 2],
      [61, 1],
      [70, 3],
      [119, 1],
    ] as const)
      minutes[m] = usd;
    minutes[120] = 5; // the next hour
    expect(minuteFigures(minutes, 60)).toEqual({ usd: 7, sumOfSquares: 15, activeMinutes: 4, followingMinutes: 2 });
    expect(minuteFigures(minutes, 0)).toEqual({ usd: 1, sumOfSquares: 1, activeMinutes: 1, followingMinutes: 0 });
  });

  it("a developer key's dispersion counts its rare large requests, which most of its hours do not hold", () => {
    // Sessions at hours that move (as above), each hour of a session 10 requests of $0.01, and one session hour in
    // three also a $0.91 request. The median hour says lumps of under a cent; three of the ordinary $0.91 requests
    // in three minutes then read as a runaway at $54.60/h.
    const at = MONDAY + 20 * HOUR;
    const hours: HourlySpend[] = [];
    let sessions = 0;
    for (let t = MONDAY - 35 * 24 * HOUR; t < at; t += HOUR) {
      const day = Math.floor((t - (MONDAY - 35 * 24 * HOUR)) / (24 * HOUR));
      const h = (((t / HOUR) % 24) + 24) % 24;
      const minutes = new Array(60).fill(0);
      if (h === 9 + (day % 7) || h === 14 + ((day * 3) % 5)) {
        for (let m = 0; m < 10; m++) minutes[m * 3] = 0.01;
        if (sessions++ % 3 === 0) minutes[30] = 0.91;
      }
      hours.push({ hour: new Date(t), ...minuteFigures(minutes, 0) });
    }
    const b = typicalRate(hours, null, new Date(at), policy);
    expect(b.source).toBe('busy_hours');
    expect(b.minuteDispersionUsd).toBeGreaterThan(0.5);
    // three such requests in a row in a session: ordinary for this key
    const three = [
      ...Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? 0.6 : 0)),
      ...flat(3, 54.6),
      ...flat(30, 0.2),
    ];
    expect(fired(replay(three, b, policy, at))).toEqual([]);
    // a loop re-sending them every minute for a quarter of an hour is not
    expect(firstFire(replay([...flat(20, 0.2), ...flat(15, 54.6)], b, policy, at))).toBeDefined();
  });

  it('the minute dispersion measures request size, not the daily curve', () => {
    const at = MONDAY + 10 * HOUR;
    const b = typicalRate(history(at, 5, weekly, 0.2), null, new Date(at), policy);
    expect(b.minuteDispersionUsd).toBeCloseTo(0.2);
  });
});

describe('runaway detection properties', () => {
  const series = (maxHourly: number) =>
    fc.array(fc.double({ min: 0, max: maxHourly, noNaN: true, maxExcluded: true }), { minLength: 60, maxLength: 120 });

  it('a key whose every minute is below min_hourly_usd never fires, whatever its baseline', () => {
    fc.assert(
      fc.property(series(policy.min_hourly_usd), fc.double({ min: 0, max: 2, noNaN: true }), (values, typical) => {
        expect(fired(replay(values, baseline(typical, null)))).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });

  it('a run whose every minute is below half the threshold never fires (the bench skips such minutes)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 200, noNaN: true }),
        fc.option(fc.double({ min: 0.0001, max: 5, noNaN: true })),
        fc.array(fc.double({ min: 0, max: 0.5, noNaN: true, maxExcluded: true }), { minLength: 60, maxLength: 120 }),
        (typical, dispersion, fractions) => {
          const threshold = Math.max(policy.factor * typical, policy.min_hourly_usd);
          const values = fractions.map((f) => f * threshold);
          expect(fired(replay(values, baseline(typical, dispersion)))).toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('runaway contributors', () => {
  const at = (m: number) => new Date(MONDAY + m * MINUTE);
  const rows = [
    { minute: at(0), model: 'claude-opus-4-5', tokenKind: 'output', cost: usdToPico('6') },
    { minute: at(1), model: 'claude-opus-4-5', tokenKind: 'uncached_input', cost: usdToPico('2') },
    { minute: at(1), model: 'claude-haiku-4-5', tokenKind: 'output', cost: usdToPico('1') },
    { minute: at(2), model: 'claude-sonnet-4-5', tokenKind: 'cache_read', cost: usdToPico('0.5') },
    { minute: at(2), model: 'claude-3-haiku', tokenKind: 'output', cost: usdToPico('0.5') },
    { minute: at(9), model: 'claude-opus-4-5', tokenKind: 'output', cost: usdToPico('100') }, // after the period
  ];

  it('ranks models and token kinds by cost over the period, with exact totals and shares', () => {
    const c = runawayContributors(rows, at(0), at(2), 2);
    expect(c.total).toBe(usdToPico('10'));
    expect(c.models.top).toEqual([
      { name: 'claude-opus-4-5', cost: usdToPico('8'), share: 0.8 },
      { name: 'claude-haiku-4-5', cost: usdToPico('1'), share: 0.1 },
    ]);
    // Ties are ordered by name so the message is stable.
    expect(c.models.rest).toEqual({ count: 2, cost: usdToPico('1'), share: 0.1 });
    expect(c.tokenKinds.top.map((k) => [k.name, k.share])).toEqual([
      ['output', 0.75],
      ['uncached_input', 0.2],
    ]);
  });

  it('an empty period has no contributors and no shares', () => {
    expect(runawayContributors(rows, at(3), at(8))).toEqual({
      total: 0n,
      models: { top: [], rest: { count: 0, cost: 0n, share: 0 } },
      tokenKinds: { top: [], rest: { count: 0, cost: 0n, share: 0 } },
    });
  });
});

describe('rate-limit headroom', () => {
  const window = { from: new Date(MONDAY), until: new Date(MONDAY + 9 * MINUTE) };
  const usage = (model: string, input: number, cacheRead: number, output: number): TokenUsageMinute[] =>
    Array.from({ length: 10 }, (_, i) => ({
      minute: new Date(MONDAY + i * MINUTE),
      model,
      uncachedInputTokens: input,
      cacheReadInputTokens: cacheRead,
      cacheCreationInputTokens: 0,
      outputTokens: output,
    }));
  const sonnet = {
    models: ['claude-sonnet-4-5'],
    limits: [
      { type: 'requests_per_minute', value: 4000 },
      { type: 'input_tokens_per_minute_cache_aware', value: 1_000_000 },
      { type: 'output_tokens_per_minute', value: 100_000 },
    ],
  };

  it('flags a limit used at 80% or more over the window; cache reads do not count towards a cache-aware limit', () => {
    const readings = assessHeadroom(usage('claude-sonnet-4-5-20250929', 500_000, 2_000_000, 85_000), [sonnet], window);
    expect(readings.map((r) => [r.limitType, r.utilization, r.atRisk])).toEqual([
      ['input_tokens_per_minute_cache_aware', 0.5, false],
      ['output_tokens_per_minute', 0.85, true],
    ]);
    expect(readings[1]).toMatchObject({ meanPerMinute: 85_000, peakPerMinute: 85_000, peakMinute: new Date(MONDAY) });
  });

  it('empty minutes count: a burst in one minute of the window is not sustained use', () => {
    const burst = usage('claude-sonnet-4-5', 0, 0, 0);
    burst[4]!.outputTokens = 95_000;
    const [, output] = assessHeadroom(burst, [sonnet], window);
    expect(output).toMatchObject({ utilization: 0.095, atRisk: false, peakPerMinute: 95_000 });
    expect(output!.peakMinute).toEqual(new Date(MONDAY + 4 * MINUTE));
  });

  it('fast-mode limits count fast-mode usage only, and are skipped without it; per-day and per-second limits', () => {
    const group = {
      id: 'rlg_01S',
      models: ['claude-sonnet-4-5'],
      limits: [
        { type: 'fast_otpm', value: 10_000 },
        { type: 'tokens_per_day', value: 1_000_000 },
        { type: 'enqueued_batch_requests', value: 5 },
      ],
    };
    const all = usage('claude-sonnet-4-5', 1_000, 0, 50_000);
    const fast = usage('claude-sonnet-4-5', 0, 0, 9_000);
    const day = [{ ...all[0]!, uncachedInputTokens: 500_000, outputTokens: 400_000 }];
    expect(assessHeadroom(all, [group], window).map((r) => r.limitType)).toEqual([]);
    const readings = assessHeadroom(all, [group], window, 0.8, { fast, lastDay: day });
    expect(readings.map((r) => [r.limitType, r.per, r.utilization, r.atRisk, r.groupId])).toEqual([
      ['fast_otpm', 'minute', 0.9, true, 'rlg_01S'],
      ['tokens_per_day', 'day', 0.9, true, 'rlg_01S'],
    ]);
    const web = { type: 'web_search', models: null, limits: [{ type: 'tool_uses_per_second', value: 1 }] };
    const searches = all.map((u) => ({ ...u, webSearchRequests: 30 }));
    expect(assessHeadroom(searches, [group, web], window).map((r) => [r.limitType, r.used])).toEqual([
      ['tool_uses_per_second', 0.5],
    ]);
    expect(limiterLabel('fast_itpmca')).toBe('fast-mode input tokens per minute (cache-aware)');
    expect(limiterLabel('brand_new_limiter')).toBe('brand new limiter');
  });

  it('models are matched exactly or as dated snapshots; a catch-all group takes the models no group names', () => {
    const opus4 = { models: ['claude-opus-4'], limits: [{ type: 'output_tokens_per_minute', value: 10_000 }] };
    const rest = { models: null, limits: [{ type: 'input_tokens_per_minute', value: 100_000 }] };
    const traffic = [
      ...usage('claude-opus-4-1-20250805', 90_000, 0, 9_000),
      ...usage('claude-opus-4-20250514', 0, 0, 1_000),
    ];
    const readings = assessHeadroom(traffic, [opus4, rest], window);
    // claude-opus-4-1 is not claude-opus-4: its output does not count against that group, its input goes to the rest.
    expect(readings.map((r) => [r.models, r.utilization])).toEqual([
      [['claude-opus-4'], 0.1],
      [null, 0.9],
    ]);
  });
});
