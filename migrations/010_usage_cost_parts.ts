import { type Kysely, sql } from 'kysely';

/**
 * 1m usage rows keep their cost split by token kind, as ingestion priced it: runaway detection names the token
 * kinds that carry a runaway, and with only the total stored it priced the stored tokens a second time. Null on
 * hourly rows (detection reads only 1m rows, and 13 months of hourly rows stay the size they were) and on rows
 * stored before this migration (the split cannot be priced in SQL): those minutes name no token kinds. The total
 * (`cost_usd`) is unchanged.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE usage_buckets
      ADD COLUMN cost_uncached_input_usd numeric(30, 12),
      ADD COLUMN cost_cache_read_usd numeric(30, 12),
      ADD COLUMN cost_cache_creation_5m_usd numeric(30, 12),
      ADD COLUMN cost_cache_creation_1h_usd numeric(30, 12),
      ADD COLUMN cost_output_usd numeric(30, 12),
      ADD COLUMN cost_web_search_usd numeric(30, 12)
  `.execute(db);
}
