import { z } from 'zod';
import { centsToPico, type Pico } from '../money.ts';
import { AdminApiError, AdminKeyRejectedError } from './errors.ts';
import { Paged, walkTokenPages } from './pages.ts';
import type { ApiRequest, Query } from './transport.ts';
import type { TokenPage } from './types.ts';

/**
 * The Usage and Cost Analytics API (beta, `anthropic-beta: analytics-usage-cost-2026-08-24`, admin keys accepted):
 * `GET /v1/organizations/analytics/usage` and `/analytics/cost`. Unlike the classic reports it has rows, not
 * buckets: only combinations with usage are returned (no empty buckets), ranked by a metric unless asked for
 * `order_by=time`, `limit` counts rows, and it breaks cost out per API key, with the billed (post-discount)
 * `amount` beside the `list_amount`. Rows come out camelCase, the Default Workspace's real id mapped to null as
 * everywhere in keywarden (see ApiKey.workspaceId).
 */

export const ANALYTICS_BETA = 'analytics-usage-cost-2026-08-24';

/** The dimensions both endpoints group by (at most 5 per request), as the SDK (1.16.0) types them. */
export const ANALYTICS_GROUP_BY = [
  'actor',
  'actor_type',
  'agent_id',
  'api_key_id',
  'claude_tag_category',
  'claude_tag_user_id',
  'context_window',
  'deployment_id',
  'environment_id',
  'inference_geo',
  'model',
  'organization_id',
  'product',
  'rbac_group_id',
  'service_tier',
  'session_id',
  'slack_channel_id',
  'speed',
  'user_profile_id',
  'workspace_id',
] as const;
export type AnalyticsGroupBy = (typeof ANALYTICS_GROUP_BY)[number];
/** The cost endpoint's fan-out dimensions: they neither count toward the 5 nor toward `limit`. */
export const COST_FAN_OUT = ['cost_type', 'token_type'] as const;
export type AnalyticsCostGroupBy = AnalyticsGroupBy | (typeof COST_FAN_OUT)[number];
/** At most this many `group_by[]` per request (the fan-out ones not counted). */
export const MAX_ANALYTICS_GROUPS = 5;
export const ANALYTICS_USAGE_ORDER_BY = [
  'total_tokens',
  'output_tokens',
  'requests',
  'uncached_input_tokens',
  'time',
] as const;
export const ANALYTICS_COST_ORDER_BY = ['amount', 'list_amount', 'time'] as const;
export const ACTOR_TYPES = ['api_actor', 'federated_actor', 'service_account_actor', 'user_actor'] as const;

export type AnalyticsWidth = '1m' | '1h' | '1d';

/** Who the usage is attributed to: a user, a service account, a federated identity, or the API key itself. */
type AnalyticsActor =
  | { type: 'user_actor'; userId: string; email: string | null; name: string | null; deleted: boolean }
  | { type: 'service_account_actor'; serviceAccountId: string }
  | { type: 'federated_actor'; subject: string | null }
  | { type: 'api_actor'; apiKeyId: string }
  | { type: string & {} };

/** The dimensions of a row keywarden reads; null unless grouped by. */
interface AnalyticsGroup {
  apiKeyId: string | null;
  /** Null: the Default Workspace (the API sends its real id), or not grouped by workspace. */
  workspaceId: string | null;
  model: string | null;
  serviceTier: string | null;
  contextWindow: string | null;
  inferenceGeo: string | null;
  actor: AnalyticsActor | null;
  actorType: string | null;
}

interface AnalyticsUsageRow extends AnalyticsGroup {
  startingAt: Date;
  endingAt: Date;
  uncachedInputTokens: number;
  cacheReadInputTokens: number;
  cacheCreation5mInputTokens: number;
  cacheCreation1hInputTokens: number;
  outputTokens: number;
  webSearchRequests: number;
  /** Null where the API has no count. */
  requests: number | null;
  totalTokens: number;
}

export interface AnalyticsCostRow extends AnalyticsGroup {
  startingAt: Date;
  endingAt: Date;
  costType: string | null;
  tokenType: string | null;
  /** Billed: post-discount, pre-credit, exactly (sent as fractional cents). */
  amount: Pico;
  /** At list price (pre-discount): what keywarden's own pricing of the tokens should equal. */
  listAmount: Pico;
  currency: string;
  /** Null when grouped by cost_type or token_type (the count has no per-component attribution). */
  requests: number | null;
}

/** A page of either endpoint: how fresh its data is travels with it (the API restates recent data). */
interface AnalyticsPage<T> extends TokenPage<T> {
  dataRefreshedAt: Date | null;
}

// ── Shapes ───────────────────────────────────────────────────────────────────────────────────────────────────

const timestamp = z.string().transform((text, ctx) => {
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: `"${text.slice(0, 40)}" is not an RFC 3339 timestamp` });
    return z.NEVER;
  }
  return new Date(ms);
});
const nullableString = z
  .string()
  .nullish()
  .transform((v) => v ?? null);
const count = z.int().nonnegative();
/** Fractional cents as a string (a number is read as its decimal text rather than failing the page). */
const cents = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return centsToPico(String(v));
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const actorSchema = z
  .looseObject({
    type: z.string(),
    user_id: nullableString,
    email_address: nullableString,
    name: nullableString,
    deleted: z.boolean().nullish(),
    service_account_id: nullableString,
    api_key_id: nullableString,
    subject: nullableString,
  })
  .transform((a, ctx): AnalyticsActor => {
    const need = (field: string, value: string | null): string => {
      if (value === null) ctx.addIssue({ code: 'custom', path: [field], message: `expected a string for ${a.type}` });
      return value ?? '';
    };
    if (a.type === 'user_actor') {
      return {
        type: 'user_actor',
        userId: need('user_id', a.user_id),
        email: a.email_address,
        name: a.name,
        deleted: a.deleted ?? false,
      };
    }
    if (a.type === 'service_account_actor') {
      return { type: a.type, serviceAccountId: need('service_account_id', a.service_account_id) };
    }
    if (a.type === 'api_actor') return { type: a.type, apiKeyId: need('api_key_id', a.api_key_id) };
    if (a.type === 'federated_actor') return { type: a.type, subject: a.subject };
    return { type: a.type };
  });

const groupSchema = z.looseObject({
  api_key_id: nullableString,
  workspace_id: nullableString,
  model: nullableString,
  service_tier: nullableString,
  context_window: nullableString,
  inference_geo: nullableString,
  actor: actorSchema.nullish().transform((v) => v ?? null),
  actor_type: nullableString,
  cost_type: nullableString,
  token_type: nullableString,
});

function group(g: z.output<typeof groupSchema>): AnalyticsGroup {
  return {
    apiKeyId: g.api_key_id,
    workspaceId: g.workspace_id,
    model: g.model,
    serviceTier: g.service_tier,
    contextWindow: g.context_window,
    inferenceGeo: g.inference_geo,
    actor: g.actor,
    actorType: g.actor_type,
  };
}

const analyticsUsageRowSchema = z
  .looseObject({
    starting_at: timestamp,
    ending_at: timestamp,
    group: groupSchema,
    usage: z.looseObject({
      uncached_input_tokens: count,
      cache_read_input_tokens: count,
      cache_creation: z
        .looseObject({ ephemeral_5m_input_tokens: count.default(0), ephemeral_1h_input_tokens: count.default(0) })
        .nullish(),
      output_tokens: count,
      server_tool_use: z.looseObject({ web_search_requests: count.default(0) }).nullish(),
      requests: count.nullish(),
      total_tokens: count,
    }),
  })
  .transform(
    (r): AnalyticsUsageRow => ({
      ...group(r.group),
      startingAt: r.starting_at,
      endingAt: r.ending_at,
      uncachedInputTokens: r.usage.uncached_input_tokens,
      cacheReadInputTokens: r.usage.cache_read_input_tokens,
      cacheCreation5mInputTokens: r.usage.cache_creation?.ephemeral_5m_input_tokens ?? 0,
      cacheCreation1hInputTokens: r.usage.cache_creation?.ephemeral_1h_input_tokens ?? 0,
      outputTokens: r.usage.output_tokens,
      webSearchRequests: r.usage.server_tool_use?.web_search_requests ?? 0,
      requests: r.usage.requests ?? null,
      totalTokens: r.usage.total_tokens,
    }),
  );

const analyticsCostRowSchema = z
  .looseObject({
    starting_at: timestamp,
    ending_at: timestamp,
    group: groupSchema,
    cost: z.looseObject({
      amount: cents,
      list_amount: cents,
      currency: z.string().default('USD'),
      requests: count.nullish(),
    }),
  })
  .transform(
    (r): AnalyticsCostRow => ({
      ...group(r.group),
      startingAt: r.starting_at,
      endingAt: r.ending_at,
      costType: r.group.cost_type,
      tokenType: r.group.token_type,
      amount: r.cost.amount,
      listAmount: r.cost.list_amount,
      currency: r.cost.currency,
      requests: r.cost.requests ?? null,
    }),
  );

function analyticsPageSchema<S extends z.ZodType>(row: S) {
  return z
    .looseObject({
      data: z.array(row),
      has_more: z.boolean(),
      next_page: nullableString,
      data_refreshed_at: timestamp.nullish().transform((v) => v ?? null),
    })
    .transform(
      (p): AnalyticsPage<z.output<S>> => ({
        data: p.data as z.output<S>[],
        hasMore: p.has_more,
        nextPage: p.next_page,
        dataRefreshedAt: p.data_refreshed_at,
      }),
    );
}

const usagePage = analyticsPageSchema(analyticsUsageRowSchema);
const costPage = analyticsPageSchema(analyticsCostRowSchema);

// ── Errors ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The organization cannot use the analytics API: a 403, with or without an error code (no access to the beta, a key
 * without `read:analytics`), or a 400 for an organization type it does not serve (HIPAA readiness). Not the admin key's
 * fault: callers fall back to the classic reports.
 */
export class AnalyticsRefusedError extends AdminApiError {
  constructor(cause: AdminApiError) {
    super(
      `the Usage and Cost Analytics API refused this organization on ${cause.endpoint} (${cause.status}` +
        `${cause.errorCode ? ` ${cause.errorCode}` : ''}): ${cause.message}; keywarden uses the classic reports instead`,
      { ...cause, attempts: cause.attempts },
      { cause },
    );
    this.name = 'AnalyticsRefusedError';
  }
}

/** A 400 the request's own parameters caused, said with what to change. */
export class AnalyticsRequestError extends AdminApiError {
  constructor(cause: AdminApiError, advice: string) {
    super(`${cause.message}: ${advice}`, { ...cause, attempts: cause.attempts }, { cause });
    this.name = 'AnalyticsRequestError';
  }
}

/** The named error for a failed analytics request; other failures pass through unchanged. */
function analyticsError(err: unknown, params: { limit: number; groupBy: readonly string[] }): unknown {
  if (!(err instanceof AdminApiError) || err instanceof AdminKeyRejectedError) return err;
  if (err.errorCode === 'report_page_too_large') {
    return new AnalyticsRequestError(err, `send a lower limit (this request asked for ${params.limit} rows a page)`);
  }
  if (err.errorCode === 'too_many_report_groups') {
    const counted = params.groupBy.filter((g) => !(COST_FAN_OUT as readonly string[]).includes(g));
    return new AnalyticsRequestError(
      err,
      `group by at most ${MAX_ANALYTICS_GROUPS} dimensions, cost_type and token_type not counted (this request ` +
        `grouped by ${counted.length}: ${counted.join(', ')})`,
    );
  }
  if (err.status === 403 || (err.status === 400 && err.errorCode === 'organization_type_not_supported')) {
    return new AnalyticsRefusedError(err);
  }
  return err;
}

// ── Requests ─────────────────────────────────────────────────────────────────────────────────────────────────

export interface AnalyticsParams<G extends string, O extends string> {
  startingAt: Date;
  /** Exclusive; required with a bucket width (at most 31 days after `startingAt`, 24 hours for `1m`). */
  endingAt?: Date;
  bucketWidth?: AnalyticsWidth;
  groupBy?: readonly G[];
  /** Rows per page, 1–1000; default 1000 (the API's default is 20). */
  limit?: number;
  orderBy?: O;
  order?: 'asc' | 'desc';
  apiKeyIds?: readonly string[];
  workspaceIds?: readonly string[];
  models?: readonly string[];
  actorTypes?: readonly string[];
  /** Resume from a `nextPage` token of an earlier walk. */
  page?: string;
}

type AnalyticsUsageParams = AnalyticsParams<AnalyticsGroupBy, (typeof ANALYTICS_USAGE_ORDER_BY)[number]>;
type AnalyticsCostParams = AnalyticsParams<AnalyticsCostGroupBy, (typeof ANALYTICS_COST_ORDER_BY)[number]>;

/** What the client lends: its transport, and the Default Workspace's real id (to map it back to null). */
interface AnalyticsTransport {
  request<S extends z.ZodType>(req: ApiRequest<S>): Promise<z.output<S>>;
  defaultWorkspaceId(opts?: { signal?: AbortSignal }): Promise<string | null>;
}

const DEFAULT_LIMIT = 1000;

function rfc3339(at: Date): string {
  return at.toISOString().replace(/\.000Z$/, 'Z');
}

function analyticsQuery(params: AnalyticsParams<string, string>): Query {
  return {
    starting_at: rfc3339(params.startingAt),
    ending_at: params.endingAt ? rfc3339(params.endingAt) : undefined,
    time_bucket_width: params.bucketWidth,
    group_by: params.groupBy,
    limit: params.limit ?? DEFAULT_LIMIT,
    order_by: params.orderBy,
    order: params.order,
    api_key_ids: params.apiKeyIds,
    workspace_ids: params.workspaceIds,
    models: params.models,
    actor_types: params.actorTypes,
  };
}

/** The two analytics endpoints, each a Paged walk of ReportPageCursor pages (`page` = the last `next_page`). */
export class AnalyticsClient {
  readonly #transport: AnalyticsTransport;

  constructor(transport: AnalyticsTransport) {
    this.#transport = transport;
  }

  usage(
    params: AnalyticsUsageParams,
    opts?: { signal?: AbortSignal },
  ): Paged<AnalyticsUsageRow, AnalyticsPage<AnalyticsUsageRow>> {
    return this.#walk('/v1/organizations/analytics/usage', usagePage, params, opts);
  }

  cost(
    params: AnalyticsCostParams,
    opts?: { signal?: AbortSignal },
  ): Paged<AnalyticsCostRow, AnalyticsPage<AnalyticsCostRow>> {
    return this.#walk('/v1/organizations/analytics/cost', costPage, params, opts);
  }

  #walk<R extends AnalyticsGroup>(
    path: string,
    schema: z.ZodType<AnalyticsPage<R>>,
    params: AnalyticsParams<string, string>,
    opts: { signal?: AbortSignal } | undefined,
  ): Paged<R, AnalyticsPage<R>> {
    const transport = this.#transport;
    const query = analyticsQuery(params);
    const named = { limit: params.limit ?? DEFAULT_LIMIT, groupBy: params.groupBy ?? [] };
    const byWorkspace = params.groupBy?.includes('workspace_id') === true;
    return new Paged(async function* () {
      const defaultId = byWorkspace ? await transport.defaultWorkspaceId(opts) : null;
      const pages = walkTokenPages(`GET ${path}`, params.page, (page) =>
        transport
          .request({
            method: 'GET',
            path,
            query: { ...query, page },
            schema,
            signal: opts?.signal,
            beta: ANALYTICS_BETA,
            // an organization without the beta may get a bare 403: that refuses the feature, not the admin key
            featureGated: true,
          })
          .catch((err: unknown) => {
            throw analyticsError(err, named);
          }),
      );
      for await (const page of pages) {
        if (defaultId !== null) {
          for (const row of page.data) if (row.workspaceId === defaultId) row.workspaceId = null;
        }
        yield page as AnalyticsPage<R>;
      }
    });
  }
}
