/**
 * The buttons keywarden puts on Slack messages: their `action_id`s (DESIGN.md, "Interfaces that must stay stable")
 * and the permission in the policy's `slack_actions.allow` each one needs. One list each; the unions follow.
 */

export const ACTION_IDS = ['ack', 'snooze', 'expected', 'approve', 'deny', 'reactivate'] as const;
export type ActionId = (typeof ACTION_IDS)[number];

export const PERMISSIONS = ['acknowledge', 'snooze', 'mark_expected', 'approve_deactivation', 'reactivate'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Deny is the other answer to the same question as Approve, so the same people may give it. */
export const PERMISSION_OF: Record<ActionId, Permission> = {
  ack: 'acknowledge',
  snooze: 'snooze',
  expected: 'mark_expected',
  approve: 'approve_deactivation',
  deny: 'approve_deactivation',
  reactivate: 'reactivate',
};

export function isActionId(value: string): value is ActionId {
  return (ACTION_IDS as readonly string[]).includes(value);
}
