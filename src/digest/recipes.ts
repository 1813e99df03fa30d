import type { Context } from '../context.ts';
import { composeFinanceDigest } from './finance.ts';
import { loadFinanceData } from './finance-data.ts';
import { pendingIncreases } from './increase-requests.ts';
import { isoWeek } from './period.ts';
import type { DigestRecipe } from './run.ts';
import { composeSecurityDigest } from './security.ts';
import { loadSecurityData } from './security-data.ts';

/** The daily finance digest: once per local day; it waits for the month's first projection. */
export function financeDigestRecipe(
  ctx: Pick<Context, 'repos' | 'admin' | 'log'>,
  organizationLimitUsd: number | null,
): DigestRecipe {
  return {
    period: (today) => today,
    async compose({ now, timezone, organizationName }) {
      const data = await loadFinanceData(ctx.repos, now, { organizationName, timezone, organizationLimitUsd });
      // its chart and headline rest on this month's projection: wait for project-spend's first run of the month
      if (data.organization === null) return { skipped: 'no projection for this month yet' };
      const digest = composeFinanceDigest({ ...data, increaseRequests: await pendingIncreases(ctx) });
      return { digest: digest.message, chart: { spend: digest.chart, alt: digest.chartAlt } };
    },
  };
}

/** The weekly security digest: once per ISO week. */
export function securityDigestRecipe(ctx: Pick<Context, 'repos'>): DigestRecipe {
  return {
    period: isoWeek,
    async compose({ now, timezone, organizationName }) {
      const data = await loadSecurityData(ctx.repos, now, { organizationName, timezone });
      return { digest: composeSecurityDigest(data), chart: null };
    },
  };
}
