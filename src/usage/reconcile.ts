import type { CostBucket } from '../anthropic/types.ts';
import type { Context } from '../context.ts';
import { type CostComparison, compareCosts, costReportDays } from './core/reconcile.ts';

export interface ReconcileResult {
  from: string;
  compared: number;
  drifted: CostComparison[];
}

/**
 * The cost report for the month to date (UTC month) into Postgres, compared per workspace and day with priced
 * usage; drifts over the threshold are recorded in `cost_drift` (the metric and the finance digest read it).
 */
export async function reconcileMonthToDate(
  ctx: Pick<Context, 'repos' | 'admin' | 'clock'> & { signal?: AbortSignal },
): Promise<ReconcileResult> {
  const now = ctx.clock.now();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  const buckets: CostBucket[] = [];
  const report = ctx.admin.costReport(
    { startingAt: from, endingAt: to, groupBy: ['workspace_id', 'description'] },
    { signal: ctx.signal },
  );
  for await (const b of report) buckets.push(b);
  const reported = costReportDays(buckets, now);
  await ctx.repos.usage.replaceCostReport(reported.days, reported.rows);
  const priced = await ctx.repos.usage.pricedByDay(from, to);
  const comparisons = compareCosts(reported.totals, priced);
  await ctx.repos.usage.replaceDrift(comparisons, now);
  return {
    from: from.toISOString().slice(0, 10),
    compared: comparisons.length,
    drifted: comparisons.filter((c) => c.drifted),
  };
}
