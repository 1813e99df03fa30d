import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import { createEmailSender, type EmailSender } from './email.ts';
import { createPagerDutyClient, type PagerDutyClient } from './pagerduty.ts';
import { createSlackClient, type SlackClient } from './slack.ts';
import { createTeamsClient, type TeamsClient } from './teams.ts';
import { createWebhookSender, type WebhookSender } from './webhook.ts';

/**
 * The delivery adapters the configuration asks for: Slack when SLACK_BOT_TOKEN is set, email when SMTP_URL and
 * EMAIL_FROM are, PagerDuty, webhooks and Teams when the policy names receivers of that kind. A channel that is not
 * configured is null, and the outbox records why a message to it waits.
 */
export interface Notifier {
  slack: SlackClient | null;
  email: EmailSender | null;
  /** Null or absent (a test's notifier): the policy names no receiver of that kind. */
  pagerduty?: PagerDutyClient | null;
  webhook?: WebhookSender | null;
  teams?: TeamsClient | null;
  /** organization.name of the policy, which the webhook payload carries. */
  organization?: string;
  /**
   * Where the deployment watches several organizations: this one's name, put in front of every message's title
   * (Slack, email, PagerDuty, Teams, webhooks), so nobody takes one organization's alert for another's.
   */
  organizationTag?: string;
  close(): Promise<void>;
}

export function createNotifier(
  config: Pick<Config, 'env' | 'policy' | 'receivers'> & Partial<Pick<Config, 'organizations' | 'organization'>>,
  log: Logger,
): Notifier {
  const { env, receivers } = config;
  const slack = env.slackBotToken
    ? createSlackClient({ token: env.slackBotToken, apiUrl: env.slackApiUrl, log: log.child({ component: 'slack' }) })
    : null;
  const email = env.smtpUrl && env.emailFrom ? createEmailSender({ smtpUrl: env.smtpUrl, from: env.emailFrom }) : null;
  const some = (r: object) => Object.keys(r).length > 0;
  const pagerduty = some(receivers.pagerduty)
    ? createPagerDutyClient({ receivers: receivers.pagerduty, eventsUrl: env.pagerdutyEventsUrl })
    : null;
  const webhook = some(receivers.webhook) ? createWebhookSender({ receivers: receivers.webhook }) : null;
  const teams = some(receivers.teams) ? createTeamsClient({ receivers: receivers.teams }) : null;
  // No adapter holds a connection between sends (no SMTP pool; the rest over HTTP), so there is nothing to close.
  return {
    slack,
    email,
    pagerduty,
    webhook,
    teams,
    organization: config.policy.organization.name,
    ...((config.organizations?.length ?? 0) > 1 && config.organization
      ? { organizationTag: config.organization.name }
      : {}),
    close: async () => {},
  };
}
