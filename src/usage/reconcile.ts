import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AnalyticsRefusedError } from '../anthropic/analytics.ts';
import type { Context } from '../context.ts';
import { type BilledIngest, ingestBilledCost, type KeyReconciliation, reconcileKeys } from './billed.ts';
import { type CostComparison, compareCosts, costReportDays, type DayCost } from './core/reconcile.ts';

/** Days of the cost report per page (the API allows 31). */
const COST_REPORT_DAYS_PER_PAGE = 1;

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
  const totals: DayCost[] = [];
  // a day per page: the month's report in one answer (about 3,000 rows a day for 100 workspaces) held the event
  // loop for its JSON and schema parse, and grew with the month
  const report = ctx.admin
    .costReport(
      { startingAt: from, endingAt: to, groupBy: ['workspace_id', 'description'], limit: COST_REPORT_DAYS_PER_PAGE },
      { signal: ctx.signal },
    )
    .pages();
  async function* days() {
    for await (const page of report) {
      const reported = costReportDays(page.data, now);
      totals.push(...reported.totals);
      yield reported;
      // the next page's parse after pending I/O (heartbeat, other jobs), not right after this one's rows
      await yieldToLoop();
    }
  }
  await ctx.repos.usage.replaceCostReport(days());
  const priced = await ctx.repos.usage.pricedByDay(from, to);
  const comparisons = compareCosts(totals, priced);
  await ctx.repos.usage.replaceDrift(comparisons, now);
  return {
    from: from.toISOString().slice(0, 10),
    compared: comparisons.length,
    drifted: comparisons.filter((c) => c.drifted),
  };
}

interface CostsReconciliation {
  /** Per workspace and day against the classic cost report (every organization has it). */
  classic: ReconcileResult;
  /** Per key against the analytics cost API's bill; `refused` where the organization cannot use that API. */
  perKey: (KeyReconciliation & { ingest: BilledIngest }) | { refused: string };
}

/**
 * Both reconciliations: per workspace against the classic cost report, and per key against the bill the analytics
 * cost API gives. Where the organization cannot use the analytics API (403, HIPAA readiness), only the first runs;
 * that is said once when it starts (and when it ends) in the log, and on /metrics from `analytics_access`, rather
 * than every hour.
 */
export async function reconcileCosts(
  ctx: Pick<Context, 'repos' | 'admin' | 'clock' | 'config' | 'log'> & { signal?: AbortSignal },
): Promise<CostsReconciliation> {
  const classic = await reconcileMonthToDate(ctx);
  const now = ctx.clock.now();
  try {
    const ingest = await ingestBilledCost(ctx);
    if (await ctx.repos.billing.recordAccess('analytics.cost', true, null, now)) {
      ctx.log.info('the analytics cost API answers: costs are reconciled per key against what Anthropic bills');
    }
    return { classic, perKey: { ...(await reconcileKeys(ctx, ingest.dataRefreshedAt)), ingest } };
  } catch (err) {
    if (!(err instanceof AnalyticsRefusedError)) throw err;
    if (await ctx.repos.billing.recordAccess('analytics.cost', false, err.message, now)) {
      ctx.log.warn(
        { endpoint: err.endpoint, status: err.status, errorCode: err.errorCode, requestId: err.requestId },
        'the analytics cost API refuses this organization: costs are reconciled per workspace against the classic ' +
          'cost report only, and no billed cost per key is shown (keywarden_analytics_api_available 0)',
      );
    }
    return { classic, perKey: { refused: err.message } };
  }
}
