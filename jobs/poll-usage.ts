import { z } from 'zod';
import { defineJob } from '../src/queue/define.ts';
import { formatUsageProgress, POLL_OVERLAP_MINUTES, pollUsage } from '../src/usage/ingest.ts';
import { raiseUnknownModelAlerts } from '../src/usage/unknown-models.ts';

/** 1-minute usage per key, workspace, model, tier and window, from the watermark (minus the overlap) to now. */
export const pollUsageJob = defineJob({
  name: 'poll-usage',
  queue: 'poll',
  schedule: '* * * * *',
  followedBy: ['detect-anomalies', 'check-spend'],
  payload: z.object({}),
  async handler(ctx) {
    const result = await pollUsage(ctx, {
      overlapMinutes: POLL_OVERLAP_MINUTES,
      // the minute in progress is never stored as if complete
      freshnessMinutes: 1,
      // usage that arrives hours late is still stored: read from the newest minute with data, and re-read one
      // 5-minute slice of the last 6 hours each poll (every minute of them about every 72 minutes)
      lateWindowMinutes: 360,
      lateSliceMinutes: 5,
      firstPollHours: 48,
      // the first run backfills the month to date and the 35 days before it (hourly, older than 48 h)
      backfillDaysBeforeMonth: 35,
      table: ctx.config.prices,
      signal: ctx.signal,
      onProgress: (p) => {
        ctx.log.info(
          { phase: p.phase, from: p.chunk.start, to: p.chunk.end, done: p.done, total: p.total, rows: p.rows },
          'usage chunk committed',
        );
        ctx.progress?.(formatUsageProgress(p));
      },
      onRefused: (buckets) => {
        if (buckets.length === 0) return;
        ctx.log.warn(
          {
            endpoint: 'GET /v1/organizations/usage_report/messages',
            buckets: buckets.length,
            first: buckets[0]!.starting_at,
            rows: buckets.reduce((n, b) => n + b.results.length, 0),
            apiNow: ctx.admin.serverNow(),
          },
          'usage report answered buckets outside the range asked for (dated in the future): refused, not stored',
        );
      },
    });
    if (result.newUnknownModels.length > 0) {
      ctx.log.warn(
        { models: result.newUnknownModels },
        'new models missing from the price table, priced at the maximum (pricing.unknown_model)',
      );
    }
    const alerts = await raiseUnknownModelAlerts(ctx);
    ctx.log.info(
      {
        chunks: result.chunks,
        rows: result.rows,
        watermark: result.watermark,
        settled: result.settled,
        horizon: result.horizon,
        clockSkewMs: result.clockSkewMs,
        alerts,
      },
      'usage polled',
    );
    return { ...result, alerts };
  },
});
