import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { type RaiseAlertsResult, raiseAlerts } from '../alerts/store.ts';
import type { AnalyticsCostRow } from '../anthropic/analytics.ts';
import type { Context } from '../context.ts';
import { WATERMARKS } from '../db/repos/watermarks.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';
import {
  type BilledActor,
  type BilledRow,
  type BilledWidth,
  billedRows,
  byKeyAndPeriod,
  compareKeyCosts,
  type DriftKeyInfo,
  type KeyCostComparison,
  keyDriftObservations,
  planBilledRead,
} from './core/billed.ts';
import { readUsageFreshness } from './freshness.ts';

type BilledCtx = Pick<Context, 'repos' | 'admin' | 'clock'> & { signal?: AbortSignal };

export interface BilledIngest {
  /** Rows stored, per width. */
  days: number;
  hours: number;
  /** The oldest `data_refreshed_at` of the pages read (null: the API sent none). */
  dataRefreshedAt: Date | null;
}

/**
 * The billed cost's dimensions: per key (what only this API has), its workspace, the model (blocked requests), and
 * the actor behind the key's spend (a user, a service account, a federated identity, or the key itself).
 */
const BILLED_GROUP_BY = ['api_key_id', 'workspace_id', 'model', 'actor'] as const;

/** The actor as stored: an id for every type that has one, and a user's email (organization-controlled text). */
function actorOf(a: AnalyticsCostRow['actor']): BilledActor | null {
  if (a === null) return null;
  if ('userId' in a) return { type: a.type, id: a.userId, label: a.email ?? a.name };
  if ('serviceAccountId' in a) return { type: a.type, id: a.serviceAccountId, label: null };
  if ('apiKeyId' in a) return { type: a.type, id: a.apiKeyId, label: null };
  if ('subject' in a) return { type: a.type, id: a.subject ?? '', label: null };
  return { type: a.type, id: '', label: null };
}

/**
 * Reads billed cost per key, workspace and model from the analytics cost API (planBilledRead: closed days again from
 * the watermark less the days the API restates, today's hours) and replaces the stored rows. Throws
 * AnalyticsRefusedError when the organization cannot use the API.
 */
export async function ingestBilledCost(ctx: BilledCtx): Promise<BilledIngest> {
  const now = ctx.clock.now();
  const plan = planBilledRead(await ctx.repos.watermarks.read(WATERMARKS.billedDays), now);
  let refreshed: Date | null = null;
  /** The pages of one range as stored rows, noting the oldest `data_refreshed_at` they carry. */
  async function* pages(range: { start: Date; end: Date }, width: BilledWidth): AsyncGenerator<BilledRow[]> {
    const walk = ctx.admin.analytics
      .cost(
        { startingAt: range.start, endingAt: range.end, bucketWidth: width, groupBy: BILLED_GROUP_BY },
        { signal: ctx.signal },
      )
      .pages();
    for await (const page of walk) {
      const at = page.dataRefreshedAt;
      if (at !== null && (refreshed === null || at < refreshed)) refreshed = at;
      yield billedRows(
        page.data.map((r) => ({ ...r, actor: actorOf(r.actor) })),
        width,
        at,
      );
    }
  }
  // the last RESTATED_DAYS closed days are read again by the next runs: the API restates recent days
  const days = plan.days
    ? await ctx.repos.billing.replaceBilled(
        { width: '1d', ...plan.days },
        pages(plan.days, '1d'),
        WATERMARKS.billedDays,
      )
    : 0;
  const hours = plan.hours
    ? await ctx.repos.billing.replaceBilled({ width: '1h', ...plan.hours }, pages(plan.hours, '1h'), null)
    : 0;
  return { days, hours, dataRefreshedAt: refreshed };
}

export interface KeyReconciliation {
  compared: number;
  drifted: KeyCostComparison[];
  /** Key-periods with usage the bill has no cost for (blocked requests). */
  unbilled: KeyCostComparison[];
  alerts: RaiseAlertsResult;
}

/**
 * Priced usage against the stored bill per key and day (closed days of the UTC month) and hour (today), up to
 * where both are complete; raises `cost.drift` per drifting key and resolves the keys that no longer drift.
 */
export async function reconcileKeys(
  ctx: Pick<Context, 'repos' | 'config' | 'clock'>,
  billedRefreshedAt: Date | null,
): Promise<KeyReconciliation> {
  const now = ctx.clock.now();
  const today = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const { settled } = await readUsageFreshness(ctx.repos);
  const until = [now, settled, billedRefreshedAt ?? (await ctx.repos.billing.billedRefreshedAt())].reduce<Date>(
    (min, d) => (d !== null && d < min ? d : min),
    now,
  );
  // nothing is comparable before the usage poll has settled anything
  const comparableUntil = settled === null ? monthStart : until;
  // a period at a time (the closed days, then today's hours), with a turn of the event loop between: the month's
  // priced cells and bill at once were over 100,000 cells each for 5,000 keys, held in memory together and
  // converted and compared in one synchronous stretch; periods compare independently
  const periods: { start: Date; end: Date; width: BilledWidth }[] = [];
  for (let d = monthStart.getTime(); d < today.getTime(); d += DAY_MS) {
    periods.push({ start: new Date(d), end: new Date(d + DAY_MS), width: '1d' });
  }
  for (let h = today.getTime(); h < now.getTime(); h += HOUR_MS) {
    periods.push({ start: new Date(h), end: new Date(Math.min(h + HOUR_MS, now.getTime())), width: '1h' });
  }
  let compared = 0;
  const drifted: KeyCostComparison[] = [];
  const unbilled: KeyCostComparison[] = [];
  for (const p of periods) {
    const [priced, billed] = await Promise.all([
      ctx.repos.usage.pricedByKeyModel(p.start, p.end, p.width),
      ctx.repos.billing.billedCells(p.start, p.end),
    ]);
    for (const c of compareKeyCosts(priced, billed, comparableUntil)) {
      compared++;
      if (c.drifted) drifted.push(c);
      if (c.unbilled > 0n) unbilled.push(c);
    }
    await yieldToLoop();
  }
  drifted.sort(byKeyAndPeriod);
  unbilled.sort(byKeyAndPeriod);
  const keys = new Map<string, DriftKeyInfo>(
    (await ctx.repos.keys.withWorkspace([...new Set(drifted.map((c) => c.keyId))])).map((k) => [
      k.id,
      { name: k.name, workspaceId: k.workspaceId, workspaceName: k.workspaceName },
    ]),
  );
  const alerts = await raiseAlerts(
    ctx,
    { kinds: ['cost.drift'], observations: keyDriftObservations(drifted, keys) },
    ctx.config.policy.routes,
    now,
  );
  return { compared, drifted, unbilled, alerts };
}
