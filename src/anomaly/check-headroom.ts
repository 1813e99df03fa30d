import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import { AnalyticsRefusedError } from '../anthropic/analytics.ts';
import type { Context } from '../context.ts';
import type { Repos } from '../db/repos/index.ts';
import type { TokenUsageRow } from '../db/repos/usage.ts';
import type { AlertKind } from '../kinds.ts';
import { MINUTE_MS } from '../time.ts';
import { lastCompleteMinute } from '../usage/core/freshness.ts';
import { readUsageFreshness } from '../usage/freshness.ts';
import type { RateLimitGroup, TokenUsageMinute } from './core/headroom.ts';
import { headroomReadsNeeded, headroomScopes, planHeadroom, type RequestUsage } from './core/headroom-plan.ts';
import { DEFAULT_WORKSPACE_SCOPE, workspaceScopeId } from './core/series.ts';
import { loadWorkspaces } from './load.ts';

const DAY_MINUTES = 1440;
const HEADROOM_KINDS: AlertKind[] = ['ratelimit.headroom'];

interface HeadroomSummary {
  window: { from: Date; until: Date } | null;
  workspaces: number;
  atRisk: number;
  /** Workspaces whose limits could not be read (their alerts are left as they were). */
  unreadable: string[];
  alerts: RaiseAlertsResult | null;
}

type Ctx = Pick<Context, 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

/**
 * Rate-limit headroom per workspace with usage in the last window (or a headroom alert firing): its token usage per
 * minute against the limits in effect for it (the workspace's own, or the organization's it inherits; the Default
 * Workspace cannot have its own). Reads, plans (planHeadroom), raises the alerts.
 */
export async function checkHeadroom(ctx: Ctx): Promise<HeadroomSummary> {
  const until = lastCompleteMinute(ctx.clock.now(), (await readUsageFreshness(ctx.repos)).settled);
  const summary: HeadroomSummary = { window: null, workspaces: 0, atRisk: 0, unreadable: [], alerts: null };
  if (until === null) return summary;
  const window = {
    from: new Date(until.getTime() - (ctx.config.policy.anomaly.window_minutes - 1) * MINUTE_MS),
    until,
  };
  summary.window = window;

  const usage = await storedTokenUsage(ctx.repos, window);
  const firing = await ctx.repos.alerts.firingScopeIds(HEADROOM_KINDS);
  const limits = new Map<string, RateLimitGroup[]>();
  for (const scope of headroomScopes(usage.keys(), firing)) {
    try {
      limits.set(scope, await rateLimitsOf(ctx, scope));
    } catch (err) {
      ctx.log.warn({ workspace: scope, err }, 'rate limits could not be read; headroom not checked');
      summary.unreadable.push(scope);
    }
  }
  const needs = headroomReadsNeeded(limits.values());
  const plan = planHeadroom({
    window,
    usage,
    limits,
    fast: needs.fast ? await fastUsage(ctx, window.from, until) : null,
    lastDay: needs.lastDay ? await lastDayUsage(ctx, until) : null,
    requests: needs.requests ? await requestUsage(ctx, window.from, until) : null,
    names: await loadWorkspaces(ctx.repos),
  });
  summary.workspaces = plan.evaluated.length;
  summary.atRisk = plan.observations.length;
  summary.alerts = await raiseAlerts(
    ctx,
    { kinds: HEADROOM_KINDS, scopes: plan.evaluated, observations: plan.observations },
    ctx.config.policy.routes,
    ctx.clock.now(),
  );
  return summary;
}

export async function rateLimitsOf(ctx: Ctx, scope: string): Promise<RateLimitGroup[]> {
  const limits =
    scope === DEFAULT_WORKSPACE_SCOPE
      ? ctx.admin.listRateLimits()
      : ctx.admin.listWorkspaceRateLimits(scope, { includeInherited: true });
  const groups: RateLimitGroup[] = [];
  for await (const g of limits) {
    groups.push({ id: g.groupId, type: g.groupType, name: g.groupName, models: g.models, limits: g.limits });
  }
  return groups;
}

function byScope(rows: readonly TokenUsageRow[]): Map<string, TokenUsageMinute[]> {
  const usage = new Map<string, TokenUsageMinute[]>();
  for (const { workspaceId, ...minute } of rows) {
    const scope = workspaceScopeId(workspaceId);
    const list = usage.get(scope) ?? [];
    list.push(minute);
    usage.set(scope, list);
  }
  return usage;
}

/**
 * Fast-mode usage over the window, read from the API: the usage table keeps no per-speed split, and fast-mode
 * limits count fast-mode requests only. Null (those limits skipped this run) when the read fails.
 */
async function fastUsage(ctx: Ctx, from: Date, until: Date): Promise<Map<string, TokenUsageMinute[]> | null> {
  const rows: TokenUsageRow[] = [];
  try {
    const report = ctx.admin.usageReport({
      startingAt: from,
      endingAt: new Date(until.getTime() + MINUTE_MS),
      bucketWidth: '1m',
      groupBy: ['workspace_id', 'model'],
      speeds: ['fast'],
    });
    for await (const bucket of report) {
      for (const r of bucket.results) {
        rows.push({
          workspaceId: r.workspace_id,
          minute: new Date(bucket.starting_at),
          model: r.model ?? '',
          uncachedInputTokens: r.uncached_input_tokens,
          cacheReadInputTokens: r.cache_read_input_tokens,
          cacheCreationInputTokens: r.cache_creation_5m_input_tokens + r.cache_creation_1h_input_tokens,
          outputTokens: r.output_tokens,
          webSearchRequests: r.web_search_requests,
        });
      }
    }
  } catch (err) {
    ctx.log.warn({ err }, 'fast-mode usage could not be read; fast-mode limits not checked this run');
    return null;
  }
  return byScope(rows);
}

/**
 * Requests per workspace and model over the window, read from the analytics usage API at each check (1m buckets):
 * the hourly billed ingest is up to an hour old, too late for a window of minutes, and a requests limit applies per
 * model group. Where the organization cannot use the API,
 * `refused`, said once in the log when that changes (analytics_access), not at every check.
 */
async function requestUsage(ctx: Ctx, from: Date, until: Date): Promise<RequestUsage> {
  const rows: TokenUsageRow[] = [];
  const now = ctx.clock.now();
  try {
    const walk = ctx.admin.analytics
      .usage({
        startingAt: from,
        endingAt: new Date(until.getTime() + MINUTE_MS),
        bucketWidth: '1m',
        groupBy: ['workspace_id', 'model'],
        orderBy: 'time',
        order: 'asc',
      })
      .pages();
    for await (const page of walk) {
      for (const r of page.data) {
        rows.push({
          workspaceId: r.workspaceId,
          minute: r.startingAt,
          model: r.model ?? '',
          uncachedInputTokens: 0,
          cacheReadInputTokens: 0,
          cacheCreationInputTokens: 0,
          outputTokens: 0,
          webSearchRequests: 0,
          requests: r.requests ?? 0,
        });
      }
    }
  } catch (err) {
    if (!(err instanceof AnalyticsRefusedError)) {
      ctx.log.warn({ err }, 'request counts could not be read; workspaces with a requests limit not judged this run');
      return 'failed';
    }
    if (await ctx.repos.billing.recordAccess('analytics.usage', false, err.message, now)) {
      ctx.log.warn({ err }, 'the analytics usage API is refused: no requests-per-minute headroom');
    }
    return 'refused';
  }
  if (await ctx.repos.billing.recordAccess('analytics.usage', true, null, now)) {
    ctx.log.info('the analytics usage API answers: requests-per-minute headroom checked');
  }
  return byScope(rows);
}

/** The last 24 hours' usage per workspace and model, for per-day limits (a rolling day, as the limit is judged). */
function lastDayUsage(ctx: Ctx, until: Date): Promise<Map<string, TokenUsageMinute[]>> {
  const from = new Date(until.getTime() - (DAY_MINUTES - 1) * MINUTE_MS);
  return storedTokenUsage(ctx.repos, { from, until }, { perMinute: false });
}

/**
 * The stored 1m token usage per workspace scope and model, from `from` to `until` (both included): per minute, or
 * with `perMinute: false` summed over the range (one entry per workspace and model, dated at its last minute).
 * `apiKeyId` narrows it to one key's usage.
 */
export async function storedTokenUsage(
  repos: Pick<Repos, 'usage'>,
  range: { from: Date; until: Date },
  opts: { perMinute?: boolean; apiKeyId?: string } = {},
): Promise<Map<string, TokenUsageMinute[]>> {
  return byScope(await repos.usage.tokenUsage(range, opts));
}
