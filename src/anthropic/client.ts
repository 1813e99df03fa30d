import { z } from 'zod';
import { type Clock, systemClock } from '../clock.ts';
import type { Secret } from '../config/secret.ts';
import type { Logger } from '../log.ts';
import { AnalyticsClient } from './analytics.ts';
import {
  enterpriseOnly,
  INCREASE_REQUESTS_PATH,
  type IncreaseRequest,
  type IncreaseRequestParams,
  IncreaseRequestsClient,
  increaseRequestPageSchema,
  increaseRequestQuery,
  MEMBER_SPEND_PATH,
  type MemberSpend,
  type MemberSpendParams,
  memberSpendPageSchema,
  memberSpendQuery,
} from './enterprise-spend.ts';
import { AdminApiResponseError } from './errors.ts';
import { Paged, walkListPages, walkTokenPages } from './pages.ts';
import {
  SPEND_LIMITS_BETA,
  SPEND_LIMITS_PATH,
  type SpendLimit,
  type SpendLimitsParams,
  spendLimitPageSchema,
  spendLimitsQuery,
} from './spend-limits.ts';
import {
  type AdminKeyVerdict,
  AdminTransport,
  ANTHROPIC_VERSION,
  type AnthropicVersion,
  defaultSleep,
  KEY_READS_VERSION,
  type Query,
} from './transport.ts';
import {
  type ApiKey,
  apiKeySchema,
  type BucketWidth,
  type CostBucket,
  type CostGroupBy,
  costPageSchema,
  FAST_MODE_BETA,
  type ListPage,
  listPageSchema,
  type Organization,
  organizationSchema,
  type RateLimit,
  rateLimitPageSchema,
  resolveDefaultWorkspace,
  type SettableApiKeyStatus,
  type TokenPage,
  type UsageBucket,
  type UsageGroupBy,
  type User,
  usagePageSchema,
  userSchema,
  type WireApiKey,
  type Workspace,
  type WorkspaceMember,
  workspaceMemberSchema,
  workspaceSchema,
} from './types.ts';

export interface AdminClientOptions {
  /** `https://api.anthropic.com`, or the emulator's URL. */
  baseUrl: string;
  adminKey: Secret;
  /**
   * The `anthropic-version` sent; default ANTHROPIC_VERSION (see there why). The API-key reads and the Default
   * Workspace lookup they need always send KEY_READS_VERSION.
   */
  anthropicVersion?: AnthropicVersion;
  /** Per attempt, the whole exchange including the body. Default 30 s. */
  timeoutMs?: number;
  /** Attempts per request, the first included. Default 6. */
  maxAttempts?: number;
  /** No retry starts once this much time has gone by since the first attempt. Default 120 s. */
  maxElapsedMs?: number;
  log?: Logger;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Source of the backoff jitter, uniform in [0, 1). Default Math.random. */
  random?: () => number;
  /** The clock the API's is compared with (its `Date` header: skew, the API's "now"). Default the system clock. */
  clock?: Clock;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** Page size of id-cursor lists (1–1000). Default 1000, the maximum: fewer requests against the API's own limit. */
interface PageSize {
  limit?: number;
}

export interface UsageReportParams {
  startingAt: Date;
  /** Exclusive. Default: now. */
  endingAt?: Date;
  /** Default `1d`, as the API's. */
  bucketWidth?: BucketWidth;
  /** Buckets per page; default the maximum for the width (1m 1440, 1h 168, 1d 31). */
  limit?: number;
  /** Resume from a `nextPage` token of an earlier walk. */
  page?: string;
  groupBy?: readonly UsageGroupBy[];
  apiKeyIds?: readonly string[];
  workspaceIds?: readonly string[];
  models?: readonly string[];
  serviceTiers?: readonly string[];
  contextWindows?: readonly string[];
  inferenceGeos?: readonly string[];
  accountIds?: readonly string[];
  serviceAccountIds?: readonly string[];
  speeds?: readonly string[];
}

export interface CostReportParams {
  startingAt: Date;
  endingAt?: Date;
  /** Days per page; default 31, the maximum. */
  limit?: number;
  page?: string;
  groupBy?: readonly CostGroupBy[];
}

/** The most buckets the usage and cost reports return in one page, per width: a day of minutes, a week of hours. */
export const MAX_BUCKETS: Record<BucketWidth, number> = { '1m': 1440, '1h': 168, '1d': 31 };
const MAX_LIST_LIMIT = 1000;

const USAGE_REPORT_PATH = '/v1/organizations/usage_report/messages';

/** The usage report's query, and the beta header fast-mode fields need. */
function usageQuery(params: UsageReportParams): { query: Query; beta: string | undefined } {
  const width = params.bucketWidth ?? '1d';
  const query: Query = {
    starting_at: rfc3339(params.startingAt),
    ending_at: params.endingAt ? rfc3339(params.endingAt) : undefined,
    bucket_width: width,
    limit: params.limit ?? MAX_BUCKETS[width],
    group_by: params.groupBy,
    api_key_ids: params.apiKeyIds,
    workspace_ids: params.workspaceIds,
    models: params.models,
    service_tiers: params.serviceTiers,
    context_window: params.contextWindows,
    inference_geos: params.inferenceGeos,
    account_ids: params.accountIds,
    service_account_ids: params.serviceAccountIds,
    speeds: params.speeds,
  };
  const speed = params.speeds !== undefined || params.groupBy?.includes('speed') === true;
  return { query, beta: speed ? FAST_MODE_BETA : undefined };
}

/** RFC 3339 without milliseconds, as the API's own examples. */
function rfc3339(at: Date): string {
  return at.toISOString().replace(/\.000Z$/, 'Z');
}

function segment(id: string): string {
  return encodeURIComponent(id);
}

/**
 * The Anthropic Admin API, typed. Knows HTTP, pagination and retries, nothing about rotation or spend. List and
 * report methods return a Paged result that walks every page when iterated; `pages()` exposes the pages.
 * Every request is safe to retry: reads, and the key update, which sets fields to given values.
 */
export class AdminClient {
  readonly #transport: AdminTransport;
  /** The Default Workspace's real id, once learned; an organization's never changes. */
  #defaultWorkspaceId: Promise<string | null> | null = null;
  readonly #clock: Clock;
  /**
   * How long one call may go on, retries included (the elapsed budget and one more attempt's timeout): an audit
   * intent younger than this may belong to a call still in flight.
   */
  readonly retryBudgetMs: number;
  /** The Usage and Cost Analytics API (beta): per-key billed cost, request counts, actors (analytics.ts). */
  readonly analytics = new AnalyticsClient({
    request: (req) => this.#transport.request(req),
    defaultWorkspaceId: (opts) => this.defaultWorkspaceId(opts),
  });
  /** Claude Enterprise's spend limit increase requests, one at a time: read, approve, deny (enterprise-spend.ts). */
  readonly increaseRequests = new IncreaseRequestsClient({ request: (req) => this.#transport.request(req) });

  constructor(opts: AdminClientOptions) {
    this.retryBudgetMs = (opts.maxElapsedMs ?? 120_000) + (opts.timeoutMs ?? 30_000);
    this.#clock = opts.clock ?? systemClock;
    this.#transport = new AdminTransport({
      baseUrl: opts.baseUrl,
      adminKey: opts.adminKey,
      anthropicVersion: opts.anthropicVersion ?? ANTHROPIC_VERSION,
      timeoutMs: opts.timeoutMs ?? 30_000,
      maxAttempts: Math.max(1, opts.maxAttempts ?? 6),
      maxElapsedMs: opts.maxElapsedMs ?? 120_000,
      log: opts.log ?? null,
      fetch: opts.fetch ?? fetch,
      sleep: opts.sleep ?? defaultSleep,
      random: opts.random ?? Math.random,
      now: () => this.#clock.now().getTime(),
    });
  }

  /**
   * The API's "now": this client's clock corrected by the skew its last answer's `Date` header showed (null before
   * any answer with one). Whole seconds: the header has no finer grain.
   */
  serverNow(): Date | null {
    const skew = this.clockSkewMs;
    return skew === null ? null : new Date(this.#clock.now().getTime() + skew);
  }

  /** The API's clock minus this client's, as last observed (ms; null before any answer with a `Date` header). */
  get clockSkewMs(): number | null {
    const r = this.#transport.serverClock;
    return r === null ? null : r.dateMs - r.localMs;
  }

  /** What the API last said about the admin key (the `keywarden.blind` alert follows it). */
  get keyVerdict(): AdminKeyVerdict {
    return this.#transport.keyVerdict;
  }

  getOrganization(opts?: CallOptions): Promise<Organization> {
    return this.#transport.request({
      method: 'GET',
      path: '/v1/organizations/me',
      schema: organizationSchema,
      signal: opts?.signal,
    });
  }

  listUsers(filter?: { email?: string } & PageSize, opts?: CallOptions): Paged<User, ListPage<User>> {
    return this.#list('/v1/organizations/users', userSchema, { email: filter?.email }, filter?.limit, opts);
  }

  getUser(userId: string, opts?: CallOptions): Promise<User> {
    return this.#get(`/v1/organizations/users/${segment(userId)}`, userSchema, opts);
  }

  /**
   * The workspaces, archived ones too when asked. The Default Workspace is not listed (keywarden calls it null
   * everywhere, see ApiKey.workspaceId); `ids` narrows the list to those workspaces (at most 100 per the API).
   */
  listWorkspaces(
    filter?: { includeArchived?: boolean; ids?: readonly string[] } & PageSize,
    opts?: CallOptions,
  ): Paged<Workspace, ListPage<Workspace>> {
    const query = { include_archived: filter?.includeArchived ? 'true' : undefined, ids: filter?.ids };
    return this.#list('/v1/organizations/workspaces', workspaceSchema, query, filter?.limit, opts);
  }

  /**
   * The Default Workspace's real id: the one workspace `include_default=true` adds to the list. Null when the API
   * lists none (classic responses, which also never send the id anywhere else). Learned once per client, the
   * first time a key arrives with a real workspace id.
   */
  defaultWorkspaceId(opts?: CallOptions): Promise<string | null> {
    this.#defaultWorkspaceId ??= this.#learnDefaultWorkspaceId(opts).then(
      (id) => {
        // Only an answer is remembered: after a failure, or none listed, the next call that needs it asks again.
        if (id === null) this.#defaultWorkspaceId = null;
        return id;
      },
      (err: unknown) => {
        this.#defaultWorkspaceId = null;
        throw err;
      },
    );
    return this.#defaultWorkspaceId;
  }

  async #learnDefaultWorkspaceId(opts: CallOptions | undefined): Promise<string | null> {
    const path = '/v1/organizations/workspaces';
    const query = { include_archived: 'true' };
    // The key reads' version: this lookup resolves the ids their 2026 shapes carry, and `include_default` is a
    // parameter of that version's spec.
    const list = (q: Query) => this.#list(path, workspaceSchema, q, undefined, opts, KEY_READS_VERSION).toArray();
    const named = new Set((await list(query)).map((w) => w.id));
    const all = await list({ ...query, include_default: 'true' });
    const extra = all.filter((w) => !named.has(w.id));
    if (extra.length > 1) {
      // Two candidates: calling either one "Default Workspace" would be a guess.
      throw new AdminApiResponseError({
        status: 200,
        errorType: 'invalid_response',
        requestId: null,
        endpoint: `GET ${path}`,
        field: 'include_default',
        problem: `include_default=true added ${extra.length} workspaces (${extra.map((w) => w.id).join(', ')}), expected one`,
      });
    }
    return extra[0]?.id ?? null;
  }

  getWorkspace(workspaceId: string, opts?: CallOptions): Promise<Workspace> {
    return this.#get(`/v1/organizations/workspaces/${segment(workspaceId)}`, workspaceSchema, opts);
  }

  listWorkspaceMembers(
    workspaceId: string,
    filter?: PageSize,
    opts?: CallOptions,
  ): Paged<WorkspaceMember, ListPage<WorkspaceMember>> {
    const path = `/v1/organizations/workspaces/${segment(workspaceId)}/members`;
    return this.#list(path, workspaceMemberSchema, {}, filter?.limit, opts);
  }

  listApiKeys(
    filter?: { workspaceId?: string; status?: string; createdByUserId?: string } & PageSize,
    opts?: CallOptions,
  ): Paged<ApiKey, ListPage<ApiKey>> {
    const query = {
      workspace_id: filter?.workspaceId,
      status: filter?.status,
      created_by_user_id: filter?.createdByUserId,
    };
    const wire = this.#list('/v1/organizations/api_keys', apiKeySchema, query, filter?.limit, opts, KEY_READS_VERSION);
    const resolve = (keys: WireApiKey[]) => this.#resolveKeys(keys, opts);
    return new Paged(async function* () {
      for await (const page of wire.pages()) yield { ...page, data: await resolve(page.data) };
    });
  }

  async getApiKey(apiKeyId: string, opts?: CallOptions): Promise<ApiKey> {
    const path = `/v1/organizations/api_keys/${segment(apiKeyId)}`;
    const wire = await this.#get(path, apiKeySchema, opts, KEY_READS_VERSION);
    return (await this.#resolveKeys([wire], opts))[0]!;
  }

  /** Renames a key or changes its status (the API cannot create keys, nor set `expired`). Returns the key after. */
  async updateApiKey(
    apiKeyId: string,
    changes: { name?: string; status?: SettableApiKeyStatus },
    opts?: CallOptions,
  ): Promise<ApiKey> {
    const body: Record<string, string> = {};
    if (changes.name !== undefined) body.name = changes.name;
    if (changes.status !== undefined) body.status = changes.status;
    const wire = await this.#transport.request({
      method: 'POST',
      path: `/v1/organizations/api_keys/${segment(apiKeyId)}`,
      body,
      schema: apiKeySchema,
      signal: opts?.signal,
    });
    return (await this.#resolveKeys([wire], opts))[0]!;
  }

  /** Only keys whose workspace id came from a 2026 `scope` cost the one-time Default Workspace lookup. */
  async #resolveKeys(keys: WireApiKey[], opts: CallOptions | undefined): Promise<ApiKey[]> {
    const defaultId = keys.some((k) => k.workspaceIdIsReal) ? await this.defaultWorkspaceId(opts) : null;
    return keys.map((k) => resolveDefaultWorkspace(k, defaultId));
  }

  /** The messages usage report, bucket by bucket (empty buckets included, with `results: []`). */
  usageReport(params: UsageReportParams, opts?: CallOptions): Paged<UsageBucket, TokenPage<UsageBucket>> {
    const { query, beta } = usageQuery(params);
    return this.#report(USAGE_REPORT_PATH, usagePageSchema, query, params.page, opts, { beta });
  }

  /**
   * One page of the messages usage report: one request, whatever `has_more` says. For a caller that sizes each
   * page from the one before (usage ingestion asks for a bucket count per request and goes on from the last
   * bucket it got), where the page walker's next page would keep the first page's size.
   */
  usageReportPage(params: UsageReportParams, opts?: CallOptions): Promise<TokenPage<UsageBucket>> {
    const { query, beta } = usageQuery(params);
    return this.#transport.request({
      method: 'GET',
      path: USAGE_REPORT_PATH,
      query: { ...query, page: params.page },
      schema: usagePageSchema,
      signal: opts?.signal,
      beta,
    });
  }

  /** The cost report, by UTC day (its only width). It has no per-key breakdown. */
  costReport(params: CostReportParams, opts?: CallOptions): Paged<CostBucket, TokenPage<CostBucket>> {
    const query: Query = {
      starting_at: rfc3339(params.startingAt),
      ending_at: params.endingAt ? rfc3339(params.endingAt) : undefined,
      bucket_width: '1d',
      limit: params.limit ?? MAX_BUCKETS['1d'],
      group_by: params.groupBy,
    };
    return this.#report('/v1/organizations/cost_report', costPageSchema, query, params.page, opts);
  }

  /** The organization's rate limits (read-only: they are set in the Console). */
  listRateLimits(
    params?: { groupType?: string; model?: string; limit?: number },
    opts?: CallOptions,
  ): Paged<RateLimit, TokenPage<RateLimit>> {
    const query: Query = { group_type: params?.groupType, model: params?.model, limit: params?.limit };
    return this.#report('/v1/organizations/rate_limits', rateLimitPageSchema, query, undefined, opts);
  }

  /** A workspace's rate limits; with `includeInherited`, the organization's where the workspace sets none. */
  listWorkspaceRateLimits(
    workspaceId: string,
    params?: { includeInherited?: boolean; limit?: number },
    opts?: CallOptions,
  ): Paged<RateLimit, TokenPage<RateLimit>> {
    const path = `/v1/organizations/workspaces/${segment(workspaceId)}/rate_limits`;
    const query: Query = { include_inherited: params?.includeInherited ? 'true' : undefined, limit: params?.limit };
    return this.#report(path, rateLimitPageSchema, query, undefined, opts);
  }

  /**
   * The organization's, workspaces' and usage tier's spend limits (beta, early access; spend-limits.ts). Two
   * attempts at most: the caller has the limits it read last to fall back on.
   */
  listSpendLimits(params?: SpendLimitsParams, opts?: CallOptions): Paged<SpendLimit, TokenPage<SpendLimit>> {
    const query = spendLimitsQuery(params);
    return this.#report(SPEND_LIMITS_PATH, spendLimitPageSchema, query, undefined, opts, {
      beta: SPEND_LIMITS_BETA,
      featureGated: true,
      maxAttempts: 2,
    });
  }

  /**
   * Each member's effective spend limit and spend so far per period (Claude Enterprise; enterprise-spend.ts). A
   * Console organization: `NotEnterpriseError`. Two attempts at most, as the other spend limits.
   */
  listMemberSpend(params?: MemberSpendParams, opts?: CallOptions): Paged<MemberSpend, TokenPage<MemberSpend>> {
    return enterpriseOnly(
      this.#report(MEMBER_SPEND_PATH, memberSpendPageSchema, memberSpendQuery(params), undefined, opts, {
        featureGated: true,
        maxAttempts: 2,
      }),
    );
  }

  /** Spend limit increase requests, newest first (Claude Enterprise; a Console organization: `NotEnterpriseError`). */
  listIncreaseRequests(
    params?: IncreaseRequestParams,
    opts?: CallOptions,
  ): Paged<IncreaseRequest, TokenPage<IncreaseRequest>> {
    return enterpriseOnly(
      this.#report(INCREASE_REQUESTS_PATH, increaseRequestPageSchema, increaseRequestQuery(params), undefined, opts, {
        featureGated: true,
        maxAttempts: 2,
      }),
    );
  }

  /**
   * One GET whose answer is only checked to be JSON, for `check-config --probe`: whether the credential reaches an
   * endpoint at all. On a feature-gated endpoint a 403 says the endpoint is not available; on one every organization
   * has (the usage report), it says the key is refused.
   */
  async probe(
    path: string,
    query: Query,
    gate: { beta?: string | undefined; featureGated: boolean },
    opts?: CallOptions,
  ): Promise<void> {
    await this.#transport.request({
      method: 'GET',
      path,
      query,
      schema: z.unknown(),
      signal: opts?.signal,
      beta: gate.beta,
      featureGated: gate.featureGated,
      maxAttempts: 1,
    });
  }

  #get<T>(path: string, schema: z.ZodType<T>, opts: CallOptions | undefined, version?: AnthropicVersion): Promise<T> {
    return this.#transport.request({ method: 'GET', path, schema, signal: opts?.signal, version });
  }

  #list<T>(
    path: string,
    item: z.ZodType<T>,
    query: Query,
    limit: number | undefined,
    opts: CallOptions | undefined,
    version?: AnthropicVersion,
  ): Paged<T, ListPage<T>> {
    const schema = listPageSchema(item);
    const endpoint = `GET ${path}`;
    return new Paged(() =>
      walkListPages(endpoint, (afterId) =>
        this.#transport.request({
          method: 'GET',
          path,
          query: { ...query, limit: limit ?? MAX_LIST_LIMIT, after_id: afterId },
          schema,
          signal: opts?.signal,
          version,
        }),
      ),
    );
  }

  #report<T>(
    path: string,
    schema: z.ZodType<TokenPage<T>>,
    query: Query,
    firstPage: string | undefined,
    opts: CallOptions | undefined,
    extra: { beta?: string | undefined; featureGated?: boolean; maxAttempts?: number } = {},
  ): Paged<T, TokenPage<T>> {
    const endpoint = `GET ${path}`;
    return new Paged(() =>
      walkTokenPages(endpoint, firstPage, (page) =>
        this.#transport.request({
          method: 'GET',
          path,
          query: { ...query, page },
          schema,
          signal: opts?.signal,
          beta: extra.beta,
          featureGated: extra.featureGated,
          maxAttempts: extra.maxAttempts,
        }),
      ),
    );
  }
}
