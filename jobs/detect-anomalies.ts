import { z } from 'zod';
import { detectAnomalies } from '../src/anomaly/run.ts';
import { defineJob } from '../src/queue/define.ts';

/**
 * Runaway detection, after each successful poll (poll-usage is followed by it): `usage.runaway` per key and
 * workspace, and the kill switch when the policy enables it. No schedule of its own: without fresh usage there is
 * nothing new to judge.
 */
export const detectAnomaliesJob = defineJob({
  name: 'detect-anomalies',
  queue: 'analyze',
  schedule: null,
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const summary = await detectAnomalies(ctx);
    ctx.log.info(summary, 'anomalies detected');
    return summary;
  },
});
