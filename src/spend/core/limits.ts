import type { SpendScopeType } from '../../kinds.ts';
import { numberUsdToPico, type Pico, picoToNumberUsd } from '../../money.ts';
import { dayNumber, dayOfWeek, formatDay } from './calendar.ts';
import { expectedCrossingDate, projectMonthEnd } from './forecast.ts';
import type { SpendClock } from './inputs.ts';
import type { SeenLimit } from './limit-changes.ts';

/**
 * Limits in their own periods. Pure.
 *
 * A limit caps spend over a day, a week or a month (the Spend Limits API has all three; the policy file's are
 * monthly). Each is judged in its own period, in the organization's timezone: a day is the local date, a week runs
 * Monday to Sunday (ISO weeks, named `2026-W47`), a month is the calendar month. The period names the alert
 * (`2026-11-16@0.8`, `2026-W47@0.8`, `2026-11@0.8`), so a daily limit's 80% is said once a day, a monthly one's
 * once a month.
 */

export type LimitPeriod = 'daily' | 'weekly' | 'monthly';

/**
 * Where a limit comes from: `api` (set in the Console, read from the Spend Limits API), `policy` (the policy file,
 * which overrides the API's monthly organization and workspace limits), `usage_tier` (Anthropic's cap for the
 * organization's usage tier: at it, every request of the organization is refused).
 */
export type LimitSource = 'api' | 'policy' | 'usage_tier';

export interface ScopeLimit {
  period: LimitPeriod;
  /** USD, exact. */
  amount: Pico;
  source: LimitSource;
}

/** One period of a limit: `label` names it in alerts; `start` and `end` are local dates (inclusive). */
export interface PeriodWindow {
  period: LimitPeriod;
  label: string;
  start: string;
  end: string;
}

/** The period of `today` (a local date) that a limit of `period` is judged in. */
export function periodWindow(period: LimitPeriod, today: string): PeriodWindow {
  const day = dayNumber(today);
  if (period === 'daily') return { period, label: today, start: today, end: today };
  if (period === 'weekly') {
    const monday = day - ((dayOfWeek(day) + 6) % 7);
    // ISO 8601: a week belongs to the year of its Thursday, and is numbered by that Thursday's day of the year
    const thursday = formatDay(monday + 3);
    const year = thursday.slice(0, 4);
    const week = Math.floor((dayNumber(thursday) - dayNumber(`${year}-01-01`)) / 7) + 1;
    return {
      period,
      label: `${year}-W${String(week).padStart(2, '0')}`,
      start: formatDay(monday),
      end: formatDay(monday + 6),
    };
  }
  const [y, m] = today.split('-').map(Number) as [number, number];
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return {
    period,
    label: today.slice(0, 7),
    start: `${today.slice(0, 7)}-01`,
    end: `${today.slice(0, 7)}-${String(last).padStart(2, '0')}`,
  };
}

/** Keywarden prices usage in USD; a limit in another currency cannot be compared with it. */
const CURRENCY = 'USD';

/** USD cents → picodollars. */
function centsToPicoExact(cents: bigint): Pico {
  return cents * 10_000_000_000n;
}

export interface ApiLimitSet {
  organization: ScopeLimit[];
  /** Workspace scope id (`default` for the Default Workspace) → its limits. */
  workspaces: Map<string, ScopeLimit[]>;
  problems: string[];
}

/**
 * The API's limits that apply: enabled, with an amount, in USD. A limit switched off (`is_enabled: false`) keeps
 * its amount in the API but caps nothing; Enterprise scopes (users, seat tiers, groups) are not keywarden's.
 */
export function apiLimitSet(limits: readonly SeenLimit[]): ApiLimitSet {
  const out: ApiLimitSet = { organization: [], workspaces: new Map(), problems: [] };
  for (const l of limits) {
    const known = l.scopeType === 'organization' || l.scopeType === 'usage_tier' || l.scopeType === 'workspace';
    if (!l.isEnabled || l.amountMinor === null || !known) continue;
    if (l.currency.toUpperCase() !== CURRENCY) {
      out.problems.push(
        `spend limit ${l.id} is in ${l.currency}; keywarden prices usage in USD and cannot compare the two: not applied`,
      );
      continue;
    }
    const amount = centsToPicoExact(l.amountMinor);
    if (l.scopeType === 'workspace' && l.workspaceId !== null) {
      const list = out.workspaces.get(l.workspaceId) ?? [];
      list.push({ period: l.period, amount, source: 'api' });
      out.workspaces.set(l.workspaceId, list);
    } else if (l.scopeType !== 'workspace') {
      out.organization.push({ period: l.period, amount, source: l.scopeType === 'usage_tier' ? 'usage_tier' : 'api' });
    }
  }
  return out;
}

/**
 * A scope's limits: the API's, with the policy file's monthly limit in place of the API's monthly one (it is the
 * file's way to say "alert me on this amount instead"); the usage tier's cap is never overridden.
 */
export function mergeLimits(api: readonly ScopeLimit[], policyMonthly: Pico | null): ScopeLimit[] {
  if (policyMonthly === null) return [...api];
  return [
    ...api.filter((l) => !(l.source === 'api' && l.period === 'monthly')),
    { period: 'monthly', amount: policyMonthly, source: 'policy' },
  ];
}

/** The lowest monthly limit: the one a month's spend reaches first (stored with the projection, shown in `spend`). */
export function monthlyLimit(limits: readonly ScopeLimit[]): Pico | null {
  let lowest: Pico | null = null;
  for (const l of limits) if (l.period === 'monthly' && (lowest === null || l.amount < lowest)) lowest = l.amount;
  return lowest;
}

/** One limit judged now: the spend of its period so far and, when forecasts are on, where the period is heading. */
export interface LimitCheck {
  limit: ScopeLimit;
  window: PeriodWindow;
  toDate: Pico;
  /** The period's end total (p50, p90) and when the limit is expected to be reached; null: thresholds only. */
  forecast: { p50: Pico; p90: Pico; crossing: { p50: string | null; p90: string | null } } | null;
}

/** What a limit check reads of its scope: its days of spend (local date → cost) and history for the forecast. */
export interface CheckedScope {
  limits: readonly ScopeLimit[];
  days: ReadonlyMap<string, Pico>;
  history: readonly { date: string; usd: number }[];
  todaySoFar: Pico;
}

/**
 * Each limit of a scope in its period. The forecast of a period is the month-end model's path cut at the period's
 * last day, started from the period's spend so far (forecast.ts); periods that end on the same day share one.
 */
export function checkLimits(
  scope: CheckedScope,
  clock: Pick<SpendClock, 'today' | 'fractionElapsed'>,
  withForecast: boolean,
): LimitCheck[] {
  const forecasts = new Map<string, ReturnType<typeof projectMonthEnd>>();
  return scope.limits.map((limit) => {
    const window = periodWindow(limit.period, clock.today);
    let toDate = 0n;
    for (const [date, cost] of scope.days) if (date >= window.start && date <= clock.today) toDate += cost;
    if (!withForecast) return { limit, window, toDate, forecast: null };
    const key = `${window.start}:${window.end}`;
    let projection = forecasts.get(key);
    if (projection === undefined) {
      projection = projectMonthEnd({
        history: scope.history,
        today: {
          date: clock.today,
          usdSoFar: picoToNumberUsd(scope.todaySoFar),
          fractionElapsed: clock.fractionElapsed,
        },
        monthToDateUsd: picoToNumberUsd(toDate),
        lastDay: window.end,
      });
      forecasts.set(key, projection);
    }
    const exact = (usd: number) => {
      const pico = numberUsdToPico(usd);
      return pico < toDate ? toDate : pico;
    };
    return {
      limit,
      window,
      toDate,
      forecast: {
        p50: exact(projection.p50),
        p90: exact(projection.p90),
        crossing: expectedCrossingDate(projection, picoToNumberUsd(limit.amount)),
      },
    };
  });
}

/** The alert scope a limit speaks of: the usage tier's cap is a scope of its own (`organization:usage_tier`). */
export function alertScopeOf(
  scope: { type: SpendScopeType; id: string },
  limit: ScopeLimit,
): { scopeType: SpendScopeType; scopeId: string } {
  return limit.source === 'usage_tier'
    ? { scopeType: 'organization', scopeId: USAGE_TIER_SCOPE_ID }
    : { scopeType: scope.type, scopeId: scope.id };
}

/** The usage tier's cap as an alert scope id (beside `organization`). */
export const USAGE_TIER_SCOPE_ID = 'usage_tier';
