import type { CostGroupBy, UsageGroupBy } from '../anthropic/types.ts';
import { type Pico, picoToCents } from '../money.ts';
import { MINUTE_MS } from '../time.ts';
import { type CostParts, findPriceEntry, priceUsage } from '../usage/core/pricing.ts';
import type { SimKey, SimulatedOrg, SimWorkspace } from './org.ts';
import {
  addCounts,
  CONTEXT_WINDOWS,
  forEachUsage,
  SERVICE_TIERS,
  type UsageCounts,
  type UsageSlot,
  zeroCounts,
} from './traffic.ts';

/**
 * The usage and cost reports over the simulated organization, as JSON-ready buckets. Time is in minutes since
 * the epoch; `visibleEnd` is the first minute whose usage is not visible yet (freshness delay and "now" applied by
 * the caller), so no report ever shows the future.
 */

export interface UsageFilters {
  apiKeyIds?: ReadonlySet<string>;
  workspaceIds?: ReadonlySet<string>;
  models?: ReadonlySet<string>;
  serviceTiers?: ReadonlySet<string>;
  contextWindows?: ReadonlySet<string>;
  inferenceGeos?: ReadonlySet<string>;
  speeds?: ReadonlySet<string>;
  accountIds?: ReadonlySet<string>;
  serviceAccountIds?: ReadonlySet<string>;
}

export interface UsageQuery {
  bucketStarts: readonly number[];
  widthMinutes: number;
  groupBy: ReadonlySet<UsageGroupBy>;
  filters: UsageFilters;
}

interface UsageGroup extends UsageCounts {
  key: SimKey;
  slot: UsageSlot;
}

function iso(minute: number): string {
  return new Date(minute * MINUTE_MS).toISOString().replace('.000Z', 'Z');
}

/** Whether a slot passes the request's slot-level filters. Speed is always `standard`; account ids always null. */
function slotFilter(f: UsageFilters): (slot: UsageSlot) => boolean {
  if (f.accountIds || f.serviceAccountIds || (f.speeds && !f.speeds.has('standard'))) return () => false;
  const cache = new Map<UsageSlot, boolean>();
  return (slot) => {
    let ok = cache.get(slot);
    if (ok === undefined) {
      ok =
        (!f.models || f.models.has(slot.model)) &&
        (!f.serviceTiers || f.serviceTiers.has(slot.serviceTier)) &&
        (!f.contextWindows || f.contextWindows.has(slot.contextWindow)) &&
        (!f.inferenceGeos || f.inferenceGeos.has(slot.inferenceGeo));
      cache.set(slot, ok);
    }
    return ok;
  };
}

export function usageReportBuckets(org: SimulatedOrg, q: UsageQuery, visibleEnd: number): object[] {
  const f = q.filters;
  const keys = org.keys.filter(
    (k) =>
      (!f.apiKeyIds || f.apiKeyIds.has(k.id)) &&
      (!f.workspaceIds || (k.workspace !== null && f.workspaceIds.has(k.workspace.id))),
  );
  const passes = slotFilter(f);
  const g = q.groupBy;
  const byKey = g.has('api_key_id');
  const byWorkspace = g.has('workspace_id');
  const byModel = g.has('model');
  const byTier = g.has('service_tier');
  const byWindow = g.has('context_window');
  const byGeo = g.has('inference_geo');
  const workspaceRadix = org.workspaces.length + 2;
  const modelRadix = org.models.length + 1;

  const buckets: object[] = [];
  let groups = new Map<number, UsageGroup>();
  let current: SimKey = keys[0]!;
  // One emit function for the whole report: the group id is a mixed-radix number of the grouped dimensions
  // (0 where not grouped), which keeps the hot loop free of string building.
  const emit = (slot: UsageSlot, c: UsageCounts) => {
    if (!passes(slot)) return;
    const ws = current.workspace;
    let id = byKey ? current.index + 1 : 0;
    id = id * workspaceRadix + (byWorkspace ? (ws === null ? 1 : ws.index + 2) : 0);
    id = id * modelRadix + (byModel ? slot.modelIndex + 1 : 0);
    id = id * 3 + (byTier ? slot.tierIndex + 1 : 0);
    id = id * 3 + (byWindow ? slot.cwIndex + 1 : 0);
    id = id * 3 + (byGeo ? slot.geoIndex + 1 : 0);
    const group = groups.get(id);
    if (group) addCounts(group, c);
    else groups.set(id, { key: current, slot, ...c });
  };

  for (const start of q.bucketStarts) {
    const end = Math.min(start + q.widthMinutes, visibleEnd);
    groups = new Map();
    for (const key of keys) {
      if (key.life.createdAt >= end * MINUTE_MS) continue;
      current = key;
      for (let m = start; m < end; m++) forEachUsage(org.keys, key.index, m, emit);
    }
    const results: object[] = [];
    for (const group of groups.values()) {
      const row: Record<string, unknown> = {
        uncached_input_tokens: group.uncached_input_tokens,
        cache_read_input_tokens: group.cache_read_input_tokens,
        cache_creation: {
          ephemeral_5m_input_tokens: group.cache_creation_5m_input_tokens,
          ephemeral_1h_input_tokens: group.cache_creation_1h_input_tokens,
        },
        output_tokens: group.output_tokens,
        server_tool_use: { web_search_requests: group.web_search_requests },
        api_key_id: byKey ? group.key.id : null,
        workspace_id: byWorkspace ? (group.key.workspace?.id ?? null) : null,
        model: byModel ? group.slot.model : null,
        service_tier: byTier ? group.slot.serviceTier : null,
        context_window: byWindow ? group.slot.contextWindow : null,
        inference_geo: byGeo ? group.slot.inferenceGeo : null,
        account_id: null,
        service_account_id: null,
      };
      // `speed` is a newer dimension, absent from the documented rows unless asked for.
      if (g.has('speed')) row.speed = 'standard';
      results.push(row);
    }
    buckets.push({ starting_at: iso(start), ending_at: iso(start + q.widthMinutes), results });
  }
  return buckets;
}

// ── Cost ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** One priced (model, tier, window) cell of a workspace-day. */
export interface CostCell {
  model: string;
  serviceTier: string;
  contextWindow: string;
  inferenceGeo: string;
  parts: CostParts;
  total: Pico;
}

const DAY_MINUTES = 1440;

/**
 * The priced usage of one workspace (null: the Default Workspace) on one UTC day, up to `visibleEnd`. A day fully
 * visible never changes again (status changes only touch minutes after they happen), so it is kept in `cache`.
 */
export function workspaceDayCost(
  org: SimulatedOrg,
  workspace: SimWorkspace | null,
  day: number,
  visibleEnd: number,
  cache: Map<string, CostCell[]>,
): CostCell[] {
  const start = day * DAY_MINUTES;
  const end = Math.min(start + DAY_MINUTES, visibleEnd);
  const complete = end === start + DAY_MINUTES;
  const cacheId = `${workspace?.id ?? 'default'}|${day}`;
  if (complete) {
    const hit = cache.get(cacheId);
    if (hit) return hit;
  }
  const sums = new Map<number, { slot: UsageSlot; counts: UsageCounts }>();
  const emit = (slot: UsageSlot, c: UsageCounts) => {
    // blocked requests report tokens but cost nothing
    if (slot.blocked) return;
    const id = (slot.modelIndex * SERVICE_TIERS.length + slot.tierIndex) * CONTEXT_WINDOWS.length + slot.cwIndex;
    const cell = sums.get(id);
    if (cell) addCounts(cell.counts, c);
    else {
      const counts = zeroCounts();
      addCounts(counts, c);
      sums.set(id, { slot, counts });
    }
  };
  for (const key of org.keys) {
    if (key.workspace !== workspace || key.life.createdAt >= end * MINUTE_MS) continue;
    for (let m = start; m < end; m++) forEachUsage(org.keys, key.index, m, emit);
  }
  const at = new Date(start * MINUTE_MS);
  const cells: CostCell[] = [];
  for (const { slot, counts } of sums.values()) {
    const priced = priceUsage(
      { model: slot.model, service_tier: slot.serviceTier, context_window: slot.contextWindow, ...counts },
      org.priceTable,
      at,
    );
    cells.push({
      model: slot.model,
      serviceTier: slot.serviceTier,
      contextWindow: slot.contextWindow,
      inferenceGeo: slot.inferenceGeo,
      parts: priced.parts,
      total: priced.cost,
    });
  }
  if (complete) cache.set(cacheId, cells);
  return cells;
}

/** Cost kinds as the cost report names them. Descriptions are [I] in the reference: plausible, not verbatim. */
const TOKEN_KINDS: Array<{ part: keyof CostParts; tokenType: string | null; label: string; costType: string }> = [
  { part: 'uncached_input', tokenType: 'uncached_input_tokens', label: 'Input Tokens', costType: 'tokens' },
  { part: 'output', tokenType: 'output_tokens', label: 'Output Tokens', costType: 'tokens' },
  { part: 'cache_read', tokenType: 'cache_read_input_tokens', label: 'Cache Read Tokens', costType: 'tokens' },
  {
    part: 'cache_write_5m',
    tokenType: 'cache_creation.ephemeral_5m_input_tokens',
    label: '5m Cache Write Tokens',
    costType: 'tokens',
  },
  {
    part: 'cache_write_1h',
    tokenType: 'cache_creation.ephemeral_1h_input_tokens',
    label: '1h Cache Write Tokens',
    costType: 'tokens',
  },
  { part: 'web_search', tokenType: null, label: 'Web Search', costType: 'web_search' },
];

function costRow(amount: Pico, workspaceId: string | null, detail: Record<string, string | null> | null): object {
  return {
    amount: picoToCents(amount),
    currency: 'USD',
    workspace_id: workspaceId,
    description: detail?.description ?? null,
    cost_type: detail?.cost_type ?? null,
    model: detail?.model ?? null,
    token_type: detail?.token_type ?? null,
    service_tier: detail?.service_tier ?? null,
    context_window: detail?.context_window ?? null,
    inference_geo: detail?.inference_geo ?? null,
  };
}

export function costReportBuckets(
  org: SimulatedOrg,
  days: readonly number[],
  groupBy: ReadonlySet<CostGroupBy>,
  visibleEnd: number,
  cache: Map<string, CostCell[]>,
): object[] {
  const byWorkspace = groupBy.has('workspace_id');
  const byDescription = groupBy.has('description');
  const scopes: Array<SimWorkspace | null> = [null, ...org.workspaces];
  return days.map((day) => {
    const start = day * DAY_MINUTES;
    const results: object[] = [];
    let orgTotal = 0n;
    // Without description grouping, rows are per workspace or one for the organization; with it, per cost kind.
    const detailRows = new Map<
      string,
      { amount: Pico; workspaceId: string | null; detail: Record<string, string | null> }
    >();
    for (const ws of scopes) {
      const cells = start < visibleEnd ? workspaceDayCost(org, ws, day, visibleEnd, cache) : [];
      const workspaceId = byWorkspace ? (ws?.id ?? null) : null;
      let wsTotal = 0n;
      for (const cell of cells) {
        wsTotal += cell.total;
        if (!byDescription) continue;
        const name =
          findPriceEntry(org.priceTable, cell.model, new Date(start * MINUTE_MS))?.display_name ?? cell.model;
        const variant = `${cell.serviceTier === 'batch' ? ', Batch' : ''}${cell.contextWindow === '200k-1M' ? ', Long Context' : ''}`;
        for (const kind of TOKEN_KINDS) {
          const amount = cell.parts[kind.part];
          if (amount === 0n) continue;
          const tokens = kind.tokenType !== null;
          const description = tokens ? `${name} Usage - ${kind.label}${variant}` : `${kind.label} Usage`;
          const id = `${workspaceId}|${description}`;
          const existing = detailRows.get(id);
          if (existing) existing.amount += amount;
          else {
            detailRows.set(id, {
              amount,
              workspaceId,
              detail: {
                description,
                cost_type: kind.costType,
                model: tokens ? cell.model : null,
                token_type: kind.tokenType,
                service_tier: tokens ? cell.serviceTier : null,
                context_window: tokens ? cell.contextWindow : null,
                inference_geo: tokens ? cell.inferenceGeo : null,
              },
            });
          }
        }
      }
      orgTotal += wsTotal;
      if (byWorkspace && !byDescription && wsTotal > 0n) results.push(costRow(wsTotal, workspaceId, null));
    }
    if (byDescription) for (const r of detailRows.values()) results.push(costRow(r.amount, r.workspaceId, r.detail));
    else if (!byWorkspace && orgTotal > 0n) results.push(costRow(orgTotal, null, null));
    return { starting_at: iso(start), ending_at: iso(start + DAY_MINUTES), results };
  });
}
