import { type Kysely, sql } from 'kysely';

/**
 * Usage ingestion: the models priced without a table entry, kept once per model so `pricing.unknown_model` is
 * raised once (the alert lifecycle reads this table). Time-range scans (poll replace, rollup, retention) are served
 * by the identity index, which leads with (bucket_width, starting_at).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE pricing_unknown_models (
      model          text PRIMARY KEY,
      priced_by      text NOT NULL CHECK (priced_by IN ('family_max', 'global_max')),
      first_seen_at  timestamptz NOT NULL
    );
  `.execute(db);
}
