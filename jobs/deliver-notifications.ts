import { z } from 'zod';
import { slackButtonsOn } from '../src/actions/buttons.ts';
import { deliverNotifications } from '../src/notify/outbox.ts';
import { defineJob } from '../src/queue/define.ts';

/** Sends the due outbox rows (every minute, and enqueued after alerts are raised); retries and leases live in the outbox. */
export const deliverNotificationsJob = defineJob({
  name: 'deliver-notifications',
  queue: 'notify',
  schedule: '* * * * *',
  payload: z.object({}),
  // the outbox leases rows (FOR UPDATE SKIP LOCKED): runs on several replicas share a backlog instead of queueing
  overlaps: true,
  async handler(ctx) {
    const result = await deliverNotifications(ctx, { buttons: slackButtonsOn(ctx.config) });
    if (result.sent + result.retrying + result.failed > 0) ctx.log.info(result, 'notifications delivered');
    return result;
  },
});
