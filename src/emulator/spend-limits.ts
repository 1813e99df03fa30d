import { z } from 'zod';
import { SPEND_LIMIT_PERIODS, SPEND_LIMITS_BETA, type SpendLimitPeriod } from '../anthropic/spend-limits.ts';
import { DAY_MS, MINUTE_MS } from '../time.ts';
import { HttpError } from './api.ts';
import { increaseRequestSchema, memberLimitSchema, ORGANIZATION_TYPES } from './enterprise-scenario.ts';
import { base62From } from './random/hash.ts';

/**
 * The Spend Limits API (beta `spend-limit-reads-2026-09-26`) as a Console organization sees it: its organization
 * and workspace limits (daily, weekly or monthly; amounts in integer cents as strings, `"50000"` = $500.00) and the
 * read-only `usage_tier` cap Anthropic sets from the organization's usage tier. Listing is in early access for
 * Console organizations, so the scenario says whether this organization has it (`access`), and an Enterprise
 * organization gets 400 `organization_type_not_supported` on the Console-only filters.
 *
 * Limits change over time: the scenario's `events` and the control endpoint (`POST /_emulator/spend-limits`) set or
 * delete one at a time, as a person in the Console would; every answer is the state at the request's `now`.
 *
 * ```yaml
 * spend_limits:
 *   access: enabled                 # enabled | not_enabled (403) | forbidden (403, no code) | organization_type_not_supported (400)
 *   usage_tier: { amount_usd: 5000 }
 *   limits:
 *     - { scope: organization, period: monthly, amount_usd: 2000 }
 *     - { scope: Research, period: daily, amount_usd: 50, age_days: 3 }
 *   events:
 *     - { at_minutes: 30, action: set, scope: Research, period: daily, amount_usd: 80 }
 *     - { at_minutes: 60, action: delete, scope: organization, period: monthly }
 * ```
 */

export const SPEND_LIMITS_ACCESS = ['enabled', 'not_enabled', 'forbidden', 'organization_type_not_supported'] as const;
export type SpendLimitsAccess = (typeof SPEND_LIMITS_ACCESS)[number];

/** `organization`, or a workspace's name or id (`default`: the Default Workspace). */
const scopeRef = z.string().min(1);
const amountUsd = z.number().nonnegative().nullable();

const limitSchema = z.strictObject({
  scope: scopeRef,
  period: z.enum(SPEND_LIMIT_PERIODS).default('monthly'),
  amount_usd: amountUsd,
  /** `is_enabled: false` (extra usage switched off): the amount is kept but does not apply. */
  enabled: z.boolean().default(true),
  /** Created this many days before the start. */
  age_days: z.number().min(0).default(30),
});

const eventSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('set'),
    at_minutes: z.int(),
    scope: scopeRef,
    period: z.enum(SPEND_LIMIT_PERIODS).default('monthly'),
    amount_usd: amountUsd,
    enabled: z.boolean().default(true),
  }),
  z.strictObject({
    action: z.literal('delete'),
    at_minutes: z.int(),
    scope: scopeRef,
    period: z.enum(SPEND_LIMIT_PERIODS).default('monthly'),
  }),
  /** The usage tier's cap moves when Anthropic moves the organization to another tier. */
  z.strictObject({ action: z.literal('usage_tier'), at_minutes: z.int(), amount_usd: z.number().nonnegative() }),
]);

export const spendLimitsScenarioSchema = z
  .strictObject({
    access: z.enum(SPEND_LIMITS_ACCESS).default('enabled'),
    /** The monthly cap of the organization's usage tier; null: the organization has none listed. */
    usage_tier: z.strictObject({ amount_usd: z.number().nonnegative() }).nullable().default(null),
    limits: z.array(limitSchema).default([]),
    events: z.array(eventSchema).default([]),
    /** `enterprise`: the per-member report and the increase requests answer (enterprise-spend.ts). */
    organization_type: z.enum(ORGANIZATION_TYPES).default('console'),
    members: z.array(memberLimitSchema).default([]),
    increase_requests: z.array(increaseRequestSchema).default([]),
  })
  .prefault({});

export type SpendLimitsScenario = z.output<typeof spendLimitsScenarioSchema>;

/** A change made through the control endpoint: the same fields as a scenario event, at the emulator's now. */
export const spendLimitsControlSchema = z.strictObject({
  access: z.enum(SPEND_LIMITS_ACCESS).optional(),
  set: z
    .array(
      z.strictObject({
        scope: scopeRef,
        period: z.enum(SPEND_LIMIT_PERIODS).default('monthly'),
        amount_usd: amountUsd,
        enabled: z.boolean().default(true),
      }),
    )
    .default([]),
  delete: z
    .array(z.strictObject({ scope: scopeRef, period: z.enum(SPEND_LIMIT_PERIODS).default('monthly') }))
    .default([]),
  usage_tier: z.strictObject({ amount_usd: z.number().nonnegative() }).optional(),
});

export type SpendLimitsControl = z.output<typeof spendLimitsControlSchema>;

/** A workspace as the spend limits see it: the organization's resolver turns a name or id into one. */
export interface SpendLimitWorkspace {
  id: string;
}

type Scope = { type: 'organization' } | { type: 'workspace'; workspaceId: string } | { type: 'usage_tier' };

/** One change of one limit (scope and period are the key, as the API's upsert): null amount state = deleted. */
interface Change {
  at: number;
  scopeKey: string;
  scope: Scope;
  period: SpendLimitPeriod;
  /** Cents; null amount: no numeric cap. */
  state: { amountCents: number | null; enabled: boolean } | 'deleted';
}

interface LimitNow {
  id: string;
  scope: Scope;
  period: SpendLimitPeriod;
  amountCents: number | null;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

const cents = (usd: number | null) => (usd === null ? null : Math.round(usd * 100));

/** Problems with a scenario's spend limits that the schema cannot see: workspaces that do not exist. */
export function spendLimitProblems(s: SpendLimitsScenario, workspaces: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const check = (scope: string, where: string) => {
    if (scope !== 'organization' && scope !== 'default' && !workspaces.has(scope)) {
      problems.push(`${where}.scope: "${scope}" is not "organization", "default" or a workspace of this scenario`);
    }
  };
  s.limits.forEach((l, i) => {
    check(l.scope, `spend_limits.limits[${i}]`);
  });
  s.events.forEach((e, i) => {
    if (e.action !== 'usage_tier') check(e.scope, `spend_limits.events[${i}]`);
  });
  return problems;
}

/**
 * The organization's spend limits over time, and the endpoints that read them. Ids are stable per (scope, period)
 * and creation: a limit deleted and set again is a new limit with a new id, as an upsert after a delete is.
 */
export class SimSpendLimits {
  readonly #changes: Change[] = [];
  readonly #orgId: string;
  readonly #createdAt: number;
  readonly #resolve: (ref: string) => SpendLimitWorkspace | null;
  #access: SpendLimitsAccess;
  /** The usage tier's cap over time (cents), oldest first. */
  readonly #tier: Array<{ at: number; amountCents: number }> = [];

  constructor(
    spec: SpendLimitsScenario,
    opts: {
      orgId: string;
      orgCreatedAt: number;
      startMs: number;
      resolve: (ref: string) => SpendLimitWorkspace | null;
    },
  ) {
    this.#orgId = opts.orgId;
    this.#createdAt = opts.orgCreatedAt;
    this.#resolve = opts.resolve;
    this.#access = spec.access;
    if (spec.usage_tier !== null)
      this.#tier.push({ at: opts.orgCreatedAt, amountCents: cents(spec.usage_tier.amount_usd)! });
    for (const l of spec.limits) {
      this.#record(opts.startMs - l.age_days * DAY_MS, l.scope, l.period, {
        amountCents: cents(l.amount_usd),
        enabled: l.enabled,
      });
    }
    for (const e of spec.events) {
      const at = opts.startMs + e.at_minutes * MINUTE_MS;
      if (e.action === 'usage_tier') this.#tier.push({ at, amountCents: cents(e.amount_usd)! });
      else if (e.action === 'set')
        this.#record(at, e.scope, e.period, { amountCents: cents(e.amount_usd), enabled: e.enabled });
      else this.#record(at, e.scope, e.period, 'deleted');
    }
    this.#tier.sort((a, b) => a.at - b.at);
  }

  /** A control request, applied at `now`. */
  apply(control: SpendLimitsControl, now: number): void {
    if (control.access !== undefined) this.#access = control.access;
    for (const s of control.set)
      this.#record(now, s.scope, s.period, { amountCents: cents(s.amount_usd), enabled: s.enabled });
    for (const d of control.delete) this.#record(now, d.scope, d.period, 'deleted');
    if (control.usage_tier !== undefined)
      this.#tier.push({ at: now, amountCents: cents(control.usage_tier.amount_usd)! });
  }

  get access(): SpendLimitsAccess {
    return this.#access;
  }

  #record(at: number, ref: string, period: SpendLimitPeriod, state: Change['state']): void {
    let scope: Scope;
    if (ref === 'organization') scope = { type: 'organization' };
    else {
      const w = this.#resolve(ref);
      if (!w) throw new HttpError(400, `scope: "${ref}" is not "organization" or a workspace of this organization`);
      scope = { type: 'workspace', workspaceId: w.id };
    }
    const scopeKey = scope.type === 'workspace' ? `workspace:${scope.workspaceId}` : scope.type;
    let i = this.#changes.length;
    while (i > 0 && this.#changes[i - 1]!.at > at) i--;
    this.#changes.splice(i, 0, { at, scopeKey, scope, period, state });
  }

  /** The limits in force at `now`, newest first (the Console order), the usage tier's cap included. */
  limitsAt(now: number): LimitNow[] {
    const current = new Map<string, LimitNow>();
    const generation = new Map<string, number>();
    for (const c of this.#changes) {
      if (c.at > now) break;
      const key = `${c.scopeKey}:${c.period}`;
      if (c.state === 'deleted') {
        current.delete(key);
        continue;
      }
      const existing = current.get(key);
      if (existing) {
        current.set(key, { ...existing, ...c.state, updatedAt: c.at });
      } else {
        const n = (generation.get(key) ?? 0) + 1;
        generation.set(key, n);
        current.set(key, {
          id: `spl_01${base62From(`${this.#orgId}:${key}:${n}`, 22)}`,
          scope: c.scope,
          period: c.period,
          ...c.state,
          createdAt: c.at,
          updatedAt: c.at,
        });
      }
    }
    const out = [...current.values()];
    const tier = this.#tier.filter((t) => t.at <= now).at(-1);
    if (tier) {
      // read-only; its created_at and updated_at are the organization's creation, whatever its amount (the SDK says so)
      out.push({
        id: `spl_01${base62From(`${this.#orgId}:usage_tier`, 22)}`,
        scope: { type: 'usage_tier' },
        period: 'monthly',
        amountCents: tier.amountCents,
        enabled: true,
        createdAt: this.#createdAt,
        updatedAt: this.#createdAt,
      });
    }
    return out.sort((a, b) => b.createdAt - a.createdAt || a.id.localeCompare(b.id));
  }

  /** `GET /v1/organizations/spend_limits[/{id}]`; null when the path is not one of these. */
  route(path: string, q: URLSearchParams, now: number): object | null {
    const base = '/v1/organizations/spend_limits';
    // the per-member report and the increase requests are Claude Enterprise's (enterprise-spend.ts answers them first)
    if (path === `${base}/effective` || path.startsWith('/v1/organizations/spend_limit_increase_requests')) {
      throw new HttpError(
        400,
        'This endpoint is not supported for this organization type.',
        'organization_type_not_supported',
      );
    }
    if (path !== base && !path.startsWith(`${base}/`)) return null;
    this.#checkAccess();
    if (path === base) return this.#list(q, now);
    const id = decodeURIComponent(path.slice(base.length + 1));
    const found = this.limitsAt(now).find((l) => l.id === id);
    if (!found) throw new HttpError(404, `spend limit ${id} not found`);
    return limitJson(found);
  }

  #checkAccess(): void {
    if (this.#access === 'not_enabled') {
      throw new HttpError(
        403,
        'The organization cannot retrieve, set or delete spend limits with an Admin API credential (early access preview; contact your Anthropic account team).',
        'spend_limits_admin_api_writes_not_enabled',
      );
    }
    if (this.#access === 'forbidden') throw new HttpError(403, 'Spend limits are not available to this organization.');
    if (this.#access === 'organization_type_not_supported') {
      throw new HttpError(
        400,
        'This endpoint is not supported for this organization type.',
        'organization_type_not_supported',
      );
    }
  }

  #list(q: URLSearchParams, now: number): object {
    const scopeTypes = [...q.getAll('scope_type[]'), ...q.getAll('scope_type')];
    for (const t of scopeTypes) {
      if (!['organization', 'workspace', 'usage_tier'].includes(t)) {
        throw new HttpError(
          400,
          `scope_type: "${t}" does not apply to a Console organization (organization, workspace, usage_tier)`,
        );
      }
    }
    const workspaceId = q.get('workspace_id');
    const all = this.limitsAt(now).filter(
      (l) =>
        (scopeTypes.length === 0 || scopeTypes.includes(l.scope.type)) &&
        (workspaceId === null || (l.scope.type === 'workspace' && l.scope.workspaceId === workspaceId)),
    );
    const limitText = q.get('limit');
    const limit = limitText === null ? 20 : Number(limitText);
    if (!/^\d+$/.test(limitText ?? '20') || limit < 1 || limit > 1000)
      throw new HttpError(400, 'limit: must be an integer from 1 to 1000');
    const token = q.get('page');
    const from = token === null ? 0 : Number(Buffer.from(token.replace(/^page_/, ''), 'base64').toString('utf8'));
    if (token !== null && (!token.startsWith('page_') || !Number.isInteger(from) || from < 0 || from > all.length)) {
      throw new HttpError(400, 'page: not a page token from this API');
    }
    const next = from + limit;
    return {
      data: all.slice(from, next).map(limitJson),
      next_page: next < all.length ? `page_${Buffer.from(String(next)).toString('base64')}` : null,
    };
  }
}

/** The beta header this path needs and did not get, or null. Only the list needs it (the SDK's retrieve sends none). */
export function missingSpendLimitsBeta(path: string, betas: readonly string[]): string | null {
  if (path.replace(/\/+$/, '') !== '/v1/organizations/spend_limits') return null;
  return betas.includes(SPEND_LIMITS_BETA) ? null : SPEND_LIMITS_BETA;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function limitJson(l: LimitNow): object {
  return {
    id: l.id,
    type: 'spend_limit',
    amount: l.amountCents === null ? null : String(l.amountCents),
    currency: 'USD',
    is_enabled: l.enabled,
    period: l.period,
    scope:
      l.scope.type === 'workspace' ? { type: 'workspace', workspace_id: l.scope.workspaceId } : { type: l.scope.type },
    created_at: iso(l.createdAt),
    updated_at: iso(l.updatedAt),
  };
}
