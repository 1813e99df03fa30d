import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { CONSOLE_LIMITS_URL } from '../../console.ts';
import { DEFAULT_WORKSPACE_NAME, DEFAULT_WORKSPACE_SCOPE_ID } from '../../default-workspace.ts';
import { formatUsd } from '../../money.ts';
import type { LimitPeriod } from './limits.ts';
import { USAGE_TIER_SCOPE_ID } from './limits.ts';

/**
 * `spend.limit_changed`: a spend limit created, changed or deleted in the Console (or a new usage tier), found by
 * comparing the Spend Limits API's answer with the one read before. Pure. The alert's period names the change (the
 * limit's id, its `updated_at` and its new state), so the same change seen by two runs is one alert, and a later
 * change is another. The usage tier's `updated_at` never moves (the API says so): its amount tells the change.
 */

/** A limit as read and as remembered (spend_limits_seen); the Default Workspace's id already `default`. */
export interface SeenLimit {
  id: string;
  scopeType: string;
  workspaceId: string | null;
  period: LimitPeriod;
  amountMinor: bigint | null;
  currency: string;
  isEnabled: boolean;
  updatedAt: Date;
}

export function limitChangeObservations(
  previous: readonly SeenLimit[],
  current: readonly SeenLimit[],
  workspaceNames: ReadonlyMap<string, string>,
): AlertObservation[] {
  const before = new Map(previous.map((l) => [l.id, l]));
  const after = new Map(current.map((l) => [l.id, l]));
  const out: AlertObservation[] = [];
  for (const l of current) {
    const old = before.get(l.id);
    if (old === undefined) out.push(observation(l, null, 'created', workspaceNames));
    else if (old.amountMinor !== l.amountMinor || old.isEnabled !== l.isEnabled || old.currency !== l.currency) {
      out.push(observation(l, old, 'changed', workspaceNames));
    }
  }
  for (const l of previous) if (!after.has(l.id)) out.push(observation(l, l, 'deleted', workspaceNames));
  return out;
}

function observation(
  l: SeenLimit,
  old: SeenLimit | null,
  change: 'created' | 'changed' | 'deleted',
  workspaceNames: ReadonlyMap<string, string>,
): AlertObservation {
  const tier = l.scopeType === 'usage_tier';
  const workspaceName =
    l.workspaceId === null
      ? null
      : l.workspaceId === DEFAULT_WORKSPACE_SCOPE_ID
        ? DEFAULT_WORKSPACE_NAME
        : (workspaceNames.get(l.workspaceId) ?? l.workspaceId);
  const subject = tier
    ? "The usage tier's cap"
    : l.scopeType === 'workspace'
      ? `Workspace "${workspaceName}"'s ${l.period} spend limit`
      : l.scopeType === 'organization'
        ? `The organization's ${l.period} spend limit`
        : `A ${l.scopeType} spend limit`;
  const state = (x: SeenLimit) =>
    `${x.amountMinor === null ? 'no amount' : amountText(x)}${x.isEnabled ? '' : ' (switched off)'}`;
  const title =
    change === 'created'
      ? `${subject} was set: ${state(l)}`
      : change === 'deleted'
        ? `${subject} was deleted (it was ${state(l)})`
        : `${subject} changed from ${state(old!)} to ${state(l)}`;
  const stamp =
    change === 'deleted' ? 'deleted' : `${l.updatedAt.toISOString()}@${l.amountMinor ?? 'none'}@${l.isEnabled}`;
  return {
    kind: 'spend.limit_changed',
    severity: tier ? 'warning' : 'info',
    scopeType: l.scopeType === 'workspace' ? 'workspace' : 'organization',
    scopeId: tier ? USAGE_TIER_SCOPE_ID : l.scopeType === 'workspace' ? l.workspaceId! : 'organization',
    scopeName: tier ? 'Usage tier' : (workspaceName ?? 'Organization'),
    workspaceId: l.scopeType === 'workspace' && l.workspaceId !== DEFAULT_WORKSPACE_SCOPE_ID ? l.workspaceId : null,
    workspaceName,
    period: `${l.id}@${stamp}`,
    title,
    summary:
      (change === 'deleted'
        ? 'Spend alerts for it stop.'
        : 'Spend alerts now use this limit, each in its own period.') +
      (tier ? ' At the usage tier cap Anthropic refuses every request of the organization.' : ''),
    details: {
      change,
      limitId: l.id,
      scopeType: l.scopeType,
      workspaceId: l.workspaceId,
      period: l.period,
      currency: l.currency,
      amountMinor: l.amountMinor === null ? null : String(l.amountMinor),
      previousAmountMinor: old?.amountMinor == null ? null : String(old.amountMinor),
      isEnabled: l.isEnabled,
    },
    fields: [
      { label: 'Limit', value: tier ? 'usage tier (set by Anthropic)' : `${l.period}, set in the Console` },
      ...(old !== null && change === 'changed' ? [{ label: 'Before', value: state(old) }] : []),
      { label: change === 'deleted' ? 'Was' : 'Now', value: state(l) },
    ],
    links: [{ label: 'Limits in the Console', url: CONSOLE_LIMITS_URL }],
  };
}

/** "$500.00", or "50000 EUR minor units" for a currency keywarden does not price in. */
function amountText(l: SeenLimit): string {
  if (l.amountMinor === null) return 'no amount';
  if (l.currency.toUpperCase() === 'USD') return formatUsd(l.amountMinor * 10_000_000_000n);
  return `${l.amountMinor} ${l.currency} (minor units)`;
}
