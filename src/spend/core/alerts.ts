import type { AlertField, AlertObservation } from '../../alerts/core/lifecycle.ts';
import type { SpendPolicy } from '../../config/policy.ts';
import { CONSOLE_COST_URL } from '../../console.ts';
import type { AlertKind, Severity } from '../../kinds.ts';
import { formatUsd, type Pico, picoToUsd } from '../../money.ts';
import type { ScopeProjection } from './project.ts';

/**
 * The spend alerts a run of projections asks for. Pure.
 *
 * - `spend.threshold`: the month to date has reached `threshold × limit`. Period `2026-11@0.8`, so each threshold
 *   of each scope is a fact of its month: said once (the lifecycle makes the kind one-shot and once per period),
 *   and the 100% one silences the lower ones still unsaid.
 * - `spend.forecast`: the 90th-percentile projection has reached the limit. It keeps firing while the projection
 *   stays above FORECAST_RESOLVE_RATIO × limit and resolves below that: a projection hovering around the limit
 *   (it moves a little every 15 minutes) does not fire, resolve and fire again.
 */

export const SPEND_KINDS: AlertKind[] = ['spend.threshold', 'spend.forecast'];

/** A firing forecast alert resolves only once the p90 projection is back under 95% of the limit. */
export const FORECAST_RESOLVE_RATIO = 0.95;

export interface ScopeFacts {
  projection: ScopeProjection;
  /** The top drivers as message fields (drivers.ts). */
  driverFields: AlertField[];
}

export function spendObservations(
  facts: readonly ScopeFacts[],
  policy: Pick<SpendPolicy, 'thresholds' | 'forecast'>,
): AlertObservation[] {
  const out: AlertObservation[] = [];
  const thresholds = [...new Set(policy.thresholds)].sort((a, b) => a - b);
  for (const { projection: p, driverFields } of facts) {
    const limit = p.scope.limit;
    if (limit === null) continue;
    const base = {
      scopeType: p.scope.type,
      scopeId: p.scope.id,
      scopeName: p.scope.name,
      workspaceId: p.scope.workspaceId,
      workspaceName: p.scope.workspaceName,
      links: [{ label: 'Cost in the Console', url: CONSOLE_COST_URL }],
    };
    const details = {
      month: p.month,
      limitUsd: picoToUsd(limit),
      monthToDateUsd: picoToUsd(p.monthToDate),
      p50Usd: picoToUsd(p.p50),
      p90Usd: picoToUsd(p.p90),
      crossingP50: p.crossing.p50,
      crossingP90: p.crossing.p90,
    };
    const fields = [...factFields(p, limit), ...driverFields];
    const subject = subjectOf(p);

    for (const t of thresholds) {
      if (!reached(p.monthToDate, limit, t)) continue;
      const severity: Severity = t >= 1 ? 'critical' : t >= 0.8 ? 'warning' : 'info';
      out.push({
        ...base,
        kind: 'spend.threshold',
        severity,
        period: `${p.month}@${t}`,
        title:
          t >= 1
            ? `${subject} reached its ${formatUsd(limit)} limit for ${monthName(p.month)}`
            : `${subject} reached ${percentText(t)} of its ${formatUsd(limit)} limit for ${monthName(p.month)}`,
        summary: `${formatUsd(p.monthToDate)} spent so far this month. ${projectionSentence(p, limit)}`,
        details: { ...details, threshold: t },
        fields,
      });
    }

    if (!policy.forecast) continue;
    const over = p.p90 >= limit;
    if (!over && !reached(p.p90, limit, FORECAST_RESOLVE_RATIO)) continue;
    out.push({
      ...base,
      kind: 'spend.forecast',
      severity: 'warning',
      period: p.month,
      title: `${subject} is projected to exceed its ${formatUsd(limit)} limit for ${monthName(p.month)}`,
      summary: `${projectionSentence(p, limit)} ${formatUsd(p.monthToDate)} spent so far.`,
      details,
      fields,
      // between 95% and 100% of the limit: an alert already firing holds, none starts
      ...(over ? {} : { holdOnly: true }),
    });
  }
  return out;
}

/** `amount ≥ fraction × limit`, exactly: the fraction is taken to a millionth. */
function reached(amount: Pico, limit: Pico, fraction: number): boolean {
  return amount * 1_000_000n >= limit * BigInt(Math.round(fraction * 1_000_000));
}

function subjectOf(p: ScopeProjection): string {
  switch (p.scope.type) {
    case 'organization':
      return 'The organization';
    case 'workspace':
      return `Workspace "${p.scope.name}"`;
    case 'key':
      return `API key "${p.scope.name}"`;
  }
}

function projectionSentence(p: ScopeProjection, limit: Pico): string {
  const range = `Projected month end: ${formatUsd(p.p50)} (likely), up to ${formatUsd(p.p90)} (90th percentile).`;
  if (p.monthToDate >= limit) return `${range} The limit is already reached.`;
  const { p50, p90 } = p.crossing;
  if (p50 !== null)
    return `${range} At this pace the limit is reached on ${p50}${p90 && p90 < p50 ? `, possibly as early as ${p90}` : ''}.`;
  if (p90 !== null) return `${range} The likely path stays under the limit; a faster one reaches it on ${p90}.`;
  return `${range} The limit is not expected to be reached this month.`;
}

/** The facts every spend message carries in its fields, since grouped messages show only titles and fields. */
function factFields(p: ScopeProjection, limit: Pico): AlertField[] {
  const share = Number((p.monthToDate * 1000n) / limit) / 10;
  const fields: AlertField[] = [];
  if (p.scope.type === 'key') fields.push({ label: 'Workspace', value: p.scope.workspaceName ?? '' });
  fields.push(
    { label: 'Month to date', value: `${formatUsd(p.monthToDate)} of ${formatUsd(limit)} (${share}%)` },
    { label: 'Projected month end', value: `${formatUsd(p.p50)} likely, up to ${formatUsd(p.p90)} (p90)` },
    { label: 'Limit reached', value: crossingText(p, limit) },
  );
  return fields;
}

function crossingText(p: ScopeProjection, limit: Pico): string {
  if (p.monthToDate >= limit) return 'already reached';
  const { p50, p90 } = p.crossing;
  if (p50 === null && p90 === null) return 'not expected this month';
  return `${p50 ?? 'not expected'} (likely); ${p90 ?? 'not expected'} at the earliest (p90)`;
}

function percentText(t: number): string {
  return `${Math.round(t * 1000) / 10}%`;
}

function monthName(month: string): string {
  return new Date(`${month}-01T00:00:00Z`).toLocaleString('en-US', { month: 'long', year: 'numeric', timeZone: 'UTC' });
}
