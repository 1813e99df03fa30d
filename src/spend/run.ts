import { observationFingerprint } from '../alerts/core/lifecycle.ts';
import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { Context } from '../context.ts';
import { picoToUsd } from '../money.ts';
import { MINUTE_MS } from '../time.ts';
import { readUsageFreshness } from '../usage/freshness.ts';
import { SPEND_KINDS, spendObservations } from './core/alerts.ts';
import { driverFields, spendDrivers } from './core/drivers.ts';
import { checkLimits } from './core/limits.ts';
import { projectScope, spendSoFar } from './core/project.ts';
import { buildScopes } from './core/scopes.ts';
import { askAboutIncreaseRequests } from './increase-requests.ts';
import { readSpendLimits } from './limits.ts';
import { loadSpendInputs, loadThresholdInputs } from './load.ts';
import { memberSpendObservations } from './members.ts';

export type ProjectSpendResult = ProjectSpendSummary | { skipped: string };

export interface ProjectSpendSummary {
  month: string;
  asOf: string;
  scopes: number;
  organization: { monthToDateUsd: string; p50Usd: string; p90Usd: string };
  alerts: RaiseAlertsResult;
  /** `spend.limit_changed` raised this run (null: the Spend Limits API was not read). */
  limitChanges: RaiseAlertsResult | null;
  /** Claude Enterprise members' increase requests asked about this run (null: none read, e.g. a Console organization). */
  increaseRequests: RaiseAlertsResult | null;
}

export type CheckSpendResult =
  | (ProjectSpendSummary & { mode: 'projected'; because: string })
  | { mode: 'checked'; asOf: string; thresholdsReached: number }
  | { skipped: string };

type SpendContext = Pick<Context, 'repos' | 'log' | 'clock' | 'config' | 'admin'>;

/** A projection older than this is made again by the check after a poll (the schedule makes one every 15 minutes). */
const PROJECTION_FRESH_MS = 14 * MINUTE_MS;

/**
 * One project-spend run: read daily spend and the limits (the Spend Limits API's and the policy file's), project
 * every scope (pure), store the projections, and raise the threshold and forecast alerts of every limit in its own
 * period, with their drivers, and `spend.limit_changed` for limits changed in the Console. Safe to run twice and on
 * several replicas at once: the projections of a run are one transaction, and raiseAlerts serialises the alert
 * decisions under a lock, so a threshold already announced is never announced again.
 */
export async function projectSpend(ctx: SpendContext): Promise<ProjectSpendResult> {
  const freshness = await readUsageFreshness(ctx.repos);
  // Before the first usage poll there is nothing to project from: a "$0 this month" projection would be wrong, and
  // a digest or alert built on it misleading.
  if (freshness.committed === null) return { skipped: 'no usage polled yet' };
  return project(ctx, freshness);
}

/**
 * After every usage poll: the thresholds on actual spend, at once, so a limit crossed (or already crossed when the
 * worker starts) is told within minutes, not at the next quarter hour. The check itself is cheap (the periods to
 * date, against the limits read last) and raises nothing: when it finds a threshold reached that no alert records
 * yet, or when no projection is recent (the first poll after a start), the whole projection runs, and its message
 * carries the projection and the drivers as every spend message does.
 */
export async function checkSpend(ctx: SpendContext): Promise<CheckSpendResult> {
  const freshness = await readUsageFreshness(ctx.repos);
  if (freshness.committed === null) return { skipped: 'no usage polled yet' };
  const now = ctx.clock.now();
  const last = await ctx.repos.spend.lastProjectionAt();
  if (last === null || now.getTime() - last.getTime() >= PROJECTION_FRESH_MS) {
    return { mode: 'projected', because: 'no recent projection', ...(await project(ctx, freshness)) };
  }
  const policy = ctx.config.policy;
  const limits = await readSpendLimits(ctx, { fresh: false });
  const inputs = await loadThresholdInputs(
    ctx.repos,
    policy.organization.timezone,
    freshness,
    now,
    policy.spend.limits,
  );
  const { scopes } = buildScopes(inputs, policy.spend.limits, limits.api);
  const facts = scopes
    .filter((s) => s.limits.length > 0)
    .map((scope) => ({
      projection: spendSoFar(scope, inputs.clock),
      checks: checkLimits(scope, inputs.clock, false),
      driverFields: [],
    }));
  const reached = spendObservations(facts, { ...policy.spend, forecast: false }).map(observationFingerprint);
  const known = new Set((await ctx.repos.alerts.forRaise([], reached)).map((a) => a.fingerprint));
  if (reached.some((fp) => !known.has(fp))) {
    return { mode: 'projected', because: 'a threshold newly reached', ...(await project(ctx, freshness)) };
  }
  return { mode: 'checked', asOf: inputs.clock.asOf.toISOString(), thresholdsReached: reached.length };
}

async function project(
  ctx: SpendContext,
  freshness: Awaited<ReturnType<typeof readUsageFreshness>>,
): Promise<ProjectSpendSummary> {
  const policy = ctx.config.policy;
  const now = ctx.clock.now();
  const limits = await readSpendLimits(ctx, { fresh: true });
  const inputs = await loadSpendInputs(ctx.repos, policy.organization.timezone, freshness, now);
  const { scopes, problems } = buildScopes(inputs, policy.spend.limits, limits.api);
  for (const problem of problems) ctx.log.warn({ problem }, 'a spending limit could not be applied as written');

  const projections = scopes.map((s) => projectScope(s, inputs.clock));
  await ctx.repos.spend.store(projections, now);

  const facts = projections
    .filter((p) => p.scope.limits.length > 0)
    .map((projection) => ({
      projection,
      checks: checkLimits(projection.scope, inputs.clock, true),
      driverFields: driverFields(spendDrivers(inputs.drivers, projection.scope, inputs)),
    }));
  const alerts = await raiseAlerts(
    ctx,
    {
      kinds: SPEND_KINDS,
      observations: [...spendObservations(facts, policy.spend), ...(await memberSpendObservations(ctx))],
    },
    policy.routes,
    now,
  );
  let limitChanges: RaiseAlertsResult | null = null;
  if (limits.changes !== null) {
    // the limits' own scopes (the organization, the usage tier, workspaces): a member's notice of the same kind asks
    // about an increase request, and only the increase step below, which reads those, may end it
    const scopes = (await ctx.repos.alerts.list({ all: false }))
      .filter((a) => a.kind === 'spend.limit_changed' && a.scopeType !== 'member')
      .map((a) => `${a.scopeType}:${a.scopeId}`);
    limitChanges = await raiseAlerts(
      ctx,
      { kinds: ['spend.limit_changed'], scopes, observations: limits.changes },
      policy.routes,
      now,
    );
    await limits.save();
  }
  // Claude Enterprise: members' requests for a higher limit, asked about in Slack (Approve / Deny)
  const increaseRequests = await askAboutIncreaseRequests(ctx);
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
    limitChanges,
    increaseRequests,
  };
}
