import type { Context } from '../context.ts';
import { spendAsOf, type UsageFreshness } from '../usage/core/freshness.ts';
import type { SpendInputs } from './core/inputs.ts';
import { WINDOW_DAYS } from './core/model.ts';

/**
 * Reads everything one run needs: daily spend over `windowDays` before today (the projection's 16 weeks; a
 * thresholds-only check needs the month and the week to date). The data is taken as complete to the poll watermark rather than to now
 * (`spendAsOf`), placed in the organization's calendar by Postgres's time zone database.
 */
export async function loadSpendInputs(
  repos: Context['repos'],
  timezone: string,
  freshness: UsageFreshness,
  now: Date,
  windowDays = WINDOW_DAYS,
): Promise<SpendInputs> {
  const clock = await repos.spend.calendarAt(timezone, spendAsOf(freshness, now));
  const [daily, drivers, workspaces, keys] = await Promise.all([
    repos.usage.dailySpend(timezone, clock, windowDays),
    repos.usage.driverSpend(timezone, clock),
    repos.keys.workspaceNames(),
    repos.keys.keyPlaces(),
  ]);
  return { clock, daily, drivers, workspaces, keys };
}
