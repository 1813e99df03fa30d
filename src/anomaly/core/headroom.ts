import { MINUTE_MS } from '../../time.ts';

/**
 * Rate-limit headroom: how close a workspace (or the organization) runs to its rate limits, from the per-minute
 * token usage and the limits read from the Rate Limits API. `ratelimit.headroom` is raised when the usage (the mean
 * over the window; for a per-day limit, the last 24 hours) reaches 80% of a limit: requests start failing with 429
 * before the dashboard looks full.
 *
 * Every limiter the usage report can measure is checked (MEASURES); which tokens count follows the limiter type: a
 * cache-aware input limit ignores cache reads (they do not count towards ITPM on current models); the plain input
 * limit counts every input token; the output limit counts output; fast-mode limits count fast-mode usage only.
 */

/** Tokens of one model in one minute (a usage-report bucket of width 1m, summed over the scope). */
export interface TokenUsageMinute {
  minute: Date;
  model: string;
  uncachedInputTokens: number;
  cacheReadInputTokens: number;
  /** 5-minute and 1-hour cache writes together. */
  cacheCreationInputTokens: number;
  outputTokens: number;
  /** Server-side web searches; 0 when not read. */
  webSearchRequests?: number;
  /** Requests (the analytics usage API counts them; the classic usage report does not); 0 when not read. */
  requests?: number;
}

/** One entry of the Rate Limits API, as in effect for the scope (workspace limits include inherited). */
export interface RateLimitGroup {
  /** The group's stable id (`rlg_…`); null in classic responses, which only have the model list. */
  id?: string | null;
  /** `model_group`, `batch`, `web_search`, …; absent: a model group (classic callers). */
  type?: string;
  /** A model group's name for people (`Claude Sonnet`), when the API gives one. */
  name?: string | null;
  /** Models sharing the limits; null for a group that applies to every model not named by another group. */
  models: readonly string[] | null;
  limits: readonly { type: string; value: number }[];
}

/**
 * How each limiter is measured from the usage report. Not every limiter can be: the usage report has no queue depth
 * (`enqueued_batch_requests`); it is labelled but skipped. Fast-mode limiters count only fast-mode usage, and
 * `requests_per_minute` the requests the analytics usage API counts (the classic report has none): the caller reads
 * both separately, and without them those limiters are skipped.
 * `tokens_per_minute`/`tokens_per_day` count input as the cache-aware limiter does (no cache reads; the SDK says
 * current models' input limits are cache-aware) plus output.
 */
interface Measure {
  per: 'minute' | 'second' | 'day';
  usage: 'all' | 'fast' | 'requests';
  count: (u: TokenUsageMinute) => number;
}

const cacheAwareInput = (u: TokenUsageMinute) => u.uncachedInputTokens + u.cacheCreationInputTokens;

const MEASURES: Record<string, Measure> = {
  input_tokens_per_minute: {
    per: 'minute',
    usage: 'all',
    count: (u) => u.uncachedInputTokens + u.cacheCreationInputTokens + u.cacheReadInputTokens,
  },
  input_tokens_per_minute_cache_aware: { per: 'minute', usage: 'all', count: cacheAwareInput },
  output_tokens_per_minute: { per: 'minute', usage: 'all', count: (u) => u.outputTokens },
  tokens_per_minute: { per: 'minute', usage: 'all', count: (u) => cacheAwareInput(u) + u.outputTokens },
  tokens_per_day: { per: 'day', usage: 'all', count: (u) => cacheAwareInput(u) + u.outputTokens },
  fast_itpmca: { per: 'minute', usage: 'fast', count: cacheAwareInput },
  fast_otpm: { per: 'minute', usage: 'fast', count: (u) => u.outputTokens },
  tool_uses_per_second: { per: 'second', usage: 'all', count: (u) => u.webSearchRequests ?? 0 },
  requests_per_minute: { per: 'minute', usage: 'requests', count: (u) => u.requests ?? 0 },
};

/** Every limiter type the SDK (1.16.0) lists, and the organization-only ones, in words for people. */
const LIMITER_LABELS: Record<string, string> = {
  requests_per_minute: 'requests per minute',
  input_tokens_per_minute: 'input tokens per minute',
  input_tokens_per_minute_cache_aware: 'input tokens per minute (cache-aware)',
  output_tokens_per_minute: 'output tokens per minute',
  tokens_per_minute: 'tokens per minute',
  tokens_per_day: 'tokens per day',
  fast_itpmca: 'fast-mode input tokens per minute (cache-aware)',
  fast_otpm: 'fast-mode output tokens per minute',
  tool_uses_per_second: 'web search uses per second',
  enqueued_batch_requests: 'queued batch requests',
};

/** A limiter type in words; a type keywarden does not know yet reads as its own name, underscores spaced. */
export function limiterLabel(type: string): string {
  return LIMITER_LABELS[type] ?? type.replaceAll('_', ' ');
}

export interface HeadroomReading {
  /** The group's stable id when the API gives one. */
  groupId: string | null;
  groupName: string | null;
  /** The group's models, as listed by the Rate Limits API (null: the catch-all group). */
  models: readonly string[] | null;
  limitType: string;
  /** What the limit counts per: a minute, a second, or a (rolling) day. */
  per: 'minute' | 'second' | 'day';
  limit: number;
  /** Per minute/second: the mean over the window, empty minutes included. Per day: the last 24 hours' total. */
  used: number;
  /** Mean per minute over the window, empty minutes included (per-second limits: per minute, not per second). */
  meanPerMinute: number;
  peakPerMinute: number;
  peakMinute: Date | null;
  /** used ÷ limit. */
  utilization: number;
  /** utilization ≥ threshold: the condition for `ratelimit.headroom`. */
  atRisk: boolean;
}

/** Usage beyond the window's all-speed minutes, for the limiters that need it. Absent: those limiters are skipped. */
interface ExtraUsage {
  /** Fast-mode usage only, per minute, over the same window. */
  fast?: readonly TokenUsageMinute[] | null;
  /** Usage over the last 24 hours (minutes may be summed: only the model and counts matter). */
  lastDay?: readonly TokenUsageMinute[] | null;
  /** Requests per minute and model over the same window (only `requests` is read). */
  requests?: readonly TokenUsageMinute[] | null;
}

/**
 * One reading per measurable limit of each group, over the minutes from `from` to `until` (both included). Every
 * reading is returned, not only those at risk, so the caller can resolve an alert when usage falls back.
 */
export function assessHeadroom(
  usage: readonly TokenUsageMinute[],
  groups: readonly RateLimitGroup[],
  window: { from: Date; until: Date },
  threshold = 0.8,
  extra: ExtraUsage = {},
): HeadroomReading[] {
  const from = Math.floor(window.from.getTime() / MINUTE_MS);
  const minutes = Math.floor(window.until.getTime() / MINUTE_MS) - from + 1;
  if (minutes <= 0) return [];
  // Only model groups say which models they cover; batch, files, web search… limits apply to all usage.
  const modelGroups = groups.filter((g) => (g.type ?? 'model_group') === 'model_group');
  const named = modelGroups.flatMap((g) => g.models ?? []);

  const readings: HeadroomReading[] = [];
  for (const group of groups) {
    const isModelGroup = (group.type ?? 'model_group') === 'model_group';
    const inGroup = (model: string) =>
      !isModelGroup
        ? true
        : group.models
          ? group.models.some((m) => sameModel(m, model))
          : !named.some((m) => sameModel(m, model));
    for (const limit of group.limits) {
      const measure = MEASURES[limit.type];
      if (!measure || limit.value <= 0) continue;
      const source = measure.usage === 'fast' ? extra.fast : measure.usage === 'requests' ? extra.requests : usage;
      if (source == null) continue;
      const perMinute = new Float64Array(minutes);
      for (const u of source) {
        const i = Math.floor(u.minute.getTime() / MINUTE_MS) - from;
        if (i < 0 || i >= minutes || !inGroup(u.model)) continue;
        perMinute[i] = (perMinute[i] ?? 0) + measure.count(u);
      }
      let sum = 0;
      let peak = 0;
      let peakIndex = -1;
      perMinute.forEach((v, i) => {
        sum += v;
        if (v > peak) {
          peak = v;
          peakIndex = i;
        }
      });
      const meanPerMinute = sum / minutes;
      let used: number;
      if (measure.per === 'minute') used = meanPerMinute;
      else if (measure.per === 'second') used = meanPerMinute / 60;
      else {
        if (extra.lastDay == null) continue;
        used = 0;
        for (const u of extra.lastDay) if (inGroup(u.model)) used += measure.count(u);
      }
      const utilization = used / limit.value;
      readings.push({
        groupId: group.id ?? null,
        groupName: group.name ?? null,
        models: group.models,
        limitType: limit.type,
        per: measure.per,
        limit: limit.value,
        used,
        meanPerMinute,
        peakPerMinute: peak,
        peakMinute: peakIndex >= 0 ? new Date((from + peakIndex) * MINUTE_MS) : null,
        utilization,
        atRisk: utilization >= threshold,
      });
    }
  }
  return readings;
}

/**
 * The Rate Limits API lists model ids, the usage report the model that served the request: the same id, or the
 * dated snapshot of an alias ("claude-sonnet-4-5" and "claude-sonnet-4-5-20250929"). A plain prefix would confuse
 * "claude-opus-4" with "claude-opus-4-1".
 */
function sameModel(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return long.startsWith(short) && /^-\d{8}$/.test(long.slice(short.length));
}
