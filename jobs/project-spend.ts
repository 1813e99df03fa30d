import { z } from 'zod';
import { projectSpend } from '../src/spend/run.ts';
import { defineJob } from './define.ts';

/** Month-end projections for the organization, every workspace and every key; spend threshold and forecast alerts. */
export const projectSpendJob = defineJob({
  name: 'project-spend',
  queue: 'analyze',
  schedule: '*/15 * * * *',
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const summary = await projectSpend(ctx);
    ctx.log.info(summary, 'spend projected');
    return summary;
  },
});
