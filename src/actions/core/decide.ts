import {
  type ActionId,
  DENY_REASONS,
  EXPECTED_MS,
  type Permission,
  permissionOf,
  SNOOZE_MS,
} from '../../action-ids.ts';
import type { SlackActionsPolicy } from '../../config/policy.ts';

/**
 * Who may press, and what a press does, decided from data alone: the shell (src/actions/handle.ts) brings the
 * alert as Postgres has it now and the user groups the presser belongs to, and applies what this returns.
 */

/** The alert a button names, as it is at the press. */
export interface PressedAlert {
  kind: string;
  scopeType: string;
  scopeId: string;
  state: 'firing' | 'resolved';
  startedAt: Date;
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
}

export interface PressInput {
  actionId: ActionId;
  /** The Slack user id of who pressed. */
  userId: string;
  /** The user groups (`S…`) named in the action's allow list that the presser is a member of. */
  userGroups: ReadonlySet<string>;
  policy: SlackActionsPolicy;
  alert: PressedAlert;
  /** The episode the button was offered for. */
  episodeStartedAt: Date;
  /** What the pressed row offers (`ack`, `snooze:4h`): the caller has checked it belongs to `actionId`. */
  choice: string;
  /** For Reactivate: the key's status as keywarden last stored it (null: unknown). */
  keyStatus?: string | null;
  /** For Mark as expected: the runaway's current rate (USD/hour) as the alert last said it; null when it says none. */
  coveredHourlyUsd?: number | null;
  /** For an increase request's Approve and Deny: the API's request id the notice names; null when it names none. */
  increaseRequestId?: string | null;
}

export type PressDecision =
  /** Nothing changes; the presser is told why (ephemeral). */
  | { do: 'refuse'; reason: 'disabled' | 'not_allowed' | 'not_offered'; permission: Permission }
  | { do: 'acknowledge' }
  /** Silence this alert (its fingerprint) for `ms` from the press. */
  | { do: 'snooze'; ms: number }
  /** Set the key active again through the Admin API (audited; the API may still refuse, e.g. an expired key). */
  | { do: 'reactivate'; keyId: string }
  /** rotation.approval_requested: retire the key if the plan, asked again now, still asks (src/rotation/approve.ts). */
  | { do: 'approve'; keyId: string }
  /** rotation.approval_requested: record the "no" and why; the plan asks again grace_days later. */
  | { do: 'deny'; keyId: string; reason: string | null }
  /** The runaway's "Deactivate key": the kill switch's deactivation, on a person's word (apply-kill-switch.ts). */
  | { do: 'deactivate'; keyId: string }
  /** The runaway's spend is planned: a mark covering `coveredHourlyUsd` for `ms` from the press; the alert resolves. */
  | { do: 'mark_expected'; ms: number; scopeType: 'key' | 'workspace'; scopeId: string; coveredHourlyUsd: number }
  /**
   * A member's spend limit increase request (its `spend.limit_changed` notice): approve or deny it through the Admin
   * API, after reading it again (src/actions/increase.ts).
   */
  | { do: 'answer_increase'; answer: 'approve' | 'deny'; requestId: string }
  /** Already done, or too late: nothing changes, the presser is told the current state. */
  | { do: 'nothing'; state: 'acknowledged' | 'resolved' | 'later_episode' | 'already_active' };

/** Whether the allow list lets this user press: `"*"`, their user id, or a user group they are in. */
export function mayPress(allow: readonly string[], userId: string, userGroups: ReadonlySet<string>): boolean {
  return allow.some((who) => who === '*' || who === userId || (who.startsWith('S') && userGroups.has(who)));
}

/** The buttons this version puts on messages; a press of any other (known) action id is refused. */
const OFFERED: ReadonlySet<ActionId> = new Set<ActionId>([
  'ack',
  'snooze',
  'reactivate',
  'approve',
  'deny',
  'expected',
]);

export function decidePress(input: PressInput): PressDecision {
  const permission = permissionOf(input.actionId, input.choice);
  if (!input.policy.enabled) return { do: 'refuse', reason: 'disabled', permission };
  if (!OFFERED.has(input.actionId)) return { do: 'refuse', reason: 'not_offered', permission };
  if (!mayPress(input.policy.allow[permission], input.userId, input.userGroups)) {
    return { do: 'refuse', reason: 'not_allowed', permission };
  }
  const { alert } = input;
  // the request's own state is the Admin API's, read again at the press: not the notice's episode or state
  if (input.choice === 'increase:approve' || input.choice === 'increase:deny') {
    const requestId = input.increaseRequestId ?? null;
    if (alert.kind !== 'spend.limit_changed' || alert.scopeType !== 'member' || requestId === null) {
      return { do: 'refuse', reason: 'not_offered', permission };
    }
    return { do: 'answer_increase', answer: input.actionId === 'approve' ? 'approve' : 'deny', requestId };
  }
  // a deactivation notice is a fact, not a state: its key can be brought back whatever became of the notice
  if (input.actionId === 'reactivate') {
    if (alert.scopeType !== 'key') return { do: 'refuse', reason: 'not_offered', permission };
    if (input.keyStatus === 'active') return { do: 'nothing', state: 'already_active' };
    return { do: 'reactivate', keyId: alert.scopeId };
  }
  // an old message's button must not act on the alert's next episode
  if (alert.startedAt.getTime() !== input.episodeStartedAt.getTime()) return { do: 'nothing', state: 'later_episode' };
  if (alert.state === 'resolved') return { do: 'nothing', state: 'resolved' };
  if (input.actionId === 'expected') return decideExpected(input, permission);
  // an answer to "set this key inactive?": acknowledging the question does not answer it
  if (input.actionId === 'approve' || input.actionId === 'deny') {
    if (alert.scopeType !== 'key') return { do: 'refuse', reason: 'not_offered', permission };
    // each answer belongs to its own question: a value from another message must not retire a key by another path
    const deactivate = input.choice === 'deactivate';
    if (alert.kind !== (deactivate ? 'usage.runaway' : 'rotation.approval_requested')) {
      return { do: 'refuse', reason: 'not_offered', permission };
    }
    if (deactivate) return { do: 'deactivate', keyId: alert.scopeId };
    if (input.actionId === 'approve') return { do: 'approve', keyId: alert.scopeId };
    const reason = DENY_REASONS[input.choice as keyof typeof DENY_REASONS] ?? null;
    return { do: 'deny', keyId: alert.scopeId, reason };
  }
  const snoozeMs = SNOOZE_MS[input.choice as keyof typeof SNOOZE_MS];
  // an acknowledged alert may still be snoozed: acknowledging stops repeats, a silence also stops its resolve
  if (input.actionId === 'snooze' && snoozeMs !== undefined) return { do: 'snooze', ms: snoozeMs };
  if (alert.acknowledgedAt !== null) return { do: 'nothing', state: 'acknowledged' };
  return { do: 'acknowledge' };
}

/**
 * Mark as expected, on a firing episode of a runaway alert (checked before): a mark for the alert's scope covering the
 * rate the alert last reported. An alert without a rate (or of another kind) has nothing to mark.
 */
function decideExpected(input: PressInput, permission: Permission): PressDecision {
  const ms = EXPECTED_MS[input.choice as keyof typeof EXPECTED_MS];
  const { alert } = input;
  const scopeType = alert.scopeType;
  const rate = input.coveredHourlyUsd ?? null;
  if (
    ms === undefined ||
    alert.kind !== 'usage.runaway' ||
    (scopeType !== 'key' && scopeType !== 'workspace') ||
    rate === null ||
    !(rate > 0 && Number.isFinite(rate))
  ) {
    return { do: 'refuse', reason: 'not_offered', permission };
  }
  return { do: 'mark_expected', ms, scopeType, scopeId: alert.scopeId, coveredHourlyUsd: rate };
}
