import { type Kysely, sql } from 'kysely';

/**
 * The detector's cached baseline gains how a key spends in time (src/anomaly/baseline.ts `activeShare` and
 * `persistence`): the share of its minutes with spend, and how often spend goes on into the next minute, which is
 * what tells a loop on a bursty key from its ordinary bursts. Null until the baseline is next refreshed (within the
 * hour), and for scopes whose history has no 1-minute rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE anomaly_state ADD COLUMN active_share double precision, ADD COLUMN persistence double precision
  `.execute(db);
}
