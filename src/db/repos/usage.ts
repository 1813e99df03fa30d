import { type RawBuilder, type Selectable, sql } from 'kysely';
import { usdToPico } from '../../money.ts';
import type { KeyTraffic } from '../../rotation/core/types.ts';
import type { Db } from '../index.ts';
import type { UsageBucketsTable } from '../types.ts';

/**
 * Spend is read as float USD where it feeds statistics (runaway detection), never a sum that is stored or shown as
 * money. `workspaceId` null is the Default Workspace (and organization-scoped keys), as the Admin API says it.
 */

/** Spend of one key (or of usage without a key) in one minute, summed over models, tiers and windows. */
interface MinuteSpendRow {
  keyId: string | null;
  workspaceId: string | null;
  minute: Date;
  usd: number;
}

/**
 * One hour of one key's (or workspace's) spend: from 1h rows as they are (the minute figures null: those rows no
 * longer know their minutes), or from 1m rows summed per minute first, with the sum of the squared minute totals,
 * the minutes with spend, and how many of those followed a minute with spend.
 */
interface HourlySpendRow {
  /** The key id, or the workspace id (null: the Default Workspace), as asked. */
  id: string | null;
  hour: Date;
  usd: number;
  sumOfSquares: number | null;
  activeMinutes: number | null;
  followingMinutes: number | null;
}

/** Which workspaces: by id, and the Default Workspace (stored as no workspace) when `withDefault`. */
interface WorkspaceFilter {
  ids: readonly string[];
  withDefault: boolean;
}

/** Token counts of one workspace and model in one minute (or summed over a range), from the 1m rows. */
export interface TokenUsageRow {
  workspaceId: string | null;
  minute: Date;
  model: string;
  uncachedInputTokens: number;
  cacheReadInputTokens: number;
  cacheCreationInputTokens: number;
  outputTokens: number;
  webSearchRequests: number;
}

/** The `usage_buckets` table: usage per bucket, key, workspace, model, tier and context window. */
export function usageRepo(db: Db) {
  return {
    /** Tokens and cost per key since `from`, and each key's last use ever; for the drain check. */
    async trafficByKey(from: Date): Promise<Map<string, KeyTraffic>> {
      const tokens = sql<string>`sum(uncached_input_tokens + cache_read_input_tokens + cache_creation_5m_input_tokens
        + cache_creation_1h_input_tokens + output_tokens)`;
      const [windowRows, lastRows] = await Promise.all([
        db
          .selectFrom('usage_buckets')
          .select(['api_key_id', tokens.as('tokens'), sql<string>`sum(cost_usd)`.as('cost')])
          .where('starting_at', '>=', from)
          .where('api_key_id', 'is not', null)
          .groupBy('api_key_id')
          .execute(),
        db
          .selectFrom('usage_buckets')
          .select(['api_key_id', sql<Date>`max(starting_at)`.as('last')])
          .where('api_key_id', 'is not', null)
          .groupBy('api_key_id')
          .execute(),
      ]);
      const traffic = new Map<string, KeyTraffic>();
      for (const r of lastRows) {
        traffic.set(r.api_key_id!, { lastUsageAt: new Date(r.last), windowTokens: 0n, windowUsd: 0n });
      }
      for (const r of windowRows) {
        const t = traffic.get(r.api_key_id!)!;
        t.windowTokens = BigInt(r.tokens ?? '0');
        t.windowUsd = usdToPico(r.cost ?? '0');
      }
      return traffic;
    },

    /** Per key (or no key), workspace and minute, the spend of the 1m rows from `from` (inclusive) to `until`. */
    async minuteSpend(from: Date, until: Date): Promise<MinuteSpendRow[]> {
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
        workspaceId: r.workspace_id,
        minute: new Date(r.starting_at),
        usd: Number(r.usd),
      }));
    },

    /** The first bucket keywarden holds (its backfill's start): hours before it are unknown, not quiet. */
    async coverageStart(): Promise<Date | null> {
      const row = await db
        .selectFrom('usage_buckets')
        .select((eb) => eb.fn.min('starting_at').as('first'))
        .where('bucket_width', 'in', ['1m', '1h'])
        .executeTakeFirst();
      return row?.first ? new Date(row.first) : null;
    },

    /** Hourly spend per key of `keyIds` from `from` to `until` (see HourlySpendRow). */
    async hourlySpendOfKeys(keyIds: readonly string[], from: Date, until: Date): Promise<HourlySpendRow[]> {
      if (keyIds.length === 0) return [];
      const filter = sql`api_key_id IN (${sql.join(keyIds.map((k) => sql`${k}`))})`;
      return hourlySpendBy(db, 'api_key_id', filter, from, until);
    },

    /**
     * Hourly spend per workspace from `from` to `until` (see HourlySpendRow): its minutes summed over its keys first,
     * so their squares measure the workspace's own lumpiness.
     */
    async hourlySpendOfWorkspaces(workspaces: WorkspaceFilter, from: Date, until: Date): Promise<HourlySpendRow[]> {
      return hourlySpendBy(db, 'workspace_id', inWorkspaces(workspaces), from, until);
    },

    /** Each key's spend from `from` to `until` in the given workspaces: the shares of their keys. */
    async spendByKey(
      workspaces: WorkspaceFilter,
      from: Date,
      until: Date,
    ): Promise<Array<{ workspaceId: string | null; keyId: string; usd: number }>> {
      const rows = await sql<{ workspace_id: string | null; api_key_id: string; usd: number }>`
        SELECT workspace_id, api_key_id, sum(cost_usd)::float8 AS usd
        FROM usage_buckets
        WHERE bucket_width IN ('1m', '1h') AND starting_at >= ${from} AND starting_at < ${until}
          AND api_key_id IS NOT NULL AND ${inWorkspaces(workspaces)}
        GROUP BY workspace_id, api_key_id
      `.execute(db);
      return rows.rows.map((r) => ({ workspaceId: r.workspace_id, keyId: r.api_key_id, usd: Number(r.usd) }));
    },

    /** The 1m rows of one key, or of one workspace (null: the Default Workspace), from `from` to `until` (exclusive). */
    async minuteRows(
      scope: { keyId: string } | { workspaceId: string | null },
      from: Date,
      until: Date,
    ): Promise<Selectable<UsageBucketsTable>[]> {
      let q = db
        .selectFrom('usage_buckets')
        .selectAll()
        .where('bucket_width', '=', '1m')
        .where('starting_at', '>=', from)
        .where('starting_at', '<', until);
      if ('keyId' in scope) q = q.where('api_key_id', '=', scope.keyId);
      else if (scope.workspaceId === null) q = q.where('workspace_id', 'is', null);
      else q = q.where('workspace_id', '=', scope.workspaceId);
      return q.execute();
    },

    /**
     * Token usage per workspace and model from `from` to `until` (both included): per minute, or with
     * `perMinute: false` summed over the range (one row per workspace and model, dated at its last minute).
     * `apiKeyId` narrows it to one key's usage.
     */
    async tokenUsage(
      range: { from: Date; until: Date },
      opts: { perMinute?: boolean; apiKeyId?: string } = {},
    ): Promise<TokenUsageRow[]> {
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
      return rows.map((r) => ({
        workspaceId: r.workspace_id,
        minute: new Date(r.starting_at),
        model: r.model ?? '',
        uncachedInputTokens: Number(r.uncached),
        cacheReadInputTokens: Number(r.cache_read),
        cacheCreationInputTokens: Number(r.cache_creation),
        outputTokens: Number(r.output),
        webSearchRequests: Number(r.web_search),
      }));
    },
  };
}

function inWorkspaces(w: WorkspaceFilter): RawBuilder<unknown> {
  const byId = w.ids.length > 0 ? sql`workspace_id IN (${sql.join(w.ids.map((id) => sql`${id}`))})` : sql`false`;
  return sql`(${byId} ${w.withDefault ? sql`OR workspace_id IS NULL` : sql``})`;
}

interface CellRow {
  id: string | null;
  hour: Date;
  usd: number;
  squares: number | null;
  active: number | null;
  following: number | null;
}

/**
 * Hourly spend per value of `column` (a key or a workspace) among the rows `filter` selects: 1h rows as they are
 * (no squares), 1m rows summed per minute first, then per hour with the sum of their squared minute totals, the
 * number of minutes with spend, and how many of those followed a minute with spend.
 */
async function hourlySpendBy(
  db: Db,
  column: 'api_key_id' | 'workspace_id',
  filter: RawBuilder<unknown>,
  from: Date,
  until: Date,
): Promise<HourlySpendRow[]> {
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
  return rows.rows.map((r) => ({
    id: r.id,
    hour: new Date(r.hour),
    usd: Number(r.usd),
    sumOfSquares: r.squares,
    activeMinutes: r.active,
    followingMinutes: r.following,
  }));
}
