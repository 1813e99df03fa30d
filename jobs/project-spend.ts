import { z } from 'zod';
import { defineJob } from '../src/queue/define.ts';
import { projectSpend } from '../src/spend/run.ts';

/** Month-end projections for the organization, every workspace and every key; spend threshold and forecast alerts. */
export const projectSpendJob = defineJob({
  name: 'project-spend',
  queue: 'analyze',
  schedule: '*/15 * * * *',
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const result = await projectSpend(ctx);
    if ('skipped' in result) ctx.log.info(result, 'spend not projected');
    else ctx.log.info(result, 'spend projected');
    return result;
  },
});
