import { type Kysely, sql } from 'kysely';

/**
 * Buttons on Slack alerts, and silences. A button's `value` is the id of a `slack_buttons` row: random, so a value
 * cannot be guessed from another, and never the alert or key it acts on (a forged or stale value names nothing). The
 * row says which message carries the button, what it offers (`ack`, `snooze:4h`) and which episode of the alert it
 * was offered for, so a press on an old message cannot act on a later episode. Acknowledging an episode stops its
 * repeats; a new episode clears it.
 *
 * A silence (Alertmanager's): matchers (globs on kind, scope, key, workspace; or one alert's fingerprint, which is
 * what Snooze makes), a window, who made it and why. An alert it matches still fires and resolves in `alerts` but
 * sends nothing. A silence made by a button names that button: pressing it twice makes one silence.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE alerts
      ADD COLUMN acknowledged_at timestamptz,
      ADD COLUMN acknowledged_by text;

    CREATE TABLE slack_buttons (
      id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      notification_id     bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
      choice              text NOT NULL,
      alert_id            bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
      episode_started_at  timestamptz NOT NULL,
      created_at          timestamptz NOT NULL,
      UNIQUE (notification_id, choice)
    );

    CREATE TABLE silences (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      matchers         jsonb NOT NULL,
      starts_at        timestamptz NOT NULL,
      ends_at          timestamptz NOT NULL CHECK (ends_at > starts_at),
      created_by       text NOT NULL,
      comment          text NOT NULL,
      created_at       timestamptz NOT NULL,
      -- ended before ends_at by keywarden silence expire
      expired_at       timestamptz,
      slack_button_id  uuid UNIQUE REFERENCES slack_buttons (id) ON DELETE SET NULL
    );
    CREATE INDEX silences_ends ON silences (ends_at);
  `.execute(db);
}
