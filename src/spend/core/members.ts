import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { CONSOLE_COST_URL } from '../../console.ts';
import { singleLineName } from '../../glob.ts';
import { formatUsd, type Pico, picoToUsd } from '../../money.ts';
import { type LimitPeriod, periodWindow } from './limits.ts';

/**
 * Per-member thresholds of a Claude Enterprise organization. Pure.
 *
 * Each member's effective limit (per period) and spend so far come from the Spend Limits API's per-member report.
 * At 75% and 95% of it the member is told, by email (the alert's `keyOwnerEmail`, which a route's `key_owner`
 * recipient resolves to), as `spend.threshold` on the scope `member:<user id>`. The period is the limit's own
 * (`2026-11@0.75`, `2026-W47@0.95`, `2026-11-18@0.75`), so the lifecycle says each threshold once per period.
 * Names and addresses are the organization's text: they travel on one line, and only as data.
 */

const MEMBER_THRESHOLDS = [0.75, 0.95] as const;

export interface MemberSpendFact {
  userId: string;
  /** The member's address: the report's, else the one keywarden knows; null: nobody to email. */
  email: string | null;
  name: string | null;
  period: LimitPeriod;
  /** Picodollars; null: no limit applies in this period. */
  limit: Pico | null;
  spent: Pico;
  /** Where the limit comes from (`user`, `seat_tier`, `rbac_group`, `organization`). */
  source: string;
}

const SOURCE_TEXT: Record<string, string> = {
  user: 'set for this member',
  seat_tier: "the member's seat tier",
  rbac_group: "the member's group",
  organization: "the organization's default for members",
};

/** `today`: the UTC date (YYYY-MM-DD) the API's periods are counted in. */
export function memberThresholdObservations(facts: readonly MemberSpendFact[], today: string): AlertObservation[] {
  const out: AlertObservation[] = [];
  for (const f of facts) {
    // no limit, or a zero one (nothing may be spent): no fraction of it to announce
    if (f.limit === null || f.limit <= 0n) continue;
    const window = periodWindow(f.period, today);
    const who = singleLineName(f.name ?? '') || (f.email === null ? f.userId : singleLineName(f.email));
    const share = Number((f.spent * 1000n) / f.limit) / 10;
    const kind = f.period === 'monthly' ? '' : `${f.period} `;
    const sofar = f.period === 'monthly' ? 'this month' : f.period === 'weekly' ? 'this week' : 'today';
    for (const t of MEMBER_THRESHOLDS) {
      if (f.spent * 100n < f.limit * BigInt(Math.round(t * 100))) continue;
      out.push({
        kind: 'spend.threshold',
        scopeType: 'member',
        scopeId: f.userId,
        severity: t >= 0.95 ? 'warning' : 'info',
        period: `${window.label}@${t}`,
        title: `Member "${who}" reached ${Math.round(t * 100)}% of their ${formatUsd(f.limit)} ${kind}spend limit`,
        summary: `${formatUsd(f.spent)} spent so far ${sofar} (${window.start} to ${window.end}). At the limit Anthropic refuses this member's requests until the period ends or the limit is raised.`,
        scopeName: f.name,
        workspaceId: null,
        workspaceName: null,
        keyOwnerEmail: f.email,
        details: {
          userId: f.userId,
          limitUsd: picoToUsd(f.limit),
          limitPeriod: f.period,
          limitSource: f.source,
          period: window.label,
          periodStart: window.start,
          periodEnd: window.end,
          periodToDateUsd: picoToUsd(f.spent),
          threshold: t,
        },
        fields: [
          { label: 'Member', value: who },
          { label: 'Spent so far', value: `${formatUsd(f.spent)} of ${formatUsd(f.limit)} (${share}%)` },
          { label: 'Limit set by', value: SOURCE_TEXT[f.source] ?? f.source },
        ],
        links: [{ label: 'Cost in the Console', url: CONSOLE_COST_URL }],
      });
    }
  }
  return out;
}
