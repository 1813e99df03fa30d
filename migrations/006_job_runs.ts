import { type Kysely, sql } from 'kysely';

/**
 * How each job's runs have been ending, one row per job (src/health/jobs.ts): Redis is the trigger and loses its
 * history on a flush, so the count of failed runs in a row and the time of the last success are kept here.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE job_runs (
      job text PRIMARY KEY,
      consecutive_failures integer NOT NULL DEFAULT 0,
      last_succeeded_at timestamptz,
      last_failed_at timestamptz,
      first_failed_at timestamptz,
      last_error text
    )
  `.execute(db);
}
