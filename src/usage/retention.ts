import { sql } from 'kysely';
import type { Db } from '../db/index.ts';
import { HOUR_MS } from '../time.ts';

/** 1m rows older than this are rolled up to hourly rows. Far beyond the poll's 15-minute overlap, so a poll never
 * re-creates 1m rows for an hour already rolled up. */
export const MINUTE_ROWS_KEPT_HOURS = 48;
/** Hourly rows are kept 13 months: a year of history plus the month being compared with last year's. */
export const HOURLY_ROWS_KEPT_MONTHS = 13;

export interface RetentionResult {
  rolledUpBefore: Date;
  minuteRowsRolledUp: number;
  hourlyRowsWritten: number;
  hourlyRowsDeleted: number;
}

/**
 * Rolls 1m usage older than 48 hours (whole hours only) into 1h rows with the same dimensions, tokens and cost
 * summed exactly in numeric, and deletes the 1m rows, in one transaction; deletes hourly rows older than 13 months.
 * Idempotent: the 1m rows are deleted in the same statement that sums them, so a rerun finds nothing left to
 * roll and never counts a minute twice. The cutoff is a whole hour, so an hour is rolled in one run; the hourly
 * upsert still adds rather than replaces, so 1m rows written later for a rolled hour join it instead of erasing it.
 */
export async function applyUsageRetention(db: Db, now: Date): Promise<RetentionResult> {
  const cutoff = new Date(Math.floor((now.getTime() - MINUTE_ROWS_KEPT_HOURS * HOUR_MS) / HOUR_MS) * HOUR_MS);
  const hourlyCutoff = new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - HOURLY_ROWS_KEPT_MONTHS, now.getUTCDate()),
  );
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
      rolledUpBefore: cutoff,
      minuteRowsRolledUp: Number(r.n),
      hourlyRowsWritten: Number(r.written),
      hourlyRowsDeleted: Number(deleted.numDeletedRows),
    };
  });
}
