import { z } from 'zod';
import { picoToUsd } from '../src/money.ts';
import { defineJob } from '../src/queue/define.ts';
import { reconcileMonthToDate } from '../src/usage/reconcile.ts';

/** The cost report for the month to date against priced usage, per workspace and day; drifts over 2% recorded. */
export const reconcileCostsJob = defineJob({
  name: 'reconcile-costs',
  queue: 'ingest',
  schedule: '17 * * * *',
  payload: z.object({}),
  async handler(ctx) {
    const result = await reconcileMonthToDate(ctx);
    const drifted = result.drifted.map((d) => ({
      day: d.day,
      workspaceId: d.workspaceId,
      reportedUsd: picoToUsd(d.reported),
      pricedUsd: picoToUsd(d.priced),
      driftRatio: d.driftRatio,
    }));
    if (drifted.length > 0) ctx.log.warn({ drifted }, 'priced usage drifts from the cost report');
    ctx.log.info({ from: result.from, compared: result.compared, drifted: drifted.length }, 'costs reconciled');
    return { from: result.from, compared: result.compared, drifted };
  },
});
