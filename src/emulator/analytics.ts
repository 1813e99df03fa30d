import {
  ACTOR_TYPES,
  ANALYTICS_COST_ORDER_BY,
  ANALYTICS_GROUP_BY,
  ANALYTICS_USAGE_ORDER_BY,
  COST_FAN_OUT,
  MAX_ANALYTICS_GROUPS,
} from '../anthropic/analytics.ts';
import { type Pico, picoToCents } from '../money.ts';
import { DAY_MS, MINUTE_MS } from '../time.ts';
import { type CostParts, priceUsage } from '../usage/core/pricing.ts';
import { bad, HttpError } from './api.ts';
import type { SimFederated, SimKey, SimulatedOrg } from './org.ts';
import { addCounts, forEachUsage, type UsageCounts, type UsageSlot, zeroCounts } from './traffic.ts';

/**
 * The Usage and Cost Analytics API (beta) over the simulated organization, from the same pure traffic function as
 * the classic reports, so both agree to the token and the picodollar. Rows, not buckets: one per combination of the
 * grouped dimensions with usage (no empty buckets), ranked by total_tokens (usage) or amount (cost), highest first,
 * unless `order_by=time`; `limit` counts rows; the cost endpoint's cost_type/token_type fan-out rows do not count.
 * Billed `amount` equals `list_amount` (the scenario has no discount), and blocked requests (a key's
 * `blocked_models`) are usage without cost. Federated workloads (scenario `federated`) are usage without a key
 * (`api_key_id` null, matched by an empty `api_key_ids[]` entry) attributed to a `federated_actor`.
 */

/** What has traffic: a key, or a federated workload (no key). */
type Source = SimKey | SimFederated;

const isFederated = (src: Source): src is SimFederated => 'subject' in src;

/** Requests per minute and slot: one per this many input-side tokens, rounded up (the traffic model has no requests). */
export const TOKENS_PER_REQUEST = 2_000;
/** Rows a page may hold after the cost fan-out before the API answers report_page_too_large. */
const MAX_PAGE_ROWS = 10_000;
const HOUR_MINUTES = 60;
/** Key-hours kept computed (each a few cells). */
const MAX_CACHED_HOURS = 250_000;
const WIDTH_MINUTES = { '1m': 1, '1h': 60, '1d': 1440 } as const;
const EARLIEST = Date.parse('2026-01-01T00:00:00Z');
const ANALYTICS_PATHS = new Set(['/v1/organizations/analytics/usage', '/v1/organizations/analytics/cost']);

type Endpoint = 'usage' | 'cost';

/** One slot's usage of one key over a span, with its request count. */
interface Cell {
  slot: UsageSlot;
  counts: UsageCounts;
  requests: number;
}

interface Query {
  endpoint: Endpoint;
  buckets: Array<{ start: number; end: number; computeEnd: number }>;
  groupBy: Set<string>;
  limit: number;
  orderBy: string;
  order: 'asc' | 'desc';
  sources: Source[];
  slotPasses: (slot: UsageSlot) => boolean;
}

/** A group with its rows (one, or the cost fan-out) and the metrics it can be ranked by. */
interface Ranked {
  g: Group;
  metric: Record<string, bigint>;
  rows: object[];
}

interface Group {
  start: number;
  end: number;
  id: string;
  dims: Record<string, unknown>;
  cells: Cell[];
}

const iso = (minute: number) => new Date(minute * MINUTE_MS).toISOString().replace('.000Z', 'Z');

function many(q: URLSearchParams, name: string): string[] | undefined {
  const values = [...q.getAll(`${name}[]`), ...q.getAll(name)];
  return values.length > 0 ? values : undefined;
}

function time(q: URLSearchParams, name: string): number | null {
  const text = q.get(name);
  if (text === null) return null;
  const ms = /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw bad(`${name}: "${text}" is not an RFC 3339 timestamp with a time zone`);
  return ms;
}

/**
 * The actor usage is attributed to: a federated workload's subject, a key's principal (user, service account), else
 * the key itself.
 */
function actorOf(k: Source, now: number): { type: string; [field: string]: unknown } {
  if (isFederated(k)) return { type: 'federated_actor', subject: k.subject };
  const p = k.principal;
  if (p === null) return { type: 'api_actor', api_key_id: k.id };
  if ('serviceAccountId' in p) return { type: 'service_account_actor', service_account_id: p.serviceAccountId };
  const deleted = p.user.removedAt !== null && p.user.removedAt <= now;
  return { type: 'user_actor', user_id: p.user.id, email_address: p.user.email, name: p.user.name, deleted };
}

interface AnalyticsApi {
  /** The answer for an analytics path, or null when `path` is not one. */
  route(path: string, q: URLSearchParams, now: number): object | null;
  /** Ground truth: a key's billed cost over [from, to) (ms), as visible at `now`. */
  billedPico(keyId: string, from: number, to: number, now: number): Pico;
}

/** `visibleEnd(now)`: the first minute whose usage is not visible yet (the caller's freshness delay). */
export function createAnalyticsApi(org: SimulatedOrg, visibleEnd: (now: number) => number): AnalyticsApi {
  /** Complete, visible hours never change again: their cells are kept, per key and hour. */
  const hourCache = new Map<string, Cell[]>();

  function cellsOf(k: Source, from: number, to: number): Cell[] {
    const cells = new Map<UsageSlot, Cell>();
    if (k.life.createdAt >= to * MINUTE_MS) return [];
    const list = isFederated(k) ? org.federated : org.keys;
    for (let m = from; m < to; m++) {
      forEachUsage(list, k.index, m, (slot, c) => {
        const input =
          c.uncached_input_tokens +
          c.cache_read_input_tokens +
          c.cache_creation_5m_input_tokens +
          c.cache_creation_1h_input_tokens;
        let cell = cells.get(slot);
        if (!cell) {
          cell = { slot, counts: zeroCounts(), requests: 0 };
          cells.set(slot, cell);
        }
        addCounts(cell.counts, c);
        cell.requests += Math.max(1, Math.ceil(input / TOKENS_PER_REQUEST));
      });
    }
    return [...cells.values()];
  }

  /** A key's cells over [from, to), whole visible hours from the cache. */
  function keyCells(k: Source, from: number, to: number): Cell[] {
    const out: Cell[] = [];
    let m = from;
    while (m < to) {
      const hourEnd = (Math.floor(m / HOUR_MINUTES) + 1) * HOUR_MINUTES;
      if (m % HOUR_MINUTES === 0 && hourEnd <= to) {
        const id = `${isFederated(k) ? 'f' : ''}${k.index}|${m}`;
        let hit = hourCache.get(id);
        if (!hit) {
          hit = cellsOf(k, m, hourEnd);
          // a month of a 5,000-key organization is millions of key-hours: past this, start over rather than grow
          if (hourCache.size >= MAX_CACHED_HOURS) hourCache.clear();
          hourCache.set(id, hit);
        }
        out.push(...hit);
        m = hourEnd;
      } else {
        const end = Math.min(hourEnd, to);
        out.push(...cellsOf(k, m, end));
        m = end;
      }
    }
    return out;
  }

  function parse(endpoint: Endpoint, q: URLSearchParams, now: number): Query {
    const start = time(q, 'starting_at');
    if (start === null) throw bad('starting_at: required');
    if (start < EARLIEST) throw bad('starting_at: must be no earlier than 2026-01-01T00:00:00Z');
    if (start < now - 365 * DAY_MS) throw bad('starting_at: must be within the last 365 days');
    const widthName = q.get('time_bucket_width');
    if (widthName !== null && !(widthName in WIDTH_MINUTES)) throw bad('time_bucket_width: must be one of 1m, 1h, 1d');
    const width = widthName === null ? null : WIDTH_MINUTES[widthName as keyof typeof WIDTH_MINUTES];
    let end = time(q, 'ending_at');
    if (end === null && width !== null) throw bad('ending_at: required when time_bucket_width is set');
    end ??= Math.min(now, start + 31 * DAY_MS);
    if (end <= start) throw bad('ending_at: must be after starting_at');
    if (end - start > 31 * DAY_MS) throw bad('ending_at: the range may span at most 31 days');
    if (width === 1 && end - start > DAY_MS) throw bad('ending_at: with time_bucket_width 1m, at most 24 hours');

    const groupBy = new Set<string>();
    const allowed: readonly string[] =
      endpoint === 'cost' ? [...ANALYTICS_GROUP_BY, ...COST_FAN_OUT] : ANALYTICS_GROUP_BY;
    for (const g of many(q, 'group_by') ?? []) {
      if (!allowed.includes(g)) throw bad(`group_by: "${g}" is not one of ${allowed.join(', ')}`);
      groupBy.add(g);
    }
    const counted = [...groupBy].filter((g) => !(COST_FAN_OUT as readonly string[]).includes(g));
    if (counted.length > MAX_ANALYTICS_GROUPS) {
      throw new HttpError(
        400,
        `group_by: at most ${MAX_ANALYTICS_GROUPS} dimensions (got ${counted.length})`,
        'too_many_report_groups',
      );
    }
    const limitText = q.get('limit');
    const limit = limitText === null ? 20 : Number(limitText);
    if (!/^\d+$/.test(limitText ?? '20') || limit < 1 || limit > 1000) {
      throw bad('limit: must be an integer from 1 to 1000');
    }
    const orders: readonly string[] = endpoint === 'cost' ? ANALYTICS_COST_ORDER_BY : ANALYTICS_USAGE_ORDER_BY;
    const orderBy = q.get('order_by') ?? orders[0]!;
    if (!orders.includes(orderBy)) throw bad(`order_by: must be one of ${orders.join(', ')}`);
    const order = q.get('order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw bad('order: must be asc or desc');

    // Buckets snapped to the width (UTC); without one, a single row over the range in whole hours.
    const startMinute = Math.floor(start / MINUTE_MS);
    const endMinute = Math.floor(end / MINUTE_MS);
    const visible = Math.min(visibleEnd(now), Math.floor(now / MINUTE_MS));
    const buckets: Query['buckets'] = [];
    if (width === null) {
      const s = Math.floor(startMinute / HOUR_MINUTES) * HOUR_MINUTES;
      const e = Math.floor(endMinute / HOUR_MINUTES) * HOUR_MINUTES;
      if (e > s) buckets.push({ start: s, end: e, computeEnd: Math.min(e, visible) });
    } else {
      for (let b = Math.floor(startMinute / width) * width; b < endMinute; b += width) {
        buckets.push({ start: b, end: b + width, computeEnd: Math.min(b + width, endMinute, visible) });
      }
    }

    const set = (name: string) => {
      const v = many(q, name);
      return v ? new Set(v) : null;
    };
    const keyIds = set('api_key_ids');
    const workspaceIds = set('workspace_ids');
    const actorTypes = set('actor_types');
    for (const t of actorTypes ?? []) {
      if (!(ACTOR_TYPES as readonly string[]).includes(t)) throw bad(`actor_types: "${t}" is not an actor type`);
    }
    const actorIds = set('actor_ids');
    const sources = [...org.keys, ...org.federated].filter((k) => {
      const actor = actorOf(k, now);
      const actorId = (actor.user_id ?? actor.service_account_id ?? actor.api_key_id ?? actor.subject) as string;
      return (
        (!keyIds || keyIds.has(isFederated(k) ? '' : k.id)) &&
        (!workspaceIds || workspaceIds.has(workspaceOf(k) ?? '')) &&
        (!actorTypes || actorTypes.has(actor.type)) &&
        (!actorIds || actorIds.has(actorId))
      );
    });
    const models = set('models');
    const tiers = set('service_tiers');
    const windows = set('context_windows');
    const geos = set('inference_geos');
    const slotPasses = (slot: UsageSlot) =>
      (!models || models.has(slot.model)) &&
      (!tiers || tiers.has(slot.serviceTier)) &&
      (!windows || windows.has(slot.contextWindow)) &&
      (!geos || geos.has(slot.inferenceGeo));
    return { endpoint, buckets, groupBy, limit, orderBy, order, sources, slotPasses };
  }

  /** The analytics API names the Default Workspace by its real id; organization-scoped keys have none. */
  function workspaceOf(k: Source): string | null {
    if (k.workspace !== null) return k.workspace.id;
    return !isFederated(k) && k.scope === 'organization' ? null : org.defaultWorkspace.id;
  }

  function dimsOf(k: Source, slot: UsageSlot, g: Set<string>, now: number): Record<string, unknown> {
    const d: Record<string, unknown> = {};
    for (const name of ANALYTICS_GROUP_BY) d[name] = null;
    if (g.has('api_key_id')) d.api_key_id = isFederated(k) ? null : k.id;
    if (g.has('workspace_id')) d.workspace_id = workspaceOf(k);
    if (g.has('model')) d.model = slot.model;
    if (g.has('service_tier')) d.service_tier = slot.serviceTier;
    if (g.has('context_window')) d.context_window = slot.contextWindow;
    // the analytics API has no `not_available`: an unset region is null
    if (g.has('inference_geo')) d.inference_geo = slot.inferenceGeo === 'not_available' ? null : slot.inferenceGeo;
    if (g.has('speed')) d.speed = 'standard';
    if (g.has('product')) d.product = slot.serviceTier === 'batch' ? 'message_batches_api' : 'messages_api';
    if (g.has('actor') || g.has('actor_type')) {
      const actor = actorOf(k, now);
      if (g.has('actor')) d.actor = actor;
      if (g.has('actor_type')) d.actor_type = actor.type;
    }
    return d;
  }

  function groups(query: Query, now: number): Group[] {
    const out: Group[] = [];
    for (const b of query.buckets) {
      const byId = new Map<string, Group>();
      if (b.computeEnd <= b.start) continue;
      for (const k of query.sources) {
        for (const cell of keyCells(k, b.start, b.computeEnd)) {
          if (!query.slotPasses(cell.slot)) continue;
          // blocked requests: reported as usage, never billed
          if (query.endpoint === 'cost' && cell.slot.blocked) continue;
          const dims = dimsOf(k, cell.slot, query.groupBy, now);
          const id = JSON.stringify(dims);
          let group = byId.get(id);
          if (!group) {
            group = { start: b.start, end: b.end, id, dims, cells: [] };
            byId.set(id, group);
          }
          group.cells.push(cell);
        }
      }
      out.push(...byId.values());
    }
    return out;
  }

  function usageRow(g: Group): { metric: Record<string, bigint>; rows: object[] } {
    const c = zeroCounts();
    let requests = 0;
    for (const cell of g.cells) {
      addCounts(c, cell.counts);
      requests += cell.requests;
    }
    const total =
      c.uncached_input_tokens +
      c.cache_read_input_tokens +
      c.cache_creation_5m_input_tokens +
      c.cache_creation_1h_input_tokens +
      c.output_tokens;
    const metric = {
      total_tokens: BigInt(total),
      output_tokens: BigInt(c.output_tokens),
      requests: BigInt(requests),
      uncached_input_tokens: BigInt(c.uncached_input_tokens),
    };
    const row = {
      starting_at: iso(g.start),
      ending_at: iso(g.end),
      group: g.dims,
      usage: {
        uncached_input_tokens: c.uncached_input_tokens,
        cache_read_input_tokens: c.cache_read_input_tokens,
        cache_creation: {
          ephemeral_5m_input_tokens: c.cache_creation_5m_input_tokens,
          ephemeral_1h_input_tokens: c.cache_creation_1h_input_tokens,
        },
        output_tokens: c.output_tokens,
        server_tool_use: { web_search_requests: c.web_search_requests },
        requests,
        total_tokens: total,
      },
    };
    return { metric, rows: [row] };
  }

  /** A group's cost, priced per (model, tier, window) cell at the bucket's day, then fanned out when asked. */
  function costRows(g: Group, fanOut: Set<string>): { metric: Record<string, bigint>; rows: object[] } {
    const parts: CostParts = {
      uncached_input: 0n,
      cache_read: 0n,
      cache_write_5m: 0n,
      cache_write_1h: 0n,
      output: 0n,
      web_search: 0n,
    };
    let requests = 0;
    const at = new Date(g.start * MINUTE_MS);
    for (const cell of g.cells) {
      const priced = priceUsage(
        {
          model: cell.slot.model,
          service_tier: cell.slot.serviceTier,
          context_window: cell.slot.contextWindow,
          ...cell.counts,
        },
        org.priceTable,
        at,
      );
      for (const p of Object.keys(parts) as Array<keyof CostParts>) parts[p] += priced.parts[p];
      requests += cell.requests;
    }
    const tokens = parts.uncached_input + parts.cache_read + parts.cache_write_5m + parts.cache_write_1h + parts.output;
    const total = tokens + parts.web_search;
    const row = (amount: Pico, costType: string | null, tokenType: string | null, withRequests: boolean) => ({
      starting_at: iso(g.start),
      ending_at: iso(g.end),
      group: { ...g.dims, cost_type: costType, token_type: tokenType },
      cost: {
        amount: picoToCents(amount),
        currency: 'USD',
        list_amount: picoToCents(amount),
        requests: withRequests ? requests : null,
      },
    });
    const rows: object[] = [];
    if (fanOut.has('token_type')) {
      const kinds: Array<[keyof CostParts, string]> = [
        ['uncached_input', 'uncached_input_tokens'],
        ['output', 'output_tokens'],
        ['cache_read', 'cache_read_input_tokens'],
        ['cache_write_5m', 'cache_creation.ephemeral_5m_input_tokens'],
        ['cache_write_1h', 'cache_creation.ephemeral_1h_input_tokens'],
      ];
      for (const [part, tokenType] of kinds)
        if (parts[part] > 0n) rows.push(row(parts[part], 'tokens', tokenType, false));
      if (fanOut.has('cost_type') && parts.web_search > 0n) rows.push(row(parts.web_search, 'web_search', null, false));
    } else if (fanOut.has('cost_type')) {
      if (tokens > 0n) rows.push(row(tokens, 'tokens', null, false));
      if (parts.web_search > 0n) rows.push(row(parts.web_search, 'web_search', null, false));
    } else if (total > 0n) rows.push(row(total, null, null, true));
    return { metric: { amount: total, list_amount: total }, rows };
  }

  function rank(endpoint: Endpoint, query: Query, now: number): Ranked[] {
    const fanOut = new Set([...query.groupBy].filter((g) => (COST_FAN_OUT as readonly string[]).includes(g)));
    const ranked = groups(query, now)
      .map((g) => ({ g, ...(endpoint === 'cost' ? costRows(g, fanOut) : usageRow(g)) }))
      .filter((r) => r.rows.length > 0);
    const metricName = query.orderBy === 'time' ? (endpoint === 'cost' ? 'amount' : 'total_tokens') : query.orderBy;
    const sign = query.order === 'asc' ? 1 : -1;
    const byMetric = (a: (typeof ranked)[number], b: (typeof ranked)[number], s: number) => {
      const x = a.metric[metricName]!;
      const y = b.metric[metricName]!;
      return x === y ? 0 : x < y ? -s : s;
    };
    ranked.sort(
      (a, b) =>
        (query.orderBy === 'time' ? (a.g.start - b.g.start) * sign || byMetric(a, b, -1) : byMetric(a, b, sign)) ||
        a.g.start - b.g.start ||
        (a.g.id < b.g.id ? -1 : a.g.id > b.g.id ? 1 : 0),
    );
    return ranked;
  }

  /**
   * The last query's ranked rows: a walk asks for the same query page after page, and computing it again for each
   * page would make a month of 5,000 keys quadratic. Keyed by the query without its page and by what is visible.
   */
  let last: { id: string; ranked: Ranked[] } | null = null;

  function answer(endpoint: Endpoint, q: URLSearchParams, now: number): object {
    const query = parse(endpoint, q, now);
    const params = new URLSearchParams(q);
    params.delete('page');
    params.sort();
    const id = `${endpoint}|${Math.min(visibleEnd(now), Math.floor(now / MINUTE_MS))}|${params}`;
    if (last?.id !== id) last = { id, ranked: rank(endpoint, query, now) };
    const ranked = last.ranked;
    const token = q.get('page');
    let from = 0;
    if (token !== null) {
      const decoded = token.startsWith('page_') ? Buffer.from(token.slice(5), 'base64').toString('utf8') : '';
      from = /^\d+$/.test(decoded) ? Number(decoded) : -1;
      if (from < 0 || from > ranked.length) throw bad('page: not a page token from this query');
    }
    const slice = ranked.slice(from, from + query.limit);
    const data = slice.flatMap((r) => r.rows);
    if (data.length > MAX_PAGE_ROWS) {
      throw new HttpError(
        400,
        `this page would hold ${data.length} rows (at most ${MAX_PAGE_ROWS}); send a lower limit`,
        'report_page_too_large',
      );
    }
    const next = from + query.limit;
    const more = next < ranked.length;
    const refreshed = Math.min(visibleEnd(now), Math.floor(now / MINUTE_MS));
    return {
      data,
      has_more: more,
      next_page: more ? `page_${Buffer.from(String(next)).toString('base64')}` : null,
      data_refreshed_at: iso(refreshed),
    };
  }

  return {
    route(path, q, now) {
      if (!ANALYTICS_PATHS.has(path)) return null;
      if (org.scenario.analytics_api === 'refused') {
        throw new HttpError(
          403,
          'this organization does not have access to the Usage and Cost Analytics API',
          'api_key_scope_missing',
        );
      }
      return answer(path.endsWith('/cost') ? 'cost' : 'usage', q, now);
    },
    billedPico(keyId, from, to, now) {
      const k = org.key(keyId);
      if (!k) throw new Error(`billedPico: no key ${keyId} in scenario ${org.scenario.name}`);
      const end = Math.min(Math.floor(to / MINUTE_MS), visibleEnd(now));
      let total = 0n;
      // priced per UTC day, as the cost rows of a 1d bucket are
      for (let day = Math.floor(from / DAY_MS) * 1440; day < end; day += 1440) {
        const s = Math.max(day, Math.floor(from / MINUTE_MS));
        const e = Math.min(day + 1440, end);
        if (e <= s) continue;
        const g: Group = { start: day, end: day + 1440, id: '', dims: {}, cells: [] };
        g.cells = keyCells(k, s, e).filter((c) => !c.slot.blocked);
        total += costRows(g, new Set()).metric.amount!;
      }
      return total;
    },
  };
}
