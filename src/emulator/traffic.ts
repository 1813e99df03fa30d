import type { UsageResult } from '../anthropic/types.ts';
import { MINUTE_MS } from '../time.ts';
import { hash3, unit } from './random/hash.ts';
import type { TrafficSpec } from './scenario.ts';

/**
 * Usage as a pure function of (key, minute): nothing is stored, so any window, 60 days back included, costs the
 * same to ask for, and the same scenario and seed always give the same numbers.
 *
 * A key's flow for minute m (input-side tokens: uncached + cache reads + cache writes) is
 *
 *   tokens_per_minute / active_share        (on the minutes it is active at all: hash(seed, m) < active_share)
 *   × (1 + daily_amplitude · cos(2π (hour − peak_hour_utc) / 24))
 *   × weekend_factor on Saturdays and Sundays (UTC)
 *   × exp(noise · z − noise²/2)             (z ≈ N(0,1) from the hash; mean 1)
 *   × (1 − ramp share) while it migrates away
 *
 * and a key receiving a migration also carries `ramp share × the old key's flow`, with the old key's model mix.
 * During a runaway of factor f (reached at once, or over `ramp_minutes` for a slow ramp) the key also carries
 * (f − 1) × its mean flow in every minute, bursty keys included: a runaway is a loop (a retry storm, a stuck agent),
 * and a loop calls every minute whatever the key's usual rhythm. Its rate is f × the usual one; on a key active in
 * every minute this is the same as multiplying its traffic by f.
 * The flow is split into slots (model × service tier × context window, by share), and each slot into token kinds
 * by the key's ratios; every count is rounded per minute, so a 1h bucket is exactly the sum of its 1m buckets.
 * A key produces nothing in a minute that starts before it exists or while it is not active (inactive, archived,
 * expired, or its workspace archived). Idle keys cost one comparison; keys with active_share < 1 cost one hash on
 * their quiet minutes, which is what keeps a 5,000-key organization cheap.
 */

export type ServiceTier = 'standard' | 'batch';
export type ContextWindow = '0-200k' | '200k-1M';

export interface UsageSlot {
  model: string;
  modelIndex: number;
  serviceTier: ServiceTier;
  tierIndex: number;
  contextWindow: ContextWindow;
  cwIndex: number;
  /** `not_available` for models before Opus 4.6, as the API reports them; `global` after. */
  inferenceGeo: string;
  geoIndex: number;
  /** Share of the key's flow. */
  share: number;
  uncachedRatio: number;
  cacheReadRatio: number;
  cacheWrite5mRatio: number;
  cacheWrite1hRatio: number;
  outputRatio: number;
  webSearchPerToken: number;
  /** Distinguishes the slot's stochastic rounding of web searches. */
  salt: number;
  /** Blocked requests: their tokens are reported as usage, and nothing is billed for them. */
  blocked: boolean;
}

export interface Migration {
  /** Key indices into the organization's key list. */
  from: number;
  to: number;
  startMinute: number;
  rampMinutes: number;
  share: number;
}

export interface KeyTraffic {
  seed: number;
  tokensPerMinute: number;
  activeShare: number;
  dailyAmplitude: number;
  peakHourUtc: number;
  weekendFactor: number;
  noise: number;
  slots: UsageSlot[];
  /** A step (rampMinutes 0) or a slow ramp: the multiple rises from 1 to `factor` over rampMinutes, then holds. */
  runaways: Array<{ fromMinute: number; toMinute: number; factor: number; rampMinutes: number }>;
  outgoing: Migration[];
  incoming: Migration[];
}

export type SettableStatus = 'active' | 'inactive' | 'archived';

/** When a key exists and which status it has when; status changes made through the API are appended here. */
export interface KeyLife {
  createdAt: number;
  expiresAt: number | null;
  /** When its workspace was archived (which archives the key). */
  archivedAt: number | null;
  /** Sorted by `at`; the first entry (at -Infinity) is the scenario's initial status. */
  statusChanges: Array<{ at: number; status: SettableStatus }>;
}

export interface TrafficKey {
  life: KeyLife;
  traffic: KeyTraffic;
}

/** Token counts of one slot in one minute; snake_case as the usage table and the pricing function take them. */
export type UsageCounts = Pick<
  UsageResult,
  | 'uncached_input_tokens'
  | 'cache_read_input_tokens'
  | 'cache_creation_5m_input_tokens'
  | 'cache_creation_1h_input_tokens'
  | 'output_tokens'
  | 'web_search_requests'
>;

export const SERVICE_TIERS: readonly ServiceTier[] = ['standard', 'batch'];
export const CONTEXT_WINDOWS: readonly ContextWindow[] = ['0-200k', '200k-1M'];
export const INFERENCE_GEOS = ['not_available', 'global'] as const;

const TWO_PI = 2 * Math.PI;
const SQRT3 = Math.sqrt(3);

/** Models from Opus 4.6 and Sonnet 4.6 on report an inference geo; earlier ones `not_available`. */
export function inferenceGeoOf(model: string): (typeof INFERENCE_GEOS)[number] {
  return /^claude-(opus|sonnet|haiku)-(4-[6-9]|[5-9])/.test(model) ? 'global' : 'not_available';
}

/** The status a key has at instant `t` (its own, or archived with its workspace, or expired). */
export function statusAt(life: KeyLife, t: number): SettableStatus | 'expired' {
  let status: SettableStatus = life.statusChanges[0]?.status ?? 'active';
  for (const change of life.statusChanges) {
    if (change.at > t) break;
    status = change.status;
  }
  if (status === 'archived') return status;
  if (life.archivedAt !== null && t >= life.archivedAt) return 'archived';
  if (life.expiresAt !== null && t >= life.expiresAt) return 'expired';
  return status;
}

/** Whether a key can carry traffic in the minute starting at `t`: it exists and is active at that instant. */
export function isLiveAt(life: KeyLife, t: number): boolean {
  return t >= life.createdAt && statusAt(life, t) === 'active';
}

/** Compiles a key's traffic. `modelIndex` registers models in the organization's catalogue. */
export function compileTraffic(spec: TrafficSpec, seed: number, modelIndex: (model: string) => number): KeyTraffic {
  const weights = Object.entries(spec.models);
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  const tiers: Array<[ServiceTier, number]> = [
    ['standard', 1 - spec.batch_share],
    ['batch', spec.batch_share],
  ];
  const windows: Array<[ContextWindow, number]> = [
    ['0-200k', 1 - spec.long_context_share],
    ['200k-1M', spec.long_context_share],
  ];
  const cacheRatio = spec.cache_read_ratio + spec.cache_write_5m_ratio + spec.cache_write_1h_ratio;
  const slots: UsageSlot[] = [];
  for (const [model, weight] of weights) {
    for (const [serviceTier, tierShare] of tiers) {
      for (const [contextWindow, cwShare] of windows) {
        const share = (weight / total) * tierShare * cwShare;
        if (share <= 0) continue;
        const inferenceGeo = inferenceGeoOf(model);
        slots.push({
          model,
          modelIndex: modelIndex(model),
          serviceTier,
          tierIndex: SERVICE_TIERS.indexOf(serviceTier),
          contextWindow,
          cwIndex: CONTEXT_WINDOWS.indexOf(contextWindow),
          inferenceGeo,
          geoIndex: INFERENCE_GEOS.indexOf(inferenceGeo),
          share,
          uncachedRatio: 1 - cacheRatio,
          cacheReadRatio: spec.cache_read_ratio,
          cacheWrite5mRatio: spec.cache_write_5m_ratio,
          cacheWrite1hRatio: spec.cache_write_1h_ratio,
          outputRatio: spec.output_ratio,
          webSearchPerToken: spec.tokens_per_minute > 0 ? spec.web_search_per_minute / spec.tokens_per_minute : 0,
          salt: 16 + slots.length,
          blocked: spec.blocked_models.includes(model),
        });
      }
    }
  }
  return {
    seed: seed >>> 0,
    tokensPerMinute: spec.tokens_per_minute,
    activeShare: spec.active_share,
    dailyAmplitude: spec.daily_amplitude,
    peakHourUtc: spec.peak_hour_utc,
    weekendFactor: spec.weekend_factor,
    noise: spec.noise,
    slots,
    runaways: [],
    outgoing: [],
    incoming: [],
  };
}

/** The key's own flow before events: seasonality, noise and burstiness. 0 on its quiet minutes. */
export function baseFlow(t: KeyTraffic, minute: number): number {
  if (t.tokensPerMinute <= 0) return 0;
  if (t.activeShare < 1 && unit(hash3(t.seed, minute, 1)) >= t.activeShare) return 0;
  return meanFlow(t, minute) / t.activeShare;
}

/** The key's flow with a runaway of `factor`: its own, plus (factor − 1) × its mean flow, in every minute. */
function runawayFlow(t: KeyTraffic, minute: number, factor: number): number {
  const own = baseFlow(t, minute);
  return factor > 1 && t.tokensPerMinute > 0 ? own + (factor - 1) * meanFlow(t, minute) : own;
}

/** The key's mean flow at `minute` (not yet divided among its active minutes): seasonality and noise. */
function meanFlow(t: KeyTraffic, minute: number): number {
  let flow = seasonalFlow(t, minute);
  if (t.noise > 0) {
    // Irwin–Hall: four 16-bit uniforms sum to mean 2, variance 1/3; scaled, a good-enough standard normal.
    const h1 = hash3(t.seed, minute, 2);
    const h2 = hash3(t.seed, minute, 3);
    const sum = ((h1 & 0xffff) + (h1 >>> 16) + (h2 & 0xffff) + (h2 >>> 16)) / 65536;
    flow *= Math.exp(t.noise * (sum - 2) * SQRT3 - (t.noise * t.noise) / 2);
  }
  return flow;
}

/**
 * The key's expected flow at `minute` before noise: its daily curve and weekends. The noise factor has mean 1, so
 * this is the mean of its flow over its active and quiet minutes (what the detection bench's oracle knows).
 */
export function seasonalFlow(t: KeyTraffic, minute: number): number {
  const minuteOfDay = ((minute % 1440) + 1440) % 1440;
  // 1970-01-01 was a Thursday: day-of-week 4 with Sunday = 0.
  const dayOfWeek = (((Math.floor(minute / 1440) + 4) % 7) + 7) % 7;
  const flow =
    t.tokensPerMinute * (1 + t.dailyAmplitude * Math.cos((TWO_PI * (minuteOfDay / 60 - t.peakHourUtc)) / 24));
  return dayOfWeek === 0 || dayOfWeek === 6 ? flow * t.weekendFactor : flow;
}

/** Share of the old key's traffic moved at `minute`: 0 before the start, rising linearly to `share`. */
export function migratedShare(m: Migration, minute: number): number {
  if (minute < m.startMinute) return 0;
  return m.share * Math.min(1, (minute - m.startMinute + 1) / m.rampMinutes);
}

/** Reused for every emitted slot: the hot loop allocates nothing per key-minute. */
const counts: UsageCounts = zeroCounts();

function emitSlots(
  slots: readonly UsageSlot[],
  flow: number,
  seed: number,
  minute: number,
  emit: (slot: UsageSlot, c: UsageCounts) => void,
): void {
  for (const slot of slots) {
    const input = flow * slot.share;
    counts.uncached_input_tokens = Math.round(input * slot.uncachedRatio);
    counts.cache_read_input_tokens = Math.round(input * slot.cacheReadRatio);
    counts.cache_creation_5m_input_tokens = Math.round(input * slot.cacheWrite5mRatio);
    counts.cache_creation_1h_input_tokens = Math.round(input * slot.cacheWrite1hRatio);
    counts.output_tokens = Math.round(input * slot.outputRatio);
    counts.web_search_requests =
      slot.webSearchPerToken > 0
        ? Math.floor(input * slot.webSearchPerToken + unit(hash3(seed, minute, slot.salt)))
        : 0;
    if (
      counts.uncached_input_tokens === 0 &&
      counts.cache_read_input_tokens === 0 &&
      counts.cache_creation_5m_input_tokens === 0 &&
      counts.cache_creation_1h_input_tokens === 0 &&
      counts.output_tokens === 0 &&
      counts.web_search_requests === 0
    ) {
      continue;
    }
    emit(slot, counts);
  }
}

/**
 * Calls `emit` for each slot with usage of key `index` in `minute` (minutes since the epoch). The counts object is
 * reused between calls: read it, do not keep it. The same slot can be emitted twice in a minute when the key
 * receives a migration from a key with the same model: callers add.
 */
export function forEachUsage(
  keys: readonly TrafficKey[],
  index: number,
  minute: number,
  emit: (slot: UsageSlot, c: UsageCounts) => void,
): void {
  const key = keys[index]!;
  if (!isLiveAt(key.life, minute * MINUTE_MS)) return;
  const t = key.traffic;
  // A runaway adds to all of the key's traffic, what it inherited from a migration included.
  let factor = 1;
  for (const r of t.runaways) {
    if (minute < r.fromMinute || minute >= r.toMinute) continue;
    const ramped = r.rampMinutes > 0 ? Math.min(1, (minute - r.fromMinute + 1) / r.rampMinutes) : 1;
    factor *= 1 + (r.factor - 1) * ramped;
  }
  let own = runawayFlow(t, minute, factor);
  if (own > 0) {
    for (const m of t.outgoing) own *= 1 - migratedShare(m, minute);
    if (own > 0) emitSlots(t.slots, own, t.seed, minute, emit);
  }
  for (const m of t.incoming) {
    const moved = migratedShare(m, minute);
    if (moved <= 0) continue;
    const source = keys[m.from]!.traffic;
    const flow = runawayFlow(source, minute, factor) * moved;
    if (flow > 0) emitSlots(source.slots, flow, t.seed, minute, emit);
  }
}

export interface UsageCell extends UsageCounts {
  model: string;
  service_tier: ServiceTier;
  context_window: ContextWindow;
}

/** The usage of one key in one minute per (model, service tier, context window): what a 1m report grouped so shows. */
export function keyMinuteUsage(keys: readonly TrafficKey[], index: number, minute: number): UsageCell[] {
  const cells = new Map<string, UsageCell>();
  forEachUsage(keys, index, minute, (slot, c) => {
    const id = `${slot.model}|${slot.serviceTier}|${slot.contextWindow}`;
    const cell = cells.get(id);
    if (cell) addCounts(cell, c);
    else cells.set(id, { model: slot.model, service_tier: slot.serviceTier, context_window: slot.contextWindow, ...c });
  });
  return [...cells.values()];
}

export function addCounts(into: UsageCounts, c: UsageCounts): void {
  into.uncached_input_tokens += c.uncached_input_tokens;
  into.cache_read_input_tokens += c.cache_read_input_tokens;
  into.cache_creation_5m_input_tokens += c.cache_creation_5m_input_tokens;
  into.cache_creation_1h_input_tokens += c.cache_creation_1h_input_tokens;
  into.output_tokens += c.output_tokens;
  into.web_search_requests += c.web_search_requests;
}

export function zeroCounts(): UsageCounts {
  return {
    uncached_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation_5m_input_tokens: 0,
    cache_creation_1h_input_tokens: 0,
    output_tokens: 0,
    web_search_requests: 0,
  };
}
