import type { Repos } from '../db/repos/index.ts';
import type { StoredProjection } from '../db/repos/spend.ts';
import { DEFAULT_WORKSPACE_NAME, DEFAULT_WORKSPACE_SCOPE_ID } from '../default-workspace.ts';
import { type Pico, picoToUsd } from '../money.ts';

/** One line of `keywarden spend`. Amounts are exact USD strings (12 places) in JSON, cents in the table. */
export interface SpendRow {
  scopeType: StoredProjection['scopeType'];
  scopeId: string;
  name: string;
  limitUsd: string | null;
  /** Priced: usage × keywarden's price table (what projections and limits use). */
  monthToDateUsd: string;
  /**
   * Billed: what the analytics cost API says Anthropic bills this UTC month (post-discount); null (or absent) where
   * it is unknown (the organization has no analytics access, or nothing was read yet).
   */
  billedMonthToDateUsd?: string | null;
  /** The month-end total's 10th percentile: with p90, the band the status page draws. */
  p10Usd: string;
  p50Usd: string;
  p90Usd: string;
  /** p90 ÷ limit, as a fraction, to a thousandth; null without a limit. */
  p90ShareOfLimit: number | null;
  /** When the limit is expected to be reached on the likely (p50) and the fast (p90) path. */
  crossingP50: string | null;
  crossingP90: string | null;
  method: string;
}

export interface SpendReport {
  month: string;
  madeAt: string;
  rows: SpendRow[];
}

const ORDER = { organization: 0, workspace: 1, key: 2 } as const;

/** The newest stored run, one row per scope: the organization, then workspaces and keys by likely month total. */
export async function spendReport(repos: Pick<Repos, 'spend' | 'keys' | 'billing'>): Promise<SpendReport | null> {
  const stored = await repos.spend.latest();
  const [first] = stored;
  if (first === undefined) return null;
  const monthStart = new Date(`${first.month}-01T00:00:00Z`);
  const monthEnd = new Date(Date.UTC(monthStart.getUTCFullYear(), monthStart.getUTCMonth() + 1, 1));
  const billed = await repos.billing.billedSummary(monthStart, monthEnd);
  const billedOf = (p: StoredProjection): string | null => {
    if (billed === null) return null;
    if (p.scopeType === 'organization') return picoToUsd(billed.total.billed);
    const b =
      p.scopeType === 'key'
        ? billed.byKey.get(p.scopeId)
        : billed.byWorkspace.get(p.scopeId === DEFAULT_WORKSPACE_SCOPE_ID ? null : p.scopeId);
    return picoToUsd(b?.billed ?? 0n);
  };
  const workspaces = await repos.keys.workspaceNames();
  const keys = await repos.keys.keyPlaces();
  const nameOf = (p: StoredProjection) => {
    if (p.scopeType === 'organization') return 'Organization';
    if (p.scopeType === 'workspace')
      return p.scopeId === DEFAULT_WORKSPACE_SCOPE_ID
        ? DEFAULT_WORKSPACE_NAME
        : (workspaces.get(p.scopeId) ?? p.scopeId);
    return keys.get(p.scopeId)?.name ?? p.scopeId;
  };
  const rows = [...stored]
    .sort(
      (a, b) =>
        ORDER[a.scopeType] - ORDER[b.scopeType] || compareDesc(a.p50, b.p50) || a.scopeId.localeCompare(b.scopeId),
    )
    .map((p) => ({
      scopeType: p.scopeType,
      scopeId: p.scopeId,
      name: nameOf(p),
      limitUsd: p.limit === null ? null : picoToUsd(p.limit),
      monthToDateUsd: picoToUsd(p.monthToDate),
      billedMonthToDateUsd: billedOf(p),
      p10Usd: picoToUsd(p.p10),
      p50Usd: picoToUsd(p.p50),
      p90Usd: picoToUsd(p.p90),
      p90ShareOfLimit: p.limit === null || p.limit === 0n ? null : Number((p.p90 * 1000n) / p.limit) / 1000,
      crossingP50: p.crossingP50,
      crossingP90: p.crossingP90,
      method: p.method,
    }));
  return { month: first.month, madeAt: first.madeAt.toISOString(), rows };
}

function compareDesc(a: Pico, b: Pico): number {
  return a === b ? 0 : a > b ? -1 : 1;
}
