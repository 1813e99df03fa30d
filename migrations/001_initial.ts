import { type Kysely, sql } from 'kysely';

/**
 * The first schema: everything the mission needs. Conventions:
 * - Money is `numeric(30,12)` USD: exact, and wide enough for any organization (see src/money.ts).
 * - Tokens are bigint. Times are timestamptz, written in UTC.
 * - The Default Workspace has no id in the Admin API (`workspace_id: null`); dimension columns keep that null and
 *   unique indexes use NULLS NOT DISTINCT (Postgres 15+) so upserts still find the row.
 * - Side effects are keyed by unique constraints (reminder stages, notifications per target, alert fingerprints).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE organizations (
      id             text PRIMARY KEY,
      name           text NOT NULL,
      first_seen_at  timestamptz NOT NULL DEFAULT now(),
      last_seen_at   timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE workspaces (
      id             text PRIMARY KEY,
      name           text NOT NULL,
      display_color  text,
      created_at     timestamptz NOT NULL,
      archived_at    timestamptz,
      first_seen_at  timestamptz NOT NULL DEFAULT now(),
      last_seen_at   timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE users (
      id             text PRIMARY KEY,
      email          text NOT NULL,
      name           text NOT NULL,
      role           text NOT NULL,
      added_at       timestamptz,
      first_seen_at  timestamptz NOT NULL DEFAULT now(),
      last_seen_at   timestamptz NOT NULL DEFAULT now(),
      -- set when a sync no longer finds the user: they left the organization
      left_at        timestamptz
    );

    CREATE TABLE api_keys (
      id                   text PRIMARY KEY,
      name                 text NOT NULL,
      status               text NOT NULL,
      workspace_id         text,
      partial_key_hint     text,
      created_at           timestamptz NOT NULL,
      created_by_id        text,
      created_by_type      text,
      expires_at           timestamptz,
      status_changed_at    timestamptz,
      first_seen_at        timestamptz NOT NULL DEFAULT now(),
      last_seen_at         timestamptz NOT NULL DEFAULT now(),
      -- set when a sync no longer lists the key at all
      gone_at              timestamptz
    );
    CREATE INDEX api_keys_workspace ON api_keys (workspace_id, status);

    CREATE TABLE api_key_status_changes (
      id           bigserial PRIMARY KEY,
      api_key_id   text NOT NULL REFERENCES api_keys (id),
      from_status  text,
      to_status    text NOT NULL,
      changed_at   timestamptz NOT NULL,
      -- 'keywarden' when keywarden made the change, 'outside' when a sync noticed it
      source       text NOT NULL CHECK (source IN ('keywarden', 'outside')),
      reason       text
    );
    CREATE INDEX api_key_status_changes_key ON api_key_status_changes (api_key_id, changed_at);

    CREATE TABLE usage_buckets (
      bucket_width                    text NOT NULL CHECK (bucket_width IN ('1m', '1h', '1d')),
      starting_at                     timestamptz NOT NULL,
      api_key_id                      text,
      workspace_id                    text,
      model                           text NOT NULL,
      service_tier                    text NOT NULL,
      context_window                  text NOT NULL,
      uncached_input_tokens           bigint NOT NULL DEFAULT 0,
      cache_read_input_tokens         bigint NOT NULL DEFAULT 0,
      cache_creation_5m_input_tokens  bigint NOT NULL DEFAULT 0,
      cache_creation_1h_input_tokens  bigint NOT NULL DEFAULT 0,
      output_tokens                   bigint NOT NULL DEFAULT 0,
      web_search_requests             bigint NOT NULL DEFAULT 0,
      cost_usd                        numeric(30, 12) NOT NULL DEFAULT 0,
      -- how the cost was priced: 'table', or 'family_max'/'global_max' for a model missing from the table
      priced_by                       text NOT NULL DEFAULT 'table',
      updated_at                      timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX usage_buckets_identity ON usage_buckets
      (bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window) NULLS NOT DISTINCT;
    CREATE INDEX usage_buckets_key_time ON usage_buckets (api_key_id, bucket_width, starting_at);
    CREATE INDEX usage_buckets_workspace_time ON usage_buckets (workspace_id, bucket_width, starting_at);

    CREATE TABLE cost_buckets (
      day             date NOT NULL,
      workspace_id    text,
      description     text NOT NULL DEFAULT '',
      cost_type       text,
      model           text,
      token_type      text,
      service_tier    text,
      context_window  text,
      amount_usd      numeric(30, 12) NOT NULL,
      currency        text NOT NULL,
      fetched_at      timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX cost_buckets_identity ON cost_buckets (day, workspace_id, description) NULLS NOT DISTINCT;

    CREATE TABLE cost_drift (
      day            date NOT NULL,
      workspace_id   text,
      reported_usd   numeric(30, 12) NOT NULL,
      priced_usd     numeric(30, 12) NOT NULL,
      drift_ratio    double precision NOT NULL,
      recorded_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX cost_drift_identity ON cost_drift (day, workspace_id) NULLS NOT DISTINCT;

    -- A job's progress: the end of the last bucket it committed. Jobs catch up from here after any downtime.
    CREATE TABLE watermarks (
      name        text PRIMARY KEY,
      position    timestamptz NOT NULL,
      updated_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE projections (
      id            bigserial PRIMARY KEY,
      made_at       timestamptz NOT NULL,
      month         date NOT NULL,
      scope_type    text NOT NULL CHECK (scope_type IN ('organization', 'workspace', 'key')),
      scope_id      text NOT NULL,
      mtd_usd       numeric(30, 12) NOT NULL,
      p10_usd       numeric(30, 12) NOT NULL,
      p50_usd       numeric(30, 12) NOT NULL,
      p90_usd       numeric(30, 12) NOT NULL,
      limit_usd     numeric(30, 12),
      crossing_p50  date,
      crossing_p90  date,
      method        text NOT NULL
    );
    CREATE INDEX projections_scope ON projections (scope_type, scope_id, month, made_at DESC);

    -- One row per alert fingerprint (kind + scope + period). Alertmanager semantics: firing → repeat → resolved.
    CREATE TABLE alerts (
      id                bigserial PRIMARY KEY,
      fingerprint       text NOT NULL UNIQUE,
      kind              text NOT NULL,
      severity          text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
      scope_type        text NOT NULL,
      scope_id          text NOT NULL,
      workspace_id      text,
      period            text NOT NULL DEFAULT '',
      state             text NOT NULL CHECK (state IN ('firing', 'resolved')),
      title             text NOT NULL,
      details           jsonb NOT NULL DEFAULT '{}',
      started_at        timestamptz NOT NULL,
      last_seen_at      timestamptz NOT NULL,
      last_notified_at  timestamptz,
      resolved_at       timestamptz,
      inhibited_by      text
    );
    CREATE INDEX alerts_state ON alerts (state, kind);

    -- The outbox: written in the same transaction as the alert's state change, sent by deliver-notifications.
    CREATE TABLE notifications (
      id                   bigserial PRIMARY KEY,
      alert_id             bigint REFERENCES alerts (id),
      fingerprint          text NOT NULL,
      event                text NOT NULL CHECK (event IN ('firing', 'repeat', 'resolved', 'digest')),
      -- distinguishes the n-th repeat of one alert, so each repeat has its own unique row
      sequence             integer NOT NULL DEFAULT 0,
      channel              text NOT NULL CHECK (channel IN ('slack', 'email')),
      target               text NOT NULL,
      payload              jsonb NOT NULL,
      status               text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
      attempts             integer NOT NULL DEFAULT 0,
      next_attempt_at      timestamptz NOT NULL DEFAULT now(),
      last_error           text,
      -- a send was started but its outcome never recorded (the process died): the retry may be a duplicate
      possibly_duplicate   boolean NOT NULL DEFAULT false,
      provider_id          text,
      thread_ts            text,
      created_at           timestamptz NOT NULL DEFAULT now(),
      sent_at              timestamptz,
      UNIQUE (fingerprint, event, sequence, channel, target)
    );
    CREATE INDEX notifications_due ON notifications (status, next_attempt_at);

    CREATE TABLE rotation_state (
      api_key_id       text PRIMARY KEY REFERENCES api_keys (id),
      deadline         timestamptz,
      policy_source    text NOT NULL,
      stage            text NOT NULL,
      evaluated_at     timestamptz NOT NULL
    );

    -- One row per key and reminder stage ('14', '7', '1', 'overdue'): a stage is sent once, whatever reruns happen.
    CREATE TABLE rotation_reminders (
      api_key_id  text NOT NULL REFERENCES api_keys (id),
      stage       text NOT NULL,
      sent_at     timestamptz NOT NULL,
      PRIMARY KEY (api_key_id, stage)
    );

    CREATE TABLE audit_log (
      id            bigserial PRIMARY KEY,
      at            timestamptz NOT NULL DEFAULT now(),
      actor         text NOT NULL,
      action        text NOT NULL,
      -- 'intent' before an outside call, 'done' or 'failed' after it, 'reconciled' when a later run settles an
      -- intent whose outcome was lost in a crash
      step          text NOT NULL,
      subject_type  text NOT NULL,
      subject_id    text NOT NULL,
      operation_id  text NOT NULL,
      details       jsonb NOT NULL DEFAULT '{}',
      UNIQUE (operation_id, step)
    );
    CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id, at);

    -- The audit log is append-only, and the database itself says so: no role that writes through keywarden can
    -- change or remove history, even by mistake.
    CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
      FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
  `.execute(db);
}
