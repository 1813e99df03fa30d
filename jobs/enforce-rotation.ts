import { z } from 'zod';
import { defineJob } from '../src/queue/define.ts';
import { enforceRotation } from '../src/rotation/enforce.ts';

/** The rotation policy, daily: reminders, overdue notices, and (with enforce: true) drain-aware deactivation. */
export const enforceRotationJob = defineJob({
  name: 'enforce-rotation',
  queue: 'analyze',
  schedule: '0 9 * * *',
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const summary = await enforceRotation(ctx);
    ctx.log.info(summary, 'rotation enforced');
    return summary;
  },
});
