import { SPEND_LIMIT_PERIODS, type SpendLimitPeriod } from '../anthropic/spend-limits.ts';
import type { Pico } from '../money.ts';
import { DAY_MS } from '../time.ts';
import { HttpError } from './api.ts';
import type { MemberLimitSpec } from './enterprise-scenario.ts';
import type { SimUser, SimulatedOrg } from './org.ts';
import { base62From } from './random/hash.ts';

/**
 * A Claude Enterprise organization's per-member spend limits: `GET /v1/organizations/spend_limits/effective` (one
 * `SpendSummary` per member and period, with the member's spend so far in the period from the traffic of the keys
 * that member owns), `GET /v1/organizations/spend_limit_increase_requests[/{id}]`, and `POST …/{id}/approve` (writes
 * the member's own limit at `amount` for `period`, the request's by default; the effective report shows it from then
 * on) and `POST …/{id}/deny`. Only a pending request can be approved; a denied one may be denied again (the SDK's
 * "idempotent on denied"), an approved one not: 400. A Console organization (the default) answers all of them with
 * 400 `organization_type_not_supported`, as the real API does.
 *
 * ```yaml
 * spend_limits:
 *   organization_type: enterprise
 *   members:
 *     - { user: ana@example.com, period: monthly, amount_usd: 100, source: user }
 *     - { user: bo@example.com, period: daily, amount_usd: null, source: seat_tier }
 *   increase_requests:
 *     - { user: ana@example.com, period: monthly, status: pending, age_days: 2 }
 *     - { user: bo@example.com, period: daily, status: denied, age_days: 5, resolved_days_ago: 4, resolved_by: ana@example.com }
 * ```
 */

/** The first instant (ms, UTC) of the period `now` falls in: the day, the ISO week (Monday), the month. */
export function periodStart(period: SpendLimitPeriod, now: number): number {
  const day = Math.floor(now / DAY_MS) * DAY_MS;
  if (period === 'daily') return day;
  if (period === 'weekly') return day - ((new Date(day).getUTCDay() + 6) % 7) * DAY_MS;
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** Picodollars → cents with at most three decimals (the API does not round metered usage to whole cents). */
function centsText(value: Pico): string {
  const milli = value / 10n ** 7n; // thousandths of a cent, truncated
  const frac = (milli % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return `${milli / 1000n}${frac ? `.${frac}` : ''}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

const bad = (message: string) => new HttpError(400, message);

/** PageCursor over `items`, `limit` 1–1000 (default 20), tokens `page_…` as the other spend limit lists. */
function cursorPage<T>(all: T[], q: URLSearchParams): { items: T[]; next_page: string | null } {
  const limitText = q.get('limit');
  const limit = limitText === null ? 20 : Number(limitText);
  if (!/^\d+$/.test(limitText ?? '20') || limit < 1 || limit > 1000)
    throw bad('limit: must be an integer from 1 to 1000');
  const token = q.get('page');
  const from = token === null ? 0 : Number(Buffer.from(token.replace(/^page_/, ''), 'base64').toString('utf8'));
  if (token !== null && (!token.startsWith('page_') || !Number.isInteger(from) || from < 0 || from > all.length)) {
    throw bad('page: not a page token from this API');
  }
  const next = from + limit;
  return {
    items: all.slice(from, next),
    next_page: next < all.length ? `page_${Buffer.from(String(next)).toString('base64')}` : null,
  };
}

function many(q: URLSearchParams, name: string): string[] {
  return [...q.getAll(`${name}[]`), ...q.getAll(name)];
}

interface EnterpriseSpend {
  /** The answer for an Enterprise spend path, or null when `path` is not one (or the organization is Console's). */
  route(path: string, q: URLSearchParams, now: number): object | null;
  /** The answer to `POST …/spend_limit_increase_requests/{id}/approve|deny`, or null when `path` is not one. */
  answer(path: string, readBody: () => Promise<unknown>, now: number): Promise<object | null>;
}

/** `billedPico`: a key's billed cost over [from, to) as visible at `now`, the same figure the analytics API shows. */
export function createEnterpriseSpend(
  org: SimulatedOrg,
  billedPico: (keyId: string, from: number, to: number, now: number) => Pico,
): EnterpriseSpend {
  const spec = org.scenario.spend_limits;
  const userOf = (ref: string): SimUser => org.users.find((u) => u.email === ref || u.id === ref)!;
  // the scenario's limits, then what approvals wrote: an approval sets the member's own limit for its period
  const limits: MemberLimitSpec[] = spec.members.map((m) => ({ ...m }));
  const isMember = (u: SimUser, now: number) => u.addedAt <= now && (u.removedAt === null || u.removedAt > now);

  const actorJson = (u: SimUser, now: number) => {
    const deleted = u.removedAt !== null && u.removedAt <= now;
    return {
      type: 'user_actor',
      user_id: u.id,
      email_address: deleted ? null : u.email,
      name: deleted ? null : u.name,
      deleted,
    };
  };

  /** A member's keys: those bound to the member (principal), or created by the member when bound to nobody. */
  const spendOf = (u: SimUser, period: SpendLimitPeriod, now: number): Pico => {
    const from = periodStart(period, now);
    let total = 0n;
    for (const k of org.keys) {
      const owner = k.principal === null ? k.createdBy : 'user' in k.principal ? k.principal.user : null;
      if (owner === u && k.life.createdAt < now) total += billedPico(k.id, from, now, now);
    }
    return total;
  };

  const sourceJson = (m: MemberLimitSpec, u: SimUser) => {
    if (m.source === 'user') return { type: 'user', user_id: u.id };
    if (m.source === 'seat_tier') return { type: 'seat_tier', seat_tier: 'premium' };
    if (m.source === 'rbac_group')
      return { type: 'rbac_group', rbac_group_id: `rbac_01${base62From('engineering', 22)}` };
    return { type: 'organization' };
  };

  const summaryJson = (u: SimUser, period: SpendLimitPeriod, now: number) => {
    const m = limits.find((x) => userOf(x.user) === u && x.period === period);
    const source = m ? sourceJson(m, u) : { type: 'organization' };
    return {
      actor: actorJson(u, now),
      amount: m?.amount_usd == null ? null : String(Math.round(m.amount_usd * 100)),
      currency: 'USD',
      period,
      period_to_date_spend: centsText(spendOf(u, period, now)),
      scope: { type: 'user', user_id: u.id },
      source,
      spend_limit_id: `spl_01${base62From(`${org.id}:${JSON.stringify(source)}:${period}`, 22)}`,
    };
  };

  interface Request {
    id: string;
    user: SimUser;
    period: SpendLimitPeriod;
    status: 'pending' | 'approved' | 'denied';
    createdAt: number;
    resolvedAt: number | null;
    resolvedBy: SimUser | null;
  }
  const requests: Request[] = spec.increase_requests.map((r, i) => ({
    id: `splir_01${base62From(`${org.id}:increase:${i}`, 22)}`,
    user: userOf(r.user),
    period: r.period,
    status: r.status,
    createdAt: org.startMs - r.age_days * DAY_MS,
    resolvedAt: r.resolved_days_ago === null ? null : org.startMs - r.resolved_days_ago * DAY_MS,
    resolvedBy: r.resolved_by === null ? null : userOf(r.resolved_by),
  }));
  requests.sort((a, b) => b.createdAt - a.createdAt);
  /** A scoped admin key: who resolved a request answered through the Admin API (keywarden's approvals too). */
  const adminActor = {
    type: 'scoped_api_key_actor',
    scoped_api_key_id: `apikey_01${base62From(`${org.id}:admin`, 22)}`,
  } as const;

  const requestJson = (r: Request, now: number) => ({
    id: r.id,
    type: 'spend_limit_increase_request',
    actor: actorJson(r.user, now),
    created_at: iso(r.createdAt),
    period: r.period,
    status: r.status,
    resolved_at: r.resolvedAt === null ? null : iso(r.resolvedAt),
    resolved_by: r.status === 'pending' ? null : r.resolvedBy === null ? adminActor : actorJson(r.resolvedBy, now),
    spend_summary: r.status === 'pending' ? summaryJson(r.user, r.period, now) : null,
  });

  function effective(q: URLSearchParams, now: number): object {
    const periods = many(q, 'period');
    for (const p of periods) {
      if (!(SPEND_LIMIT_PERIODS as readonly string[]).includes(p)) {
        throw bad(`period: "${p}" is not one of ${SPEND_LIMIT_PERIODS.join(', ')}`);
      }
    }
    const userIds = many(q, 'user_ids');
    if (userIds.length > 100) throw bad('user_ids: at most 100 entries');
    const members = org.users.filter((u) => isMember(u, now) && (userIds.length === 0 || userIds.includes(u.id)));
    const rows = members.map((u) =>
      limits
        .filter((m) => userOf(m.user) === u && (periods.length === 0 || periods.includes(m.period)))
        .map((m) => summaryJson(u, m.period, now)),
    );
    // pages count members, so a member's periods never split across pages
    const page = cursorPage(
      rows.filter((r) => r.length > 0),
      q,
    );
    return { data: page.items.flat(), next_page: page.next_page };
  }

  function increaseRequests(q: URLSearchParams, now: number): object {
    const actorIds = many(q, 'actor_ids');
    const statuses = many(q, 'status');
    for (const s of statuses) {
      if (!['pending', 'approved', 'denied'].includes(s))
        throw bad(`status: "${s}" is not pending, approved or denied`);
    }
    const all = requests.filter(
      (r) =>
        r.createdAt <= now &&
        isMember(r.user, now) &&
        (actorIds.length === 0 || actorIds.includes(r.user.id)) &&
        (statuses.length === 0 || statuses.includes(r.status)),
    );
    const page = cursorPage(all, q);
    return { data: page.items.map((r) => requestJson(r, now)), next_page: page.next_page };
  }

  /** The body of an approve or deny: only the SDK's fields, each of its type. */
  function answerBody(body: unknown, fields: readonly string[]): Record<string, unknown> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body: expected a JSON object');
    const b = body as Record<string, unknown>;
    const extra = Object.keys(b).find((k) => !fields.includes(k));
    if (extra !== undefined) throw bad(`${extra}: Extra inputs are not permitted`);
    if (b.suppress_notification !== undefined && typeof b.suppress_notification !== 'boolean') {
      throw bad('suppress_notification: must be a boolean');
    }
    return b;
  }

  function approve(r: Request, body: unknown, now: number): object {
    const b = answerBody(body, ['amount', 'period', 'suppress_notification']);
    if (typeof b.amount !== 'string' || !/^\d{1,18}$/.test(b.amount)) {
      throw bad('amount: must be a non-negative integer decimal string in minor units, like "50000"');
    }
    const period = b.period ?? r.period;
    if (typeof period !== 'string' || !(SPEND_LIMIT_PERIODS as readonly string[]).includes(period)) {
      throw bad(`period: must be one of ${SPEND_LIMIT_PERIODS.join(', ')}`);
    }
    if (r.status !== 'pending') throw bad(`spend limit increase request ${r.id} is ${r.status}, not pending`);
    const p = period as SpendLimitPeriod;
    const amountUsd = Number(b.amount) / 100;
    const existing = limits.find((m) => userOf(m.user) === r.user && m.period === p);
    if (existing) Object.assign(existing, { amount_usd: amountUsd, source: 'user' });
    else limits.push({ user: r.user.id, period: p, amount_usd: amountUsd, source: 'user' });
    Object.assign(r, { status: 'approved', resolvedAt: now, resolvedBy: null });
    const limitId = `spl_01${base62From(`${org.id}:${JSON.stringify({ type: 'user', user_id: r.user.id })}:${p}`, 22)}`;
    return {
      ...requestJson(r, now),
      spend_limit: {
        id: limitId,
        amount: b.amount,
        created_at: iso(now),
        currency: 'USD',
        is_enabled: true,
        period: p,
        scope: { type: 'user', user_id: r.user.id },
        type: 'spend_limit',
        updated_at: iso(now),
      },
    };
  }

  function deny(r: Request, body: unknown, now: number): object {
    answerBody(body, ['suppress_notification']);
    if (r.status === 'approved') throw bad(`spend limit increase request ${r.id} is approved: it cannot be denied`);
    if (r.status === 'pending') Object.assign(r, { status: 'denied', resolvedAt: now, resolvedBy: null });
    return requestJson(r, now);
  }

  const base = '/v1/organizations/spend_limit_increase_requests';

  return {
    async answer(path, readBody, now) {
      const m = /^\/v1\/organizations\/spend_limit_increase_requests\/([^/]+)\/(approve|deny)$/.exec(path);
      if (m === null) return null;
      if (spec.organization_type !== 'enterprise') {
        throw new HttpError(
          400,
          'This endpoint is not supported for this organization type.',
          'organization_type_not_supported',
        );
      }
      const id = decodeURIComponent(m[1]!);
      const r = requests.find((x) => x.id === id && x.createdAt <= now);
      if (!r) throw new HttpError(404, `spend limit increase request ${id} not found`);
      const body = await readBody();
      return m[2] === 'approve' ? approve(r, body, now) : deny(r, body, now);
    },
    route(path, q, now) {
      if (spec.organization_type !== 'enterprise') return null;
      if (path === '/v1/organizations/spend_limits/effective') return effective(q, now);
      if (path === base) return increaseRequests(q, now);
      if (!path.startsWith(`${base}/`)) return null;
      const id = decodeURIComponent(path.slice(base.length + 1));
      const r = requests.find((x) => x.id === id && x.createdAt <= now);
      if (!r) throw new HttpError(404, `spend limit increase request ${id} not found`);
      return requestJson(r, now);
    },
  };
}
