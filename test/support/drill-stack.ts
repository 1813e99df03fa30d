import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from './db.ts';
import { type SlackServer, startSlackServer } from './slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from './smtp-capture.ts';
import { type WorkerProcess, workerProcess } from './worker-process.ts';

/**
 * Everything a real-worker drill talks to: a fresh database, the emulator on the demo scenario (wall clock, as
 * the worker's), the Slack stand-in and the SMTP capture, each accepting the given secrets; and the worker
 * process wired to them. `close()` stops what it started.
 */
export interface DrillStack {
  t: TestDatabase;
  emulator: Emulator;
  slack: SlackServer;
  smtp: SmtpCapture;
  worker: WorkerProcess;
  prefix: string;
  /** The test's own directory (the policy file is there). */
  dir: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface DrillSecrets {
  adminKey: string;
  slackToken: string;
  smtpUser: string;
  smtpPassword: string;
}

export const DRILL_POLICY_ROUTES = `routes:
  - { match: { kind: "keywarden.*" }, slack: ["#ops"], email: ["ops@acme.example"] }
  - { match: { kind: "*" }, slack: ["#ai-alerts"] }
`;

export async function startDrillStack(opts: {
  secrets: DrillSecrets;
  policy: string;
  logLevel?: string;
}): Promise<DrillStack> {
  const { secrets } = opts;
  const t = await createTestDatabase();
  const emulator = await startEmulator({ scenario: loadScenario('demo'), adminKeys: [secrets.adminKey] });
  const slack = await startSlackServer({ tokens: [secrets.slackToken] });
  const smtp = await startSmtpCapture({ user: secrets.smtpUser, password: secrets.smtpPassword });
  const dir = mkdtempSync(join(tmpdir(), 'kw-drill-'));
  const prefix = uniquePrefix();
  const env = {
    // the worker as deployed: a member of keywarden_runtime, not the owner of the tables
    DATABASE_URL: t.runtimeUrl,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: secrets.adminKey,
    ANTHROPIC_BASE_URL: emulator.url,
    SLACK_BOT_TOKEN: secrets.slackToken,
    SLACK_API_URL: slack.url,
    SMTP_URL: smtp.url,
    EMAIL_FROM: '"keywarden" <keywarden@acme.example>',
    LOG_LEVEL: opts.logLevel ?? 'info',
  };
  const worker = workerProcess({ env, policy: opts.policy, dir, prefix });
  return {
    t,
    emulator,
    slack,
    smtp,
    worker,
    prefix,
    dir,
    env,
    close: async () => {
      await worker.stop();
      await Promise.allSettled([emulator.close(), slack.close(), smtp.close()]);
      await t.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
