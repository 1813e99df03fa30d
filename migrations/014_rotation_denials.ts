import { type Kysely, sql } from 'kysely';

/**
 * With `rotation.enforce: approve`, a drained overdue key is set inactive only on a person's Approve in Slack. A
 * Deny is a row here: who (the Slack user's id and name), when, an optional reason, and when keywarden asks again
 * (grace_days later). One answer per question: the alert episode the buttons were offered for, so a double click or
 * a replayed press records one denial.
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
  `.execute(db);
}
