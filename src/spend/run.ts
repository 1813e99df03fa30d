import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { Context } from '../context.ts';
import { picoToUsd } from '../money.ts';
import { readUsageFreshness } from '../usage/freshness.ts';
import { SPEND_KINDS, spendObservations } from './core/alerts.ts';
import { driverFields, spendDrivers } from './core/drivers.ts';
import { projectScope } from './core/project.ts';
import { buildScopes } from './core/scopes.ts';
import { loadSpendInputs } from './load.ts';

export type ProjectSpendResult = ProjectSpendSummary | { skipped: string };

export interface ProjectSpendSummary {
  month: string;
  asOf: string;
  scopes: number;
  organization: { monthToDateUsd: string; p50Usd: string; p90Usd: string };
  alerts: RaiseAlertsResult;
}

/**
 * One project-spend run: read daily spend, project every scope (pure), store the projections, and raise the
 * threshold and forecast alerts with their drivers. Safe to run twice and on several replicas at once: the
 * projections of a run are one transaction, and raiseAlerts serialises the alert decisions under a lock, so a
 * threshold already announced is never announced again.
 */
export async function projectSpend(
  ctx: Pick<Context, 'repos' | 'log' | 'clock' | 'config'>,
): Promise<ProjectSpendResult> {
  const policy = ctx.config.policy;
  const now = ctx.clock.now();
  const freshness = await readUsageFreshness(ctx.repos);
  // Before the first usage poll there is nothing to project from: a "$0 this month" projection would be wrong, and
  // a digest or alert built on it misleading.
  if (freshness.committed === null) return { skipped: 'no usage polled yet' };
  const inputs = await loadSpendInputs(ctx.repos, policy.organization.timezone, freshness, now);
  const { scopes, problems } = buildScopes(inputs, policy.spend.limits);
  for (const problem of problems) ctx.log.warn({ problem }, 'a spending limit could not be applied as written');

  const projections = scopes.map((s) => projectScope(s, inputs.clock));
  await ctx.repos.spend.store(projections, now);

  const facts = projections
    .filter((p) => p.scope.limit !== null)
    .map((projection) => ({
      projection,
      driverFields: driverFields(spendDrivers(inputs.drivers, projection.scope, inputs)),
    }));
  const alerts = await raiseAlerts(
    ctx,
    { kinds: SPEND_KINDS, observations: spendObservations(facts, policy.spend) },
    policy.routes,
    now,
  );
  const org = projections[0]!;
  return {
    month: org.month,
    asOf: inputs.clock.asOf.toISOString(),
    scopes: projections.length,
    organization: {
      monthToDateUsd: picoToUsd(org.monthToDate),
      p50Usd: picoToUsd(org.p50),
      p90Usd: picoToUsd(org.p90),
    },
    alerts,
  };
}
