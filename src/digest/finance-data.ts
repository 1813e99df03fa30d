import type { Repos } from '../db/repos/index.ts';
import type { StoredProjection } from '../db/repos/spend.ts';
import { DEFAULT_WORKSPACE_NAME, DEFAULT_WORKSPACE_SCOPE_ID } from '../default-workspace.ts';
import { keyWorkspaceName } from '../inventory/core/key-place.ts';
import { numberUsdToPico, type Pico, usdToPico } from '../money.ts';
import { type ActorSpend, rankActors } from '../usage/core/actors.ts';
import type { PendingIncrease } from './increase-requests.ts';
import { localDate } from './period.ts';

/**
 * Reads what the finance digest shows, for the month in progress in the organization's timezone: spend per local
 * day, per key and per workspace (priced usage, summed exactly in numeric), the latest projection of each scope
 * (written by project-spend), and the days whose priced usage drifts from the cost report (written by
 * reconcile-costs).
 */

export interface ScopeSpend {
  /** Key or workspace id; null: usage without a key (Console, Workbench) or the Default Workspace. */
  id: string | null;
  name: string;
  /** For a key, its workspace's name. */
  workspaceName?: string;
  /** Priced by keywarden (usage × the price table). */
  mtd: Pico;
  /** Billed this UTC month per the analytics cost API; null or absent where unknown (no analytics access). */
  billed?: Pico | null;
  projection: StoredProjection | null;
}

export interface DriftDay {
  /** UTC day: the cost report's days are UTC days. */
  day: string;
  workspaceName: string;
  reported: Pico;
  priced: Pico;
  /** |priced − reported| / reported; Infinity when nothing was reported. */
  ratio: number;
}

export interface FinanceData {
  organizationName: string;
  timezone: string;
  asOf: Date;
  /** Today, in the organization's timezone. */
  today: string;
  /** Days of this month with spend, oldest first (a day without usage is absent). */
  dailySpend: { date: string; usd: Pico }[];
  organization: StoredProjection | null;
  /** The policy's organization limit, for when no projection carries one yet. */
  organizationLimit: Pico | null;
  /** What Anthropic bills this UTC month (the analytics cost API); null or absent where unknown. */
  billedMtd?: Pico | null;
  /**
   * Who is behind this UTC month's billed spend (the analytics cost API's actors), most billed first; null or absent
   * where nothing billed is stored.
   */
  actors?: ActorSpend[] | null;
  /** Every key and workspace with spend this month, most spent first. */
  keys: ScopeSpend[];
  workspaces: ScopeSpend[];
  /** Drifted days of this month, newest first. */
  drift: DriftDay[];
  /** Enterprise: members' pending spend limit increase requests; null or absent: not an Enterprise organization. */
  increaseRequests?: PendingIncrease[] | 'unavailable' | null;
}

interface FinanceDataOptions {
  organizationName: string;
  timezone: string;
  organizationLimitUsd: number | null;
}

export async function loadFinanceData(
  repos: Pick<Repos, 'usage' | 'spend' | 'billing'>,
  now: Date,
  opts: FinanceDataOptions,
): Promise<FinanceData> {
  const tz = opts.timezone;
  const today = localDate(now, tz);
  const monthStart = `${today.slice(0, 8)}01`;
  const month = { monthStart, timezone: tz, until: now };
  const { usage } = repos;

  // the bill is by UTC day: its month is the UTC month
  const billedFrom = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const [daily, byKey, byWorkspace, projections, drift, billed, actors] = await Promise.all([
    usage.monthDailySpend(month),
    usage.monthSpendByKey(month),
    usage.monthSpendByWorkspace(month),
    repos.spend.ofMonth({ month: today.slice(0, 7), at: now }),
    usage.driftSince(monthStart),
    repos.billing.billedSummary(billedFrom, now),
    repos.billing.actorSpend(billedFrom, now),
  ]);
  const billedOf = <K>(map: ReadonlyMap<K, { billed: Pico }> | undefined, id: K) =>
    map === undefined ? null : (map.get(id)?.billed ?? 0n);

  const projectionOf = new Map(projections.map((p) => [`${p.scopeType}:${p.scopeId}`, p]));
  const bySpend = (a: ScopeSpend, b: ScopeSpend) => (b.mtd > a.mtd ? 1 : b.mtd < a.mtd ? -1 : 0);
  const workspaceName = (id: string | null, name: string | null) =>
    id === null ? DEFAULT_WORKSPACE_NAME : (name ?? id);

  return {
    organizationName: opts.organizationName,
    timezone: tz,
    asOf: now,
    today,
    dailySpend: daily.map((d) => ({ date: d.day, usd: usdToPico(d.usd) })),
    // the organization is one scope: whatever id project-spend gives it, its one row this month is the one
    organization: projections.find((p) => p.scopeType === 'organization') ?? null,
    // rounded as spend scopes round it: the same limit in the digest as in the projections
    organizationLimit: opts.organizationLimitUsd === null ? null : numberUsdToPico(opts.organizationLimitUsd),
    billedMtd: billed?.total.billed ?? null,
    actors: actors.length > 0 ? rankActors(actors) : null,
    keys: byKey
      .map((k) => ({
        id: k.id,
        name: k.id === null ? 'No API key (Console and Workbench)' : (k.name ?? k.id),
        workspaceName:
          k.id === null ? '' : keyWorkspaceName(k.scope_type ?? 'workspace', k.workspace_id, k.workspace_name),
        mtd: usdToPico(k.usd),
        billed: billedOf(billed?.byKey, k.id ?? ''),
        projection: k.id === null ? null : (projectionOf.get(`key:${k.id}`) ?? null),
      }))
      .sort(bySpend),
    workspaces: byWorkspace
      .map((w) => ({
        id: w.id,
        name: workspaceName(w.id, w.name),
        mtd: usdToPico(w.usd),
        billed: billedOf(billed?.byWorkspace, w.id),
        projection: projectionOf.get(`workspace:${w.id ?? DEFAULT_WORKSPACE_SCOPE_ID}`) ?? null,
      }))
      .sort(bySpend),
    drift: drift.map((d) => ({
      day: d.day,
      workspaceName: workspaceName(d.workspace_id, d.workspace_name),
      reported: usdToPico(d.reported_usd),
      priced: usdToPico(d.priced_usd),
      ratio: d.drift_ratio,
    })),
  };
}
