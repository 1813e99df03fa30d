import { z } from 'zod';
import { defineJob } from '../src/queue/define.ts';
import { applyUsageRetention } from '../src/usage/retention.ts';

/** 1m usage older than 48 h rolled up to hourly; hourly older than 13 months deleted. */
export const usageRetentionJob = defineJob({
  name: 'usage-retention',
  queue: 'maintenance',
  schedule: '23 * * * *',
  payload: z.object({}),
  async handler(ctx) {
    const result = await applyUsageRetention(ctx);
    ctx.log.info(result, 'usage retention applied');
    return result;
  },
});
