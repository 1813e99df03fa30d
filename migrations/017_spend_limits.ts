import { type Kysely, sql } from 'kysely';

/**
 * The Spend Limits API, remembered. `spend_limits_seen`: the limits the last successful read returned (organization,
 * workspace and usage-tier caps), so a limit created, changed or deleted in the Console is told as
 * `spend.limit_changed`, and a run whose read fails keeps judging spend against the limits last seen.
 * `spend_limits_source` (one row): whether limits come from the API or from the policy file alone, and why; a change
 * of it is logged once, and /metrics shows it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE spend_limits_seen (
      limit_id      text PRIMARY KEY,
      scope_type    text NOT NULL,
      workspace_id  text,
      period        text NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
      -- minor units of currency (cents for USD), exact; null: no numeric cap
      amount_minor  numeric(20, 0),
      currency      text NOT NULL,
      is_enabled    boolean NOT NULL,
      updated_at    timestamptz NOT NULL,
      seen_at       timestamptz NOT NULL
    );

    CREATE TABLE spend_limits_source (
      id          smallint PRIMARY KEY CHECK (id = 1),
      source      text NOT NULL CHECK (source IN ('api', 'policy')),
      reason      text,
      since       timestamptz NOT NULL,
      -- when spend_limits_seen last held a successful read; null: never read (the first read is no change)
      read_at     timestamptz
    );
  `.execute(db);
}
