import { z } from 'zod';
import { enqueueDigest, targetsWithoutDigest } from '../src/digest/enqueue.ts';
import { organizationName } from '../src/digest/organization.ts';
import { isoWeek, localDate } from '../src/digest/period.ts';
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
    const { policy } = ctx.config;
    const config = policy.digests.security;
    if (!config) return { skipped: 'digests.security is not configured' };
    const now = ctx.clock.now();
    const tz = policy.organization.timezone;
    const period = isoWeek(localDate(now, tz));
    if ((await targetsWithoutDigest(ctx.db, 'security', period, config)) === 0) {
      return { period, queued: 0, skipped: 'already queued for every target (or none configured)' };
    }
    const data = await loadSecurityData(ctx.db, now, {
      organizationName: await organizationName(ctx.db, policy.organization.name),
      timezone: tz,
    });
    const payload = { digest: composeSecurityDigest(data), chart: null };
    const queued = await enqueueDigest(ctx.db, { kind: 'security', period, payload }, config, now);
    ctx.log.info({ period, queued }, 'security digest queued');
    return { period, queued };
  },
});
