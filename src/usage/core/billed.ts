import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { formatUsd, type Pico, picoToUsd } from '../../money.ts';
import { DAY_MS, HOUR_MS } from '../../time.ts';

/**
 * Billed cost per key, and priced usage reconciled against it (pure).
 *
 * Sources. The 1-minute poll stays on the classic usage report: its empty buckets and 1-minute ranges are what the
 * watermark's gap-free guarantee and the kill/restart drills rest on, and the analytics rows (no empty buckets,
 * ranked, 24-hour 1m ranges) would give that up for nothing the poll needs. What only the analytics API has is the
 * bill per key: its cost endpoint, grouped by api_key_id, workspace_id and model, is read hourly in 1d buckets for
 * closed UTC days and 1h buckets for today, and stored beside the priced usage.
 *
 * Comparison. Priced usage is keywarden's tokens × the list price table, so it is compared with the analytics
 * `list_amount` (list price too): a negotiated discount is not a drift, and a wrong or missing price is. The billed
 * `amount` is what finance is shown as billed. Per key and UTC day (closed days) and per key and hour (today);
 * only periods both sides have complete (the usage poll's settled watermark, the page's `data_refreshed_at`).
 * A model a key used that the bill has no cost for in a period is blocked requests (tokens reported, nothing
 * billed): set apart as unbilled, never a drift on its own.
 */

/** Drift above this share of the list-price cost is a `cost.drift`. */
const KEY_DRIFT_THRESHOLD = 0.02;
/** Smaller differences are never a drift, whatever the ratio: a cent on a few cents of traffic is noise. */
const MIN_DRIFT_PICO = 10_000_000_000n;
/** Closed days re-read each run: the API restates recent data (late usage, corrections). */
const RESTATED_DAYS = 3;
/** The analytics API's longest range. */
const MAX_RANGE_DAYS = 31;

export type BilledWidth = '1h' | '1d';

/** A row of `billed_costs`: one key, workspace and model in one bucket. */
export interface BilledRow {
  width: BilledWidth;
  startingAt: Date;
  /** '' for usage no API key authenticated. */
  apiKeyId: string;
  workspaceId: string | null;
  /** '' for cost attributed to no model. */
  model: string;
  /** Who is behind the spend: the key's user or service account, a federated identity, or the key itself. */
  actor: BilledActor | null;
  amount: Pico;
  listAmount: Pico;
  requests: number | null;
  currency: string;
  dataRefreshedAt: Date | null;
}

/** An actor as stored: its type, its id ('' for a federated identity without one), a user's email for people. */
export interface BilledActor {
  type: string;
  id: string;
  label: string | null;
}

/** What an analytics cost row gives (AnalyticsCostRow), as far as storing it goes. */
interface BilledSourceRow {
  startingAt: Date;
  apiKeyId: string | null;
  workspaceId: string | null;
  model: string | null;
  actor: BilledActor | null;
  amount: Pico;
  listAmount: Pico;
  requests: number | null;
  currency: string;
}

/** Analytics cost rows as `billed_costs` rows, rows of the same identity summed (a restatement can split one). */
export function billedRows(
  rows: readonly BilledSourceRow[],
  width: BilledWidth,
  dataRefreshedAt: Date | null,
): BilledRow[] {
  const out = new Map<string, BilledRow>();
  for (const r of rows) {
    const apiKeyId = r.apiKeyId ?? '';
    const model = r.model ?? '';
    const id = `${r.startingAt.getTime()}|${apiKeyId}|${r.workspaceId ?? ''}|${model}|${r.actor?.id ?? ''}`;
    const prev = out.get(id);
    if (prev) {
      prev.amount += r.amount;
      prev.listAmount += r.listAmount;
      prev.requests = prev.requests === null || r.requests === null ? null : prev.requests + r.requests;
    } else {
      out.set(id, {
        width,
        startingAt: r.startingAt,
        apiKeyId,
        workspaceId: r.workspaceId,
        model,
        actor: r.actor,
        amount: r.amount,
        listAmount: r.listAmount,
        requests: r.requests,
        currency: r.currency,
        dataRefreshedAt,
      });
    }
  }
  return [...out.values()];
}

interface BilledReadPlan {
  /** Closed UTC days to read in 1d buckets and replace; null when none. */
  days: { start: Date; end: Date } | null;
  /** Today's hours so far, in 1h buckets; null at midnight. */
  hours: { start: Date; end: Date } | null;
}

/**
 * What one run reads: the closed days from the watermark (the first closed day not yet stored) less the days the
 * API may still restate, or from the start of the UTC month on the first run; and today's hours up to `now`.
 */
export function planBilledRead(watermark: Date | null, now: Date): BilledReadPlan {
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const oldest = today - (MAX_RANGE_DAYS - 1) * DAY_MS;
  const from = Math.max(oldest, watermark === null ? monthStart : watermark.getTime() - RESTATED_DAYS * DAY_MS);
  return {
    days: from < today ? { start: new Date(from), end: new Date(today) } : null,
    hours: now.getTime() > today ? { start: new Date(today), end: now } : null,
  };
}

/** Cost of one key and model in one period (a UTC day or an hour), priced by keywarden or billed. */
export interface KeyCostCell {
  /** '' for usage without a key. */
  keyId: string;
  model: string;
  width: BilledWidth;
  start: Date;
  pico: Pico;
}

export interface BilledCell extends Omit<KeyCostCell, 'pico'> {
  amount: Pico;
  listAmount: Pico;
}

export interface KeyCostComparison {
  keyId: string;
  width: BilledWidth;
  start: Date;
  /** Priced usage of the models the bill has cost for. */
  priced: Pico;
  /** The bill at list price, and as billed. */
  list: Pico;
  billed: Pico;
  /** Priced usage of models the bill has nothing for in the period: blocked requests. */
  unbilled: Pico;
  /** |priced − list| / list; Infinity when the bill is zero and usage was priced. */
  driftRatio: number;
  drifted: boolean;
}

/**
 * Priced usage against the bill per key and period, for the periods that end by `comparableUntil` (both sides
 * complete). Every (key, period) either side knows is compared.
 */
export function compareKeyCosts(
  priced: readonly KeyCostCell[],
  billed: readonly BilledCell[],
  comparableUntil: Date,
  threshold = KEY_DRIFT_THRESHOLD,
): KeyCostComparison[] {
  const span = (w: BilledWidth) => (w === '1d' ? DAY_MS : HOUR_MS);
  const complete = (c: { width: BilledWidth; start: Date }) =>
    c.start.getTime() + span(c.width) <= comparableUntil.getTime();
  const cellId = (c: { keyId: string; width: BilledWidth; start: Date; model: string }) =>
    `${c.keyId}|${c.width}|${c.start.getTime()}|${c.model}`;
  const bill = new Map<string, BilledCell>();
  for (const b of billed) {
    if (!complete(b)) continue;
    const id = cellId(b);
    const prev = bill.get(id);
    if (prev) bill.set(id, { ...prev, amount: prev.amount + b.amount, listAmount: prev.listAmount + b.listAmount });
    else bill.set(id, b);
  }
  const rows = new Map<string, KeyCostComparison>();
  const at = (c: { keyId: string; width: BilledWidth; start: Date }) => {
    const id = `${c.keyId}|${c.width}|${c.start.getTime()}`;
    let row = rows.get(id);
    if (!row) {
      row = {
        keyId: c.keyId,
        width: c.width,
        start: c.start,
        priced: 0n,
        list: 0n,
        billed: 0n,
        unbilled: 0n,
        driftRatio: 0,
        drifted: false,
      };
      rows.set(id, row);
    }
    return row;
  };
  for (const p of priced) {
    if (!complete(p)) continue;
    const row = at(p);
    const b = bill.get(cellId(p));
    if (b === undefined || b.listAmount === 0n) row.unbilled += p.pico;
    else row.priced += p.pico;
  }
  for (const b of bill.values()) {
    const row = at(b);
    row.list += b.listAmount;
    row.billed += b.amount;
  }
  for (const row of rows.values()) {
    const diff = row.priced > row.list ? row.priced - row.list : row.list - row.priced;
    row.driftRatio = row.list === 0n ? (diff === 0n ? 0 : Number.POSITIVE_INFINITY) : Number(diff) / Number(row.list);
    row.drifted = row.driftRatio > threshold && diff >= MIN_DRIFT_PICO;
  }
  return [...rows.values()].sort(byKeyAndPeriod);
}

/** Comparisons in key order, then by period: what the alerts list. */
export function byKeyAndPeriod(a: KeyCostComparison, b: KeyCostComparison): number {
  return a.keyId.localeCompare(b.keyId) || a.start.getTime() - b.start.getTime() || a.width.localeCompare(b.width);
}

/** What the alert says about a key: its name and place (from the inventory); null when unknown. */
export interface DriftKeyInfo {
  name: string;
  workspaceId: string | null;
  workspaceName: string | null;
}

function periodLabel(c: KeyCostComparison): string {
  const iso = c.start.toISOString();
  return c.width === '1d' ? iso.slice(0, 10) : `${iso.slice(0, 13).replace('T', ' ')}:00 UTC`;
}

/**
 * `cost.drift`: one alert per key whose priced usage drifts from its bill in any compared period; it resolves when
 * none does. Unbilled usage (blocked requests) is mentioned, never a reason to fire.
 */
export function keyDriftObservations(
  comparisons: readonly KeyCostComparison[],
  keys: ReadonlyMap<string, DriftKeyInfo>,
): AlertObservation[] {
  const byKey = new Map<string, KeyCostComparison[]>();
  for (const c of comparisons) {
    if (!c.drifted) continue;
    byKey.set(c.keyId, [...(byKey.get(c.keyId) ?? []), c]);
  }
  return [...byKey.entries()].map(([keyId, drifted]) => {
    const info = keys.get(keyId) ?? null;
    const name = keyId === '' ? 'usage without an API key' : (info?.name ?? keyId);
    const priced = drifted.reduce((s, c) => s + c.priced, 0n);
    const list = drifted.reduce((s, c) => s + c.list, 0n);
    const billed = drifted.reduce((s, c) => s + c.billed, 0n);
    const worst = drifted.reduce((w, c) => (c.driftRatio > w.driftRatio ? c : w));
    const pct = Number.isFinite(worst.driftRatio) ? `${(worst.driftRatio * 100).toFixed(1)}%` : 'all of it';
    const periods = drifted.map(periodLabel);
    return {
      kind: 'cost.drift',
      severity: 'warning',
      scopeType: 'key',
      scopeId: keyId,
      workspaceId: info?.workspaceId ?? null,
      period: '',
      title: `Priced usage of key ${name} differs from what Anthropic bills (up to ${pct})`,
      summary:
        `keywarden priced this key's usage at ${formatUsd(priced)} where the bill at list price is ${formatUsd(list)} ` +
        `(billed ${formatUsd(billed)}) over ${periods.length} period(s). Spend alerts and projections for the key use ` +
        'the priced figure: check the price table (`pricing` in the policy file) for its models.',
      details: {
        keyId,
        periods,
        pricedUsd: picoToUsd(priced),
        listUsd: picoToUsd(list),
        billedUsd: picoToUsd(billed),
        worstRatio: Number.isFinite(worst.driftRatio) ? worst.driftRatio : null,
      },
      fields: [
        { label: 'Key', value: name },
        { label: 'Priced', value: formatUsd(priced) },
        { label: 'Billed (list price)', value: formatUsd(list) },
        { label: 'Periods', value: periods.slice(0, 5).join(', ') + (periods.length > 5 ? ', …' : '') },
      ],
      scopeName: info?.name ?? null,
      workspaceName: info?.workspaceName ?? null,
    };
  });
}
