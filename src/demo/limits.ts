import type { AdminClient } from '../anthropic/client.ts';
import type { CostBucket } from '../anthropic/types.ts';
import { type Pico, picoToNumberUsd } from '../money.ts';
import { DAY_MS } from '../time.ts';

/**
 * The demo's organization limit, sized from the organization's own cost report so that on whatever day the demo
 * runs, the month to date is under the limit but the month-end projection is over it: the demo then shows a
 * `spend.forecast` alert (and the thresholds already crossed), not only "already over". The limit sits at the month
 * to date plus 60% of what the last 7 days' daily rate adds by month end (UTC month: the demo's timezone is UTC).
 */
export function demoOrganizationLimitUsd(buckets: readonly CostBucket[], now: Date): number {
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const monthEnd = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  let monthToDate = 0n;
  let lastWeek = 0n;
  for (const b of buckets) {
    const day = b.starting_at.getTime();
    const total = b.results.reduce((sum: Pico, r) => sum + r.amount_pico, 0n);
    if (day >= monthStart && day < monthEnd) monthToDate += total;
    if (day >= today - 7 * DAY_MS && day < today) lastWeek += total;
  }
  const dailyUsd = picoToNumberUsd(lastWeek) / 7;
  const daysLeft = (monthEnd - now.getTime()) / DAY_MS;
  const limit = picoToNumberUsd(monthToDate) + 0.6 * dailyUsd * daysLeft;
  // a round figure, as a person would set it
  return Math.max(100, Math.ceil(limit / 100) * 100);
}

/** Reads the cost report from 8 days before the month (for the daily rate) to now. */
export async function readDemoOrganizationLimitUsd(admin: AdminClient, now: Date): Promise<number> {
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const from = new Date(
    Math.min(monthStart, Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - 8 * DAY_MS),
  );
  const buckets = await admin.costReport({ startingAt: from, endingAt: now }).toArray();
  return demoOrganizationLimitUsd(buckets, now);
}
