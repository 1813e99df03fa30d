import { type RawBuilder, sql } from 'kysely';
import type { SpendBreakdownRow } from '../anomaly/contributors.ts';
import type { Db } from '../db/index.ts';
import { DEFAULT_WORKSPACE_NAME } from '../default-workspace.ts';
import { ORGANIZATION_SCOPE_LABEL } from '../inventory/core/key-place.ts';
import type { PriceTable } from '../usage/prices.ts';
import { priceUsage } from '../usage/pricing.ts';
import { DEFAULT_WORKSPACE_SCOPE, type HourCell, workspaceScopeId } from './series.ts';

/**
 * The reads runaway detection makes. Spend is read as float USD: it feeds statistics, never a sum that is stored
 * or shown as money (the alert's figures are rates and projections, rounded for display).
 */

/** Spend of one key (or of usage without a key) in one minute, summed over models, tiers and windows. */
export interface MinuteRow {
  keyId: string | null;
  workspaceScope: string;
  minute: Date;
  usd: number;
}

/** Per key and minute, the 1-minute rows from `from` (inclusive) to `until` (exclusive). */
export async function loadMinuteSpend(db: Db, from: Date, until: Date): Promise<MinuteRow[]> {
  const rows = await db
    .selectFrom('usage_buckets')
    .select(['api_key_id', 'workspace_id', 'starting_at', sql<number>`sum(cost_usd)::float8`.as('usd')])
    .where('bucket_width', '=', '1m')
    .where('starting_at', '>=', from)
    .where('starting_at', '<', until)
    .groupBy(['api_key_id', 'workspace_id', 'starting_at'])
    .execute();
  return rows.map((r) => ({
    keyId: r.api_key_id,
    workspaceScope: workspaceScopeId(r.workspace_id),
    minute: new Date(r.starting_at),
    usd: Number(r.usd),
  }));
}

/** The first hour keywarden holds usage for (its backfill's start): hours before it are unknown, not quiet. */
export async function loadCoverageStart(db: Db): Promise<Date | null> {
  const row = await db
    .selectFrom('usage_buckets')
    .select((eb) => eb.fn.min('starting_at').as('first'))
    .where('bucket_width', 'in', ['1m', '1h'])
    .executeTakeFirst();
  return row?.first ? new Date(row.first) : null;
}

export interface HourlyCells {
  keys: Map<string, HourCell[]>;
  workspaces: Map<string, HourCell[]>;
  /** Per workspace scope: spend of each key over the period, for the largest key's share. */
  keyTotals: Map<string, Map<string, number>>;
}

/**
 * Hourly spend from `from` to `until` of the given keys and workspaces: hourly rows as they are, 1-minute rows
 * summed per minute first (over models; for workspaces over keys too) so their squares measure the scope's own
 * lumpiness. Workspaces are named by scope id (`default` for the Default Workspace).
 */
export async function loadHourlyCells(
  db: Db,
  from: Date,
  until: Date,
  keyIds: readonly string[],
  workspaceScopes: readonly string[],
): Promise<HourlyCells> {
  const out: HourlyCells = { keys: new Map(), workspaces: new Map(), keyTotals: new Map() };
  const push = (map: Map<string, HourCell[]>, id: string, cell: HourCell) => {
    const list = map.get(id);
    if (list) list.push(cell);
    else map.set(id, [cell]);
  };
  if (keyIds.length > 0) {
    const inKeys = sql`api_key_id IN (${sql.join(keyIds.map((k) => sql`${k}`))})`;
    for (const r of await hourlyCellsBy(db, 'api_key_id', inKeys, from, until)) {
      // api_key_id IN (...) never matches NULL
      push(out.keys, r.id!, cellOf(r));
    }
  }
  if (workspaceScopes.length > 0) {
    const ids = workspaceScopes.filter((w) => w !== DEFAULT_WORKSPACE_SCOPE);
    const withDefault = workspaceScopes.includes(DEFAULT_WORKSPACE_SCOPE);
    const inScope = sql`(${ids.length > 0 ? sql`workspace_id IN (${sql.join(ids.map((w) => sql`${w}`))})` : sql`false`}
      ${withDefault ? sql`OR workspace_id IS NULL` : sql``})`;
    for (const r of await hourlyCellsBy(db, 'workspace_id', inScope, from, until)) {
      push(out.workspaces, workspaceScopeId(r.id), cellOf(r));
    }
    const totals = await sql<{ workspace_id: string | null; api_key_id: string; usd: number }>`
      SELECT workspace_id, api_key_id, sum(cost_usd)::float8 AS usd
      FROM usage_buckets
      WHERE bucket_width IN ('1m', '1h') AND starting_at >= ${from} AND starting_at < ${until}
        AND api_key_id IS NOT NULL AND ${inScope}
      GROUP BY workspace_id, api_key_id
    `.execute(db);
    for (const r of totals.rows) {
      const scope = workspaceScopeId(r.workspace_id);
      const map = out.keyTotals.get(scope) ?? new Map<string, number>();
      map.set(r.api_key_id, (map.get(r.api_key_id) ?? 0) + Number(r.usd));
      out.keyTotals.set(scope, map);
    }
  }
  return out;
}

interface CellRow {
  id: string | null;
  hour: Date;
  usd: number;
  squares: number | null;
  active: number | null;
  following: number | null;
}

const cellOf = (r: CellRow): HourCell => ({
  hour: new Date(r.hour),
  usd: Number(r.usd),
  sumOfSquares: r.squares,
  activeMinutes: r.active,
  followingMinutes: r.following,
});

/**
 * Hourly spend per value of `column` (a key or a workspace) among the rows `filter` selects: 1h rows as they are
 * (no squares), 1m rows summed per minute first, then per hour with the sum of their squared minute totals, the
 * number of minutes with spend, and how many of those followed a minute with spend.
 */
async function hourlyCellsBy(
  db: Db,
  column: 'api_key_id' | 'workspace_id',
  filter: RawBuilder<unknown>,
  from: Date,
  until: Date,
): Promise<CellRow[]> {
  const col = sql.ref(column);
  const rows = await sql<CellRow>`
    SELECT ${col} AS id, starting_at AS hour, sum(cost_usd)::float8 AS usd, NULL::float8 AS squares,
      NULL::int AS active, NULL::int AS following
    FROM usage_buckets
    WHERE bucket_width = '1h' AND starting_at >= ${from} AND starting_at < ${until} AND ${filter}
    GROUP BY ${col}, starting_at
    UNION ALL
    SELECT id, date_trunc('hour', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(usd), sum(usd * usd),
      (count(*) FILTER (WHERE usd > 0))::int,
      (count(*) FILTER (WHERE usd > 0 AND previous_usd > 0 AND previous = minute - interval '1 minute'))::int
    FROM (
      SELECT ${col} AS id, starting_at AS minute, sum(cost_usd)::float8 AS usd,
        lag(starting_at) OVER (PARTITION BY ${col} ORDER BY starting_at) AS previous,
        lag(sum(cost_usd)::float8) OVER (PARTITION BY ${col} ORDER BY starting_at) AS previous_usd
      FROM usage_buckets
      WHERE bucket_width = '1m' AND starting_at >= ${from} AND starting_at < ${until} AND ${filter}
      GROUP BY ${col}, starting_at
    ) m
    GROUP BY 1, 2
  `.execute(db);
  return rows.rows;
}

/** What the detector knows of a key beyond its spend: names for the message, creation for its history's start. */
export interface KeyInfo {
  id: string;
  name: string;
  status: string;
  partialKeyHint: string | null;
  workspaceScope: string;
  workspaceName: string | null;
  createdAt: Date;
}

export async function loadKeys(db: Db, ids: readonly string[]): Promise<Map<string, KeyInfo>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('api_keys')
    .leftJoin('workspaces', 'workspaces.id', 'api_keys.workspace_id')
    .select([
      'api_keys.id',
      'api_keys.name',
      'api_keys.status',
      'api_keys.partial_key_hint',
      'api_keys.workspace_id',
      'api_keys.scope_type',
      'api_keys.created_at',
      'workspaces.name as workspace_name',
    ])
    .where('api_keys.id', 'in', [...ids])
    .execute();
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        name: r.name,
        status: r.status,
        partialKeyHint: r.partial_key_hint,
        workspaceScope: workspaceScopeId(r.workspace_id),
        // its usage rows say no workspace, as the Default Workspace's do: the name must not say Default Workspace
        workspaceName: r.scope_type === 'organization' ? ORGANIZATION_SCOPE_LABEL : r.workspace_name,
        createdAt: new Date(r.created_at),
      },
    ]),
  );
}

export interface WorkspaceInfo {
  scope: string;
  name: string;
  createdAt: Date | null;
}

export async function loadWorkspaces(db: Db): Promise<Map<string, WorkspaceInfo>> {
  const rows = await db.selectFrom('workspaces').select(['id', 'name', 'created_at']).execute();
  const out = new Map<string, WorkspaceInfo>(
    rows.map((r) => [r.id, { scope: r.id, name: r.name, createdAt: new Date(r.created_at) }]),
  );
  out.set(DEFAULT_WORKSPACE_SCOPE, { scope: DEFAULT_WORKSPACE_SCOPE, name: DEFAULT_WORKSPACE_NAME, createdAt: null });
  return out;
}

/**
 * The priced usage of one key (or one workspace) from `from` to `until` (exclusive), per minute, model and token
 * kind: what the alert names as the runaway's models and token kinds. Priced with the same table as ingestion.
 */
export async function loadSpendBreakdown(
  db: Db,
  scope: { keyId: string } | { workspaceScope: string },
  from: Date,
  until: Date,
  table: PriceTable,
): Promise<SpendBreakdownRow[]> {
  let q = db
    .selectFrom('usage_buckets')
    .selectAll()
    .where('bucket_width', '=', '1m')
    .where('starting_at', '>=', from)
    .where('starting_at', '<', until);
  if ('keyId' in scope) q = q.where('api_key_id', '=', scope.keyId);
  else if (scope.workspaceScope === DEFAULT_WORKSPACE_SCOPE) q = q.where('workspace_id', 'is', null);
  else q = q.where('workspace_id', '=', scope.workspaceScope);
  const rows = await q.execute();
  const out: SpendBreakdownRow[] = [];
  for (const r of rows) {
    const minute = new Date(r.starting_at);
    const { parts } = priceUsage(r, table, minute);
    const kinds: Array<[string, bigint]> = [
      ['uncached_input', parts.uncached_input],
      ['cache_read', parts.cache_read],
      ['cache_creation_5m', parts.cache_write_5m],
      ['cache_creation_1h', parts.cache_write_1h],
      ['output', parts.output],
      ['web_search', parts.web_search],
    ];
    for (const [tokenKind, cost] of kinds) {
      if (cost > 0n) out.push({ minute, model: r.model, tokenKind, cost });
    }
  }
  return out;
}
