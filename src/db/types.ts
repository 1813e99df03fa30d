import type { ColumnType, Generated, Insertable, JSONColumnType, Selectable } from 'kysely';
import type { KeyIdentity } from '../inventory/core/identity.ts';
import type { AlertKind, RotationStage, ScopeType, Severity, SpendScopeType } from '../kinds.ts';

/**
 * Row types of migrations/*. pg returns numeric and bigint as strings (no precision is lost on the way), so
 * money (`numeric(30,12)` USD) is a string here and goes through src/money.ts; token counts are bigint in
 * Postgres and strings when read, numbers or strings when written.
 */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Money = ColumnType<string, string, string>;
type MoneyPart = ColumnType<string | null, string | null | undefined, string | null>;
type Tokens = ColumnType<string, number | string | bigint | undefined, number | string | bigint>;
type DateOnly = ColumnType<string, string, string>;

export interface OrganizationsTable {
  id: string;
  name: string;
  first_seen_at: DefaultedTimestamp;
  last_seen_at: DefaultedTimestamp;
}

export interface WorkspacesTable {
  id: string;
  name: string;
  display_color: string | null;
  created_at: Timestamp;
  archived_at: Timestamp | null;
  first_seen_at: DefaultedTimestamp;
  last_seen_at: DefaultedTimestamp;
}

export interface UsersTable {
  id: string;
  email: string;
  name: string;
  role: string;
  added_at: Timestamp | null;
  first_seen_at: DefaultedTimestamp;
  last_seen_at: DefaultedTimestamp;
  left_at: Timestamp | null;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  status: string;
  workspace_id: string | null;
  partial_key_hint: string | null;
  created_at: Timestamp;
  created_by_id: string | null;
  created_by_type: string | null;
  expires_at: Timestamp | null;
  /** `workspace` (workspace_id null: the Default Workspace) or `organization` (no workspace at all). */
  scope_type: Generated<string>;
  /** `user_actor` or `service_account_actor`; null for plain workspace keys and classic responses. */
  principal_type: string | null;
  principal_id: string | null;
  /** Who is behind the key (src/inventory/core/identity.ts); `unknown` until a sync whose response said. */
  identity: ColumnType<KeyIdentity, KeyIdentity | undefined, KeyIdentity>;
  status_changed_at: Timestamp | null;
  first_seen_at: DefaultedTimestamp;
  last_seen_at: DefaultedTimestamp;
  gone_at: Timestamp | null;
}

export interface ApiKeyStatusChangesTable {
  id: Generated<string>;
  api_key_id: string;
  from_status: string | null;
  to_status: string;
  changed_at: Timestamp;
  source: 'keywarden' | 'outside';
  reason: string | null;
}

export interface UsageBucketsTable {
  bucket_width: '1m' | '1h' | '1d';
  starting_at: Timestamp;
  api_key_id: string | null;
  workspace_id: string | null;
  model: string;
  service_tier: string;
  context_window: string;
  uncached_input_tokens: Tokens;
  cache_read_input_tokens: Tokens;
  cache_creation_5m_input_tokens: Tokens;
  cache_creation_1h_input_tokens: Tokens;
  output_tokens: Tokens;
  web_search_requests: Tokens;
  cost_usd: Money;
  /** The cost split by token kind as ingestion priced it, on 1m rows; null on hourly rows and older 1m rows. */
  cost_uncached_input_usd: MoneyPart;
  cost_cache_read_usd: MoneyPart;
  cost_cache_creation_5m_usd: MoneyPart;
  cost_cache_creation_1h_usd: MoneyPart;
  cost_output_usd: MoneyPart;
  cost_web_search_usd: MoneyPart;
  priced_by: ColumnType<string, string | undefined, string>;
  updated_at: DefaultedTimestamp;
}

export interface CostBucketsTable {
  day: DateOnly;
  workspace_id: string | null;
  description: ColumnType<string, string | undefined, string>;
  cost_type: string | null;
  model: string | null;
  token_type: string | null;
  service_tier: string | null;
  context_window: string | null;
  amount_usd: Money;
  currency: string;
  fetched_at: DefaultedTimestamp;
}

export interface CostDriftTable {
  day: DateOnly;
  workspace_id: string | null;
  reported_usd: Money;
  priced_usd: Money;
  drift_ratio: number;
  recorded_at: DefaultedTimestamp;
}

export interface BilledCostsTable {
  bucket_width: '1h' | '1d';
  starting_at: Timestamp;
  api_key_id: string;
  workspace_id: string | null;
  model: string;
  actor_type: string | null;
  actor_id: ColumnType<string, string | undefined, string>;
  actor_label: string | null;
  amount_usd: Money;
  list_amount_usd: Money;
  requests: ColumnType<string | null, number | null, number | null>;
  currency: string;
  data_refreshed_at: ColumnType<Date | null, Date | null, Date | null>;
  fetched_at: DefaultedTimestamp;
}

export interface AnalyticsAccessTable {
  api: string;
  available: boolean;
  reason: string | null;
  checked_at: Timestamp;
  changed_at: Timestamp;
}

export interface PricingUnknownModelsTable {
  model: string;
  priced_by: 'family_max' | 'global_max';
  first_seen_at: Timestamp;
}

export interface WatermarksTable {
  name: string;
  position: Timestamp;
  updated_at: DefaultedTimestamp;
}

export interface ProjectionsTable {
  id: Generated<string>;
  made_at: Timestamp;
  month: DateOnly;
  scope_type: SpendScopeType;
  scope_id: string;
  mtd_usd: Money;
  p10_usd: Money;
  p50_usd: Money;
  p90_usd: Money;
  limit_usd: Money | null;
  crossing_p50: DateOnly | null;
  crossing_p90: DateOnly | null;
  method: string;
}

export interface AlertsTable {
  id: Generated<string>;
  fingerprint: string;
  /** One of ALERT_KINDS: only keywarden writes this table, and kinds are only ever added to the list. */
  kind: AlertKind;
  severity: Severity;
  scope_type: ScopeType;
  scope_id: string;
  workspace_id: string | null;
  period: ColumnType<string, string | undefined, string>;
  state: 'firing' | 'resolved';
  title: string;
  details: JSONColumnType<Record<string, unknown>>;
  started_at: Timestamp;
  last_seen_at: Timestamp;
  last_notified_at: Timestamp | null;
  resolved_at: Timestamp | null;
  inhibited_by: string | null;
  /** Someone pressed Acknowledge on this episode: it no longer repeats (cleared when a new episode starts). */
  acknowledged_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** The Slack user id of who acknowledged it. */
  acknowledged_by: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Where an outbox row goes: Slack and email by address, the other three by the policy's receiver name. */
export type DeliveryChannel = 'slack' | 'email' | 'pagerduty' | 'webhook' | 'teams';

export interface NotificationsTable {
  id: Generated<string>;
  alert_id: string | null;
  fingerprint: string;
  event: 'firing' | 'repeat' | 'resolved' | 'acknowledged' | 'digest';
  sequence: ColumnType<number, number | undefined, number>;
  channel: DeliveryChannel;
  target: string;
  payload: JSONColumnType<Record<string, unknown>>;
  status: ColumnType<
    'pending' | 'sending' | 'sent' | 'failed',
    'pending' | undefined,
    'pending' | 'sending' | 'sent' | 'failed'
  >;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: DefaultedTimestamp;
  last_error: string | null;
  possibly_duplicate: ColumnType<boolean, boolean | undefined, boolean>;
  provider_id: string | null;
  thread_ts: string | null;
  created_at: DefaultedTimestamp;
  sent_at: Timestamp | null;
}

export interface SlackButtonsTable {
  id: Generated<string>;
  notification_id: string;
  /** What the button offers: `ack`, `snooze:1h`, … (src/action-ids.ts). */
  choice: string;
  alert_id: string;
  episode_started_at: Timestamp;
  created_at: Timestamp;
}

/** A Deny of a requested deactivation (rotation.enforce: approve): migrations/014_approvals.ts. */
export interface RotationDenialsTable {
  id: Generated<string>;
  api_key_id: string;
  alert_id: string;
  episode_started_at: Timestamp;
  /** `slack:U…` */
  denied_by: string;
  denied_by_name: string | null;
  reason: string | null;
  denied_at: Timestamp;
  ask_again_at: Timestamp;
}

export interface SilencesTable {
  id: Generated<string>;
  /** Globs by field (kind, scope, key, workspace) or one alert's fingerprint: src/alerts/core/silences.ts. */
  matchers: JSONColumnType<Record<string, string>>;
  starts_at: Timestamp;
  ends_at: Timestamp;
  created_by: string;
  comment: string;
  created_at: Timestamp;
  expired_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  slack_button_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface RotationStateTable {
  api_key_id: string;
  deadline: Timestamp | null;
  policy_source: string;
  stage: RotationStage;
  /** The reminder stage (days before the deadline) of a `due_soon` key; null in every other stage. */
  reminder_days: number | null;
  evaluated_at: Timestamp;
}

export interface RotationRemindersTable {
  api_key_id: string;
  stage: string;
  sent_at: Timestamp;
}

export interface AuditLogTable {
  id: Generated<string>;
  at: DefaultedTimestamp;
  actor: string;
  action: string;
  step: 'intent' | 'done' | 'failed' | 'reconciled';
  subject_type: string;
  subject_id: string;
  operation_id: string;
  details: JSONColumnType<Record<string, unknown>>;
}

export interface AnomalyStateTable {
  scope_type: 'key' | 'workspace';
  scope_id: string;
  firing: ColumnType<boolean, boolean | undefined, boolean>;
  since: Timestamp | null;
  last_abnormal: Timestamp | null;
  evaluated_until: Timestamp | null;
  baseline_hour: Timestamp | null;
  typical_hourly_usd: number | null;
  baseline_source: string | null;
  baseline_samples: number | null;
  minute_dispersion_usd: number | null;
  active_share: number | null;
  persistence: number | null;
  covered_by_key: ColumnType<boolean, boolean | undefined, boolean>;
  deactivated_for: Timestamp | null;
  kill_switch_evidence: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  cleared_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: DefaultedTimestamp;
}

export interface AnomalyMarksTable {
  id: Generated<string>;
  scope_type: 'key' | 'workspace';
  scope_id: string;
  covered_hourly_usd: number;
  starts_at: Timestamp;
  until: Timestamp;
  marked_by: string;
  alert_id: string | null;
  slack_button_id: string | null;
  created_at: Timestamp;
}

export interface JobRunsTable {
  job: string;
  consecutive_failures: Generated<number>;
  last_succeeded_at: Date | null;
  last_failed_at: Date | null;
  /** The first failure of the current run of failures; null while the job succeeds. */
  first_failed_at: Date | null;
  last_error: string | null;
}

export interface Database {
  organizations: OrganizationsTable;
  workspaces: WorkspacesTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  api_key_status_changes: ApiKeyStatusChangesTable;
  usage_buckets: UsageBucketsTable;
  cost_buckets: CostBucketsTable;
  cost_drift: CostDriftTable;
  billed_costs: BilledCostsTable;
  analytics_access: AnalyticsAccessTable;
  watermarks: WatermarksTable;
  pricing_unknown_models: PricingUnknownModelsTable;
  projections: ProjectionsTable;
  alerts: AlertsTable;
  notifications: NotificationsTable;
  slack_buttons: SlackButtonsTable;
  silences: SilencesTable;
  rotation_denials: RotationDenialsTable;
  rotation_state: RotationStateTable;
  rotation_reminders: RotationRemindersTable;
  audit_log: AuditLogTable;
  anomaly_state: AnomalyStateTable;
  anomaly_marks: AnomalyMarksTable;
  job_runs: JobRunsTable;
  spend_limits_seen: SpendLimitsSeenTable;
  spend_limits_source: SpendLimitsSourceTable;
  increase_requests: IncreaseRequestsTable;
}

/** The Spend Limits API's last successful read (migration 017). */
export interface SpendLimitsSeenTable {
  limit_id: string;
  scope_type: string;
  workspace_id: string | null;
  period: 'daily' | 'weekly' | 'monthly';
  amount_minor: string | null;
  currency: string;
  is_enabled: boolean;
  updated_at: ColumnType<Date, Date | string, Date | string>;
  seen_at: ColumnType<Date, Date | string, Date | string>;
}

/** Where limits come from now, and why (one row; migration 017). */
export interface SpendLimitsSourceTable {
  id: number;
  source: 'api' | 'policy';
  reason: string | null;
  since: ColumnType<Date, Date | string, Date | string>;
  read_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
}

export type AuditRow = Selectable<AuditLogTable>;
export type NewAuditRow = Insertable<AuditLogTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type UsageBucketRow = Selectable<UsageBucketsTable>;

/** Enterprise spend limit increase requests keywarden asked about in Slack (migration 019). */
export interface IncreaseRequestsTable {
  id: Generated<string>;
  request_id: string;
  user_id: string;
  period: 'daily' | 'weekly' | 'monthly';
  currency: string;
  /** Minor units (cents for USD), exact. */
  limit_minor: string | null;
  amount_minor: string | null;
  requested_at: Timestamp;
  state: ColumnType<IncreaseRequestState, IncreaseRequestState | undefined, IncreaseRequestState>;
  claimed_at: Timestamp | null;
  /** `slack:U…`, or `console` (answered outside keywarden). */
  answered_by: string | null;
  answered_at: Timestamp | null;
  limit_after_minor: string | null;
  notification_id: string | null;
}

export type IncreaseRequestState = 'pending' | 'approving' | 'denying' | 'approved' | 'denied';
