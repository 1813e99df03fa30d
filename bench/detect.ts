/**
 * Runaway detection against the emulator: alert latency, detection rate by size, false alerts per 30 days.
 *
 *   npm run bench -- detect [--keys 500] [--days 30] [--runaways 200] [--sample-keys 100] [--seed 1]
 *
 * The organization is an emulator scenario built here: `keys` keys in 25 workspaces with the emulator's seasonal
 * traffic (daily curve, weekends, per-minute noise, bursty keys active in a share of minutes, model mixes) and
 * `runaways` runaway events at random times on random keys during the evaluated days: 3 in 4 are steps to ×3–×50
 * (log-uniform) for 30 min to 6 h, 1 in 4 slow ramps to ×10–×50 over 1–6 h. A runaway is a loop: its extra
 * traffic comes in every minute, on bursty keys too (src/emulator/traffic.ts). The emulator serves it over HTTP with a
 * 5-minute data delay, on a simulated clock the bench moves; usage is read through keywarden's AdminClient the way
 * poll-usage reads it (buckets grouped by key and model, priced with keywarden's price table), each range once the
 * emulator shows all of it.
 *
 * What is sampled. Reading every minute of 500 keys for 30 days over HTTP takes about 8 minutes (JSON and
 * validation of ~25 million rows), so the bench reads and replays:
 * - every minute of the evaluated days on `sample-keys` keys drawn at random (their alerts outside runaways are the
 *   false alerts, per 100 keys per 30 days), and
 * - on every runaway's key, the stretch from an hour before the runaway to an hour after it (detection, latency);
 * each with the 48 hours of minutes before it that poll-usage keeps, and hourly usage of all read keys for the five
 * weeks of baseline history and the evaluated days. Every injected runaway is replayed in full.
 *
 * Keywarden's detection is replayed for every simulated minute as the worker runs it after each poll: production's
 * plan (planDetection in src/anomaly/core/plan.ts: its data edge, where a minute counts as complete 5 minutes after it
 * ended and later minutes are partial; its baseline once an hour; its runaway state carried from minute to minute),
 * one key at a time, with the hourly baseline of src/anomaly/core/baseline.ts given squares and minute counts only
 * for the last 48 hours and the key's workspace profile (its workspace's hourly spend and the largest key's share of
 * it over the history), as loadDetectionInput gives it. At each clock minute the replay sees exactly the minutes the
 * emulator showed at that time: m + 1 + delay ≤ clock, for a delay of 5 minutes (the emulator's) and of 0 (the same
 * data shown at once). Postgres, the alert lifecycle and workspace alerts are not in the loop;
 * test/integration/detect-anomalies.test.ts covers them, test/unit/detection-plan.test.ts the plan's other rules.
 *
 * Figures: latency from a runaway's first minute (for ramps: the minute its multiple reached `factor`) to the clock
 * minute of the alert; detection by size, "above the floor" meaning the rate the key actually spent at during the
 * runaway (from that minute to its end, read from its minutes) reached min_hourly_usd; the steps of ×factor and more
 * split by the key's rhythm (spending every minute, or bursty) and by how far above its bar the runaway ran; a false
 * alert is a `fire` on a sampled key with no runaway running (or just ended), counted by the evidence that fired it.
 * Minutes where no visible minute of the look-back reaches half the threshold are skipped (the detector cannot fire
 * there), as in detect-sim.
 *
 * Beside keywarden, the oracle (bench/oracle.ts): per key, a CUSUM on the key's true law of spend per minute (its
 * mean from the daily curve and weekends, its active share and noise, read from the emulator's traffic parameters
 * and priced with keywarden's table), on the same minutes with the same delay, its threshold tuned on every key's
 * change-free traffic over the `days` days before the evaluated ones to the same budget (≤ 1 false alert per 100
 * keys per 30 days). Per class it prints keywarden's p50/p95 beside the oracle's, and the ratio: how far keywarden is
 * from the fastest detection this data allows; and the oracle's false alarms on the sampled keys.
 */

import { parseArgs } from 'node:util';
import {
  type Baseline,
  type HourlySpend,
  minuteFigures,
  typicalRate,
  type WorkspaceProfile,
} from '../src/anomaly/core/baseline.ts';
import type { ExpectedMark } from '../src/anomaly/core/expected.ts';
import {
  type DetectionInput,
  detectionRange,
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
import { AdminClient } from '../src/anthropic/client.ts';
import type { UsageGroupBy } from '../src/anthropic/types.ts';
import { fixedClock } from '../src/clock.ts';
import { policySchema } from '../src/config/policy.ts';
import { Secret } from '../src/config/secret.ts';
import { parseScenario } from '../src/emulator/scenario.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { baseFlow, type KeyTraffic, seasonalFlow } from '../src/emulator/traffic.ts';
import { picoToNumberUsd } from '../src/money.ts';
import { MINUTE_MS } from '../src/time.ts';
import { PRICE_TABLE } from '../src/usage/core/prices.ts';
import { priceUsage } from '../src/usage/core/pricing.ts';
import { prng } from './_prng.ts';
import { quantile } from './_stats.ts';
import {
  ALTERNATIVES,
  type ClassLatencies,
  comparisonTable,
  cusum,
  emulatorLaw,
  episodes,
  logLikelihoodRatios,
  type MinuteLaw,
  thresholdFor,
} from './oracle.ts';

const HOUR = 60;
const DAY = 1440;
/** Hourly history before the first evaluated day: the baseline's five weeks. */
const HISTORY_DAYS = 35;
/** Hours of 1-minute usage before any evaluated minute: poll-usage keeps 48 hours of minutes (squares for the baseline). */
const SQUARES_HOURS = 48;
const WORKSPACES = 25;
const EMULATOR_DELAY = 5;
const DELAYS = [0, EMULATOR_DELAY] as const;
/** Monday 2026-03-02 00:00 UTC: the first evaluated minute and the scenario's start. */
const EVAL_START_MS = Date.UTC(2026, 2, 2);
const ADMIN_KEY = 'sk-ant-admin01-keywarden-bench-detect-0001';
/** A runaway's replay starts this long before it and runs this long after it ended (its alert may be late). */
const REPLAY_BEFORE = HOUR;
const REPLAY_AFTER = HOUR;
/** Key ids per filtered usage request (they go into the query string). */
const IDS_PER_REQUEST = 100;
/** What pricing needs beside the key or workspace: the model, its tier and its context window. */
const PRICED_BY = ['model', 'service_tier', 'context_window'] as const;

const MODEL_MIXES: Array<Record<string, number>> = [
  { 'claude-sonnet-4-5': 1 },
  { 'claude-haiku-4-5': 1 },
  { 'claude-sonnet-4-5': 0.7, 'claude-haiku-4-5': 0.3 },
  { 'claude-opus-4-5': 0.6, 'claude-sonnet-4-5': 0.4 },
];

/**
 * The planned batch job case: on a few keys (that carry $4/h or more, and no injected runaway), spend steps to ×8 for
 * 4 hours; the key is marked as expected (src/anomaly/core/expected.ts) at its first alert, for 24 hours, covering
 * the rate that alert reported; 2 hours in, a ×10 jump on top of the job runs for 30 minutes (×80 the key's usual).
 * It must fire once for the job, not again while the job runs, and again for the jump.
 */
const PLANNED_BATCHES = 3;
interface PlannedBatch {
  key: number;
  start: number;
  end: number;
  jumpStart: number;
  jumpEnd: number;
}

interface InjectedRunaway {
  key: number;
  start: number;
  end: number;
  factor: number;
  rampMinutes: number;
}

export function buildScenario(opts: { keys: number; days: number; runaways: number; seed: number }) {
  const rand = prng(opts.seed);
  const logUniform = (lo: number, hi: number) => lo * (hi / lo) ** rand();
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)]!;
  const workspaces = Array.from({ length: WORKSPACES }, (_, i) => ({ name: `ws-${i + 1}`, age_days: 500 }));
  const keys = Array.from({ length: opts.keys }, (_, i) => {
    const bursty = rand() < 0.3;
    return {
      name: `key-${i}`,
      workspace: workspaces[Math.floor(WORKSPACES * rand() ** 2)]!.name,
      age_days: 400,
      traffic: {
        tokens_per_minute: Math.round(logUniform(300, 80_000)),
        models: pick(MODEL_MIXES),
        active_share: bursty ? Math.round(logUniform(0.05, 0.6) * 1000) / 1000 : 1,
        daily_amplitude: Math.round((0.1 + 0.85 * rand()) * 100) / 100,
        peak_hour_utc: Math.floor(8 + 12 * rand()),
        weekend_factor: Math.round((0.15 + 0.85 * rand()) * 100) / 100,
        noise: Math.round((0.1 + 0.4 * rand()) * 100) / 100,
        seed: i + 1,
      },
    };
  });
  const injected: InjectedRunaway[] = [];
  for (let n = 0; injected.length < opts.runaways && n < opts.runaways * 50; n++) {
    const key = Math.floor(rand() * opts.keys);
    const ramp = rand() < 0.25;
    const rampMinutes = ramp ? Math.round(60 + 300 * rand()) : 0;
    const length = ramp ? rampMinutes + Math.round(30 + 90 * rand()) : Math.round(logUniform(30, 360));
    const start = Math.floor(rand() * (opts.days * DAY - length - 60)) + 60;
    const end = start + length;
    if (injected.some((r) => r.key === key && r.start < end + 2 * HOUR && start < r.end + 2 * HOUR)) continue;
    injected.push({ key, start, end, factor: ramp ? logUniform(10, 50) : logUniform(3, 50), rampMinutes });
  }
  const planned: PlannedBatch[] = [];
  for (let n = 0; planned.length < PLANNED_BATCHES && n < opts.keys * 10; n++) {
    const key = Math.floor(rand() * opts.keys);
    if (keys[key]!.traffic.tokens_per_minute < 20_000) continue;
    if (injected.some((r) => r.key === key) || planned.some((p) => p.key === key)) continue;
    const start = Math.floor(rand() * (opts.days * DAY - 6 * HOUR)) + HOUR;
    planned.push({ key, start, end: start + 4 * HOUR, jumpStart: start + 2 * HOUR, jumpEnd: start + 2 * HOUR + 30 });
  }
  const scenario = parseScenario(
    {
      name: 'bench-detect',
      seed: opts.seed,
      admin_keys: [ADMIN_KEY],
      freshness_delay_minutes: EMULATOR_DELAY,
      traffic_defaults: { cache_read_ratio: 0.3, cache_write_5m_ratio: 0.05, output_ratio: 0.2 },
      workspaces,
      keys,
      events: [
        ...injected.map((r) => ({
          type: 'runaway',
          key: `key-${r.key}`,
          at_minutes: r.start,
          factor: Math.round(r.factor * 100) / 100,
          duration_minutes: r.end - r.start,
          ramp_minutes: r.rampMinutes,
        })),
        // overlapping runaways multiply: the jump is ×10 the job's rate
        ...planned.flatMap((p) => [
          { type: 'runaway', key: `key-${p.key}`, at_minutes: p.start, factor: 8, duration_minutes: p.end - p.start },
          { type: 'runaway', key: `key-${p.key}`, at_minutes: p.jumpStart, factor: 10, duration_minutes: 30 },
        ]),
      ],
    },
    'bench-detect',
  );
  return {
    scenario,
    injected,
    planned,
    activeShare: keys.map((k) => k.traffic.active_share),
  };
}

/**
 * A stretch of one key's 1-minute usage to read, and the clock minutes replayed on it (minutes from the first
 * evaluated minute). The data starts SQUARES_HOURS and a look-back before the first replayed minute.
 */
interface Segment {
  key: number;
  from: number;
  to: number;
  evalFrom: number;
  evalTo: number;
}

const policy = policySchema.parse({}).anomaly;
const LOOKBACK = recentMinutesNeeded(policy);
const PARTIAL = 15;
const HISTORY_HOURS = 5 * 168 + 2;

/**
 * What is read and replayed: every minute of the evaluated days on the sampled keys (false alerts), and on every
 * runaway's key the stretch around the runaway (detection and latency). Overlapping stretches of a key are merged.
 */
export function planSegments(
  built: ReturnType<typeof buildScenario>,
  opts: { keys: number; days: number; sampleKeys: number; seed: number },
): { sample: number[]; segments: Segment[] } {
  const rand = prng(opts.seed + 0x5a3e);
  const order = Array.from({ length: opts.keys }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const sample = order.slice(0, Math.min(opts.sampleKeys, opts.keys)).sort((a, b) => a - b);
  const lead = SQUARES_HOURS * HOUR + LOOKBACK + HOUR;
  const wanted: Segment[] = sample.map((key) => ({
    key,
    from: -lead,
    to: opts.days * DAY,
    evalFrom: 0,
    evalTo: opts.days * DAY,
  }));
  for (const r of built.injected) {
    const evalFrom = Math.max(0, r.start - REPLAY_BEFORE);
    const evalTo = Math.min(opts.days * DAY, r.end + REPLAY_AFTER);
    wanted.push({ key: r.key, from: evalFrom - lead, to: evalTo, evalFrom, evalTo });
  }
  for (const p of built.planned) {
    const evalFrom = Math.max(0, p.start - REPLAY_BEFORE);
    const evalTo = Math.min(opts.days * DAY, p.end + REPLAY_AFTER);
    wanted.push({ key: p.key, from: evalFrom - lead, to: evalTo, evalFrom, evalTo });
  }
  wanted.sort((a, b) => a.key - b.key || a.from - b.from);
  const segments: Segment[] = [];
  for (const s of wanted) {
    const last = segments.at(-1);
    if (last && last.key === s.key && s.from <= last.to) {
      last.to = Math.max(last.to, s.to);
      last.evalTo = Math.max(last.evalTo, s.evalTo);
    } else segments.push({ ...s, from: Math.floor(s.from / HOUR) * HOUR });
  }
  return { sample, segments };
}

/** One key's usage as the bench read it: USD per hour of the whole period, USD per minute of its segments. */
export interface KeyUsage {
  /** Index 0 = HISTORY_DAYS before the first evaluated minute, through the last evaluated day. */
  hourly: Float64Array;
  minutes: Map<Segment, Float64Array>;
  /** Its workspace's profile, as production gives a key too young for a history of its own. */
  workspace: WorkspaceProfile;
}

/**
 * Reads usage through keywarden's client, as poll-usage would: hourly buckets for the history and the evaluated days
 * (7 days a request), 1-minute buckets for the segments (a day a request for the sampled keys together, each
 * runaway's stretch on its own), each range once the emulator's clock shows all of it. For the workspace profiles
 * production builds: every workspace's hourly spend, and every key's daily spend over the history (its share).
 */
export async function readUsage(
  opts: { keys: number; days: number },
  built: ReturnType<typeof buildScenario>,
  plan: ReturnType<typeof planSegments>,
): Promise<{ usage: Map<number, KeyUsage>; requests: number; traffic: KeyTraffic[] }> {
  const clock = fixedClock(new Date(EVAL_START_MS));
  const emulator = await startEmulator({ scenario: built.scenario, clock, startAt: new Date(EVAL_START_MS) });
  const client = new AdminClient({ baseUrl: emulator.url, adminKey: new Secret(ADMIN_KEY) });
  const keyIds = emulator.state.keys.map((k) => k.id);
  const keyIndex = new Map(keyIds.map((id, i) => [id, i]));
  const historyStart = -HISTORY_DAYS * DAY;
  const hours = (HISTORY_DAYS + opts.days) * 24;
  const workspaceOf = emulator.state.keys.map((k) => k.workspace?.id ?? 'default');
  const workspaceHourly = new Map<string, Float64Array>();
  const keyTotals = new Map<string, number[]>();
  const usage = new Map<number, KeyUsage>();
  let requests = 0;
  const read = async (
    from: number,
    to: number,
    width: '1h' | '1m' | '1d',
    by: 'api_key_id' | 'workspace_id',
    keys: readonly number[] | null,
    add: (id: string | null, minute: number, usd: number) => void,
  ) => {
    clock.set(new Date(EVAL_START_MS + (to + 1 + EMULATOR_DELAY) * MINUTE_MS));
    const batches: Array<string[] | null> = keys === null ? [null] : [];
    for (let i = 0; keys !== null && i < keys.length; i += IDS_PER_REQUEST) {
      batches.push(keys.slice(i, i + IDS_PER_REQUEST).map((k) => keyIds[k]!));
    }
    for (const apiKeyIds of batches) {
      const report = client.usageReport({
        startingAt: new Date(EVAL_START_MS + from * MINUTE_MS),
        endingAt: new Date(EVAL_START_MS + to * MINUTE_MS),
        bucketWidth: width,
        groupBy: [by, ...PRICED_BY] satisfies UsageGroupBy[],
        ...(apiKeyIds ? { apiKeyIds } : {}),
      });
      for await (const page of report.pages()) {
        requests++;
        for (const bucket of page.data) {
          const at = bucket.starting_at;
          const minute = Math.round((at.getTime() - EVAL_START_MS) / MINUTE_MS);
          for (const r of bucket.results) {
            add(r[by] ?? null, minute, picoToNumberUsd(priceUsage(r, PRICE_TABLE, at).cost));
          }
        }
      }
    }
  };
  try {
    for (let from = historyStart; from < opts.days * DAY; from += 7 * DAY) {
      await read(from, Math.min(from + 7 * DAY, opts.days * DAY), '1h', 'workspace_id', null, (w, m, usd) => {
        const scope = w ?? 'default';
        const hourly = workspaceHourly.get(scope) ?? new Float64Array(hours);
        hourly[(m - historyStart) / HOUR]! += usd;
        workspaceHourly.set(scope, hourly);
      });
    }
    const totals = new Float64Array(opts.keys);
    for (let from = historyStart; from < 0; from += 7 * DAY) {
      await read(from, Math.min(from + 7 * DAY, 0), '1d', 'api_key_id', null, (id, _m, usd) => {
        const k = id === null ? undefined : keyIndex.get(id);
        if (k !== undefined) totals[k]! += usd;
      });
    }
    for (const [k, usd] of totals.entries()) {
      keyTotals.set(workspaceOf[k]!, [...(keyTotals.get(workspaceOf[k]!) ?? []), usd]);
    }
    const hourAt = (h: number) => new Date(EVAL_START_MS + (historyStart + h * HOUR) * MINUTE_MS);
    const profiles = new Map<string, WorkspaceProfile>();
    for (const [w, hourly] of workspaceHourly) {
      profiles.set(w, {
        history: Array.from(hourly, (usd, h) => ({ hour: hourAt(h), usd })),
        largestKeyShare: largestKeyShare(keyTotals.get(w) ?? []),
      });
    }
    const noSpend: WorkspaceProfile = { history: [], largestKeyShare: 1 };
    for (const s of plan.segments) {
      let u = usage.get(s.key);
      if (!u) {
        const workspace = profiles.get(workspaceOf[s.key]!) ?? noSpend;
        u = { hourly: new Float64Array(hours), minutes: new Map(), workspace };
        usage.set(s.key, u);
      }
      u.minutes.set(s, new Float64Array(s.to - s.from));
    }
    const keyOf = (id: string | null) => (id === null ? undefined : keyIndex.get(id));

    const all = [...usage.keys()];
    for (let from = historyStart; from < opts.days * DAY; from += 7 * DAY) {
      await read(from, Math.min(from + 7 * DAY, opts.days * DAY), '1h', 'api_key_id', all, (id, m, usd) => {
        const k = keyOf(id);
        if (k !== undefined) usage.get(k)!.hourly[(m - historyStart) / HOUR]! += usd;
      });
    }
    // A sampled key has one segment: the whole evaluated period (its runaways' stretches lie inside it).
    const sampled = new Map(plan.segments.filter((s) => plan.sample.includes(s.key)).map((s) => [s.key, s]));
    const first = sampled.values().next().value;
    if (first) {
      for (let from = first.from; from < first.to; from += DAY) {
        await read(from, Math.min(from + DAY, first.to), '1m', 'api_key_id', plan.sample, (id, m, usd) => {
          const k = keyOf(id);
          if (k === undefined) return;
          const s = sampled.get(k)!;
          usage.get(k)!.minutes.get(s)![m - s.from]! += usd;
        });
      }
    }
    for (const s of plan.segments) {
      if (plan.sample.includes(s.key)) continue;
      const minutes = usage.get(s.key)!.minutes.get(s)!;
      await read(s.from, s.to, '1m', 'api_key_id', [s.key], (id, m, usd) => {
        if (keyOf(id) !== undefined) minutes[m - s.from]! += usd;
      });
    }
  } finally {
    await emulator.close();
  }
  return { usage, requests, traffic: emulator.state.keys.map((k) => k.traffic) };
}

interface Alert {
  clock: number;
  since: number;
  evidence: RunawayEvidence;
}

/** The replayed key's id in the plan's input (the plan sees one key at a time, its workspace not judged). */
const KEY_ID = 'apikey_replayed';
const KEY_SCOPE = scopeKey('key', KEY_ID);
const NONE = new Map();

/**
 * The detector's alerts on one segment of a key, replayed minute by minute with data `delay` minutes late, through
 * production's plan (planDetection) with its state carried from minute to minute. Baselines are hourly, from the
 * key's hourly spend with squares for the last SQUARES_HOURS (from the segment's minutes) and its workspace's profile.
 */
export function replaySegment(u: KeyUsage, s: Segment, delay: number, markAtFirstAlert = false): Alert[] {
  let mark: ExpectedMark | null = null;
  const minutes = u.minutes.get(s)!;
  const historyStart = -HISTORY_DAYS * DAY;
  const hourAt = (h: number) => new Date(EVAL_START_MS + (historyStart + h * HOUR) * MINUTE_MS);
  // Highest minute of the span the detector reads, ending at each minute (sliding maximum).
  const span = LOOKBACK + PARTIAL;
  const spanMax = new Float64Array(minutes.length);
  const queue: number[] = [];
  let head = 0;
  for (let m = 0; m < minutes.length; m++) {
    while (queue.length > head && minutes[queue.at(-1)!]! <= minutes[m]!) queue.pop();
    queue.push(m);
    if (queue[head]! <= m - span) head++;
    spanMax[m] = minutes[queue[head]!]!;
  }

  const alerts: Alert[] = [];
  const baselines = new Map<number, { baseline: Baseline; perMinute: number }>();
  let state: ScopeState | null = null;
  for (let clock = s.evalFrom; clock < s.evalTo; clock++) {
    const clockMs = EVAL_START_MS + clock * MINUTE_MS;
    // the poll ran at `clock` and committed up to the minute before it
    const now = new Date(clockMs);
    const settled = new Date(clockMs - MINUTE_MS);
    const dataUntilMs = detectionRange(now, settled, policy)!.dataUntil.getTime();
    const dataUntil = clock + (dataUntilMs - clockMs) / MINUTE_MS;
    const visibleUntil = Math.min(clock - 1 - delay, dataUntil + PARTIAL);
    const hour = Math.floor((dataUntil - historyStart) / HOUR); // into u.hourly
    let b = baselines.get(hour);
    if (!b) {
      const history: HourlySpend[] = [];
      for (let h = Math.max(0, hour - HISTORY_HOURS); h < hour; h++) {
        // The minute figures from the 1-minute rows poll-usage keeps; the hourly total as the 1h report gave it.
        const figures = h >= hour - SQUARES_HOURS ? minuteFigures(minutes, historyStart + h * HOUR - s.from) : {};
        history.push({ ...figures, hour: hourAt(h), usd: u.hourly[h]! });
      }
      const baseline = typicalRate(history, u.workspace, new Date(dataUntilMs), policy);
      b = { baseline, perMinute: runawayThresholdHourlyUsd(baseline, policy) / 60 };
      baselines.set(hour, b);
    }
    // Nothing can fire when no visible minute of the look-back reaches half the threshold.
    if (!state?.runaway?.firing && spanMax[visibleUntil - s.from]! < 0.5 * b.perMinute) {
      state = null;
      continue;
    }
    const recent: MinuteSpend[] = [];
    for (let m = dataUntil - LOOKBACK + 1; m <= visibleUntil; m++) {
      recent.push({ minute: new Date(EVAL_START_MS + m * MINUTE_MS), usd: minutes[m - s.from]! });
    }
    const input: DetectionInput = {
      settled,
      series: { keys: new Map([[KEY_ID, { workspaceScope: 'default', recent }]]), workspaces: NONE },
      states: state ? new Map([[KEY_SCOPE, state]]) : NONE,
      keys: NONE,
      workspaces: NONE,
      baselines: new Map([[KEY_SCOPE, b.baseline]]),
      ...(mark ? { marks: [mark] } : {}),
    };
    const judged = planDetection(input, policy, now).judged[0]!;
    state = judged.state;
    if (judged.assessment.decision === 'fire' && markAtFirstAlert && mark === null) {
      // someone presses "Mark as expected: 24 hours" on the first alert
      const until = new Date(clockMs + 24 * 60 * MINUTE_MS);
      const covered = judged.assessment.currentHourlyUsd;
      mark = { scopeType: 'key', scopeId: KEY_ID, coveredHourlyUsd: covered, startsAt: now, until, markedBy: 'bench' };
    }
    if (judged.assessment.decision === 'fire') {
      alerts.push({
        clock,
        since: Math.round((judged.assessment.startedAt!.getTime() - EVAL_START_MS) / MINUTE_MS),
        evidence: judged.assessment.evidence!,
      });
    }
  }
  return alerts;
}

/** The multiple of a runaway at minute `m` (a ramp climbs from ×1 to its factor). */
function multipleAt(r: InjectedRunaway, m: number): number {
  return r.rampMinutes > 0 ? 1 + (r.factor - 1) * Math.min(1, (m - r.start + 1) / r.rampMinutes) : r.factor;
}

/** For ramps, the minute its multiple reached the policy's factor (latency counts from there); a step's start. */
function onset(r: InjectedRunaway): number {
  for (let m = r.start; m < r.end; m++) if (multipleAt(r, m) >= policy.factor) return m;
  return r.start;
}

/**
 * The rate the runaway actually spent at (USD/hour), from onset to end: what "above the floor" is judged on. Read
 * from the key's minutes, so a bursty key's runaway counts at the rate its bursts average to.
 */
function runawayRate(u: KeyUsage, r: InjectedRunaway): number {
  for (const [s, minutes] of u.minutes) {
    if (r.start < s.from || r.end > s.to) continue;
    let sum = 0;
    for (let m = onset(r); m < r.end; m++) sum += minutes[m - s.from]!;
    return (sum / (r.end - onset(r))) * 60;
  }
  throw new Error(`runaway on key-${r.key} at minute ${r.start} was not read`);
}

/** Keys' alerts per delay: false alerts, detection and latency, printed. */
export function report(
  built: ReturnType<typeof buildScenario>,
  plan: ReturnType<typeof planSegments>,
  usage: Map<number, KeyUsage>,
  opts: { days: number },
  oracle: OracleRun,
): void {
  const window = policy.window_minutes;
  for (const delay of DELAYS) {
    console.log(`\ndata delay ${delay} min`);
    const alerts = new Map<Segment, Alert[]>();
    for (const s of plan.segments) alerts.set(s, replaySegment(usage.get(s.key)!, s, delay));
    const belongs = (r: InjectedRunaway, a: Alert) => a.clock >= r.start && a.clock <= r.end + window + delay + 5;
    const outcome = (r: InjectedRunaway) => {
      for (const [s, list] of alerts) if (s.key === r.key) for (const a of list) if (belongs(r, a)) return a;
      return null;
    };
    const aboveFloor = (r: InjectedRunaway) => runawayRate(usage.get(r.key)!, r) >= policy.min_hourly_usd;
    const line = (label: string, rs: InjectedRunaway[]) => {
      const latencies = rs.flatMap((r) => {
        const a = outcome(r);
        return a ? [Math.max(0, a.clock - onset(r))] : [];
      });
      latencies.sort((a, b) => a - b);
      return (
        `  ${label}: ${latencies.length}/${rs.length} detected` +
        (latencies.length
          ? `, latency p50 ${quantile(latencies, 0.5)} / p95 ${quantile(latencies, 0.95)} / max ${latencies.at(-1)} min`
          : '')
      );
    };
    const steps = built.injected.filter((r) => r.rampMinutes === 0);
    const targeted = steps.filter((r) => r.factor >= policy.factor && aboveFloor(r));
    console.log(line(`steps ×${policy.factor}+ above the floor`, targeted));
    const share = (r: InjectedRunaway) => built.activeShare[r.key]!;
    console.log(
      `  ${line(
        '  on keys that spend every minute',
        targeted.filter((r) => share(r) === 1),
      )}`,
    );
    console.log(
      `  ${line(
        '  on bursty keys',
        targeted.filter((r) => share(r) < 1),
      )}`,
    );
    // How far above its bar a runaway runs decides how soon noise lets it be told: min(factor ÷ policy factor,
    // rate ÷ min_hourly_usd), the bar being the larger of factor × typical and the floor.
    const margin = (r: InjectedRunaway) =>
      Math.min(r.factor / policy.factor, runawayRate(usage.get(r.key)!, r) / policy.min_hourly_usd);
    for (const [label, lo, hi] of [
      ['less than 1.5×', 0, 1.5],
      ['1.5× or more', 1.5, Number.POSITIVE_INFINITY],
    ] as const) {
      const inBand = targeted.filter((r) => margin(r) >= lo && margin(r) < hi);
      console.log(
        `      ${label} above their bar: ${line(
          'every-minute keys',
          inBand.filter((r) => share(r) === 1),
        ).trim()}; ` +
          `${line(
            'bursty keys',
            inBand.filter((r) => share(r) < 1),
          ).trim()}`,
      );
    }
    for (const [label, lo, hi] of [
      ['×3–5', 3, 5],
      ['×5–10', 5, 10],
      ['×10–50', 10, 51],
    ] as const) {
      const inBucket = steps.filter((r) => r.factor >= lo && r.factor < hi);
      const below = inBucket.filter((r) => !aboveFloor(r));
      console.log(
        `${line(`${label.padEnd(7)} steps above the floor`, inBucket.filter(aboveFloor))}; below the floor: ` +
          `${below.length} (${below.filter((r) => outcome(r) !== null).length} alerted)`,
      );
    }
    const ramps = built.injected.filter((r) => r.rampMinutes > 0);
    console.log(
      `${line('ramps   above the floor', ramps.filter(aboveFloor))} (latency from the minute it reached ×${policy.factor})`,
    );
    const falseAlerts: Alert[] = [];
    for (const [s, list] of alerts) {
      if (!plan.sample.includes(s.key) || built.planned.some((p) => p.key === s.key)) continue;
      for (const a of list) if (!built.injected.some((r) => r.key === s.key && belongs(r, a))) falseAlerts.push(a);
    }
    let marked = 0;
    let again = 0;
    const jumps: number[] = [];
    for (const p of built.planned) {
      const s = plan.segments.find((g) => g.key === p.key && g.evalFrom <= p.start && g.evalTo >= p.end)!;
      const list = replaySegment(usage.get(p.key)!, s, delay, true).filter((a) => a.clock >= p.start);
      const first = list[0];
      if (first === undefined || first.clock >= p.jumpStart) continue;
      marked++;
      const jump = list.find((a) => a.clock >= p.jumpStart && a.clock <= p.jumpEnd + window + delay + 5);
      if (jump) jumps.push(jump.clock - p.jumpStart);
      again += list.filter((a) => a !== first && a !== jump).length;
    }
    console.log(
      `  planned batch job (×8 for 4 h, marked expected at its first alert): ${marked}/${built.planned.length} ` +
        `alerted and marked; alerts again for the planned rate: ${again}; the ×10 jump on top: ` +
        `${jumps.length}/${marked} detected${jumps.length ? `, latency max ${Math.max(...jumps)} min` : ''}`,
    );
    const per100 = ((falseAlerts.length / plan.sample.length) * 100 * (30 / opts.days)).toFixed(2);
    const byEvidence = Object.entries(Object.groupBy(falseAlerts, (a) => a.evidence))
      .map(([evidence, list]) => `${list!.length} ${evidence}`)
      .join(', ');
    console.log(
      `  false alerts on the ${plan.sample.length} sampled keys: ${falseAlerts.length} = ${per100} per 100 keys ` +
        `per 30 days${byEvidence ? ` (${byEvidence})` : ''}`,
    );

    // The oracle, on the same data with the same delay: an alarm at data minute m is raised at clock m + 1 + delay.
    const oracleClocks = new Map([...oracle.alarms].map(([s, list]) => [s, list.map((m) => m + 1 + delay)]));
    const latencies = (rs: InjectedRunaway[], first: (r: InjectedRunaway) => number | null) =>
      rs.flatMap((r) => {
        const clock = first(r);
        return clock === null ? [] : [Math.max(0, clock - onset(r))];
      });
    const oracleFirst = (r: InjectedRunaway) => {
      for (const [s, clocks] of oracleClocks) {
        if (s.key !== r.key) continue;
        const clock = clocks.find((c) => c >= r.start && c <= r.end + window + delay + 5);
        if (clock !== undefined) return clock;
      }
      return null;
    };
    const row = (label: string, rs: InjectedRunaway[]): ClassLatencies => ({
      label,
      runaways: rs.length,
      keywarden: latencies(rs, (r) => outcome(r)?.clock ?? null),
      oracle: latencies(rs, oracleFirst),
    });
    const everyMinute = targeted.filter((r) => share(r) === 1);
    console.log(
      `  against the oracle (bench/oracle.ts: CUSUM on each key's true law, threshold ${oracle.threshold.toFixed(1)}):`,
    );
    for (const text of comparisonTable([
      row(`steps ×${policy.factor}+ above the floor`, targeted),
      row(
        '  every-minute keys, 1.5× or more over the bar',
        everyMinute.filter((r) => margin(r) >= 1.5),
      ),
      row(
        '  every-minute keys, less than 1.5× over the bar',
        everyMinute.filter((r) => margin(r) < 1.5),
      ),
      row(
        '  bursty keys',
        targeted.filter((r) => share(r) < 1),
      ),
      row(
        '×3–5 steps above the floor',
        steps.filter((r) => r.factor < 5 && aboveFloor(r)),
      ),
      row(`ramps above the floor (from ×${policy.factor})`, ramps.filter(aboveFloor)),
    ])) {
      console.log(text);
    }
    let oracleFalse = 0;
    for (const [s, clocks] of oracleClocks) {
      if (!plan.sample.includes(s.key)) continue;
      for (const clock of episodes(clocks, RESOLVE_MINUTES)) {
        if (!built.injected.some((r) => r.key === s.key && clock >= r.start && clock <= r.end + window + delay + 5)) {
          oracleFalse++;
        }
      }
    }
    console.log(
      `  oracle false alarms on the ${plan.sample.length} sampled keys: ${oracleFalse} = ` +
        `${((oracleFalse / plan.sample.length) * 100 * (30 / opts.days)).toFixed(2)} per 100 keys per 30 days ` +
        `(threshold tuned on ${oracle.tuningKeyDays} change-free key-days before these: ${oracle.allowed} allowed)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The oracle (bench/oracle.ts): the fastest detection this data allows at keywarden's false alert budget

/** The first evaluated minute in minutes since the epoch, as the emulator's traffic counts them. */
const EPOCH_MINUTE = EVAL_START_MS / MINUTE_MS;
/** An oracle alarm within this many minutes of the one before is the same episode (keywarden resolves after 30). */
const RESOLVE_MINUTES = 30;
/** Relative change of a key's mean rate after which the oracle's laws are rebuilt. */
const RATE_STEP = 0.01;
/** ≤ 1 false alert per 100 keys per 30 days: key-days per false alert allowed. */
const KEY_DAYS_PER_FALSE_ALERT = 100 * 30;

/** USD per token of the key's flow: its slots (models, token kinds) priced with keywarden's table. */
function usdPerToken(t: KeyTraffic): number {
  const flow = 1_000_000;
  let pico = 0n;
  for (const slot of t.slots) {
    const input = flow * slot.share;
    const row = {
      model: slot.model,
      service_tier: slot.serviceTier,
      context_window: slot.contextWindow,
      uncached_input_tokens: Math.round(input * slot.uncachedRatio),
      cache_read_input_tokens: Math.round(input * slot.cacheReadRatio),
      cache_creation_5m_input_tokens: Math.round(input * slot.cacheWrite5mRatio),
      cache_creation_1h_input_tokens: Math.round(input * slot.cacheWrite1hRatio),
      output_tokens: Math.round(input * slot.outputRatio),
    };
    pico += priceUsage(row, PRICE_TABLE, new Date(EVAL_START_MS)).cost;
  }
  return picoToNumberUsd(pico) / flow;
}

/**
 * The oracle's minute-by-minute evidence on one key (minutes from the first evaluated minute): the key's true law
 * (its mean rate from the daily curve and weekends, its active share and noise, from the emulator's parameters)
 * against a runaway of ALTERNATIVES × its bar, max(factor × that mean, min_hourly_usd).
 */
function oracleEvidence(t: KeyTraffic, usdPerTok: number, usdAt: (m: number) => number) {
  const floor = policy.min_hourly_usd / 60;
  let rate = Number.NaN;
  let pre: MinuteLaw = { zero: 1, parts: [] };
  let alts: MinuteLaw[] = [];
  return (m: number, out: Float64Array) => {
    const mean = usdPerTok * seasonalFlow(t, EPOCH_MINUTE + m);
    // Rebuilt once the daily curve moved the mean by RATE_STEP (a 1% error in the mean is lost in a minute's noise).
    if (!(Math.abs(mean - rate) <= RATE_STEP * rate)) {
      rate = mean;
      const bar = Math.max(policy.factor * mean, floor);
      pre = emulatorLaw(mean, t.activeShare, t.noise);
      alts = ALTERNATIVES.map((k) => emulatorLaw(mean, t.activeShare, t.noise, k * bar - mean));
    }
    logLikelihoodRatios(alts, pre, usdAt(m), out);
  };
}

interface OracleRun {
  threshold: number;
  /** Key-days of change-free traffic it was tuned on, and the alarms the budget allows there. */
  tuningKeyDays: number;
  allowed: number;
  /** Per segment, the data minutes at which the oracle alarmed (it alarms at clock minute m + 1 + delay). */
  alarms: Map<Segment, number[]>;
}

/**
 * Tunes the oracle's threshold on change-free traffic: every key's own flow (no runaway) over the `days` days before
 * the evaluated ones, computed from the emulator's traffic function and priced per token, the lowest threshold with
 * at most the budget's false alarms; then runs it on the segments the bench read.
 */
function runOracle(
  traffic: readonly KeyTraffic[],
  plan: ReturnType<typeof planSegments>,
  usage: Map<number, KeyUsage>,
  opts: { days: number },
): OracleRun {
  const perToken = traffic.map(usdPerToken);
  const from = -opts.days * DAY;
  const peaks: number[] = [];
  const tuningOf = (k: number) =>
    oracleEvidence(traffic[k]!, perToken[k]!, (m) => perToken[k]! * baseFlow(traffic[k]!, EPOCH_MINUTE + m));
  for (let k = 0; k < traffic.length; k++) {
    peaks.push(...cusum(from, 0, ALTERNATIVES.length, tuningOf(k), Number.POSITIVE_INFINITY).peaks);
  }
  const tuningKeyDays = traffic.length * opts.days;
  const allowed = Math.floor(tuningKeyDays / KEY_DAYS_PER_FALSE_ALERT);
  const threshold = thresholdFor(peaks, allowed);
  const alarms = new Map<Segment, number[]>();
  for (const s of plan.segments) {
    const minutes = usage.get(s.key)!.minutes.get(s)!;
    const evidence = oracleEvidence(traffic[s.key]!, perToken[s.key]!, (m) => minutes[m - s.from]!);
    alarms.set(s, cusum(s.evalFrom, s.evalTo, ALTERNATIVES.length, evidence, threshold).alarms);
  }
  return { threshold, allowed, tuningKeyDays, alarms };
}

export function parseOptions(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      keys: { type: 'string', default: '500' },
      days: { type: 'string', default: '30' },
      runaways: { type: 'string', default: '200' },
      'sample-keys': { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
    },
  });
  const number = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: "${values[name]}" is not a positive integer`);
    return n;
  };
  return {
    keys: number('keys'),
    days: number('days'),
    runaways: number('runaways'),
    sampleKeys: number('sample-keys'),
    seed: number('seed'),
  };
}

export async function run(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const started = performance.now();
  const built = buildScenario(opts);
  const plan = planSegments(built, opts);
  const { usage, requests, traffic } = await readUsage(opts, built, plan);
  const readSeconds = (performance.now() - started) / 1000;
  const replayedDays = plan.segments.reduce((sum, s) => sum + s.evalTo - s.evalFrom, 0) / DAY;
  console.log(
    `detect: ${opts.keys} keys in ${WORKSPACES} workspaces, ${opts.days} days after ${HISTORY_DAYS} days of history, ` +
      `${built.injected.length} runaways injected; policy factor ${policy.factor}, min_hourly_usd ` +
      `${policy.min_hourly_usd}, window ${policy.window_minutes} min\n` +
      `read over HTTP: ${requests} usage requests in ${readSeconds.toFixed(0)} s; replayed minute by minute: ` +
      `every minute of ${plan.sample.length} sampled keys (false alerts) and each runaway's key from ` +
      `${REPLAY_BEFORE} min before to ${REPLAY_AFTER} min after it, ${replayedDays.toFixed(0)} key-days in all`,
  );
  const oracleStarted = performance.now();
  const oracle = runOracle(traffic, plan, usage, opts);
  console.log(`oracle: tuned and run in ${((performance.now() - oracleStarted) / 1000).toFixed(0)} s`);
  report(built, plan, usage, opts, oracle);
  console.log(`\n${((performance.now() - started) / 1000).toFixed(0)} s in all`);
}
