import { z } from 'zod';
import { applyUsageRetention } from '../src/usage/retention.ts';
import { defineJob } from './define.ts';

/** 1m usage older than 48 h rolled up to hourly; hourly older than 13 months deleted. */
export const usageRetentionJob = defineJob({
  name: 'usage-retention',
  queue: 'ingest',
  schedule: '23 * * * *',
  payload: z.object({}),
  async handler(ctx) {
    const result = await applyUsageRetention(ctx.db, ctx.clock.now());
    ctx.log.info(result, 'usage retention applied');
    return result;
  },
});
