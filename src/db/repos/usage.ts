import { type RawBuilder, type Selectable, sql } from 'kysely';
import type { TokenUsageMinute } from '../../anomaly/core/headroom.ts';
import { type Pico, picoToUsd, usdToPico } from '../../money.ts';
import type { KeyTraffic } from '../../rotation/core/types.ts';
import type { DailyCost, DriverCost, SpendClock } from '../../spend/core/inputs.ts';
import { HOUR_MS, MINUTE_MS } from '../../time.ts';
import type { KeyCostCell } from '../../usage/core/billed.ts';
import type { CostComparison, CostReportRow, DayCost } from '../../usage/core/reconcile.ts';
import type { UsageRow } from '../../usage/core/rows.ts';
import type { UnknownModel } from '../../usage/core/unknown-models.ts';
import { organizationLock } from '../advisory-lock.ts';
import type { Db } from '../index.ts';
import type { UsageBucketsTable } from '../types.ts';
import { advanceWatermark, type WatermarkName } from './watermarks.ts';

/** Rows per upsert statement: large enough to amortise a round trip, small enough to keep memory flat. */
const BATCH_ROWS = 5000;

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
export interface TokenUsageRow extends TokenUsageMinute {
  workspaceId: string | null;
  webSearchRequests: number;
}

/** The month in progress in a timezone: from local midnight on the 1st (`monthStart`, YYYY-MM-01) until `until`. */
interface MonthToDate {
  monthStart: string;
  timezone: string;
  until: Date;
}

/** The month's first instant: local midnight on the 1st, whatever the offset that day. */
function monthFrom(m: MonthToDate): RawBuilder<Date> {
  return sql<Date>`(${m.monthStart}::timestamp AT TIME ZONE ${m.timezone})`;
}

/**
 * Usage and what is derived from it: `usage_buckets` (per minute or hour, key, workspace, model, tier and window,
 * priced at ingestion), the cost report (`cost_buckets`) and its drift from priced usage (`cost_drift`), and the
 * models priced at a maximum (`pricing_unknown_models`). `schema`: the organization's configured schema, which names its locks (see organizationLock).
 */
export function usageRepo(db: Db, schema?: string) {
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

    /**
     * Replaces the stored usage of one width in [start, end) with the rows `pages` yields, and moves the watermark
     * to `end`, in one transaction that stays open while the pages are read: a page is written as it arrives, so
     * memory holds one page, never a whole chunk. Replace, not add: re-reading a range (the overlap, or a retry
     * after a crash) gives identical rows, and a minute that a late correction lowered, or emptied, is lowered or
     * emptied here too. The watermark only moves with the rows it covers, so a process that dies mid-poll (between
     * pages, or before the commit) leaves the previous state whole and the next poll re-reads. `dataEdge` is a
     * second watermark moved in the same commit (never backwards): the newest data the pages held, read at the end.
     * Returns the rows written and the models priced at a maximum seen for the first time.
     */
    async replaceRange(
      range: { start: Date; end: Date; width: '1m' | '1h' },
      pages: AsyncIterable<readonly UsageRow[]>,
      watermark: WatermarkName,
      seenAt: Date,
      dataEdge?: { name: WatermarkName; position: () => Date | null },
    ): Promise<{ rows: number; newUnknownModels: string[] }> {
      return db.transaction().execute(async (tx) => {
        // One writer per watermark at a time: a second poll (a retry, a replica) waits for this one's commit, so its
        // DELETE sees these rows and replaces them, rather than skipping rows inserted after its statement began.
        // per organization: held while the pages are read, so one organization's poll hung on its Admin API must
        // not hold another's here
        const lock = organizationLock(`keywarden.usage:${watermark}`, schema);
        await sql`SELECT pg_advisory_xact_lock(hashtext(${lock}))`.execute(tx);
        await tx
          .deleteFrom('usage_buckets')
          .where('bucket_width', '=', range.width)
          .where('starting_at', '>=', range.start)
          .where('starting_at', '<', range.end)
          .execute();
        let rows = 0;
        const unknown = new Map<string, 'family_max' | 'global_max'>();
        for await (const page of pages) {
          await upsertUsageBuckets(tx, page);
          rows += page.length;
          for (const r of page) {
            if (r.priced_by === 'family_max' || r.priced_by === 'global_max') unknown.set(r.model, r.priced_by);
          }
        }
        await advanceWatermark(tx, watermark, range.end);
        const edge = dataEdge?.position() ?? null;
        if (dataEdge && edge !== null) await advanceWatermark(tx, dataEdge.name, edge);
        return { rows, newUnknownModels: await recordUnknownModels(tx, unknown, seenAt) };
      });
    },

    /**
     * One set-based upsert on the identity index; values are set, never added, so a repeat is harmless. The rows
     * go as one array per column (unnest): one bind parameter per column whatever the batch size, where a
     * multi-row VALUES list costs one per column and row and spends most of its time parsing and binding them.
     */
    async upsertBuckets(rows: readonly UsageRow[]): Promise<void> {
      await upsertUsageBuckets(db, rows);
    },

    /** The most rows one bucket of `width` holds among the `buckets` buckets stored before `before` (null: none). */
    async mostRowsPerBucket(width: '1m' | '1h', before: Date, buckets: number): Promise<number | null> {
      const span = width === '1m' ? MINUTE_MS : HOUR_MS;
      const r = await sql<{ n: string | null }>`
        SELECT max(n)::text AS n FROM (
          SELECT count(*) AS n FROM usage_buckets
          WHERE bucket_width = ${width} AND starting_at >= ${new Date(before.getTime() - buckets * span)}
            AND starting_at < ${before}
          GROUP BY starting_at) b`.execute(db);
      const n = r.rows[0]?.n;
      return n === null || n === undefined ? null : Number(n);
    },

    /** Every model recorded as priced at a maximum, by model. */
    async unknownModels(): Promise<UnknownModel[]> {
      const rows = await db.selectFrom('pricing_unknown_models').selectAll().orderBy('model').execute();
      return rows.map((r) => ({ model: r.model, pricedBy: r.priced_by, firstSeenAt: new Date(r.first_seen_at) }));
    },

    /**
     * Rolls 1m usage starting before `cutoff` into 1h rows with the same dimensions, tokens and cost summed exactly
     * in numeric (the total only: the split by token kind is for detection, which reads 1m rows), and deletes the
     * 1m rows, in one transaction; deletes hourly rows starting before `hourlyCutoff`. Idempotent: the 1m rows are deleted in the same statement that sums them, so a rerun finds nothing left to
     * roll and never counts a minute twice. The hourly upsert adds rather than replaces, so 1m rows written later
     * for a rolled hour join it instead of erasing it.
     */
    async rollUpMinutes(
      cutoff: Date,
      hourlyCutoff: Date,
    ): Promise<{ minuteRowsRolledUp: number; hourlyRowsWritten: number; hourlyRowsDeleted: number }> {
      return db.transaction().execute(async (tx) => {
        const rolled = await sql<{ n: string; written: string }>`
          WITH gone AS (
            DELETE FROM usage_buckets
            WHERE bucket_width = '1m' AND starting_at < ${cutoff}
            RETURNING *
          ), hourly AS (
            INSERT INTO usage_buckets AS u (
              bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window,
              uncached_input_tokens, cache_read_input_tokens, cache_creation_5m_input_tokens,
              cache_creation_1h_input_tokens, output_tokens, web_search_requests, cost_usd, priced_by)
            SELECT '1h', date_trunc('hour', starting_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
              api_key_id, workspace_id, model, service_tier, context_window,
              sum(uncached_input_tokens), sum(cache_read_input_tokens), sum(cache_creation_5m_input_tokens),
              sum(cache_creation_1h_input_tokens), sum(output_tokens), sum(web_search_requests), sum(cost_usd),
              -- an hour with any minute priced at a maximum stays marked as such
              CASE WHEN bool_and(priced_by = 'table') THEN 'table' ELSE max(priced_by) END
            FROM gone
            GROUP BY 2, api_key_id, workspace_id, model, service_tier, context_window
            ON CONFLICT (bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window)
            DO UPDATE SET
              uncached_input_tokens = u.uncached_input_tokens + excluded.uncached_input_tokens,
              cache_read_input_tokens = u.cache_read_input_tokens + excluded.cache_read_input_tokens,
              cache_creation_5m_input_tokens = u.cache_creation_5m_input_tokens + excluded.cache_creation_5m_input_tokens,
              cache_creation_1h_input_tokens = u.cache_creation_1h_input_tokens + excluded.cache_creation_1h_input_tokens,
              output_tokens = u.output_tokens + excluded.output_tokens,
              web_search_requests = u.web_search_requests + excluded.web_search_requests,
              cost_usd = u.cost_usd + excluded.cost_usd,
              updated_at = now()
            RETURNING 1
          )
          SELECT (SELECT count(*) FROM gone)::text AS n, (SELECT count(*) FROM hourly)::text AS written
        `.execute(tx);
        const deleted = await tx
          .deleteFrom('usage_buckets')
          .where('bucket_width', '=', '1h')
          .where('starting_at', '<', hourlyCutoff)
          .executeTakeFirst();
        const r = rolled.rows[0]!;
        return {
          minuteRowsRolledUp: Number(r.n),
          hourlyRowsWritten: Number(r.written),
          hourlyRowsDeleted: Number(deleted.numDeletedRows),
        };
      });
    },

    /** Priced usage (every bucket width) per UTC day and workspace in [from, to). Summed in numeric: exact. */
    async pricedByDay(from: Date, to: Date): Promise<DayCost[]> {
      const rows = await db
        .selectFrom('usage_buckets')
        .select([
          sql<string>`to_char(starting_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`.as('day'),
          'workspace_id',
          sql<string>`sum(cost_usd)::text`.as('usd'),
        ])
        .where('starting_at', '>=', from)
        .where('starting_at', '<', to)
        .groupBy([sql`1`, 'workspace_id'])
        .execute();
      return rows.map((r) => ({ day: r.day, workspaceId: r.workspace_id, pico: usdToPico(r.usd) }));
    },

    /**
     * Priced usage per key ('' for usage without a key), model and period (UTC day or hour) starting in [from, to),
     * every bucket width; summed in numeric, exact. The periods per-key reconciliation compares with the bill.
     */
    async pricedByKeyModel(from: Date, to: Date, width: '1d' | '1h'): Promise<KeyCostCell[]> {
      const unit = width === '1d' ? 'day' : 'hour';
      const { rows } = await sql<{ key: string; model: string; start: Date; usd: string }>`
        SELECT coalesce(api_key_id, '') AS key, model,
          date_trunc(${unit}, starting_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start, sum(cost_usd)::text AS usd
        FROM usage_buckets
        WHERE starting_at >= ${from} AND starting_at < ${to} AND bucket_width IN ('1m', '1h')
        GROUP BY 1, 2, 3`.execute(db);
      return rows.map((r) => ({
        keyId: r.key,
        model: r.model,
        width,
        start: new Date(r.start),
        pico: usdToPico(r.usd),
      }));
    },

    /**
     * Replaces the stored cost report, page by page, in one transaction: each page's `days` (UTC, YYYY-MM-DD) with
     * its `rows`. Pages, not the month at once: a month of 100 workspaces is about 100,000 rows.
     */
    async replaceCostReport(
      pages: AsyncIterable<{ days: readonly string[]; rows: readonly CostReportRow[] }>,
    ): Promise<void> {
      await db.transaction().execute(async (tx) => {
        for await (const { days, rows } of pages) {
          if (days.length > 0)
            await tx
              .deleteFrom('cost_buckets')
              .where('day', 'in', [...days])
              .execute();
          for (let i = 0; i < rows.length; i += 1000) {
            await tx
              .insertInto('cost_buckets')
              .values(rows.slice(i, i + 1000))
              .execute();
          }
        }
      });
    },

    /** Records the drifted days and clears earlier records of days that no longer drift, for the compared days. */
    async replaceDrift(comparisons: readonly CostComparison[], at: Date): Promise<void> {
      const days = [...new Set(comparisons.map((c) => c.day))];
      const drifted = comparisons.filter((c) => c.drifted);
      await db.transaction().execute(async (tx) => {
        if (days.length > 0) await tx.deleteFrom('cost_drift').where('day', 'in', days).execute();
        if (drifted.length === 0) return;
        await tx
          .insertInto('cost_drift')
          .values(
            drifted.map((c) => ({
              day: c.day,
              workspace_id: c.workspaceId,
              reported_usd: picoToUsd(c.reported),
              priced_usd: picoToUsd(c.priced),
              // a double column: Infinity is valid in Postgres
              drift_ratio: c.driftRatio,
              recorded_at: at,
            })),
          )
          .execute();
      });
    },

    /**
     * Spend per local day (in `timezone`) and (workspace, key) from `windowDays` before `clock.today` up to
     * `clock.asOf`. Hourly rows (older than 48 h) are bucketed by the local day of their start: exact for
     * whole-hour offsets.
     * With `keyIds` (the check after each poll), keys other than those (the keys with a limit, and the keys in no
     * workspace) are summed into their workspace's row with a null key, so a check every minute reads a few rows per
     * day rather than one per key.
     */
    async dailySpend(
      timezone: string,
      clock: SpendClock,
      windowDays: number,
      keyIds?: readonly string[],
    ): Promise<DailyCost[]> {
      const local = sql`(starting_at AT TIME ZONE ${timezone})::date`;
      const windowStart = localStart(timezone, sql`${clock.today}::date - ${windowDays}::int`);
      const key =
        keyIds === undefined
          ? sql`api_key_id`
          : sql`CASE WHEN api_key_id = ANY(${[...keyIds]}::text[]) THEN api_key_id END`;
      // the identity index leads with (bucket_width, starting_at): naming the widths lets it serve the range
      const { rows } = await sql<{
        date: string;
        workspace_id: string | null;
        api_key_id: string | null;
        cost: string;
      }>`
        SELECT to_char(${local}, 'YYYY-MM-DD') AS date, workspace_id, ${key} AS api_key_id, sum(cost_usd)::text AS cost
        FROM usage_buckets
        WHERE bucket_width IN ('1m', '1h') AND starting_at >= ${windowStart} AND starting_at < ${clock.asOf}
        GROUP BY 1, 2, 3
        ORDER BY 1`.execute(db);
      return rows.map((r) => ({
        date: r.date,
        workspaceId: r.workspace_id,
        keyId: r.api_key_id,
        cost: money(r.cost),
      }));
    },

    /** Spend per (workspace, key, model) in the month to date, the last 7 complete local days and the 7 before. */
    async driverSpend(timezone: string, clock: SpendClock): Promise<DriverCost[]> {
      const local = sql`(starting_at AT TIME ZONE ${timezone})::date`;
      const today = sql`${clock.today}::date`;
      const { rows } = await sql<{
        workspace_id: string | null;
        api_key_id: string | null;
        model: string;
        mtd: string;
        last7: string;
        previous7: string;
      }>`
        SELECT workspace_id, api_key_id, model,
          coalesce(sum(cost_usd) FILTER (WHERE ${local} >= ${clock.monthStart}::date), 0)::text AS mtd,
          coalesce(sum(cost_usd) FILTER (WHERE ${local} >= ${today} - 7 AND ${local} < ${today}), 0)::text AS last7,
          coalesce(sum(cost_usd) FILTER (WHERE ${local} >= ${today} - 14 AND ${local} < ${today} - 7), 0)::text
            AS previous7
        FROM usage_buckets
        WHERE bucket_width IN ('1m', '1h')
          AND starting_at >= ${localStart(timezone, sql`least(${clock.monthStart}::date, ${today} - 14)`)}
          AND starting_at < ${clock.asOf}
        GROUP BY 1, 2, 3`.execute(db);
      return rows.map((r) => ({
        workspaceId: r.workspace_id,
        keyId: r.api_key_id,
        model: r.model,
        monthToDate: money(r.mtd),
        last7: money(r.last7),
        previous7: money(r.previous7),
      }));
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

    /** Priced usage per local day of the month (exact USD strings, summed in numeric); days without usage absent. */
    async monthDailySpend(m: MonthToDate): Promise<Array<{ day: string; usd: string }>> {
      const localDay = sql<string>`to_char(starting_at AT TIME ZONE ${m.timezone}, 'YYYY-MM-DD')`;
      return db
        .selectFrom('usage_buckets')
        .select([localDay.as('day'), sql<string>`sum(cost_usd)::text`.as('usd')])
        .where('bucket_width', 'in', ['1m', '1h'])
        .where('starting_at', '>=', monthFrom(m))
        .where('starting_at', '<', m.until)
        .groupBy(sql`1`)
        .orderBy(sql`1`)
        .execute();
    },

    /** Priced usage of the month per API key (id null: usage without a key), with the key's name and place. */
    async monthSpendByKey(m: MonthToDate) {
      return db
        .selectFrom('usage_buckets as u')
        .leftJoin('api_keys as k', 'k.id', 'u.api_key_id')
        .leftJoin('workspaces as w', 'w.id', 'k.workspace_id')
        .select([
          'u.api_key_id as id',
          sql<string | null>`max(k.name)`.as('name'),
          sql<string | null>`max(k.workspace_id)`.as('workspace_id'),
          sql<string | null>`max(k.scope_type)`.as('scope_type'),
          sql<string | null>`max(w.name)`.as('workspace_name'),
          sql<string>`sum(u.cost_usd)::text`.as('usd'),
        ])
        .where('u.bucket_width', 'in', ['1m', '1h'])
        .where('u.starting_at', '>=', monthFrom(m))
        .where('u.starting_at', '<', m.until)
        .groupBy('u.api_key_id')
        .execute();
    },

    /** Priced usage of the month per workspace (id null: the Default Workspace), with its name. */
    async monthSpendByWorkspace(m: MonthToDate) {
      return (
        db
          .selectFrom('usage_buckets as u')
          .leftJoin('workspaces as w', 'w.id', 'u.workspace_id')
          .leftJoin('api_keys as k', 'k.id', 'u.api_key_id')
          .select([
            'u.workspace_id as id',
            sql<string | null>`max(w.name)`.as('name'),
            sql<string>`sum(u.cost_usd)::text`.as('usd'),
          ])
          .where('u.bucket_width', 'in', ['1m', '1h'])
          .where('u.starting_at', '>=', monthFrom(m))
          .where('u.starting_at', '<', m.until)
          // an organization-scoped key's rows say no workspace, as the Default Workspace's do; it is in none
          .where(sql<boolean>`k.scope_type IS DISTINCT FROM 'organization'`)
          .groupBy('u.workspace_id')
          .execute()
      );
    },

    /** The drifted (UTC) days since `fromDay`, newest first, with each workspace's name. */
    async driftSince(fromDay: string) {
      return db
        .selectFrom('cost_drift as d')
        .leftJoin('workspaces as w', 'w.id', 'd.workspace_id')
        .select([
          'd.day',
          'd.workspace_id',
          'w.name as workspace_name',
          'd.reported_usd',
          'd.priced_usd',
          'd.drift_ratio',
        ])
        .where('d.day', '>=', fromDay)
        .orderBy('d.day', 'desc')
        .orderBy('w.name')
        .execute();
    },

    /** Per workspace (null: the Default Workspace), the largest drift recorded this UTC month. */
    async largestDriftThisMonth(): Promise<Array<{ workspaceId: string | null; ratio: number }>> {
      const rows = await db
        .selectFrom('cost_drift')
        .select(['workspace_id', sql<number>`max(drift_ratio)`.as('ratio')])
        .where('day', '>=', sql<string>`date_trunc('month', now() AT TIME ZONE 'UTC')::date`)
        .groupBy('workspace_id')
        .execute();
      return rows.map((r) => ({ workspaceId: r.workspace_id, ratio: Number(r.ratio) }));
    },
  };
}

const money = (usd: string): Pico => usdToPico(usd, 'usage_buckets.cost_usd');

/** The instant a local date starts in `timezone`. */
const localStart = (timezone: string, date: unknown) => sql`((${date})::date::timestamp AT TIME ZONE ${timezone})`;

/**
 * Models priced at a maximum because the table lacks them, recorded once each (`pricing.unknown_model` fires from
 * this table once per model). Returns the models seen for the first time.
 */
async function recordUnknownModels(
  db: Db,
  unknown: ReadonlyMap<string, 'family_max' | 'global_max'>,
  seenAt: Date,
): Promise<string[]> {
  if (unknown.size === 0) return [];
  const inserted = await db
    .insertInto('pricing_unknown_models')
    .values([...unknown].map(([model, priced_by]) => ({ model, priced_by, first_seen_at: seenAt })))
    .onConflict((oc) => oc.column('model').doNothing())
    .returning('model')
    .execute();
  return inserted.map((r) => r.model).sort();
}

const UPSERT_COLUMNS = [
  ['bucket_width', 'text'],
  ['starting_at', 'timestamptz'],
  ['api_key_id', 'text'],
  ['workspace_id', 'text'],
  ['model', 'text'],
  ['service_tier', 'text'],
  ['context_window', 'text'],
  ['uncached_input_tokens', 'bigint'],
  ['cache_read_input_tokens', 'bigint'],
  ['cache_creation_5m_input_tokens', 'bigint'],
  ['cache_creation_1h_input_tokens', 'bigint'],
  ['output_tokens', 'bigint'],
  ['web_search_requests', 'bigint'],
  ['cost_usd', 'numeric'],
  ['cost_uncached_input_usd', 'numeric'],
  ['cost_cache_read_usd', 'numeric'],
  ['cost_cache_creation_5m_usd', 'numeric'],
  ['cost_cache_creation_1h_usd', 'numeric'],
  ['cost_output_usd', 'numeric'],
  ['cost_web_search_usd', 'numeric'],
  ['priced_by', 'text'],
] as const;

/** The columns ingestion writes, in the order the upsert sends them (the ingest bench's COPY ceiling uses them too). */
export const USAGE_COLUMNS = UPSERT_COLUMNS.map(([column]) => column);

/**
 * A bucket row written again replaces its values (never adds to them): the identity index, and every measure set from
 * the new row. Shared with the ingest bench's COPY ceiling, so the ceiling does the same work per row.
 */
export const USAGE_UPSERT_CONFLICT = `ON CONFLICT (bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window)
  DO UPDATE SET
    uncached_input_tokens = excluded.uncached_input_tokens,
    cache_read_input_tokens = excluded.cache_read_input_tokens,
    cache_creation_5m_input_tokens = excluded.cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens = excluded.cache_creation_1h_input_tokens,
    output_tokens = excluded.output_tokens,
    web_search_requests = excluded.web_search_requests,
    cost_usd = excluded.cost_usd,
    cost_uncached_input_usd = excluded.cost_uncached_input_usd,
    cost_cache_read_usd = excluded.cost_cache_read_usd,
    cost_cache_creation_5m_usd = excluded.cost_cache_creation_5m_usd,
    cost_cache_creation_1h_usd = excluded.cost_cache_creation_1h_usd,
    cost_output_usd = excluded.cost_output_usd,
    cost_web_search_usd = excluded.cost_web_search_usd,
    priced_by = excluded.priced_by,
    updated_at = now()`;

async function upsertUsageBuckets(db: Db, rows: readonly UsageRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH_ROWS) await upsertBatch(db, rows.slice(i, i + BATCH_ROWS));
}

async function upsertBatch(db: Db, rows: readonly UsageRow[]): Promise<void> {
  const arrays = UPSERT_COLUMNS.map(
    ([column, type]) => sql`${sql.val(arrayLiteral(rows, column))}::${sql.raw(type)}[]`,
  );
  await sql`
    INSERT INTO usage_buckets (${sql.join(UPSERT_COLUMNS.map(([c]) => sql.ref(c)))})
    SELECT * FROM unnest(${sql.join(arrays)})
    ${sql.raw(USAGE_UPSERT_CONFLICT)}
  `.execute(db);
}

/**
 * One column of the batch as a Postgres array literal (`{1,apikey_01,"a \\"quoted\\" name",NULL}`), built with one
 * join. Handing pg a JS array instead makes it concatenate the literal element by element, quoting and escaping
 * each with two regex passes: the largest allocation of a poll cycle (`npm run bench -- ingest`). Numbers, ids and
 * timestamps need no quotes; anything else is quoted, with `"` and `\` escaped.
 */
function arrayLiteral(rows: readonly UsageRow[], column: (typeof UPSERT_COLUMNS)[number][0]) {
  const elements = new Array<string>(rows.length);
  // a bucket's rows share its Date: format it once
  let lastDate: Date | null = null;
  let lastDateText = '';
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]![column];
    if (v === undefined || v === null) {
      elements[i] = 'NULL';
      continue;
    }
    if (v instanceof Date && v !== lastDate) {
      lastDate = v;
      lastDateText = v.toISOString();
    }
    const text = v instanceof Date ? lastDateText : String(v);
    elements[i] = UNQUOTED.test(text) && !/^null$/i.test(text) ? text : `"${text.replace(/["\\]/g, '\\$&')}"`;
  }
  return `{${elements.join(',')}}`;
}

/** Array elements that read the same without quotes: no separator, brace, quote, backslash or space. */
const UNQUOTED = /^[\w.:+-]+$/;

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
