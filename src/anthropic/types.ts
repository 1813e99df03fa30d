import { z } from 'zod';
import { centsToPico, type Pico } from '../money.ts';

/**
 * What the Admin API returns, validated and normalised for keywarden. Objects are loose: fields Anthropic adds
 * later pass through validation unharmed, and the fields keywarden relies on are checked. The 2026 changes are
 * absorbed here, once: `principal`/`scope` on keys, nullable `created_by` and `partial_key_hint`, role strings
 * beyond the documented enums. Entities come out camelCase; report rows keep the API's snake_case names, which are
 * also the usage table's column names.
 */

/** RFC 3339 with microseconds (`2026-04-30T18:46:40.501292Z`) → Date. */
export const timestamp = z.string().transform((text, ctx) => {
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: `"${text.slice(0, 40)}" is not an RFC 3339 timestamp` });
    return z.NEVER;
  }
  return new Date(ms);
});

/** Fields documented as nullable are also accepted when missing: the API has dropped fields before. */
export const nullableString = z
  .string()
  .nullish()
  .transform((v) => v ?? null);
const nullableTimestamp = timestamp.nullish().transform((v) => v ?? null);

// ── Organization, users, workspaces, members ─────────────────────────────────────────────────────────────────

export interface Organization {
  id: string;
  name: string;
}

export const organizationSchema = z
  .looseObject({ id: z.string(), name: z.string() })
  .transform((o): Organization => ({ id: o.id, name: o.name }));

/** The organization roles the SDK types (1.16.0); `role` stays an open string so a tenth does not break a page. */
export const ORGANIZATION_ROLES = [
  'admin',
  'billing',
  'claude_code_user',
  'developer',
  'managed',
  'membership_admin',
  'owner',
  'primary_owner',
  'user',
] as const;

export interface User {
  id: string;
  email: string;
  name: string;
  /** Open-ended: one of ORGANIZATION_ROLES, or a newer one. */
  role: string;
  addedAt: Date;
}

export const userSchema = z
  .looseObject({ id: z.string(), email: z.string(), name: z.string(), role: z.string(), added_at: timestamp })
  .transform((u): User => ({ id: u.id, email: u.email, name: u.name, role: u.role, addedAt: u.added_at }));

export interface Workspace {
  id: string;
  name: string;
  displayColor: string | null;
  createdAt: Date;
  archivedAt: Date | null;
  /** As returned (`workspace_geo`, `allowed_inference_geos`, `default_inference_geo`); null when absent. */
  dataResidency: Record<string, unknown> | null;
  /** Newer fields (2026); empty or null when the API does not send them (classic responses). */
  tags: Record<string, string>;
  compartmentId: string | null;
  externalKeyId: string | null;
  userProfileId: string | null;
}

export const workspaceSchema = z
  .looseObject({
    id: z.string(),
    name: z.string(),
    display_color: nullableString,
    created_at: timestamp,
    archived_at: nullableTimestamp,
    data_residency: z.record(z.string(), z.unknown()).nullish(),
    tags: z.record(z.string(), z.string()).nullish(),
    compartment_id: nullableString,
    external_key_id: nullableString,
    user_profile_id: nullableString,
  })
  .transform(
    (w): Workspace => ({
      id: w.id,
      name: w.name,
      displayColor: w.display_color,
      createdAt: w.created_at,
      archivedAt: w.archived_at,
      dataResidency: w.data_residency ?? null,
      tags: w.tags ?? {},
      compartmentId: w.compartment_id,
      externalKeyId: w.external_key_id,
      userProfileId: w.user_profile_id,
    }),
  );

export interface WorkspaceMember {
  userId: string;
  workspaceId: string;
  /** Open-ended: `workspace_user`, `workspace_developer`, `workspace_restricted_developer`, `workspace_admin`, … */
  workspaceRole: string;
}

export const workspaceMemberSchema = z
  .looseObject({ user_id: z.string(), workspace_id: z.string(), workspace_role: z.string() })
  .transform(
    (m): WorkspaceMember => ({ userId: m.user_id, workspaceId: m.workspace_id, workspaceRole: m.workspace_role }),
  );

// ── API keys ─────────────────────────────────────────────────────────────────────────────────────────────────

/** The statuses the API documents. `status` itself is typed as a string so a new status does not break a page. */
export const API_KEY_STATUSES = ['active', 'inactive', 'archived', 'expired'] as const;
export type ApiKeyStatus = (typeof API_KEY_STATUSES)[number];

/** The statuses the API lets a client set (`expired` is only ever set by the API itself). */
export type SettableApiKeyStatus = 'active' | 'inactive' | 'archived';

export interface ApiKey {
  id: string;
  name: string;
  status: ApiKeyStatus | (string & {});
  createdAt: Date;
  /** Null for legacy, workload-identity and system keys (2026). `type` is `user` or `service_account`. */
  createdBy: { id: string; type: string } | null;
  /** `sk-ant-api03-R2D...igAA`; null on some newer keys. The only part of a key keywarden ever shows. */
  partialKeyHint: string | null;
  /**
   * The workspace the key belongs to. Null: the Default Workspace, or an organization-scoped key. The API says the
   * Default Workspace two ways: classic responses send a top-level `workspace_id: null`; 2026 responses send only
   * `scope.workspace_id`, with the Default Workspace's real id, which the client maps back to null (client.ts), so
   * that keys, usage rows (null there) and every name lookup agree on one Default Workspace.
   */
  workspaceId: string | null;
  /** `workspace` for classic keys; `organization` for newer keys not scoped to a workspace. */
  scope: 'workspace' | 'organization' | (string & {});
  /** Set in the Console at creation; the API reports status `expired` after it. */
  expiresAt: Date | null;
  /**
   * Who the key acts as (2026): a user or a service account; null for a legacy workspace key; absent when the
   * response did not say (classic shapes carry no `principal`), which is not the same as "nobody".
   */
  principal?: { type: string; userId: string | null; serviceAccountId: string | null } | null;
}

/**
 * A key as read off the wire: `workspaceIdIsReal` when its workspace id came from a 2026 `scope`, where the Default
 * Workspace has its real id; the client resolves that before anyone else sees the key.
 */
export interface WireApiKey extends ApiKey {
  workspaceIdIsReal: boolean;
}

/** The key as the rest of keywarden sees it, given the Default Workspace's real id (null when unknown). */
export function resolveDefaultWorkspace(wire: WireApiKey, defaultWorkspaceId: string | null): ApiKey {
  const { workspaceIdIsReal, ...key } = wire;
  if (workspaceIdIsReal && key.workspaceId === defaultWorkspaceId) key.workspaceId = null;
  return key;
}

export const apiKeySchema = z
  .looseObject({
    id: z.string(),
    name: z.string(),
    status: z.string(),
    created_at: timestamp,
    created_by: z.looseObject({ id: z.string(), type: z.string() }).nullish(),
    partial_key_hint: nullableString,
    workspace_id: z.string().nullish(),
    expires_at: nullableTimestamp,
    principal: z
      .looseObject({ type: z.string(), user_id: nullableString, service_account_id: nullableString })
      .nullish(),
    scope: z.looseObject({ type: z.string(), workspace_id: nullableString }).nullish(),
  })
  .transform(
    (k): WireApiKey => ({
      id: k.id,
      name: k.name,
      status: k.status,
      createdAt: k.created_at,
      createdBy: k.created_by ? { id: k.created_by.id, type: k.created_by.type } : null,
      partialKeyHint: k.partial_key_hint,
      // The top-level field, when sent, is the classic one (null = Default Workspace); otherwise the scope's.
      workspaceId: k.workspace_id !== undefined ? k.workspace_id : (k.scope?.workspace_id ?? null),
      workspaceIdIsReal: k.workspace_id === undefined && k.scope?.workspace_id != null,
      scope: k.scope?.type ?? 'workspace',
      expiresAt: k.expires_at,
      principal:
        k.principal === undefined
          ? undefined
          : k.principal === null
            ? null
            : { type: k.principal.type, userId: k.principal.user_id, serviceAccountId: k.principal.service_account_id },
    }),
  );

// ── Reports ──────────────────────────────────────────────────────────────────────────────────────────────────

/** The `anthropic-beta` the usage report's `speeds[]` filter and `speed` grouping need (fast mode is a beta). */
export const FAST_MODE_BETA = 'fast-mode-2026-02-01';

export const USAGE_GROUP_BY = [
  'api_key_id',
  'workspace_id',
  'model',
  'service_tier',
  'context_window',
  'inference_geo',
  'speed',
  'account_id',
  'service_account_id',
] as const;
export type UsageGroupBy = (typeof USAGE_GROUP_BY)[number];

export const COST_GROUP_BY = ['workspace_id', 'description'] as const;
export type CostGroupBy = (typeof COST_GROUP_BY)[number];

export type BucketWidth = '1m' | '1h' | '1d';

/** A time bucket of a report; `results` is empty for a bucket without usage. */
export interface ReportBucket<R> {
  starting_at: Date;
  ending_at: Date;
  results: R[];
}

/**
 * One row of the messages usage report, flattened: the nested `cache_creation` and `server_tool_use` counts become
 * columns, as in the usage table. Dimensions not grouped by are null (`api_key_id` is also null for Console usage,
 * `workspace_id` for the Default Workspace).
 */
export interface UsageResult {
  api_key_id: string | null;
  workspace_id: string | null;
  model: string | null;
  service_tier: string | null;
  context_window: string | null;
  inference_geo: string | null;
  speed: string | null;
  account_id: string | null;
  service_account_id: string | null;
  uncached_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_5m_input_tokens: number;
  cache_creation_1h_input_tokens: number;
  output_tokens: number;
  web_search_requests: number;
}

const tokenCount = z.int().nonnegative();

export const usageResultSchema = z
  .looseObject({
    uncached_input_tokens: tokenCount,
    cache_read_input_tokens: tokenCount,
    cache_creation: z
      .looseObject({
        ephemeral_5m_input_tokens: tokenCount.default(0),
        ephemeral_1h_input_tokens: tokenCount.default(0),
      })
      .nullish(),
    output_tokens: tokenCount,
    server_tool_use: z.looseObject({ web_search_requests: tokenCount.default(0) }).nullish(),
    api_key_id: nullableString,
    workspace_id: nullableString,
    model: nullableString,
    service_tier: nullableString,
    context_window: nullableString,
    inference_geo: nullableString,
    speed: nullableString,
    account_id: nullableString,
    service_account_id: nullableString,
  })
  .transform(
    (r): UsageResult => ({
      api_key_id: r.api_key_id,
      workspace_id: r.workspace_id,
      model: r.model,
      service_tier: r.service_tier,
      context_window: r.context_window,
      inference_geo: r.inference_geo,
      speed: r.speed,
      account_id: r.account_id,
      service_account_id: r.service_account_id,
      uncached_input_tokens: r.uncached_input_tokens,
      cache_read_input_tokens: r.cache_read_input_tokens,
      cache_creation_5m_input_tokens: r.cache_creation?.ephemeral_5m_input_tokens ?? 0,
      cache_creation_1h_input_tokens: r.cache_creation?.ephemeral_1h_input_tokens ?? 0,
      output_tokens: r.output_tokens,
      web_search_requests: r.server_tool_use?.web_search_requests ?? 0,
    }),
  );

/** One row of the cost report. Descriptive fields are null unless grouped by `description`. */
export interface CostResult {
  /** As sent: a decimal string in cents (`"123.45"` is $1.2345). */
  amount: string;
  /** The same amount, exactly, in picodollars. */
  amount_pico: Pico;
  currency: string;
  workspace_id: string | null;
  description: string | null;
  cost_type: string | null;
  model: string | null;
  token_type: string | null;
  service_tier: string | null;
  context_window: string | null;
  inference_geo: string | null;
}

export const costResultSchema = z
  .looseObject({
    // Documented as a string; a number is accepted as its decimal text rather than failing the page.
    amount: z.union([z.string(), z.number()]).transform((v, ctx) => {
      const text = String(v);
      try {
        return { text, pico: centsToPico(text) };
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    currency: z.string().default('USD'),
    workspace_id: nullableString,
    description: nullableString,
    cost_type: nullableString,
    model: nullableString,
    token_type: nullableString,
    service_tier: nullableString,
    context_window: nullableString,
    inference_geo: nullableString,
  })
  .transform(
    (r): CostResult => ({
      amount: r.amount.text,
      amount_pico: r.amount.pico,
      currency: r.currency,
      workspace_id: r.workspace_id,
      description: r.description,
      cost_type: r.cost_type,
      model: r.model,
      token_type: r.token_type,
      service_tier: r.service_tier,
      context_window: r.context_window,
      inference_geo: r.inference_geo,
    }),
  );

function bucketSchema<S extends z.ZodType>(result: S) {
  return z
    .looseObject({ starting_at: timestamp, ending_at: timestamp, results: z.array(result) })
    .transform((b) => ({ starting_at: b.starting_at, ending_at: b.ending_at, results: b.results as z.output<S>[] }));
}

// ── Rate limits ──────────────────────────────────────────────────────────────────────────────────────────────

export interface RateLimitValue {
  /** A limiter type: one the SDK types (anomaly/headroom.ts labels them for people), or a newer one. */
  type: string;
  value: number;
  /** Workspace limits only: the organization's value for the same limiter; null when it has none. */
  orgLimit: number | null;
  /** Workspace limits only: where the value comes from (`workspace` or `organization`); sent as a string or `{type}`. */
  source: string | null;
}

export interface RateLimit {
  /** `rate_limit` for the organization, `workspace_rate_limit` for a workspace. */
  type: string;
  /**
   * The organization's entry id (`rate_limit_id` on a workspace entry), null in classic responses. Differs per
   * organization; `groupId` does not.
   */
  id: string | null;
  /** The group's stable id (`rlg_…`, the same in every organization); null in classic responses. */
  groupId: string | null;
  /** `model_group`, `batch`, `token_count`, `files`, `skills`, `web_search`, … */
  groupType: string;
  /** A model group's name for people (`Claude Sonnet`); null for other groups and classic responses. */
  groupName: string | null;
  models: string[] | null;
  limits: RateLimitValue[];
}

/** `source` is a string in classic responses and `{type}` in the SDK's. */
const limitSource = z
  .union([z.string(), z.looseObject({ type: z.string() })])
  .nullish()
  .transform((v) => (v == null ? null : typeof v === 'string' ? v : v.type));

export const rateLimitSchema = z
  .looseObject({
    type: z.string(),
    id: nullableString,
    rate_limit_id: nullableString,
    // Deprecated since the SDK's 0.127.0 in favour of `group.type`; classic responses send only this.
    group_type: z.string().nullish(),
    group: z.looseObject({ id: z.string(), type: z.string(), display_name: nullableString }).nullish(),
    models: z.array(z.string()).nullish(),
    limits: z.array(
      z.looseObject({
        type: z.string(),
        value: z.number(),
        org_limit: z.number().nullish(),
        source: limitSource,
      }),
    ),
  })
  .transform((g, ctx): RateLimit => {
    const groupType = g.group?.type ?? g.group_type;
    if (groupType == null) {
      ctx.addIssue({ code: 'custom', path: ['group'], message: 'expected group.type (or group_type), got missing' });
      return z.NEVER;
    }
    return {
      type: g.type,
      id: g.id ?? g.rate_limit_id,
      groupId: g.group?.id ?? null,
      groupType,
      groupName: g.group?.display_name ?? null,
      models: g.models ?? null,
      limits: g.limits.map((l) => ({ type: l.type, value: l.value, orgLimit: l.org_limit ?? null, source: l.source })),
    };
  });

// ── Pages ────────────────────────────────────────────────────────────────────────────────────────────────────

/** A page of an id-cursor list (users, workspaces, members, keys). */
export interface ListPage<T> {
  data: T[];
  hasMore: boolean;
  firstId: string | null;
  lastId: string | null;
}

/** A page of a report (usage, cost) or of the rate limits: continue with `page: nextPage`. */
export interface TokenPage<T> {
  data: T[];
  hasMore: boolean;
  nextPage: string | null;
}

export function listPageSchema<S extends z.ZodType>(item: S) {
  return z
    .looseObject({
      data: z.array(item),
      has_more: z.boolean(),
      first_id: nullableString,
      last_id: nullableString,
    })
    .transform(
      (p): ListPage<z.output<S>> => ({
        data: p.data as z.output<S>[],
        hasMore: p.has_more,
        firstId: p.first_id,
        lastId: p.last_id,
      }),
    );
}

export function tokenPageSchema<S extends z.ZodType>(item: S) {
  return z
    .looseObject({
      data: z.array(item),
      // The rate limits endpoints send only `next_page`; its presence is then what "more" means.
      has_more: z.boolean().optional(),
      next_page: nullableString,
    })
    .transform(
      (p): TokenPage<z.output<S>> => ({
        data: p.data as z.output<S>[],
        hasMore: p.has_more ?? p.next_page !== null,
        nextPage: p.next_page,
      }),
    );
}

export const usagePageSchema = tokenPageSchema(bucketSchema(usageResultSchema));
export const costPageSchema = tokenPageSchema(bucketSchema(costResultSchema));
export const rateLimitPageSchema = tokenPageSchema(rateLimitSchema);

export type UsageBucket = ReportBucket<UsageResult>;
export type CostBucket = ReportBucket<CostResult>;
