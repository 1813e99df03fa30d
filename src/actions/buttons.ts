import type { SNOOZE_MS } from '../action-ids.ts';
import type { Config } from '../config/index.ts';
import type { ActionButton, ActionSelect, SlackPostBlock } from '../notify/render.ts';

/**
 * The buttons on a Slack alert. They appear only when the policy turns them on AND a transport can bring the press
 * back (a signing secret for `POST /slack/actions`, or an app token for Socket Mode): a button whose press goes
 * nowhere is worse than the links the message carries anyway.
 */
export function slackButtonsOn(config: Pick<Config, 'env' | 'policy'>): boolean {
  const { env, policy } = config;
  return policy.slack_actions.enabled && (env.slackSigningSecret !== null || env.slackAppToken !== null);
}

/** What check-config says when the policy and the environment disagree about buttons; null when they agree. */
export function slackButtonsWarning(config: Pick<Config, 'env' | 'policy'>): string | null {
  const { env, policy } = config;
  const transport = env.slackSigningSecret !== null || env.slackAppToken !== null;
  if (policy.slack_actions.enabled && !transport) {
    return 'slack_actions.enabled is true but neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN is set: messages keep their links and get no buttons';
  }
  if (policy.slack_actions.enabled && env.slackBotToken === null) {
    return 'slack_actions.enabled is true but SLACK_BOT_TOKEN is not set: pressed messages cannot be updated or answered';
  }
  return null;
}

const SNOOZE_LABELS: Record<keyof typeof SNOOZE_MS, string> = {
  'snooze:1h': '1 hour',
  'snooze:4h': '4 hours',
  'snooze:24h': '24 hours',
};

const plain = (text: string) => ({ type: 'plain_text' as const, text, emoji: false });

/**
 * The actions block of a firing alert's message: Acknowledge, and Snooze as a menu; Reactivate on a deactivation (one action_id per block, as
 * Block Kit requires, with the durations as its options). Each value is a `slack_buttons` row id, never the alert.
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
  const options = (Object.keys(SNOOZE_LABELS) as Array<keyof typeof SNOOZE_LABELS>).flatMap((choice) => {
    const value = offered.get(choice);
    return value === undefined ? [] : [{ text: plain(SNOOZE_LABELS[choice]), value }];
  });
  if (options.length > 0) {
    elements.push({ type: 'static_select', action_id: 'snooze', placeholder: plain('Snooze…'), options });
  }
  return { type: 'actions', elements };
}
