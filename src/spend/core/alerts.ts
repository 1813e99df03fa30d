import type { AlertField, AlertObservation } from '../../alerts/core/lifecycle.ts';
import type { SpendPolicy } from '../../config/policy.ts';
import { CONSOLE_COST_URL } from '../../console.ts';
import type { AlertKind, Severity } from '../../kinds.ts';
import { formatUsd, type Pico, picoToUsd } from '../../money.ts';
import {
  alertScopeOf,
  type LimitCheck,
  type LimitPeriod,
  type LimitSource,
  periodWindow,
  type ScopeLimit,
} from './limits.ts';
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
  /** Each limit of the scope in its period (limits.ts); absent: the projection's own monthly limit. */
  checks?: LimitCheck[];
}

export function spendObservations(
  facts: readonly ScopeFacts[],
  policy: Pick<SpendPolicy, 'thresholds' | 'forecast'>,
): AlertObservation[] {
  const out: AlertObservation[] = [];
  const thresholds = [...new Set(policy.thresholds)].sort((a, b) => a - b);
  for (const fact of facts) {
    const { projection: p, driverFields } = fact;
    for (const check of fact.checks ?? monthlyCheck(p)) {
      const { limit, window, toDate, forecast } = check;
      const amount = limit.amount;
      const tier = limit.source === 'usage_tier';
      const monthly = limit.period === 'monthly';
      const base = {
        ...alertScopeOf(p.scope, limit),
        scopeName: tier ? 'Usage tier' : p.scope.name,
        workspaceId: p.scope.workspaceId,
        workspaceName: p.scope.workspaceName,
        links: [{ label: 'Cost in the Console', url: CONSOLE_COST_URL }],
      };
      const details = {
        month: p.month,
        limitUsd: picoToUsd(amount),
        limitPeriod: limit.period,
        limitSource: limit.source,
        period: window.label,
        periodStart: window.start,
        periodEnd: window.end,
        ...(monthly ? { monthToDateUsd: picoToUsd(toDate) } : { periodToDateUsd: picoToUsd(toDate) }),
        p50Usd: forecast === null ? null : picoToUsd(forecast.p50),
        p90Usd: forecast === null ? null : picoToUsd(forecast.p90),
        crossingP50: forecast?.crossing.p50 ?? null,
        crossingP90: forecast?.crossing.p90 ?? null,
      };
      const fields = [...factFields(p, check), ...driverFields];
      const subject = subjectOf(p, limit);
      const what = limitWords(check);
      const tierNote = tier
        ? ' At the cap Anthropic refuses every request of the organization, in every workspace, until the month ends or the tier is raised.'
        : '';

      for (const t of thresholds) {
        if (!reached(toDate, amount, t)) continue;
        const severity: Severity = tier
          ? t >= 0.8
            ? 'critical'
            : 'warning'
          : t >= 1
            ? 'critical'
            : t >= 0.8
              ? 'warning'
              : 'info';
        out.push({
          ...base,
          kind: 'spend.threshold',
          severity,
          period: `${window.label}@${t}`,
          title: t >= 1 ? `${subject} reached ${what}` : `${subject} reached ${percentText(t)} of ${what}`,
          summary: `${formatUsd(toDate)} spent so far ${sofar(limit)}.${forecast === null ? '' : ` ${projectionSentence(check)}`}${tierNote}`,
          details: { ...details, threshold: t },
          fields,
        });
      }

      if (!policy.forecast || forecast === null) continue;
      const over = forecast.p90 >= amount;
      if (!over && !reached(forecast.p90, amount, FORECAST_RESOLVE_RATIO)) continue;
      out.push({
        ...base,
        kind: 'spend.forecast',
        severity: tier ? 'critical' : 'warning',
        period: window.label,
        title: `${subject} is projected to exceed ${what}`,
        summary: `${projectionSentence(check)} ${formatUsd(toDate)} spent so far.${tierNote}`,
        details,
        fields,
        // between 95% and 100% of the limit: an alert already firing holds, none starts
        ...(over ? {} : { holdOnly: true }),
      });
    }
  }
  return out;
}

/** A projection without checks (its monthly limit from the policy file): one check, the month, from the projection. */
function monthlyCheck(p: ScopeProjection): LimitCheck[] {
  if (p.scope.limit === null) return [];
  return [
    {
      limit: { period: 'monthly', amount: p.scope.limit, source: 'policy' },
      window: periodWindow('monthly', `${p.month}-01`),
      toDate: p.monthToDate,
      forecast: { p50: p.p50, p90: p.p90, crossing: p.crossing },
    },
  ];
}

/** `amount ≥ fraction × limit`, exactly: the fraction is taken to a millionth. */
function reached(amount: Pico, limit: Pico, fraction: number): boolean {
  return amount * 1_000_000n >= limit * BigInt(Math.round(fraction * 1_000_000));
}

function subjectOf(p: ScopeProjection, limit: ScopeLimit): string {
  if (limit.source === 'usage_tier') return 'The organization';
  switch (p.scope.type) {
    case 'organization':
      return 'The organization';
    case 'workspace':
      return `Workspace "${p.scope.name}"`;
    case 'key':
      return `API key "${p.scope.name}"`;
  }
}

/** "its $1,000.00 limit for November 2026", "its $50.00 daily limit for 2026-11-16", "its usage tier's … cap …". */
function limitWords({ limit, window }: LimitCheck): string {
  const amount = formatUsd(limit.amount);
  const when =
    limit.period === 'monthly'
      ? monthName(window.label)
      : limit.period === 'weekly'
        ? `the week of ${window.start} (${window.label})`
        : window.label;
  if (limit.source === 'usage_tier') return `its usage tier's ${amount} ${PERIOD_WORD[limit.period]} cap for ${when}`;
  const kind = limit.period === 'monthly' ? '' : `${PERIOD_WORD[limit.period]} `;
  return `its ${amount} ${kind}limit for ${when}`;
}

const PERIOD_WORD: Record<LimitPeriod, string> = { daily: 'daily', weekly: 'weekly', monthly: 'monthly' };

function sofar(limit: ScopeLimit): string {
  return limit.period === 'monthly' ? 'this month' : limit.period === 'weekly' ? 'this week' : 'today';
}

function periodEndWord(limit: ScopeLimit): string {
  return limit.period === 'monthly' ? 'month end' : limit.period === 'weekly' ? 'week end' : 'end of day';
}

function projectionSentence(check: LimitCheck): string {
  const { forecast, limit, toDate } = check;
  if (forecast === null) return '';
  const range = `Projected ${periodEndWord(limit)}: ${formatUsd(forecast.p50)} (likely), up to ${formatUsd(forecast.p90)} (90th percentile).`;
  if (toDate >= limit.amount) return `${range} The limit is already reached.`;
  const { p50, p90 } = forecast.crossing;
  const within = limit.period === 'monthly' ? 'this month' : limit.period === 'weekly' ? 'this week' : 'today';
  if (p50 !== null)
    return `${range} At this pace the limit is reached on ${p50}${p90 && p90 < p50 ? `, possibly as early as ${p90}` : ''}.`;
  if (p90 !== null) return `${range} The likely path stays under the limit; a faster one reaches it on ${p90}.`;
  return `${range} The limit is not expected to be reached ${within}.`;
}

/** The facts every spend message carries in its fields, since grouped messages show only titles and fields. */
function factFields(p: ScopeProjection, check: LimitCheck): AlertField[] {
  const { limit, toDate, forecast } = check;
  const share = Number((toDate * 1000n) / limit.amount) / 10;
  const fields: AlertField[] = [];
  if (p.scope.type === 'key') fields.push({ label: 'Workspace', value: p.scope.workspaceName ?? '' });
  const label = limit.period === 'monthly' ? 'Month to date' : limit.period === 'weekly' ? 'Week to date' : 'Today';
  fields.push({ label, value: `${formatUsd(toDate)} of ${formatUsd(limit.amount)} (${share}%)` });
  if (forecast !== null) {
    fields.push(
      {
        label: `Projected ${periodEndWord(limit)}`,
        value: `${formatUsd(forecast.p50)} likely, up to ${formatUsd(forecast.p90)} (p90)`,
      },
      { label: 'Limit reached', value: crossingText(check) },
    );
  }
  if (limit.source !== 'policy') fields.push({ label: 'Limit set by', value: SOURCE_TEXT[limit.source] });
  // grouped messages show only titles and fields: what the cap means travels in a field
  if (limit.source === 'usage_tier') {
    fields.push({
      label: 'At the cap',
      value: 'Anthropic refuses every request of the organization, in every workspace',
    });
  }
  return fields;
}

const SOURCE_TEXT: Record<LimitSource, string> = {
  api: 'the Console (read from the Spend Limits API)',
  policy: 'the policy file',
  usage_tier: "Anthropic, for the organization's usage tier",
};

function crossingText({ limit, toDate, forecast }: LimitCheck): string {
  if (toDate >= limit.amount) return 'already reached';
  if (forecast === null) return 'not projected';
  const { p50, p90 } = forecast.crossing;
  if (p50 === null && p90 === null) return `not expected ${limit.period === 'monthly' ? 'this month' : 'this period'}`;
  return `${p50 ?? 'not expected'} (likely); ${p90 ?? 'not expected'} at the earliest (p90)`;
}

function percentText(t: number): string {
  return `${Math.round(t * 1000) / 10}%`;
}

function monthName(month: string): string {
  return new Date(`${month}-01T00:00:00Z`).toLocaleString('en-US', { month: 'long', year: 'numeric', timeZone: 'UTC' });
}
