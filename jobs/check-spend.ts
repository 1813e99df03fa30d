import { z } from 'zod';
import { defineJob } from '../src/queue/define.ts';
import { checkSpend } from '../src/spend/run.ts';

/**
 * Spend thresholds after each successful poll (poll-usage is followed by it), and the whole projection when none is
 * recent (the first poll after a start): a limit already crossed when the worker starts is told within minutes.
 */
export const checkSpendJob = defineJob({
  name: 'check-spend',
  queue: 'analyze',
  schedule: null,
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const result = await checkSpend(ctx);
    if ('skipped' in result) ctx.log.info(result, 'spend not checked');
    else ctx.log.info(result, 'spend checked');
    return result;
  },
});
