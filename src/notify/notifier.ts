import type { EnvConfig } from '../config/env.ts';
import type { Logger } from '../log.ts';
import { createEmailSender, type EmailSender } from './email.ts';
import { createSlackClient, type SlackClient } from './slack.ts';

/**
 * The delivery adapters the environment configures: Slack when SLACK_BOT_TOKEN is set, email when SMTP_URL and
 * EMAIL_FROM are. A channel that is not configured is null, and the outbox records why a message to it waits.
 */
export interface Notifier {
  slack: SlackClient | null;
  email: EmailSender | null;
  close(): Promise<void>;
}

export function createNotifier(env: EnvConfig, log: Logger): Notifier {
  const slack = env.slackBotToken
    ? createSlackClient({ token: env.slackBotToken, apiUrl: env.slackApiUrl, log: log.child({ component: 'slack' }) })
    : null;
  const email = env.smtpUrl && env.emailFrom ? createEmailSender({ smtpUrl: env.smtpUrl, from: env.emailFrom }) : null;
  // Neither adapter holds a connection between sends (no SMTP pool, Slack over HTTP), so there is nothing to close.
  return { slack, email, close: async () => {} };
}
