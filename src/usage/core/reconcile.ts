import { type Pico, picoToUsd, usdToPico } from '../../money.ts';

/** Drift above this share of the reported cost is recorded (and shown in the finance digest). */
const DRIFT_THRESHOLD = 0.02;

/** One workspace's cost on one UTC day; `workspaceId` null is the Default Workspace. */
export interface DayCost {
  day: string;
  workspaceId: string | null;
  pico: Pico;
}

export interface CostComparison {
  day: string;
  workspaceId: string | null;
  reported: Pico;
  priced: Pico;
  /** |priced − reported| / reported; Infinity when nothing was reported but usage was priced. */
  driftRatio: number;
  drifted: boolean;
}

const slot = (day: string, ws: string | null) => `${day}|${ws ?? ''}`;

/**
 * Compares, per workspace and day, the cost report with usage priced by keywarden. Pure. Every (day, workspace) on
 * either side is compared: a workspace that only one side knows is a drift in itself.
 */
export function compareCosts(
  reported: readonly DayCost[],
  priced: readonly DayCost[],
  threshold = DRIFT_THRESHOLD,
): CostComparison[] {
  const rows = new Map<string, CostComparison>();
  const at = (day: string, workspaceId: string | null) => {
    const id = slot(day, workspaceId);
    let row = rows.get(id);
    if (!row) {
      row = { day, workspaceId, reported: 0n, priced: 0n, driftRatio: 0, drifted: false };
      rows.set(id, row);
    }
    return row;
  };
  for (const r of reported) at(r.day, r.workspaceId).reported += r.pico;
  for (const p of priced) at(p.day, p.workspaceId).priced += p.pico;
  for (const row of rows.values()) {
    const diff = row.priced > row.reported ? row.priced - row.reported : row.reported - row.priced;
    // the ratio is for display and the threshold only; sums stay bigint
    row.driftRatio =
      row.reported === 0n ? (diff === 0n ? 0 : Number.POSITIVE_INFINITY) : Number(diff) / Number(row.reported);
    row.drifted = row.driftRatio > threshold;
  }
  return [...rows.values()].sort(
    (a, b) => a.day.localeCompare(b.day) || slot(a.day, a.workspaceId).localeCompare(slot(b.day, b.workspaceId)),
  );
}

/** One day of the cost report as the Admin API client reads it (CostBucket), the fields reconciliation keeps. */
export interface ReportedCostDay {
  starting_at: Date;
  results: readonly {
    workspace_id: string | null;
    description?: string | null;
    cost_type: string | null;
    model: string | null;
    token_type: string | null;
    service_tier: string | null;
    context_window: string | null;
    amount_pico: Pico;
    currency: string;
  }[];
}

/** A cost report row as stored: one per day, workspace and description (`cost_buckets`). */
export interface CostReportRow {
  day: string;
  workspace_id: string | null;
  description: string;
  cost_type: string | null;
  model: string | null;
  token_type: string | null;
  service_tier: string | null;
  context_window: string | null;
  amount_usd: string;
  currency: string;
  fetched_at: Date;
}

/**
 * The cost report's days as rows to store (by day, workspace and description), the days they replace, and totals per day and workspace
 * to compare. Pure. Descriptions repeat across token types only when not grouped: they are summed into one row.
 */
export function costReportDays(
  buckets: readonly ReportedCostDay[],
  fetchedAt: Date,
): { days: string[]; rows: CostReportRow[]; totals: DayCost[] } {
  const totals = new Map<string, DayCost>();
  const rows = new Map<string, CostReportRow>();
  for (const b of buckets) {
    const day = b.starting_at.toISOString().slice(0, 10);
    for (const r of b.results) {
      const total = totals.get(slot(day, r.workspace_id)) ?? { day, workspaceId: r.workspace_id, pico: 0n };
      total.pico += r.amount_pico;
      totals.set(slot(day, r.workspace_id), total);
      const id = `${slot(day, r.workspace_id)}|${r.description ?? ''}`;
      const prev = rows.get(id);
      const pico = (prev ? usdToPico(prev.amount_usd) : 0n) + r.amount_pico;
      rows.set(id, {
        day,
        workspace_id: r.workspace_id,
        description: r.description ?? '',
        cost_type: r.cost_type,
        model: r.model,
        token_type: r.token_type,
        service_tier: r.service_tier,
        context_window: r.context_window,
        amount_usd: picoToUsd(pico),
        currency: r.currency,
        fetched_at: fetchedAt,
      });
    }
  }
  // every day the report answered, with results or without: a day whose costs were withdrawn is cleared too
  const days = [...new Set(buckets.map((b) => b.starting_at.toISOString().slice(0, 10)))];
  return { days, rows: [...rows.values()], totals: [...totals.values()] };
}
