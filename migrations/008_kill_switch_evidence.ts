import { type Kysely, sql } from 'kysely';

/**
 * The kill switch acts on evidence from two polls: the commit time of the poll whose data first showed a key above
 * the hard cap in its episode (null: not above it). One poll's answer rewrites the whole trailing window, so a
 * single inflated report must never be enough (src/anomaly/kill-switch.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE anomaly_state ADD COLUMN kill_switch_evidence timestamptz`.execute(db);
}
