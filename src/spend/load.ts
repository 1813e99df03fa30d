import type { SpendPolicy } from '../config/policy.ts';
import type { Context } from '../context.ts';
import { spendAsOf, type UsageFreshness } from '../usage/core/freshness.ts';
import type { SpendInputs } from './core/inputs.ts';
import { WINDOW_DAYS } from './core/model.ts';
import { keysToCheck } from './core/scopes.ts';

/** Days of spend a thresholds-only check reads: the month to date (up to 31 days) and the week to date. */
const THRESHOLD_WINDOW_DAYS = 38;

/**
 * Reads everything one run needs. The data is taken as complete to the poll watermark rather than to now
 * (`spendAsOf`), placed in the organization's calendar by Postgres's time zone database.
 */
export async function loadSpendInputs(
  repos: Context['repos'],
  timezone: string,
  freshness: UsageFreshness,
  now: Date,
): Promise<SpendInputs> {
  const clock = await repos.spend.calendarAt(timezone, spendAsOf(freshness, now));
  const [daily, drivers, workspaces, keys] = await Promise.all([
    repos.usage.dailySpend(timezone, clock, WINDOW_DAYS),
    repos.usage.driverSpend(timezone, clock),
    repos.keys.workspaceNames(),
    repos.keys.keyPlaces(),
  ]);
  return { clock, daily, drivers, workspaces, keys };
}

/**
 * What the check after each poll reads: the month and week to date per workspace, and per key only for the keys
 * it needs (keysToCheck); no drivers (a new crossing is raised by the whole projection, which reads them).
 */
export async function loadThresholdInputs(
  repos: Context['repos'],
  timezone: string,
  freshness: UsageFreshness,
  now: Date,
  limits: SpendPolicy['limits'],
): Promise<SpendInputs> {
  const clock = await repos.spend.calendarAt(timezone, spendAsOf(freshness, now));
  const [workspaces, keys] = await Promise.all([repos.keys.workspaceNames(), repos.keys.keyPlaces()]);
  const daily = await repos.usage.dailySpend(timezone, clock, THRESHOLD_WINDOW_DAYS, keysToCheck(keys, limits));
  return { clock, daily, drivers: [], workspaces, keys };
}
