import { sql } from 'kysely';
import type { AlertObservation } from '../alerts/lifecycle.ts';
import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import {
  assessHeadroom,
  type HeadroomReading,
  type RateLimitGroup,
  type TokenUsageMinute,
} from '../anomaly/headroom.ts';
import type { Context } from '../context.ts';
import { USAGE_SETTLED_WATERMARK } from '../usage/ingest.ts';
import { readWatermark } from '../usage/store.ts';
import { lastCompleteMinute } from './data-edge.ts';
import { loadWorkspaces } from './load.ts';
import { DEFAULT_WORKSPACE_SCOPE, workspaceScopeId } from './series.ts';

const MINUTE_MS = 60_000;
const HEADROOM_KINDS = ['ratelimit.headroom'];
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

type Ctx = Pick<Context, 'db' | 'admin' | 'log' | 'clock' | 'config'>;

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

  const rows = await ctx.db
    .selectFrom('usage_buckets')
    .select([
      'workspace_id',
      'starting_at',
      'model',
      sql<string>`sum(uncached_input_tokens)`.as('uncached'),
      sql<string>`sum(cache_read_input_tokens)`.as('cache_read'),
      sql<string>`sum(cache_creation_5m_input_tokens + cache_creation_1h_input_tokens)`.as('cache_creation'),
      sql<string>`sum(output_tokens)`.as('output'),
    ])
    .where('bucket_width', '=', '1m')
    .where('starting_at', '>=', from)
    .where('starting_at', '<=', until)
    .groupBy(['workspace_id', 'starting_at', 'model'])
    .execute();
  const usage = new Map<string, TokenUsageMinute[]>();
  for (const r of rows) {
    const scope = workspaceScopeId(r.workspace_id);
    const list = usage.get(scope) ?? [];
    list.push({
      minute: new Date(r.starting_at),
      model: r.model,
      uncachedInputTokens: Number(r.uncached),
      cacheReadInputTokens: Number(r.cache_read),
      cacheCreationInputTokens: Number(r.cache_creation),
      outputTokens: Number(r.output),
    });
    usage.set(scope, list);
  }

  // A workspace whose usage stopped altogether must still be judged, or its alert would never resolve.
  const firing = await ctx.db
    .selectFrom('alerts')
    .select('scope_id')
    .where('kind', 'in', HEADROOM_KINDS)
    .where('state', '=', 'firing')
    .execute();
  for (const a of firing) if (!usage.has(a.scope_id)) usage.set(a.scope_id, []);

  const names = await loadWorkspaces(ctx.db);
  const observations: AlertObservation[] = [];
  const evaluated: string[] = [];
  for (const [scope, minutes] of usage) {
    let groups: RateLimitGroup[];
    try {
      groups = await rateLimitsOf(ctx, scope);
    } catch (err) {
      ctx.log.warn({ workspace: scope, err }, 'rate limits could not be read; headroom not checked');
      summary.unreadable.push(scope);
      continue;
    }
    evaluated.push(`workspace:${scope}`);
    const name = names.get(scope)?.name ?? scope;
    for (const reading of assessHeadroom(minutes, groups, { from, until }, HEADROOM_THRESHOLD)) {
      if (reading.atRisk) observations.push(headroomObservation(scope, name, reading, { from, until }));
    }
  }
  summary.workspaces = evaluated.length;
  summary.atRisk = observations.length;
  summary.alerts = await raiseAlerts(
    ctx.db,
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
  for await (const g of limits) groups.push({ models: g.models, limits: g.limits });
  return groups;
}

const LIMIT_WORDS: Record<HeadroomReading['limitType'], string> = {
  input_tokens_per_minute: 'input tokens per minute',
  input_tokens_per_minute_cache_aware: 'input tokens per minute (cache-aware)',
  output_tokens_per_minute: 'output tokens per minute',
};

/** One alert per workspace, model group and limit. Pure. */
function headroomObservation(
  scope: string,
  workspaceName: string,
  r: HeadroomReading,
  window: { from: Date; until: Date },
): AlertObservation {
  const models = r.models ? r.models.join(', ') : 'models without a group of their own';
  const percent = Math.round(r.utilization * 100);
  const minutes = Math.round((window.until.getTime() - window.from.getTime()) / MINUTE_MS) + 1;
  const count = (n: number) => Math.round(n).toLocaleString('en-US');
  return {
    kind: 'ratelimit.headroom',
    severity: r.utilization >= 1 ? 'critical' : 'warning',
    scopeType: 'workspace',
    scopeId: scope,
    workspaceId: scope === DEFAULT_WORKSPACE_SCOPE ? null : scope,
    workspaceName,
    period: `${r.limitType}:${r.models ? r.models.join('+') : '*'}`,
    title: `Workspace "${workspaceName}" uses ${percent}% of its ${LIMIT_WORDS[r.limitType]} limit`,
    summary:
      `Over the last ${minutes} minutes it averaged ${count(r.meanPerMinute)} of its ${count(r.limitPerMinute)} ` +
      `${LIMIT_WORDS[r.limitType]} (${models}). Requests start failing with 429 before the limit looks full; ` +
      'raise the limit in the Console or spread the load.',
    fields: [
      { label: 'Workspace', value: workspaceName },
      { label: 'Limit', value: `${count(r.limitPerMinute)} ${LIMIT_WORDS[r.limitType]}` },
      { label: 'Used', value: `${percent}% (mean ${count(r.meanPerMinute)}/min over ${minutes} min)` },
      {
        label: 'Peak minute',
        value: r.peakMinute ? `${count(r.peakPerMinute)} at ${r.peakMinute.toISOString().slice(11, 16)} UTC` : '—',
      },
      { label: 'Models', value: models },
    ],
    links: [{ label: 'Limits in the Console', url: 'https://console.anthropic.com/settings/limits' }],
    details: { utilization: r.utilization, limitType: r.limitType, limit: r.limitPerMinute, models: r.models },
  };
}
