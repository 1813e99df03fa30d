import { numberUsdToPico, type Pico, picoToNumberUsd } from '../../money.ts';
import { expectedCrossingDate, type ProjectionMethod, projectMonthEnd } from './forecast.ts';
import type { SpendClock } from './inputs.ts';
import type { SpendScope } from './scopes.ts';

/** One scope's month-end projection in exact money, with the dates its limit is expected to be reached. */
export interface ScopeProjection {
  scope: SpendScope;
  /** `YYYY-MM` */
  month: string;
  monthToDate: Pico;
  p10: Pico;
  p50: Pico;
  p90: Pico;
  method: ProjectionMethod;
  /** When the cumulative spend is expected to reach the limit (p50 path) and at the earliest (p90 path): today
   * when already reached, null when not expected this month or when the scope has no limit. */
  crossing: { p50: string | null; p90: string | null };
}

/**
 * Projects one scope with the forecast model (forecast.ts). Month-to-date stays the exact sum; the
 * percentiles are floats turned back into picodollars, never below what is already spent.
 */
export function projectScope(scope: SpendScope, clock: Pick<SpendClock, 'today' | 'fractionElapsed'>): ScopeProjection {
  const projection = projectMonthEnd({
    history: scope.history,
    today: {
      date: clock.today,
      usdSoFar: picoToNumberUsd(scope.todaySoFar),
      fractionElapsed: clock.fractionElapsed,
    },
    monthToDateUsd: picoToNumberUsd(scope.monthToDate),
  });
  const exact = (usd: number) => {
    const pico = numberUsdToPico(usd);
    // float rounding must not put a percentile a picodollar under what is spent (bigints: no Math.max)
    if (pico < scope.monthToDate) return scope.monthToDate;
    return pico;
  };
  const crossing =
    scope.limit === null ? { p50: null, p90: null } : expectedCrossingDate(projection, picoToNumberUsd(scope.limit));
  return {
    scope,
    month: projection.month,
    monthToDate: scope.monthToDate,
    p10: exact(projection.p10),
    p50: exact(projection.p50),
    p90: exact(projection.p90),
    method: projection.method,
    crossing,
  };
}

/**
 * A scope's spend so far, without a projection (the thresholds-only check after a poll): every percentile is the
 * month to date, and no limit is projected to be reached.
 */
export function spendSoFar(scope: SpendScope, clock: Pick<SpendClock, 'today'>): ScopeProjection {
  return {
    scope,
    month: clock.today.slice(0, 7),
    monthToDate: scope.monthToDate,
    p10: scope.monthToDate,
    p50: scope.monthToDate,
    p90: scope.monthToDate,
    method: 'month-to-date',
    crossing: { p50: null, p90: null },
  };
}
