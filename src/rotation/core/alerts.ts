import type { AlertObservation } from '../../alerts/core/lifecycle.ts';
import { CONSOLE_KEYS_URL } from '../../console.ts';
import { DEFAULT_WORKSPACE_NAME } from '../../default-workspace.ts';
import type { AlertKind } from '../../kinds.ts';
import { formatUsd } from '../../money.ts';
import type { RotationDecision } from './types.ts';

/** The kinds an enforce-rotation run evaluates: a firing one it no longer observes resolves. */
export const ROTATION_KINDS: readonly AlertKind[] = [
  'rotation.due_soon',
  'rotation.overdue',
  'rotation.blocked',
  'rotation.deactivated',
  'rotation.approval_requested',
];

const day = (d: Date | null) => (d ? d.toISOString().slice(0, 10) : '—');

/**
 * The alerts a rotation plan asks for, one per key at most. Pure. `deactivated` lists the keys the job really
 * set inactive in this run (a planned deactivation whose API call failed stays overdue). Reminders go to the
 * key's owner (routes' `key_owner`); when the owner left, the message says so and the security route carries it.
 * With `enforce` off, every message says what would be done instead.
 */
export function rotationObservations(
  decisions: readonly RotationDecision[],
  deactivated: ReadonlySet<string>,
  enforce: boolean | 'approve',
): AlertObservation[] {
  const out: AlertObservation[] = [];
  for (const d of decisions) {
    const k = d.key;
    const ownerNote = k.ownerEmail
      ? ''
      : ' Its creator is no longer in the organization: security, please find it an owner.';
    const base = {
      scopeType: 'key' as const,
      scopeId: k.id,
      scopeName: k.name,
      workspaceId: k.workspaceId,
      workspaceName: k.workspaceName,
      keyOwnerEmail: k.ownerEmail,
      links: [{ label: 'API keys in the Console', url: CONSOLE_KEYS_URL }],
    };
    const fields = [
      { label: 'Key', value: `${k.name} (${k.partialKeyHint ?? k.id})` },
      { label: 'Workspace', value: k.workspaceName ?? DEFAULT_WORKSPACE_NAME },
      { label: 'Deadline', value: day(d.deadline) },
      // facts that must survive grouping (a grouped message lists titles and fields only)
      { label: 'Owner', value: k.ownerEmail ?? 'left the organization: security, please find it an owner' },
    ];
    // Every overdue variant says the same thing first; `next` is what happens to the key now.
    const overdue = (stage: string, next: string): AlertObservation => ({
      ...base,
      kind: 'rotation.overdue',
      severity: 'warning',
      period: '',
      title: `API key "${k.name}" is past its rotation deadline`,
      summary: `The deadline was ${day(d.deadline)}. ${next}${ownerNote}`,
      details: { stage, deadline: d.deadline?.toISOString() ?? null },
      fields: [...fields, { label: 'Next', value: next }],
    });
    switch (d.kind) {
      case 'remind':
      case 'due_soon':
        out.push({
          ...base,
          kind: 'rotation.due_soon',
          severity: d.stage <= 1 ? 'warning' : 'info',
          period: `${d.stage}d`,
          title: `API key "${k.name}" must be rotated within ${d.stage} day${d.stage === 1 ? '' : 's'}`,
          summary: `Create its successor in the Console and move traffic to it before ${day(d.deadline)}; keywarden retires this key once its traffic has drained.${ownerNote}`,
          details: { stage: d.stage, deadline: d.deadline.toISOString() },
          fields,
        });
        break;
      case 'overdue':
      case 'grace':
      case 'hold':
      case 'deferred':
      case 'would_deactivate': {
        const next =
          d.kind === 'would_deactivate'
            ? `It would be set inactive now (${d.reason}); enforcement is off (rotation.enforce: false).`
            : d.kind === 'hold'
              ? `Enforcement is on hold: ${d.reason}.`
              : d.kind === 'deferred'
                ? `It is due for deactivation but this run reached max_deactivations_per_run (${d.cap}).`
                : enforce === 'approve'
                  ? `Unless its traffic continues, from ${day(d.enforceFrom)} keywarden asks in Slack for approval to set it inactive.`
                  : enforce
                    ? `Unless its traffic continues, it will be set inactive from ${day(d.enforceFrom)}.`
                    : `From ${day(d.enforceFrom)} it would be set inactive once drained; enforcement is off (rotation.enforce: false), so keywarden will only report.`;
        out.push(overdue(d.kind, next));
        break;
      }
      case 'blocked': {
        const s = d.successor;
        const successor = s
          ? `Its likely successor "${s.name}" carries ${s.share === null ? 'no measured share' : `${Math.round(s.share * 100)}%`} of their traffic.`
          : 'No successor key was found in its workspace.';
        out.push({
          ...base,
          kind: 'rotation.blocked',
          severity: 'critical',
          period: '',
          title: `Overdue API key "${k.name}" still carries traffic`,
          summary: `It is past its deadline and grace period, but it had ${d.recentTraffic.tokens} tokens (${formatUsd(d.recentTraffic.costUsd)}) in the last ${d.recentTraffic.windowHours} h, so keywarden will not deactivate it. ${successor}${ownerNote}`,
          details: { deadline: d.deadline.toISOString(), successor: s?.keyId ?? null },
          fields: [...fields, { label: 'Last usage', value: d.recentTraffic.lastUsageAt?.toISOString() ?? '—' }],
        });
        break;
      }
      case 'ask_approval':
        out.push({
          ...base,
          kind: 'rotation.approval_requested',
          severity: 'warning',
          period: '',
          title: `Approve setting API key "${k.name}" inactive?`,
          summary: `It is past its deadline (${day(d.deadline)}) and grace period, and ${d.reason === 'forced' ? 'force_after_days has passed' : `had no traffic in the last ${d.recentTraffic.windowHours} h`}. With rotation.enforce: approve, keywarden sets it inactive only when a person allowed to (slack_actions.allow.approve_deactivation) approves; the drain is checked again at the press. Deny asks again in the grace period's time.${ownerNote}`,
          details: { reason: d.reason, deadline: d.deadline.toISOString() },
          fields: [
            ...fields,
            { label: 'Last usage', value: d.recentTraffic.lastUsageAt?.toISOString() ?? 'none recorded' },
          ],
        });
        break;
      case 'denied':
        out.push(
          overdue(
            'denied',
            `Setting it inactive was denied from Slack by user ${d.denial.deniedBy.replace(/^slack:/, '')} on ${day(d.denial.deniedAt)}${d.denial.reason === null ? '' : ` (${d.denial.reason})`}; keywarden asks again from ${day(d.denial.askAgainAt)}.`,
          ),
        );
        break;
      case 'deactivate':
        if (deactivated.has(k.id)) {
          out.push({
            ...base,
            kind: 'rotation.deactivated',
            severity: 'info',
            period: day(d.deadline),
            title: `API key "${k.name}" was set inactive`,
            summary: `It was past its deadline (${day(d.deadline)}) and ${d.reason === 'forced' ? 'force_after_days had passed' : 'had no traffic in the drain window'}. To undo: keywarden keys reactivate ${k.id} --reason "…"`,
            details: { reason: d.reason },
            fields,
          });
        } else {
          out.push(overdue('deactivate_failed', 'Deactivating it failed this run; keywarden will try again.'));
        }
        break;
      default:
        break;
    }
  }
  return out;
}
