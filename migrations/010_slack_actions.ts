import { type Kysely, sql } from 'kysely';

/**
 * Buttons on Slack alerts. A button's `value` is the id of a `slack_buttons` row: random, so a value cannot be
 * guessed from another, and never the alert or key it acts on (a forged or stale value names nothing). The row
 * remembers which message carries the button and which episode of the alert it was offered for, so a press on an
 * old message cannot act on a later episode. Acknowledging an episode stops its repeats; a new episode clears it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE alerts
      ADD COLUMN acknowledged_at timestamptz,
      ADD COLUMN acknowledged_by text;

    CREATE TABLE slack_buttons (
      id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      notification_id     bigint NOT NULL UNIQUE REFERENCES notifications (id),
      alert_id            bigint NOT NULL REFERENCES alerts (id),
      episode_started_at  timestamptz NOT NULL,
      created_at          timestamptz NOT NULL
    );
  `.execute(db);
}
