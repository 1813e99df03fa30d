import { z } from 'zod';
import { picoToUsd } from '../src/money.ts';
import { defineJob } from '../src/queue/define.ts';
import { reconcileCosts } from '../src/usage/reconcile.ts';

/**
 * Priced usage against what Anthropic bills: per workspace and day against the classic cost report (drifts over 2%
 * recorded), and per key and day (hour for today) against the analytics cost API where it answers (cost.drift).
 */
export const reconcileCostsJob = defineJob({
  name: 'reconcile-costs',
  queue: 'ingest',
  schedule: '17 * * * *',
  payload: z.object({}),
  async handler(ctx) {
    const { classic: result, perKey } = await reconcileCosts(ctx);
    const drifted = result.drifted.map((d) => ({
      day: d.day,
      workspaceId: d.workspaceId,
      reportedUsd: picoToUsd(d.reported),
      pricedUsd: picoToUsd(d.priced),
      driftRatio: d.driftRatio,
    }));
    if (drifted.length > 0) ctx.log.warn({ drifted }, 'priced usage drifts from the cost report');
    const keys =
      'refused' in perKey
        ? { source: 'classic' as const }
        : {
            source: 'analytics' as const,
            compared: perKey.compared,
            drifted: perKey.drifted.length,
            unbilled: perKey.unbilled.length,
            alerts: perKey.alerts,
            billedRows: perKey.ingest.days + perKey.ingest.hours,
          };
    ctx.log.info({ from: result.from, compared: result.compared, drifted: drifted.length, keys }, 'costs reconciled');
    return { from: result.from, compared: result.compared, drifted, keys };
  },
});
