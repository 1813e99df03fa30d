import { z } from 'zod';
import { securityDigestRecipe } from '../src/digest/recipes.ts';
import { runDigest } from '../src/digest/run.ts';
import { defineJob } from '../src/queue/define.ts';

/**
 * The weekly security digest: keys by rotation stage, orphaned keys, keys without expiry, admin count. Scheduled
 * by the policy's `digests.security.cron` (not at all without it); one digest per ISO week and target.
 */
export const securityDigestJob = defineJob({
  name: 'security-digest',
  queue: 'notify',
  schedule: (policy) => policy.digests.security?.cron ?? null,
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    return runDigest(ctx, 'security', securityDigestRecipe(ctx));
  },
});
