import type { Config } from '../config/index.ts';

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
