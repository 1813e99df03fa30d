import { DENY_REASONS, type EXPECTED_MS, type SNOOZE_MS } from '../action-ids.ts';
import type { ActionButton, ActionSelect, SlackPostBlock } from './render.ts';

/**
 * The buttons' Block Kit, beside the rest of the Slack rendering: src/actions/buttons.ts says when a message carries
 * them, src/actions/ handles the press.
 */

const SNOOZE_LABELS: Record<keyof typeof SNOOZE_MS, string> = {
  'snooze:1h': '1 hour',
  'snooze:4h': '4 hours',
  'snooze:24h': '24 hours',
};

const EXPECTED_LABELS: Record<keyof typeof EXPECTED_MS, string> = {
  'expected:4h': 'for 4 hours',
  'expected:24h': 'for 24 hours',
  'expected:72h': 'for 72 hours',
};

const plain = (text: string) => ({ type: 'plain_text' as const, text, emoji: false });

/**
 * The actions block of a firing alert's message: Acknowledge, and Snooze as a menu (one action_id per block, as
 * Block Kit requires, with the durations as its options); Reactivate on a deactivation; Approve and Deny on an
 * approval request and on a member's spend limit increase request; Deactivate on a runaway that waits for a person. Each value is a `slack_buttons` row id, never
 * the alert.
 */
export function alertButtons(offered: ReadonlyMap<string, string>): SlackPostBlock {
  const elements: Array<ActionButton | ActionSelect> = [];
  const ack = offered.get('ack');
  if (ack !== undefined) {
    elements.push({ type: 'button', text: plain('Acknowledge'), action_id: 'ack', value: ack, style: 'primary' });
  }
  const reactivate = offered.get('reactivate');
  if (reactivate !== undefined) {
    elements.push({ type: 'button', text: plain('Reactivate key'), action_id: 'reactivate', value: reactivate });
  }
  const approve = offered.get('approve');
  if (approve !== undefined) {
    elements.push({ type: 'button', text: plain('Approve'), action_id: 'approve', value: approve, style: 'danger' });
  }
  const reasons = (Object.keys(DENY_REASONS) as Array<keyof typeof DENY_REASONS>).flatMap((choice) => {
    const value = offered.get(choice);
    return value === undefined ? [] : [{ text: plain(DENY_REASONS[choice]), value }];
  });
  if (reasons.length > 0) {
    elements.push({ type: 'static_select', action_id: 'deny', placeholder: plain('Deny…'), options: reasons });
  }
  // the runaway's Deactivate answers the same question as Approve (anomaly.auto_deactivate.mode: approve)
  const deactivate = offered.get('deactivate');
  if (deactivate !== undefined) {
    elements.push({
      type: 'button',
      text: plain('Deactivate key'),
      action_id: 'approve',
      value: deactivate,
      style: 'danger',
    });
  }
  // a member's spend limit increase request: Approve sets the amount the message proposes, Deny keeps the limit
  const increaseApprove = offered.get('increase:approve');
  if (increaseApprove !== undefined) {
    elements.push({
      type: 'button',
      text: plain('Approve'),
      action_id: 'approve',
      value: increaseApprove,
      style: 'primary',
    });
  }
  const increaseDeny = offered.get('increase:deny');
  if (increaseDeny !== undefined) {
    elements.push({ type: 'button', text: plain('Deny'), action_id: 'deny', value: increaseDeny });
  }
  const options = (Object.keys(SNOOZE_LABELS) as Array<keyof typeof SNOOZE_LABELS>).flatMap((choice) => {
    const value = offered.get(choice);
    return value === undefined ? [] : [{ text: plain(SNOOZE_LABELS[choice]), value }];
  });
  if (options.length > 0) {
    elements.push({ type: 'static_select', action_id: 'snooze', placeholder: plain('Snooze…'), options });
  }
  // on runaway alerts: planned spend, with how long it is planned for as the menu's options
  const expected = (Object.keys(EXPECTED_LABELS) as Array<keyof typeof EXPECTED_LABELS>).flatMap((choice) => {
    const value = offered.get(choice);
    return value === undefined ? [] : [{ text: plain(EXPECTED_LABELS[choice]), value }];
  });
  if (expected.length > 0) {
    elements.push({
      type: 'static_select',
      action_id: 'expected',
      placeholder: plain('Mark as expected…'),
      options: expected,
    });
  }
  return { type: 'actions', elements };
}
