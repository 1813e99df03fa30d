import { sql } from 'kysely';
import type { AdminClient } from '../anthropic/client.ts';
import type { CostBucket } from '../anthropic/types.ts';
import type { Db } from '../db/index.ts';
import { type Pico, picoToUsd, usdToPico } from '../money.ts';

/** Drift above this share of the reported cost is recorded (and shown in the finance digest). */
export const DRIFT_THRESHOLD = 0.02;

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

/** Stores the cost report's days (by workspace and description), replacing what an earlier run stored for them. */
export async function storeCostReport(db: Db, buckets: readonly CostBucket[], fetchedAt: Date): Promise<DayCost[]> {
  const totals = new Map<string, DayCost>();
  const rows = new Map<string, Parameters<typeof insertCostRows>[1][number]>();
  for (const b of buckets) {
    const day = b.starting_at.toISOString().slice(0, 10);
    for (const r of b.results) {
      const total = totals.get(slot(day, r.workspace_id)) ?? { day, workspaceId: r.workspace_id, pico: 0n };
      total.pico += r.amount_pico;
      totals.set(slot(day, r.workspace_id), total);
      // one row per (day, workspace, description): descriptions repeat across token types only when not grouped
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
  const days = [...new Set(buckets.map((b) => b.starting_at.toISOString().slice(0, 10)))];
  await db.transaction().execute(async (tx) => {
    if (days.length > 0) await tx.deleteFrom('cost_buckets').where('day', 'in', days).execute();
    await insertCostRows(tx, [...rows.values()]);
  });
  return [...totals.values()];
}

async function insertCostRows(
  db: Db,
  rows: {
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
  }[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += 1000)
    await db
      .insertInto('cost_buckets')
      .values(rows.slice(i, i + 1000))
      .execute();
}

/** Priced usage (every bucket width) per UTC day and workspace in [from, to). Summed in numeric: exact. */
export async function loadPricedByDay(db: Db, from: Date, to: Date): Promise<DayCost[]> {
  const rows = await db
    .selectFrom('usage_buckets')
    .select([
      sql<string>`to_char(starting_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`.as('day'),
      'workspace_id',
      sql<string>`sum(cost_usd)::text`.as('usd'),
    ])
    .where('starting_at', '>=', from)
    .where('starting_at', '<', to)
    .groupBy([sql`1`, 'workspace_id'])
    .execute();
  return rows.map((r) => ({ day: r.day, workspaceId: r.workspace_id, pico: usdToPico(r.usd) }));
}

/** Records the drifted days and clears earlier records of days that no longer drift, for the compared days. */
export async function storeDrift(db: Db, comparisons: readonly CostComparison[], at: Date): Promise<void> {
  const days = [...new Set(comparisons.map((c) => c.day))];
  const drifted = comparisons.filter((c) => c.drifted);
  await db.transaction().execute(async (tx) => {
    if (days.length > 0) await tx.deleteFrom('cost_drift').where('day', 'in', days).execute();
    if (drifted.length === 0) return;
    await tx
      .insertInto('cost_drift')
      .values(
        drifted.map((c) => ({
          day: c.day,
          workspace_id: c.workspaceId,
          reported_usd: picoToUsd(c.reported),
          priced_usd: picoToUsd(c.priced),
          // a double column: Infinity is valid in Postgres
          drift_ratio: c.driftRatio,
          recorded_at: at,
        })),
      )
      .execute();
  });
}

export interface ReconcileResult {
  from: string;
  compared: number;
  drifted: CostComparison[];
}

/**
 * The cost report for the month to date (UTC month) into Postgres, compared per workspace and day with priced
 * usage; drifts over the threshold are recorded in `cost_drift` (the metric and the finance digest read it).
 */
export async function reconcileMonthToDate(
  db: Db,
  admin: AdminClient,
  now: Date,
  signal?: AbortSignal,
): Promise<ReconcileResult> {
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  const buckets: CostBucket[] = [];
  const report = admin.costReport(
    { startingAt: from, endingAt: to, groupBy: ['workspace_id', 'description'] },
    { signal },
  );
  for await (const b of report) buckets.push(b);
  const reported = await storeCostReport(db, buckets, now);
  const priced = await loadPricedByDay(db, from, to);
  const comparisons = compareCosts(reported, priced);
  await storeDrift(db, comparisons, now);
  return {
    from: from.toISOString().slice(0, 10),
    compared: comparisons.length,
    drifted: comparisons.filter((c) => c.drifted),
  };
}
