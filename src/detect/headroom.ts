import { sql } from 'kysely';
import type { AlertObservation } from '../alerts/core/lifecycle.ts';
import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import {
  assessHeadroom,
  type HeadroomReading,
  limiterLabel,
  type RateLimitGroup,
  type TokenUsageMinute,
} from '../anomaly/headroom.ts';
import { CONSOLE_LIMITS_URL } from '../console.ts';
import type { Context } from '../context.ts';
import type { Db } from '../db/index.ts';
import type { AlertKind } from '../kinds.ts';
import { MINUTE_MS } from '../time.ts';
import { USAGE_SETTLED_WATERMARK } from '../usage/ingest.ts';
import { readWatermark } from '../usage/store.ts';
import { lastCompleteMinute } from './data-edge.ts';
import { loadWorkspaces } from './load.ts';
import { DEFAULT_WORKSPACE_SCOPE, workspaceScopeId } from './series.ts';

const DAY_MINUTES = 1440;
const HEADROOM_KINDS: AlertKind[] = ['ratelimit.headroom'];
/** Share of a limit at which requests are close to failing with 429. */
const HEADROOM_THRESHOLD = 0.8;

export interface HeadroomSummary {
  window: { from: Date; until: Date } | null;
  workspaces: number;
  atRisk: number;
  /** Workspaces whose limits could not be read (their alerts are left as they were). */
  unreadable: string[];
  alerts: RaiseAlertsResult | null;
}

type Ctx = Pick<Context, 'db' | 'repos' | 'admin' | 'log' | 'clock' | 'config'>;

/**
 * Rate-limit headroom per workspace with usage in the last window (or a headroom alert firing): its token usage per minute against the limits in
 * effect for it (the workspace's own, or the organization's it inherits; the Default Workspace cannot have its own).
 */
export async function checkHeadroom(ctx: Ctx): Promise<HeadroomSummary> {
  const until = lastCompleteMinute(ctx.clock.now(), await readWatermark(ctx.db, USAGE_SETTLED_WATERMARK));
  const summary: HeadroomSummary = { window: null, workspaces: 0, atRisk: 0, unreadable: [], alerts: null };
  if (until === null) return summary;
  const from = new Date(until.getTime() - (ctx.config.policy.anomaly.window_minutes - 1) * MINUTE_MS);
  summary.window = { from, until };

  const usage = await storedTokenUsage(ctx.db, { from, until });

  // A workspace whose usage stopped altogether must still be judged, or its alert would never resolve.
  for (const scope of await ctx.repos.alerts.firingScopeIds(HEADROOM_KINDS)) {
    if (!usage.has(scope)) usage.set(scope, []);
  }

  const names = await loadWorkspaces(ctx.db);
  const limits = new Map<string, RateLimitGroup[]>();
  for (const scope of usage.keys()) {
    try {
      limits.set(scope, await rateLimitsOf(ctx, scope));
    } catch (err) {
      ctx.log.warn({ workspace: scope, err }, 'rate limits could not be read; headroom not checked');
      summary.unreadable.push(scope);
    }
  }
  const anyLimit = (types: string[]) =>
    [...limits.values()].some((groups) => groups.some((g) => g.limits.some((l) => types.includes(l.type))));
  const fast = anyLimit(['fast_itpmca', 'fast_otpm']) ? await fastUsage(ctx, from, until) : null;
  const lastDay = anyLimit(['tokens_per_day']) ? await lastDayUsage(ctx, until) : null;

  const observations: AlertObservation[] = [];
  const evaluated: string[] = [];
  for (const [scope, groups] of limits) {
    evaluated.push(`workspace:${scope}`);
    const name = names.get(scope)?.name ?? scope;
    const extra = { fast: fast ? (fast.get(scope) ?? []) : null, lastDay: lastDay ? (lastDay.get(scope) ?? []) : null };
    for (const reading of assessHeadroom(usage.get(scope) ?? [], groups, { from, until }, HEADROOM_THRESHOLD, extra)) {
      if (reading.atRisk) observations.push(headroomObservation(scope, name, reading, { from, until }));
    }
  }
  summary.workspaces = evaluated.length;
  summary.atRisk = observations.length;
  summary.alerts = await raiseAlerts(
    ctx,
    { kinds: HEADROOM_KINDS, scopes: evaluated, observations },
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

interface UsageRow {
  workspace_id: string | null;
  starting_at: Date | string;
  model: string | null;
  uncached: string | number;
  cache_read: string | number;
  cache_creation: string | number;
  output: string | number;
  web_search: string | number;
}

function byScope(rows: readonly UsageRow[]): Map<string, TokenUsageMinute[]> {
  const usage = new Map<string, TokenUsageMinute[]>();
  for (const r of rows) {
    const scope = workspaceScopeId(r.workspace_id);
    const list = usage.get(scope) ?? [];
    list.push({
      minute: new Date(r.starting_at),
      model: r.model ?? '',
      uncachedInputTokens: Number(r.uncached),
      cacheReadInputTokens: Number(r.cache_read),
      cacheCreationInputTokens: Number(r.cache_creation),
      outputTokens: Number(r.output),
      webSearchRequests: Number(r.web_search),
    });
    usage.set(scope, list);
  }
  return usage;
}

/**
 * Fast-mode usage over the window, read from the API: the usage table keeps no per-speed split, and fast-mode
 * limits count fast-mode requests only. Null (those limits skipped this run) when the read fails.
 */
async function fastUsage(ctx: Ctx, from: Date, until: Date): Promise<Map<string, TokenUsageMinute[]> | null> {
  const rows: UsageRow[] = [];
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
          workspace_id: r.workspace_id,
          starting_at: bucket.starting_at,
          model: r.model,
          uncached: r.uncached_input_tokens,
          cache_read: r.cache_read_input_tokens,
          cache_creation: r.cache_creation_5m_input_tokens + r.cache_creation_1h_input_tokens,
          output: r.output_tokens,
          web_search: r.web_search_requests,
        });
      }
    }
  } catch (err) {
    ctx.log.warn({ err }, 'fast-mode usage could not be read; fast-mode limits not checked this run');
    return null;
  }
  return byScope(rows);
}

/** The last 24 hours' usage per workspace and model, for per-day limits (a rolling day, as the limit is judged). */
function lastDayUsage(ctx: Ctx, until: Date): Promise<Map<string, TokenUsageMinute[]>> {
  const from = new Date(until.getTime() - (DAY_MINUTES - 1) * MINUTE_MS);
  return storedTokenUsage(ctx.db, { from, until }, { perMinute: false });
}

/**
 * The stored 1m token usage per workspace scope and model, from `from` to `until` (both included): per minute, or
 * with `perMinute: false` summed over the range (one entry per workspace and model, dated at its last minute).
 * `apiKeyId` narrows it to one key's usage.
 */
export async function storedTokenUsage(
  db: Db,
  range: { from: Date; until: Date },
  opts: { perMinute?: boolean; apiKeyId?: string } = {},
): Promise<Map<string, TokenUsageMinute[]>> {
  const perMinute = opts.perMinute ?? true;
  const apiKeyId = opts.apiKeyId;
  const rows = await db
    .selectFrom('usage_buckets')
    .select([
      'workspace_id',
      'model',
      (perMinute ? sql<Date>`starting_at` : sql<Date>`max(starting_at)`).as('starting_at'),
      sql<string>`sum(uncached_input_tokens)`.as('uncached'),
      sql<string>`sum(cache_read_input_tokens)`.as('cache_read'),
      sql<string>`sum(cache_creation_5m_input_tokens + cache_creation_1h_input_tokens)`.as('cache_creation'),
      sql<string>`sum(output_tokens)`.as('output'),
      sql<string>`sum(web_search_requests)`.as('web_search'),
    ])
    .where('bucket_width', '=', '1m')
    .where('starting_at', '>=', range.from)
    .where('starting_at', '<=', range.until)
    .$if(apiKeyId !== undefined, (q) => q.where('api_key_id', '=', apiKeyId!))
    .groupBy(['workspace_id', 'model'])
    .$if(perMinute, (q) => q.groupBy('starting_at'))
    .execute();
  return byScope(rows);
}

/** One alert per workspace, model group and limit. Pure. */
function headroomObservation(
  scope: string,
  workspaceName: string,
  r: HeadroomReading,
  window: { from: Date; until: Date },
): AlertObservation {
  const modelList = r.models ? r.models.join(', ') : 'models without a group of their own';
  const models = r.groupName ? `${r.groupName}: ${modelList}` : modelList;
  const words = limiterLabel(r.limitType);
  const percent = Math.round(r.utilization * 100);
  const minutes = Math.round((window.until.getTime() - window.from.getTime()) / MINUTE_MS) + 1;
  const count = (n: number) => (n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
  const usedText =
    r.per === 'day'
      ? `${count(r.used)} in the last 24 hours`
      : r.per === 'second'
        ? `mean ${count(r.used)}/s over ${minutes} min`
        : `mean ${count(r.used)}/min over ${minutes} min`;
  const over = r.per === 'day' ? 'Over the last 24 hours it used' : `Over the last ${minutes} minutes it averaged`;
  return {
    kind: 'ratelimit.headroom',
    severity: r.utilization >= 1 ? 'critical' : 'warning',
    scopeType: 'workspace',
    scopeId: scope,
    workspaceId: scope === DEFAULT_WORKSPACE_SCOPE ? null : scope,
    workspaceName,
    // The stable group id when the API gives one; the model list in classic responses.
    period: `${r.limitType}:${r.groupId ?? (r.models ? r.models.join('+') : '*')}`,
    title: `Workspace "${workspaceName}" uses ${percent}% of its ${words} limit`,
    summary:
      `${over} ${count(r.used)} of its ${count(r.limit)} ` +
      `${words} (${models}). Requests start failing with 429 before the limit looks full; ` +
      'raise the limit in the Console or spread the load.',
    fields: [
      { label: 'Workspace', value: workspaceName },
      { label: 'Limit', value: `${count(r.limit)} ${words}` },
      { label: 'Used', value: `${percent}% (${usedText})` },
      {
        label: 'Peak minute',
        value: r.peakMinute ? `${count(r.peakPerMinute)} at ${r.peakMinute.toISOString().slice(11, 16)} UTC` : '—',
      },
      { label: 'Models', value: models },
    ],
    links: [{ label: 'Limits in the Console', url: CONSOLE_LIMITS_URL }],
    details: {
      utilization: r.utilization,
      limitType: r.limitType,
      limit: r.limit,
      per: r.per,
      groupId: r.groupId,
      models: r.models,
    },
  };
}
