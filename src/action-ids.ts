import type { AlertKind } from './kinds.ts';
import { DAY_MS, HOUR_MS } from './time.ts';

/**
 * The buttons keywarden puts on Slack messages: their `action_id`s (DESIGN.md, "Interfaces that must stay stable")
 * and the permission in the policy's `slack_actions.allow` each one needs. One list each; the unions follow.
 */

export const ACTION_IDS = ['ack', 'snooze', 'expected', 'approve', 'deny', 'reactivate'] as const;
export type ActionId = (typeof ACTION_IDS)[number];

export const PERMISSIONS = [
  'acknowledge',
  'snooze',
  'mark_expected',
  'approve_deactivation',
  'reactivate',
  'approve_spend_increase',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Deny is the other answer to the same question as Approve, so the same people may give it. */
const PERMISSION_OF: Record<ActionId, Permission> = {
  ack: 'acknowledge',
  snooze: 'snooze',
  expected: 'mark_expected',
  approve: 'approve_deactivation',
  deny: 'approve_deactivation',
  reactivate: 'reactivate',
};

/**
 * The permission a press needs: its action's, except on an increase request, where Approve and Deny raise (or keep)
 * a member's spend limit: a power of its own, never granted by being allowed to set keys inactive.
 */
export function permissionOf(actionId: ActionId, choice: string): Permission {
  if (choice === 'increase:approve' || choice === 'increase:deny') return 'approve_spend_increase';
  return PERMISSION_OF[actionId];
}

export function isActionId(value: string): value is ActionId {
  return (ACTION_IDS as readonly string[]).includes(value);
}

/**
 * What one button row offers: the action and, for Snooze, how long. Each is its own `slack_buttons` row, so the
 * value Slack sends back names exactly one of them.
 */
export const CHOICES = [
  'ack',
  'snooze:1h',
  'snooze:4h',
  'snooze:24h',
  'reactivate',
  'expected:4h',
  'expected:24h',
  'expected:72h',
  'approve',
  // Deny is a menu of reasons (Slack buttons carry no text): who said no, and why
  'deny:still_needed',
  'deny:successor_not_ready',
  'deny:owner_away',
  // the runaway alert's "Deactivate key" (anomaly.auto_deactivate.mode: approve): pressed as `approve`
  'deactivate',
  // a Claude Enterprise member's spend limit increase request: pressed as `approve` and `deny`
  'increase:approve',
  'increase:deny',
] as const;
export type Choice = (typeof CHOICES)[number];

/** Notices that a key was deactivated: their one button brings it back. Every other alert gets Acknowledge and Snooze. */
const DEACTIVATION_NOTICES: ReadonlySet<string> = new Set<AlertKind>(['rotation.deactivated']);
const ACK_AND_SNOOZE: readonly Choice[] = ['ack', 'snooze:1h', 'snooze:4h', 'snooze:24h'];

/** Runaway alerts may also be marked as expected (planned spend) for a while. */
const EXPECTED_CHOICES: readonly Choice[] = ['expected:4h', 'expected:24h', 'expected:72h'];

/**
 * The buttons a message about one alert of `kind` offers; `details` are the alert's own (a runaway's says what the
 * kill switch did: set the key inactive, or wait for a person's press).
 */
export function choicesFor(kind: string, details: Record<string, unknown> = {}): readonly Choice[] {
  if (DEACTIVATION_NOTICES.has(kind)) return ['reactivate'];
  if (kind === 'rotation.approval_requested') return ['approve', ...DENY_CHOICES];
  // an increase request's notice; without an amount to propose it offers Deny only (the Console sets the rest)
  if (kind === 'spend.limit_changed' && typeof details.increaseRequestId === 'string') {
    return typeof details.proposedUsd === 'string' ? ['increase:approve', 'increase:deny'] : ['increase:deny'];
  }
  if (kind === 'usage.runaway' && details.killSwitch === 'deactivated') return ['reactivate', ...ACK_AND_SNOOZE];
  if (kind === 'usage.runaway' && details.killSwitch === 'awaiting_approval') {
    return ['deactivate', ...ACK_AND_SNOOZE, ...EXPECTED_CHOICES];
  }
  if (kind === 'usage.runaway') return [...ACK_AND_SNOOZE, ...EXPECTED_CHOICES];
  return ACK_AND_SNOOZE;
}

/**
 * Whether a message about one alert of `kind` asks a person to decide (Approve, Deny, Deactivate, Reactivate): such
 * alerts are never grouped, since a message listing several alerts names none and so carries no buttons. Mark as
 * expected is not such a decision (nothing waits for it), so a storm of plain runaways stays one message.
 */
export function carriesDecision(kind: string, details: Record<string, unknown> = {}): boolean {
  return choicesFor(kind, details).some((c) => !ACK_AND_SNOOZE.includes(c) && !EXPECTED_CHOICES.includes(c));
}

/** Why a Deny was given, as the denial records it and the messages say it. */
export const DENY_REASONS: Record<Extract<Choice, `deny:${string}`>, string> = {
  'deny:still_needed': 'the key is still needed',
  'deny:successor_not_ready': 'its successor is not ready',
  'deny:owner_away': 'its owner is away',
};
const DENY_CHOICES = Object.keys(DENY_REASONS) as Array<keyof typeof DENY_REASONS>;

export const SNOOZE_MS: Record<Extract<Choice, `snooze:${string}`>, number> = {
  'snooze:1h': HOUR_MS,
  'snooze:4h': 4 * HOUR_MS,
  'snooze:24h': DAY_MS,
};

/** How long "Mark as expected" holds, per choice: the key's bar covers the alert's rate until then. */
export const EXPECTED_MS: Record<Extract<Choice, `expected:${string}`>, number> = {
  'expected:4h': 4 * HOUR_MS,
  'expected:24h': DAY_MS,
  'expected:72h': 3 * DAY_MS,
};

/** The action a choice belongs to: a press must carry that action_id for the row its value names. */
export function actionOfChoice(choice: string): ActionId | null {
  if (choice === 'ack') return 'ack';
  if (choice === 'reactivate') return 'reactivate';
  if (choice === 'approve' || choice === 'deactivate' || choice === 'increase:approve') return 'approve';
  if (choice === 'increase:deny') return 'deny';
  if (choice in DENY_REASONS) return 'deny';
  if (choice in SNOOZE_MS) return 'snooze';
  if (choice in EXPECTED_MS) return 'expected';
  return null;
}
