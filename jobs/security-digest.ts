import { z } from 'zod';
import { isoWeek } from '../src/digest/period.ts';
import { runDigest } from '../src/digest/run.ts';
import { composeSecurityDigest } from '../src/digest/security.ts';
import { loadSecurityData } from '../src/digest/security-data.ts';
import { defineJob } from './define.ts';

/**
 * The weekly security digest: keys by rotation stage, orphaned keys, keys without expiry, admin count. Scheduled
 * by the policy's `digests.security.cron` (not at all without it); one digest per ISO week and target.
 */
export const securityDigestJob = defineJob({
  name: 'security-digest',
  queue: 'notify',
  schedule: null,
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    return runDigest(ctx, 'security', {
      period: isoWeek,
      async compose({ now, timezone, organizationName }) {
        const data = await loadSecurityData(ctx.db, now, { organizationName, timezone });
        return { digest: composeSecurityDigest(data), chart: null };
      },
    });
  },
});
