/**
 * Rate-limit headroom: how close a workspace (or the organization) runs to its tokens-per-minute limits, from the
 * per-minute token usage and the limits read from the Rate Limits API. `ratelimit.headroom` is raised when the mean
 * usage over the window reaches 80% of a limit: requests start failing with 429 before the dashboard looks full.
 *
 * Only token limits can be checked: the usage report has no request counts, so `requests_per_minute` is skipped.
 * Which tokens count follows the limiter type: a cache-aware input limit ignores cache reads (they do not count
 * towards ITPM on current models); the plain input limit counts every input token; the output limit counts output.
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
}

/** One `model_group` entry of the Rate Limits API, as in effect for the scope (workspace limits include inherited). */
export interface RateLimitGroup {
  /** Models sharing the limits; null for a group that applies to every model not named by another group. */
  models: readonly string[] | null;
  limits: readonly { type: string; value: number }[];
}

export const TOKEN_LIMIT_TYPES = [
  'input_tokens_per_minute',
  'input_tokens_per_minute_cache_aware',
  'output_tokens_per_minute',
] as const;
export type TokenLimitType = (typeof TOKEN_LIMIT_TYPES)[number];

export interface HeadroomReading {
  /** The group's models, as listed by the Rate Limits API (null: the catch-all group). */
  models: readonly string[] | null;
  limitType: TokenLimitType;
  limitPerMinute: number;
  /** Mean tokens per minute over the window, empty minutes included. */
  meanPerMinute: number;
  peakPerMinute: number;
  peakMinute: Date | null;
  /** meanPerMinute ÷ limitPerMinute. */
  utilization: number;
  /** utilization ≥ threshold: the condition for `ratelimit.headroom`. */
  atRisk: boolean;
}

const MINUTE_MS = 60_000;

/**
 * One reading per token limit of each group, over the minutes from `from` to `until` (both included). Every reading
 * is returned, not only those at risk, so the caller can resolve an alert when usage falls back.
 */
export function assessHeadroom(
  usage: readonly TokenUsageMinute[],
  groups: readonly RateLimitGroup[],
  window: { from: Date; until: Date },
  threshold = 0.8,
): HeadroomReading[] {
  const from = Math.floor(window.from.getTime() / MINUTE_MS);
  const minutes = Math.floor(window.until.getTime() / MINUTE_MS) - from + 1;
  if (minutes <= 0) return [];
  const named = groups.flatMap((g) => g.models ?? []);

  const readings: HeadroomReading[] = [];
  for (const group of groups) {
    const inGroup = (model: string) =>
      group.models ? group.models.some((m) => sameModel(m, model)) : !named.some((m) => sameModel(m, model));
    for (const limit of group.limits) {
      if (!isTokenLimit(limit.type) || limit.value <= 0) continue;
      const perMinute = new Float64Array(minutes);
      for (const u of usage) {
        const i = Math.floor(u.minute.getTime() / MINUTE_MS) - from;
        if (i < 0 || i >= minutes || !inGroup(u.model)) continue;
        perMinute[i] = (perMinute[i] ?? 0) + countedTokens(u, limit.type);
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
      const utilization = meanPerMinute / limit.value;
      readings.push({
        models: group.models,
        limitType: limit.type,
        limitPerMinute: limit.value,
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

function isTokenLimit(type: string): type is TokenLimitType {
  return (TOKEN_LIMIT_TYPES as readonly string[]).includes(type);
}

function countedTokens(u: TokenUsageMinute, type: TokenLimitType): number {
  switch (type) {
    case 'input_tokens_per_minute':
      return u.uncachedInputTokens + u.cacheCreationInputTokens + u.cacheReadInputTokens;
    case 'input_tokens_per_minute_cache_aware':
      return u.uncachedInputTokens + u.cacheCreationInputTokens;
    case 'output_tokens_per_minute':
      return u.outputTokens;
  }
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
