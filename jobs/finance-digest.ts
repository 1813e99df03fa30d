import { z } from 'zod';
import { financeDigestRecipe } from '../src/digest/recipes.ts';
import { runDigest } from '../src/digest/run.ts';
import { defineJob } from '../src/queue/define.ts';

/**
 * The daily finance digest: spend to date with its chart, the projection, top keys and workspaces, cost drift.
 * Scheduled by the policy's `digests.finance.cron` (not at all without it); one digest per local day and target.
 */
export const financeDigestJob = defineJob({
  name: 'finance-digest',
  queue: 'notify',
  schedule: (policy) => policy.digests.finance?.cron ?? null,
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    return runDigest(ctx, 'finance', financeDigestRecipe(ctx, ctx.config.policy.spend.limits.organization));
  },
});
