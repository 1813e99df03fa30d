import type { Config } from '../config/index.ts';
import type { ActionButton, SlackPostBlock } from '../notify/render.ts';
import type { ActionId } from './core/ids.ts';

/**
 * The buttons on a Slack alert. They appear only when the policy turns them on AND a transport can bring the press
 * back (a signing secret for `POST /slack/actions`, or an app token for Socket Mode): a button whose press goes
 * nowhere is worse than the links the message carries anyway.
 */
export function slackButtonsOn(config: Pick<Config, 'env' | 'policy'>): boolean {
  const { env, policy } = config;
  return policy.slack_actions.enabled && (env.slackSigningSecret !== null || env.slackAppToken !== null);
}

const LABELS: Partial<Record<ActionId, { text: string; style?: ActionButton['style'] }>> = {
  ack: { text: 'Acknowledge', style: 'primary' },
};

/** The actions block of a firing alert's message; `value` is its `slack_buttons` row (never the alert itself). */
export function alertButtons(value: string): SlackPostBlock {
  const ids: ActionId[] = ['ack'];
  return {
    type: 'actions',
    elements: ids.map((id) => {
      const label = LABELS[id] ?? { text: id };
      return {
        type: 'button',
        text: { type: 'plain_text', text: label.text, emoji: false },
        action_id: id,
        value,
        ...(label.style === undefined ? {} : { style: label.style }),
      };
    }),
  };
}
