import type { AlertObservation } from '../../src/alerts/core/lifecycle.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { redisUrl, type TestDatabase } from './db.ts';
import type { SlackServer } from './slack-server.ts';
import type { SmtpCapture } from './smtp-capture.ts';

/** Shared pieces of the kill drills (test/e2e/kill-worker.test.ts, test/faults/kill-worker.test.ts). */

// a cron no test lives to see: the job runs only when the drill wants it
const NEVER = '0 0 1 1 *';

/**
 * The environment of a drill's worker process. It connects as the runtime role, as a deployment's worker does, so a
 * drill also proves the role's grants cover everything the worker writes. Slack's URL is given apart: some drills
 * put a proxy in front of the stand-in.
 */
export function drillWorkerEnv(p: {
  t: TestDatabase;
  emulator: Emulator;
  slack: SlackServer;
  slackUrl?: string;
  smtp: SmtpCapture;
}): Record<string, string> {
  return {
    DATABASE_URL: p.t.runtimeUrl,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: p.emulator.state.scenario.admin_keys[0]!,
    ANTHROPIC_BASE_URL: p.emulator.url,
    SLACK_BOT_TOKEN: p.slack.token,
    SLACK_API_URL: p.slackUrl ?? p.slack.url,
    SMTP_URL: p.smtp.url,
    EMAIL_FROM: 'keywarden@acme.example',
  };
}

/**
 * The drills' policy file (JSON is YAML): drill alerts and pricing notices to Slack and email, deliveries every
 * second, poll-usage as given (never by default), and nothing else scheduled that reads the Admin API or rewrites
 * usage behind the drill's back.
 *
 * keywarden.job_failing counts a job's missed intervals in its own schedule's ticks: at the default 3, a poll every
 * 2 s that takes 6 s (a life's first poll catching up a day of rows through slow pages, on a loaded machine) would
 * be "not completing", and so would deliveries every second behind Slack's 300 ms answers. Sixty ticks (two minutes
 * of polls, one of deliveries) keep that alert for a job that really stops; failed runs still alert at the default.
 */
export function drillPolicy(opts: { pollUsage?: string } = {}) {
  const policy = {
    routes: [
      { match: { kind: 'key.orphaned' }, slack: ['#security'], email: ['security@acme.example'] },
      { match: { kind: 'pricing.*' }, slack: ['#finance'], email: ['finance@acme.example'] },
    ],
    schedules: {
      'deliver-notifications': '* * * * * *',
      'poll-usage': opts.pollUsage ?? NEVER,
      'usage-retention': NEVER,
      'reconcile-costs': NEVER,
      'sync-inventory': NEVER,
      'enforce-rotation': NEVER,
    },
    job_alerts: { missed_intervals: 60 },
  };
  return { routes: policy.routes, yaml: JSON.stringify(policy, null, 2) };
}

/** One alert the drill raises as a rule evaluation would; `title` must be unique (deliveries are counted by it). */
export function drillAlert(title: string): AlertObservation {
  return {
    kind: 'key.orphaned',
    severity: 'warning',
    scopeType: 'key',
    scopeId: title,
    workspaceId: null,
    period: '',
    title,
    details: {},
  };
}

/** How many Slack posts (answered ok by Slack) and emails carry each title. */
export function deliveriesByTitle(
  slack: SlackServer,
  smtp: SmtpCapture,
  titles: readonly string[],
): Record<string, { slack: number; email: number }> {
  const posts = slack.calls.filter((c) => c.method === 'chat.postMessage' && c.response?.ok);
  return Object.fromEntries(
    titles.map((title) => [
      title,
      {
        slack: posts.filter((c) => String(c.args.text).includes(title)).length,
        email: smtp.messages.filter((m) => m.subject.includes(title)).length,
      },
    ]),
  );
}
