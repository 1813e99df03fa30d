import { z } from 'zod';
import { composeFinanceDigest } from '../src/digest/finance.ts';
import { loadFinanceData } from '../src/digest/finance-data.ts';
import { runDigest } from '../src/digest/run.ts';
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
    return runDigest(ctx, 'finance', {
      period: (today) => today,
      async compose({ now, timezone, organizationName }) {
        const data = await loadFinanceData(ctx.db, now, {
          organizationName,
          timezone,
          organizationLimitUsd: ctx.config.policy.spend.limits.organization,
        });
        // its chart and headline rest on this month's projection: wait for project-spend's first run of the month
        if (data.organization === null) return { skipped: 'no projection for this month yet' };
        const digest = composeFinanceDigest(data);
        return { digest: digest.message, chart: { spend: digest.chart, alt: digest.chartAlt } };
      },
    });
  },
});
