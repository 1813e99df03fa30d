import { type Kysely, sql } from 'kysely';

/**
 * What the Slack buttons of #16's second part keep.
 *
 * With `rotation.enforce: approve`, a drained overdue key is set inactive only on a person's Approve in Slack. A
 * Deny is a row here: who (the Slack user's id and name), when, an optional reason, and when keywarden asks again
 * (grace_days later). One answer per question: the alert episode the buttons were offered for, so a double click or
 * a replayed press records one denial.
 *
 * Acknowledge in Slack acknowledges the alert's PagerDuty incident too: an `acknowledged` outbox row per PagerDuty
 * target the firing went to, delivered like every other message.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE rotation_denials (
      id                  bigserial PRIMARY KEY,
      api_key_id          text NOT NULL,
      alert_id            bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
      episode_started_at  timestamptz NOT NULL,
      denied_by           text NOT NULL,
      denied_by_name      text,
      reason              text,
      denied_at           timestamptz NOT NULL,
      ask_again_at        timestamptz NOT NULL,
      UNIQUE (alert_id, episode_started_at)
    );
    CREATE INDEX rotation_denials_key ON rotation_denials (api_key_id, denied_at DESC);

    ALTER TABLE notifications
      DROP CONSTRAINT notifications_event_check,
      ADD CONSTRAINT notifications_event_check
        CHECK (event IN ('firing', 'repeat', 'resolved', 'acknowledged', 'digest'));
  `.execute(db);
}
