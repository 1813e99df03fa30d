import { type Kysely, sql } from 'kysely';

/**
 * Billed cost per key from the Usage and Cost Analytics API (beta): `billed_costs` holds its rows grouped by API key,
 * workspace, model and actor (who is behind a key's spend), in 1d buckets for closed UTC days and 1h buckets for
 * today (replaced by the day's 1d rows once the day closes), with the billed `amount` (post-discount) beside the `list_amount`, and how fresh the API
 * said its data was. `analytics_access` remembers whether the API answered the last time it was asked, so that a
 * fallback to the classic cost report is said once (log, /metrics), not on every run.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE billed_costs (
      bucket_width text NOT NULL CHECK (bucket_width IN ('1h', '1d')),
      starting_at timestamptz NOT NULL,
      -- '' for usage no API key authenticated (the Console, Claude apps)
      api_key_id text NOT NULL,
      -- null: the Default Workspace (or no workspace), as in usage_buckets
      workspace_id text,
      -- '' for cost attributed to no model
      model text NOT NULL,
      -- who the usage is attributed to (the key's principal, else the key itself): user_actor,
      -- service_account_actor, federated_actor or api_actor, with its id ('' when none) and, for a user, the email
      actor_type text,
      actor_id text NOT NULL DEFAULT '',
      actor_label text,
      amount_usd numeric(30, 12) NOT NULL,
      list_amount_usd numeric(30, 12) NOT NULL,
      requests bigint,
      currency text NOT NULL,
      data_refreshed_at timestamptz,
      fetched_at timestamptz NOT NULL DEFAULT now()
    )
  `.execute(db);
  await sql`
    CREATE UNIQUE INDEX billed_costs_identity
      ON billed_costs (bucket_width, starting_at, api_key_id, coalesce(workspace_id, ''), model, actor_id)
  `.execute(db);
  await sql`CREATE INDEX billed_costs_key ON billed_costs (api_key_id, starting_at)`.execute(db);
  await sql`
    CREATE TABLE analytics_access (
      api text PRIMARY KEY,
      available boolean NOT NULL,
      reason text,
      checked_at timestamptz NOT NULL,
      changed_at timestamptz NOT NULL
    )
  `.execute(db);
}
