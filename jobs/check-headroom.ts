import { z } from 'zod';
import { checkHeadroom } from '../src/anomaly/check-headroom.ts';
import { defineJob } from '../src/queue/define.ts';

/** `ratelimit.headroom`: workspaces using 80% or more of a tokens-per-minute limit over the window. */
export const checkHeadroomJob = defineJob({
  name: 'check-headroom',
  queue: 'analyze',
  schedule: '*/5 * * * *',
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const summary = await checkHeadroom(ctx);
    ctx.log.info(summary, 'rate-limit headroom checked');
    return summary;
  },
});
