import { type Kysely, sql } from 'kysely';

/**
 * The outbox delivers to the policy's named receivers too: PagerDuty, signed webhooks and Microsoft Teams. Their
 * rows name the receiver (`oncall`, `ops`) as the target, never its secret, which stays in the environment.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE notifications
      DROP CONSTRAINT notifications_channel_check,
      ADD CONSTRAINT notifications_channel_check
        CHECK (channel IN ('slack', 'email', 'pagerduty', 'webhook', 'teams'))
  `.execute(db);
}
