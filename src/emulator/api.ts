import { COST_GROUP_BY, type CostGroupBy, USAGE_GROUP_BY, type UsageGroupBy } from '../anthropic/types.ts';
import type { Pico } from '../money.ts';
import { MINUTE_MS } from '../time.ts';
import { createAnalyticsApi } from './analytics.ts';
import { createEnterpriseSpend } from './enterprise-spend.ts';
import type { SimInvite, SimKey, SimUser, SimulatedOrg, SimWorkspace } from './org.ts';
import { base62From } from './random/hash.ts';
import {
  type CostCell,
  costReportBuckets,
  type UsageFilters,
  usageReportBuckets,
  workspaceDayCost,
} from './reports.ts';
import type { RateLimitGroup } from './scenario.ts';

/**
 * The Admin API's endpoints over a SimulatedOrg, without HTTP: a request (method, URL, body) and a time in, a JSON
 * body or an HttpError out. Shapes, pagination, limits and error messages follow the reference; where it is
 * silent, the choices are noted where they are made (list order is creation order, for one).
 */

const WIDTHS = {
  '1m': { minutes: 1, default: 60, max: 1440 },
  '1h': { minutes: 60, default: 24, max: 168 },
  '1d': { minutes: 1440, default: 7, max: 31 },
};

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** An answer other than 200, with the API's error body (and `details.error_code` when the API has one). */
export class HttpError extends Error {
  readonly status: number;
  readonly errorCode: string | null;

  constructor(status: number, message: string, errorCode: string | null = null) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
  }
}

/** Which shapes an answer takes: the classic ones, or the SDK's (1.16.0), which `anthropic-version: 2026-10-21` gets. */
export type ResponseShape = 'classic' | '2026';

/** An answer: the body, and the workspace it concerns (the `anthropic-workspace-id` header), if any. */
export interface ApiAnswer {
  body: object;
  workspaceId: string | null;
}

export const bad = (message: string) => new HttpError(400, message);

/** RFC 3339 with microseconds, as the API writes timestamps. */
function timestamp(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function parseTime(text: string | null, name: string): number | null {
  if (text === null) return null;
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2}))?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw bad(`${name}: "${text}" is not an RFC 3339 timestamp`);
  return ms;
}

/** Array parameters come as `name[]=a&name[]=b`; a bare `name=a` is accepted too. */
function many(q: URLSearchParams, name: string): string[] | undefined {
  const values = [...q.getAll(`${name}[]`), ...q.getAll(name)];
  return values.length > 0 ? values : undefined;
}

function intParam(q: URLSearchParams, name: string, fallback: number, max: number, context = ''): number {
  const text = q.get(name);
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max) throw bad(`${name}: must be an integer from 1 to ${max}${context}`);
  return n;
}

function boolParam(q: URLSearchParams, name: string): boolean {
  const text = q.get(name);
  if (text === null || text === 'false') return false;
  if (text === 'true') return true;
  throw bad(`${name}: must be true or false`);
}

/** `page_` + base64 of the next bucket's start, as the API's tokens decode. */
function pageToken(text: string): string {
  return `page_${Buffer.from(text).toString('base64')}`;
}

function readPageToken(token: string | null): string | null {
  if (token === null) return null;
  if (!token.startsWith('page_')) throw bad('page: not a page token from this API');
  return Buffer.from(token.slice(5), 'base64').toString('utf8');
}

/**
 * The id-cursor pagination of the list endpoints, over `all` in list order, keeping what `match` accepts. List
 * order is creation order (the reference documents none). A cursor is a position in `all`, filtered or not, so a
 * key that changes status between two pages does not break the walk.
 */
function listPage<T>(
  all: readonly T[],
  idOf: (item: T) => string,
  match: (item: T) => boolean,
  q: URLSearchParams,
  serialize: (item: T) => object,
): object {
  const limit = intParam(q, 'limit', 20, 1000);
  const afterId = q.get('after_id');
  const beforeId = q.get('before_id');
  if (afterId !== null && beforeId !== null) throw bad('after_id and before_id cannot both be given');
  const cursor = afterId ?? beforeId;
  let from = -1;
  if (cursor !== null) {
    from = all.findIndex((item) => idOf(item) === cursor);
    if (from < 0) throw bad(`${afterId !== null ? 'after_id' : 'before_id'}: no object with id ${cursor}`);
  }
  const picked: T[] = [];
  if (beforeId !== null) {
    for (let i = from - 1; i >= 0 && picked.length <= limit; i--) if (match(all[i]!)) picked.push(all[i]!);
  } else {
    for (let i = from + 1; i < all.length && picked.length <= limit; i++) if (match(all[i]!)) picked.push(all[i]!);
  }
  const hasMore = picked.length > limit;
  const page = picked.slice(0, limit);
  if (beforeId !== null) page.reverse();
  const data = page.map(serialize);
  return {
    data,
    has_more: hasMore,
    first_id: page.length > 0 ? idOf(page[0]!) : null,
    last_id: page.length > 0 ? idOf(page.at(-1)!) : null,
  };
}

/** The API's error body for a status; `details.error_code` when there is a code (as the SDK reads it). */
export function errorBody(status: number, message: string, requestId: string, errorCode: string | null = null): object {
  const type = ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  const details = errorCode ? { details: { error_code: errorCode } } : {};
  return { type: 'error', error: { type, message, ...details }, request_id: requestId };
}

/** A rate-limit group's stable id: the same in every organization (`rlg_…`), as the API's. */
function groupId(g: RateLimitGroup): string {
  return `rlg_01${base62From(`${g.group_type}:${(g.models ?? []).join(',')}`, 22)}`;
}

/** `claude-sonnet-4-5` → `Claude Sonnet`. */
function groupName(g: RateLimitGroup): string {
  if (g.display_name) return g.display_name;
  const family = g.models?.[0]?.split('-')[1] ?? 'models';
  return `Claude ${family.charAt(0).toUpperCase()}${family.slice(1)}`;
}

export interface AdminApi {
  /** Answers one request at `now` (ms) in `shape`, or throws an HttpError. */
  route(
    method: string,
    url: URL,
    readBody: () => Promise<unknown>,
    now: number,
    shape: ResponseShape,
  ): Promise<ApiAnswer>;
  /** A workspace's (null: the Default Workspace's) priced usage on the UTC day `day` (days since the epoch), as visible at `now`. */
  costPico(workspace: SimWorkspace | null, day: number, now: number): Pico;
  /** A key's billed cost over [from, to) (ms), as the analytics cost API shows it at `now`. */
  billedPico(keyId: string, from: number, to: number, now: number): Pico;
}

/** `delayMinutes`: usage of minute m shows from m + 1 + delay minutes (a function: a fault can change it). */
export function createAdminApi(org: SimulatedOrg, delayMinutes: number | (() => number)): AdminApi {
  /** A day fully visible never changes again, so its cost is computed once. */
  const costCache = new Map<string, CostCell[]>();
  const delay = typeof delayMinutes === 'number' ? () => delayMinutes : delayMinutes;
  /** The first minute whose usage is not visible at `now`. */
  const visibleEnd = (now: number) => Math.floor(now / MINUTE_MS - delay());
  const analytics = createAnalyticsApi(org, visibleEnd);
  const enterpriseSpend = createEnterpriseSpend(org, analytics.billedPico);

  // ── Serializers ──────────────────────────────────────────────────────────────────────────────────────────
  const workspaceJson = (w: SimWorkspace, now: number, shape: ResponseShape) => {
    const classic = {
      id: w.id,
      type: 'workspace',
      name: w.name,
      display_color: w.displayColor,
      created_at: timestamp(w.createdAt),
      archived_at: w.archivedAt !== null && w.archivedAt <= now ? timestamp(w.archivedAt) : null,
      data_residency: { workspace_geo: 'us', allowed_inference_geos: 'unrestricted', default_inference_geo: 'global' },
    };
    if (shape === 'classic') return classic;
    return {
      ...classic,
      compartment_id: `cmpt_01${base62From(`${w.id}:compartment`, 22)}`,
      external_key_id: null,
      tags: {},
      user_profile_id: null,
    };
  };
  const userJson = (u: SimUser) => ({
    id: u.id,
    type: 'user',
    email: u.email,
    name: u.name,
    role: u.role,
    added_at: timestamp(u.addedAt),
  });
  const inviteJson = (inv: SimInvite) => ({
    id: inv.id,
    type: 'invite',
    email: inv.email,
    role: inv.role,
    status: inv.status,
    invited_at: timestamp(inv.invitedAt),
    expires_at: timestamp(inv.expiresAt),
    accepted_at: timestamp(inv.acceptedAt),
    rbac_group_ids: [],
  });
  /** The key's workspace as 2026 shapes and `anthropic-workspace-id` say it: the Default Workspace by its real id. */
  const keyWorkspaceId = (k: SimKey) => (k.scope === 'organization' ? null : (k.workspace ?? org.defaultWorkspace).id);
  const keyJson = (k: SimKey, now: number, shape: ResponseShape) => {
    const common = {
      id: k.id,
      type: 'api_key',
      name: k.name,
      status: org.keyStatus(k, now),
      created_at: timestamp(k.life.createdAt),
      partial_key_hint: k.partialKeyHint,
      expires_at: timestamp(k.life.expiresAt),
    };
    if (shape === 'classic') {
      return {
        ...common,
        created_by: k.createdBy ? { id: k.createdBy.id, type: 'user' } : null,
        workspace_id: k.workspace?.id ?? null,
      };
    }
    const workspaceId = keyWorkspaceId(k);
    return {
      ...common,
      created_by: k.createdBy
        ? { id: k.createdBy.id, type: 'user' }
        : k.createdByServiceAccount
          ? { id: k.createdByServiceAccount, type: 'service_account' }
          : null,
      principal:
        k.principal === null
          ? null
          : 'user' in k.principal
            ? { type: 'user_actor', user_id: k.principal.user.id }
            : { type: 'service_account_actor', service_account_id: k.principal.serviceAccountId },
      scope: workspaceId === null ? { type: 'organization' } : { type: 'workspace', workspace_id: workspaceId },
    };
  };
  const orgRateLimitId = (g: RateLimitGroup) => `rl_01${base62From(`${org.id}:${groupId(g)}`, 22)}`;
  const groupJson = (g: RateLimitGroup) =>
    g.group_type === 'model_group'
      ? { id: groupId(g), type: g.group_type, display_name: groupName(g) }
      : { id: groupId(g), type: g.group_type };
  const orgRateLimitJson = (g: RateLimitGroup, shape: ResponseShape) => {
    const limits = Object.entries(g.limits).map(([type, value]) => ({ type, value }));
    if (shape === 'classic') return { type: 'rate_limit', group_type: g.group_type, models: g.models, limits };
    return { id: orgRateLimitId(g), type: 'rate_limit', group: groupJson(g), models: g.models, limits };
  };
  const workspaceRateLimitJson = (
    w: SimWorkspace,
    g: RateLimitGroup,
    limits: Array<{ type: string; value: number; org_limit: number | null; source: 'workspace' | 'organization' }>,
    shape: ResponseShape,
  ) => {
    if (shape === 'classic') {
      return { type: 'workspace_rate_limit', group_type: g.group_type, models: g.models, limits };
    }
    return {
      type: 'workspace_rate_limit',
      rate_limit_id: orgRateLimitId(g),
      workspace_id: w.id,
      group: groupJson(g),
      models: g.models,
      limits: limits.map((l) => ({ ...l, source: { type: l.source } })),
    };
  };

  // ── Handlers ─────────────────────────────────────────────────────────────────────────────────────────────
  const existingWorkspace = (id: string, now: number) => {
    const w = org.workspace(id);
    if (!w || !org.workspaceExists(w, now)) throw new HttpError(404, `workspace ${id} not found`);
    return w;
  };
  const existingKey = (id: string, now: number) => {
    const k = org.key(id);
    if (!k || !org.keyExists(k, now)) throw new HttpError(404, `API key ${id} not found`);
    return k;
  };

  function usageReport(q: URLSearchParams, now: number): object {
    const widthName = q.get('bucket_width') ?? '1d';
    if (!(widthName in WIDTHS)) throw bad(`bucket_width: must be one of 1m, 1h, 1d`);
    const width = WIDTHS[widthName as keyof typeof WIDTHS];
    const limit = intParam(q, 'limit', width.default, width.max, ` for bucket_width ${widthName}`);
    const groupBy = new Set<UsageGroupBy>();
    for (const g of many(q, 'group_by') ?? []) {
      if (!(USAGE_GROUP_BY as readonly string[]).includes(g)) {
        throw bad(`group_by: "${g}" is not one of ${USAGE_GROUP_BY.join(', ')}`);
      }
      groupBy.add(g as UsageGroupBy);
    }
    const set = (name: string) => {
      const values = many(q, name);
      return values ? new Set(values) : undefined;
    };
    const filters: UsageFilters = {};
    for (const [field, name] of [
      ['apiKeyIds', 'api_key_ids'],
      ['workspaceIds', 'workspace_ids'],
      ['models', 'models'],
      ['serviceTiers', 'service_tiers'],
      ['contextWindows', 'context_window'],
      ['inferenceGeos', 'inference_geos'],
      ['speeds', 'speeds'],
      ['accountIds', 'account_ids'],
      ['serviceAccountIds', 'service_account_ids'],
    ] as const) {
      const values = set(name);
      if (values) filters[field] = values;
    }
    const page = bucketPage(q, now, width.minutes, limit);
    const data = usageReportBuckets(
      org,
      { bucketStarts: page.starts, widthMinutes: width.minutes, groupBy, filters },
      visibleEnd(now),
    );
    return { data, has_more: page.nextPage !== null, next_page: page.nextPage };
  }

  function costReport(q: URLSearchParams, now: number): object {
    const widthName = q.get('bucket_width') ?? '1d';
    if (widthName !== '1d') throw bad('bucket_width: the cost report only has 1d buckets');
    const limit = intParam(q, 'limit', 7, 31, ' for bucket_width 1d');
    const groupBy = new Set<CostGroupBy>();
    for (const g of many(q, 'group_by') ?? []) {
      if (!(COST_GROUP_BY as readonly string[]).includes(g)) {
        throw bad(`group_by: "${g}" is not one of ${COST_GROUP_BY.join(', ')}`);
      }
      groupBy.add(g as CostGroupBy);
    }
    const page = bucketPage(q, now, 1440, limit);
    const days = page.starts.map((m) => m / 1440);
    const data = costReportBuckets(org, days, groupBy, visibleEnd(now), costCache);
    return { data, has_more: page.nextPage !== null, next_page: page.nextPage };
  }

  /** Buckets snapped to UTC width boundaries, up to `ending_at` (exclusive) and never starting in the future. */
  function bucketPage(q: URLSearchParams, now: number, widthMinutes: number, limit: number) {
    const startMs = parseTime(q.get('starting_at'), 'starting_at');
    if (startMs === null) throw bad('starting_at: required');
    const endMs = parseTime(q.get('ending_at'), 'ending_at');
    if (endMs !== null && endMs <= startMs) throw bad('ending_at: must be after starting_at');
    const snap = (ms: number) => Math.floor(ms / MINUTE_MS / widthMinutes) * widthMinutes;
    let first = snap(startMs);
    const resume = readPageToken(q.get('page'));
    if (resume !== null) {
      const ms = parseTime(resume, 'page');
      if (ms === null || ms < first * MINUTE_MS || snap(ms) * MINUTE_MS !== ms)
        throw bad('page: does not belong to this query');
      first = ms / MINUTE_MS;
    }
    const stopMs = Math.min(endMs ?? now, now);
    const starts: number[] = [];
    let b = first;
    for (; b * MINUTE_MS < stopMs && starts.length < limit; b += widthMinutes) starts.push(b);
    const more = b * MINUTE_MS < stopMs;
    return { starts, nextPage: more ? pageToken(new Date(b * MINUTE_MS).toISOString().replace('.000Z', 'Z')) : null };
  }

  function rateLimitPage(groups: object[], q: URLSearchParams): object {
    const limit = intParam(q, 'limit', 20, 1000);
    const token = readPageToken(q.get('page'));
    const from = token === null ? 0 : Number(token);
    if (!Number.isInteger(from) || from < 0 || from > groups.length) throw bad('page: not a page token from this API');
    const next = from + limit;
    return { data: groups.slice(from, next), next_page: next < groups.length ? pageToken(String(next)) : null };
  }

  function orgRateLimits(q: URLSearchParams, shape: ResponseShape): object {
    const groupType = q.get('group_type');
    const model = q.get('model');
    const all = org.scenario.rate_limits;
    // The API answers 404 for a model it does not know, rather than an empty list.
    if (model !== null && !all.some((g) => g.models?.includes(model))) {
      throw new HttpError(404, `model ${model} not found`);
    }
    const groups = all
      .filter(
        (g) => (groupType === null || g.group_type === groupType) && (model === null || g.models?.includes(model)),
      )
      .map((g) => orgRateLimitJson(g, shape));
    return rateLimitPage(groups, q);
  }

  function workspaceRateLimits(w: SimWorkspace, q: URLSearchParams, shape: ResponseShape): object {
    const inherited = boolParam(q, 'include_inherited');
    const groupType = q.get('group_type');
    const sameGroup = (a: RateLimitGroup, b: RateLimitGroup) =>
      a.group_type === b.group_type && JSON.stringify(a.models) === JSON.stringify(b.models);
    const groups: object[] = [];
    for (const g of org.scenario.rate_limits) {
      if (groupType !== null && g.group_type !== groupType) continue;
      const own = w.rateLimits.find((o) => sameGroup(o, g));
      if (!own && !inherited) continue;
      const limits = Object.entries(g.limits).map(([type, orgValue]) => {
        const value = own?.limits[type];
        return value === undefined
          ? { type, value: orgValue, org_limit: orgValue, source: 'organization' as const }
          : { type, value: Math.min(value, orgValue), org_limit: orgValue, source: 'workspace' as const };
      });
      groups.push(
        workspaceRateLimitJson(w, g, inherited ? limits : limits.filter((l) => l.source === 'workspace'), shape),
      );
    }
    return rateLimitPage(groups, q);
  }

  function updateKey(k: SimKey, body: unknown, now: number, shape: ResponseShape): object {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body: must be a JSON object');
    const { name: nameIn, status: statusIn, ...rest } = body as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw bad(`${unknown[0]}: Extra inputs are not permitted`);
    // null means "leave as is", as the SDK's update params allow
    const name = nameIn ?? undefined;
    const status = statusIn ?? undefined;
    if (name !== undefined && (typeof name !== 'string' || name.length < 1 || name.length > 500)) {
      throw bad('name: must be a string of 1 to 500 characters');
    }
    if (status !== undefined && status !== 'active' && status !== 'inactive' && status !== 'archived') {
      throw bad('status: must be one of active, inactive, archived');
    }
    const current = org.keyStatus(k, now);
    if (current === 'archived') throw bad('archived API keys cannot be modified');
    if (status === 'active' && current === 'expired') throw bad('an expired API key cannot be reactivated');
    if (name !== undefined) k.name = name;
    if (status !== undefined && status !== current) org.setKeyStatus(k, status, now);
    return keyJson(k, now, shape);
  }

  async function route(
    method: string,
    url: URL,
    readBody: () => Promise<unknown>,
    now: number,
    shape: ResponseShape,
  ): Promise<ApiAnswer> {
    const q = url.searchParams;
    const p = url.pathname.replace(/\/+$/, '');
    const get = method === 'GET';
    /** The path's `{id}` segment when it matches `/v1/organizations/<prefix>/{id}<suffix>`, else null. */
    const idIn = (prefix: string, suffix = ''): string | null => {
      const m = new RegExp(`^/v1/organizations/${prefix}/([^/]+)${suffix}$`).exec(p);
      return m ? decodeURIComponent(m[1]!) : null;
    };
    const member = /^\/v1\/organizations\/workspaces\/([^/]+)\/members\/([^/]+)$/.exec(p);
    const answer = (body: object, workspaceId: string | null = null): ApiAnswer => ({ body, workspaceId });
    const userId = idIn('users');
    const workspaceId = idIn('workspaces');
    const membersOf = idIn('workspaces', '/members');
    const rateLimitsOf = idIn('workspaces', '/rate_limits');
    const apiKeyId = idIn('api_keys');
    const inviteId = idIn('invites');
    if (p === '/v1/organizations/me' && get) return answer({ id: org.id, type: 'organization', name: org.name });
    if (p === '/v1/organizations/users' && get) {
      const email = q.get('email');
      const roles = many(q, 'roles');
      return answer(
        listPage(
          org.users,
          (u) => u.id,
          (u) => org.userExists(u, now) && (email === null || u.email === email) && (!roles || roles.includes(u.role)),
          q,
          userJson,
        ),
      );
    }
    if (userId !== null && get) {
      const u = org.user(userId);
      if (!u || !org.userExists(u, now)) throw new HttpError(404, `user ${userId} not found`);
      return answer(userJson(u));
    }
    if (p === '/v1/organizations/invites' && get) {
      const email = q.get('email');
      const roles = many(q, 'roles');
      const statuses = many(q, 'statuses');
      return answer(
        listPage(
          org.invites,
          (i) => i.id,
          (i) =>
            (email === null || i.email === email) &&
            (!roles || roles.includes(i.role)) &&
            (!statuses || statuses.includes(i.status)),
          q,
          inviteJson,
        ),
      );
    }
    if (inviteId !== null && get) {
      const inv = org.invites.find((i) => i.id === inviteId);
      if (!inv) throw new HttpError(404, `invite ${inviteId} not found`);
      return answer(inviteJson(inv));
    }
    if (p === '/v1/organizations/workspaces' && get) {
      const archived = boolParam(q, 'include_archived');
      const withDefault = boolParam(q, 'include_default');
      const ids = many(q, 'ids');
      if (ids && ids.length > 100) throw bad('ids: at most 100');
      const listed = withDefault ? [org.defaultWorkspace, ...org.workspaces] : org.workspaces;
      return answer(
        listPage(
          listed,
          (w) => w.id,
          (w) =>
            org.workspaceExists(w, now) &&
            (archived || w.archivedAt === null || w.archivedAt > now) &&
            (!ids || ids.includes(w.id)),
          q,
          (w) => workspaceJson(w, now, shape),
        ),
      );
    }
    if (workspaceId !== null && get) {
      const w = existingWorkspace(workspaceId, now);
      return answer(workspaceJson(w, now, shape), w.id);
    }
    if (member !== null && get) {
      const w = existingWorkspace(decodeURIComponent(member[1]!), now);
      const userIdOf = decodeURIComponent(member[2]!);
      const m = org.members(w, now).find((x) => x.user.id === userIdOf);
      if (!m) throw new HttpError(404, `user ${userIdOf} is not a member of workspace ${w.id}`);
      return answer({ type: 'workspace_member', user_id: m.user.id, workspace_id: w.id, workspace_role: m.role }, w.id);
    }
    if (membersOf !== null && get) {
      const w = existingWorkspace(membersOf, now);
      return answer(
        listPage(
          org.members(w, now),
          (x) => x.user.id,
          () => true,
          q,
          (x) => ({ type: 'workspace_member', user_id: x.user.id, workspace_id: w.id, workspace_role: x.role }),
        ),
        w.id,
      );
    }
    if (rateLimitsOf !== null && get) {
      const w = existingWorkspace(rateLimitsOf, now);
      return answer(workspaceRateLimits(w, q, shape), w.id);
    }
    if (p === '/v1/organizations/api_keys' && get) {
      const ws = q.get('workspace_id');
      const status = q.get('status');
      const creator = q.get('created_by_user_id');
      if (status !== null && !['active', 'inactive', 'archived', 'expired'].includes(status)) {
        throw bad('status: must be one of active, inactive, archived, expired');
      }
      return answer(
        listPage(
          org.keys,
          (k) => k.id,
          (k) =>
            org.keyExists(k, now) &&
            (ws === null || k.workspace?.id === ws || (ws === org.defaultWorkspace.id && keyWorkspaceId(k) === ws)) &&
            (status === null || org.keyStatus(k, now) === status) &&
            (creator === null || k.createdBy?.id === creator),
          q,
          (k) => keyJson(k, now, shape),
        ),
      );
    }
    if (apiKeyId !== null) {
      const k = existingKey(apiKeyId, now);
      if (get) return answer(keyJson(k, now, shape), keyWorkspaceId(k));
      if (method === 'POST') return answer(updateKey(k, await readBody(), now, shape), keyWorkspaceId(k));
    }
    if (p === '/v1/organizations/usage_report/messages' && get) return answer(usageReport(q, now));
    if (p === '/v1/organizations/cost_report' && get) return answer(costReport(q, now));
    if (p === '/v1/organizations/rate_limits' && get) return answer(orgRateLimits(q, shape));
    const enterprise = get
      ? enterpriseSpend.route(p, q, now)
      : method === 'POST'
        ? await enterpriseSpend.answer(p, readBody, now)
        : null;
    if (enterprise !== null) return answer(enterprise);
    const spendLimits = get ? org.spendLimits.route(p, q, now) : null;
    if (spendLimits !== null) return answer(spendLimits);
    const analyticsBody = get ? analytics.route(p, q, now) : null;
    if (analyticsBody !== null) return answer(analyticsBody);
    throw new HttpError(404, `${method} ${url.pathname}: no such endpoint`);
  }

  return {
    route,
    costPico: (workspace, day, now) =>
      workspaceDayCost(org, workspace, day, visibleEnd(now), costCache).reduce((sum, c) => sum + c.total, 0n),
    billedPico: analytics.billedPico,
  };
}
