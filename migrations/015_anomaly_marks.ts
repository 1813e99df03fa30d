import { type Kysely, sql } from 'kysely';

/**
 * "Mark as expected" on a runaway alert: this spend is planned (a batch job, a backfill) until `until`. While a mark
 * holds, detection judges the key (or workspace) as if `covered_hourly_usd` were its typical rate, so the planned
 * rate does not fire again but a much larger jump still does (src/anomaly/core/expected.ts). Marks are kept after
 * they end: they are the record of who said what was expected, and when. A mark made by a button names that
 * button: pressing it twice makes one mark.
 *
 * And `anomaly_state.cleared_at`: the last minute of a scope's last episode (resolved, or ended by a mark). The
 * sequential test (CUSUM) counts from the minute after it, so the old episode's minutes are not evidence of a new one.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE anomaly_marks (
      id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      scope_type          text NOT NULL CHECK (scope_type IN ('key', 'workspace')),
      scope_id            text NOT NULL,
      covered_hourly_usd  double precision NOT NULL CHECK (covered_hourly_usd > 0),
      starts_at           timestamptz NOT NULL,
      until               timestamptz NOT NULL CHECK (until > starts_at),
      marked_by           text NOT NULL,
      alert_id            bigint REFERENCES alerts (id) ON DELETE SET NULL,
      slack_button_id     uuid UNIQUE REFERENCES slack_buttons (id) ON DELETE SET NULL,
      created_at          timestamptz NOT NULL
    );
    CREATE INDEX anomaly_marks_until ON anomaly_marks (until);

    ALTER TABLE anomaly_state ADD COLUMN cleared_at timestamptz;
  `.execute(db);
}
