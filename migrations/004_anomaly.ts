import { type Kysely, sql } from 'kysely';

/**
 * Runaway detection's memory between runs, one row per key or workspace it has judged: the detector's state (is an
 * episode firing, since when, when the rate was last abnormal), the baseline of the hour (typicalRate rests on
 * complete hours only, so it is computed once per hour and reused by the minute runs of that hour), and what this
 * episode already did (the kill switch is applied once per episode; a workspace episode explained by a key alert is
 * not announced a second time).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE anomaly_state (
      scope_type              text NOT NULL CHECK (scope_type IN ('key', 'workspace')),
      -- a key id, a workspace id, or 'default' for the Default Workspace (it has no id in the Admin API)
      scope_id                text NOT NULL,
      firing                  boolean NOT NULL DEFAULT false,
      since                   timestamptz,
      last_abnormal           timestamptz,
      evaluated_until         timestamptz,
      baseline_hour           timestamptz,
      typical_hourly_usd      double precision,
      baseline_source         text,
      baseline_samples        integer,
      minute_dispersion_usd   double precision,
      covered_by_key          boolean NOT NULL DEFAULT false,
      -- the episode (its since) for which the kill switch set the key inactive
      deactivated_for         timestamptz,
      updated_at              timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (scope_type, scope_id)
    );
  `.execute(db);
}
