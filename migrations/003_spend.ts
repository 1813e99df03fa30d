import { type Kysely, sql } from 'kysely';

/**
 * Spend projections: `project-spend` stores every scope's projection every 15 minutes and thins rows older than a
 * week by time (src/spend/store.ts), and `keywarden spend` reads the newest run; both look projections up by
 * `made_at`, which the scope-first index cannot serve.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX projections_made_at ON projections (made_at)`.execute(db);
}
