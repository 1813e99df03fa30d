import { z } from 'zod';
import { enqueueDigest, targetsWithoutDigest } from '../src/digest/enqueue.ts';
import { composeFinanceDigest } from '../src/digest/finance.ts';
import { loadFinanceData } from '../src/digest/finance-data.ts';
import { organizationName } from '../src/digest/organization.ts';
import { localDate } from '../src/digest/period.ts';
import { defineJob } from './define.ts';

/**
 * The daily finance digest: spend to date with its chart, the projection, top keys and workspaces, cost drift.
 * Scheduled by the policy's `digests.finance.cron` (not at all without it); one digest per local day and target.
 */
export const financeDigestJob = defineJob({
  name: 'finance-digest',
  queue: 'notify',
  schedule: null,
  payload: z.object({}),
  followedBy: ['deliver-notifications'],
  async handler(ctx) {
    const { policy } = ctx.config;
    const config = policy.digests.finance;
    if (!config) return { skipped: 'digests.finance is not configured' };
    const now = ctx.clock.now();
    const tz = policy.organization.timezone;
    const period = localDate(now, tz);
    if ((await targetsWithoutDigest(ctx.db, 'finance', period, config)) === 0) {
      return { period, queued: 0, skipped: 'already queued for every target (or none configured)' };
    }
    const data = await loadFinanceData(ctx.db, now, {
      organizationName: await organizationName(ctx.db, policy.organization.name),
      timezone: tz,
      organizationLimitUsd: policy.spend.limits.organization,
    });
    // its chart and headline rest on this month's projection: wait for project-spend's first run of the month
    if (data.organization === null) return { period, queued: 0, skipped: 'no projection for this month yet' };
    const digest = composeFinanceDigest(data);
    const payload = { digest: digest.message, chart: { spend: digest.chart, alt: digest.chartAlt } };
    const queued = await enqueueDigest(ctx.db, { kind: 'finance', period, payload }, config, now);
    ctx.log.info({ period, queued }, 'finance digest queued');
    return { period, queued };
  },
});
