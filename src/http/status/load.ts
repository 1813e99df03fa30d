import { type AlertListing, listAlerts } from '../../alerts/list.ts';
import type { Context } from '../../context.ts';
import type { JobRunRecord } from '../../db/repos/job-runs.ts';
import type { SilenceRecord } from '../../db/repos/silences.ts';
import { WATERMARKS } from '../../db/repos/watermarks.ts';
import { type DriftDay, loadFinanceData } from '../../digest/finance-data.ts';
import { BLIND_KIND } from '../../health/blind.ts';
import type { FailingJob } from '../../health/jobs.ts';
import { picoToUsd } from '../../money.ts';
import { planRotation } from '../../rotation/core/plan.ts';
import { type KeyRow, keyRows } from '../../rotation/key-rows.ts';
import { loadRotationInputs } from '../../rotation/load.ts';
import { type SpendReport, spendReport } from '../../spend/report.ts';
import { DAY_MS } from '../../time.ts';

/**
 * What the status page shows, read through the loaders the CLI's `keywarden spend`, `keys` and `alerts` use (and
 * the finance digest's, for the daily series and the drift from the cost report), so the page and the terminal
 * never disagree. Reads only.
 */
export interface StatusData {
  organizationName: string;
  /** The organization shown, by id (null in a test's Context, which names none). */
  organizationId: string | null;
  /** Every organization of the deployment, for the page's selector; empty with one. */
  organizations: { id: string; name: string }[];
  timezone: string;
  asOf: Date;
  /** Today in the organization's timezone (YYYY-MM-DD): where the chart's projection starts. */
  today: string;
  spend: SpendReport | null;
  /** The organization's priced usage per local day of the month in progress (days without usage absent). */
  dailySpendUsd: { date: string; usd: string }[];
  /** Days of this month whose priced usage drifts from the cost report, newest first. */
  drift: DriftDay[];
  keys: KeyRow[];
  /** Firing alerts and those resolved within RECENT_DAYS, newest first. */
  alerts: AlertListing[];
  /** Silences in force or still to come, as `keywarden silence list` shows them. */
  silences: SilenceRecord[];
  health: {
    /** The end of the newest usage minute the Admin API answered with data. */
    settledUntil: Date | null;
    jobs: JobRunRecord[];
    failing: readonly FailingJob[];
    /** A `keywarden.blind` alert fires: the Admin API refuses the admin key. */
    blind: boolean;
  };
}

/**
 * The page's loader over the deployment's organizations (by id, in the policy file's order, each with its failing
 * jobs): `?org=<id>` picks one, no `org` the first; null for an id the deployment does not watch.
 */
export function statusLoader(
  orgs: ReadonlyMap<string, { ctx: Pick<Context, 'repos' | 'config' | 'clock'>; failing: () => readonly FailingJob[] }>,
): (org: string | null) => Promise<StatusData | null> {
  return async (org) => {
    const shown = org === null ? orgs.values().next().value : orgs.get(org);
    return shown === undefined ? null : loadStatus(shown.ctx, shown.failing);
  };
}

/** Resolved alerts stay on the page this long. */
export const RECENT_DAYS = 7;

export async function loadStatus(
  ctx: Pick<Context, 'repos' | 'config' | 'clock'>,
  failing: () => readonly FailingJob[],
): Promise<StatusData> {
  const now = ctx.clock.now();
  const { policy } = ctx.config;
  const organizationName = policy.organization.name || 'Organization';
  const [spend, finance, rotationInputs, alerts, silences, jobs, settledUntil] = await Promise.all([
    spendReport(ctx.repos),
    loadFinanceData(ctx.repos, now, {
      organizationName,
      timezone: policy.organization.timezone,
      organizationLimitUsd: policy.spend.limits.organization,
    }),
    loadRotationInputs(ctx.repos, policy.rotation.drain_window_hours, now),
    listAlerts(ctx, { all: false, resolvedSince: new Date(now.getTime() - RECENT_DAYS * DAY_MS) }),
    ctx.repos.silences.list({ all: false, now }),
    ctx.repos.jobRuns.all(),
    ctx.repos.watermarks.read(WATERMARKS.usageSettled),
  ]);
  const { organizations } = ctx.config;
  return {
    organizationName,
    organizationId: ctx.config.organization?.id ?? null,
    organizations: organizations.length > 1 ? organizations.map((o) => ({ id: o.id, name: o.name })) : [],
    timezone: policy.organization.timezone,
    asOf: now,
    today: finance.today,
    spend,
    dailySpendUsd: finance.dailySpend.map((d) => ({ date: d.date, usd: picoToUsd(d.usd) })),
    drift: finance.drift,
    keys: keyRows(rotationInputs, planRotation(rotationInputs, policy.rotation, now), now),
    alerts,
    silences,
    health: {
      settledUntil,
      jobs: [...jobs].sort((a, b) => a.job.localeCompare(b.job)),
      failing: failing(),
      blind: alerts.some((a) => a.kind === BLIND_KIND && a.state === 'firing'),
    },
  };
}
