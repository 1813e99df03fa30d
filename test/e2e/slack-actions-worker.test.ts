import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { choicesFor } from '../../src/action-ids.ts';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { fixedClock } from '../../src/clock.ts';
import { policySchema } from '../../src/config/policy.ts';
import { Secret } from '../../src/config/secret.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { freePort } from '../../src/dev/services.ts';
import { createLogger } from '../../src/log.ts';
import { STANDIN_APP_TOKEN } from '../../src/notify/dev/slack-standin.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

const SIGNING_SECRET = 'e2e-signing-secret-0123456789abcdef';
const POLICY = `
slack_actions: { enabled: true }
routes:
  - { match: { kind: "usage.*" }, slack: ["#ai-alerts"] }
`;

let t: TestDatabase;
let slack: SlackServer;
let dir: string;
let worker: WorkerProcess;
let port: number;

beforeAll(async () => {
  [t, slack] = await Promise.all([createTestDatabase(), startSlackServer()]);
  dir = mkdtempSync(join(tmpdir(), 'kw-actions-'));
  port = await freePort();
  worker = workerProcess({
    dir,
    prefix: uniquePrefix(),
    policy: POLICY,
    env: {
      DATABASE_URL: t.runtimeUrl,
      REDIS_URL: redisUrl(),
      ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-e2e-actions-0000',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      SLACK_BOT_TOKEN: slack.token,
      SLACK_API_URL: slack.url,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_APP_TOKEN: STANDIN_APP_TOKEN,
      KEYWARDEN_HTTP_PORT: String(port),
      KEYWARDEN_HTTP_HOST: '127.0.0.1',
    },
  });
  await worker.start();
}, 60_000);

afterAll(async () => {
  await worker?.kill9();
  await Promise.all([t?.drop(), slack?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the worker receives button presses', () => {
  it('over its HTTP port and over Socket Mode, and shuts the socket down on SIGTERM; no secret in its output', async () => {
    await slack.socketConnected();
    const repos = createRepos(t.db);
    const clock = fixedClock(new Date());
    const routes = policySchema.parse({ routes: [{ match: { kind: 'usage.*' }, slack: ['#ai-alerts'] }] }).routes;
    const observation = (keyId: string) => ({
      kind: 'usage.runaway' as const,
      severity: 'critical' as const,
      scopeType: 'key' as const,
      scopeId: keyId,
      workspaceId: null,
      period: '',
      title: `Runaway ${keyId}`,
      details: {},
    });
    // one raise per key (a raise of both would send one grouped message, which carries no buttons)
    for (const key of ['k1', 'k2']) {
      await raiseAlerts(
        { repos },
        { kinds: ['usage.runaway'], scopes: [`key:${key}`], observations: [observation(key)] },
        routes,
        clock.now(),
      );
    }
    const local = createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url });
    await deliverNotifications(
      {
        repos,
        notifier: { slack: local, email: null, close: async () => {} },
        clock,
        log: createLogger({ level: 'silent' }),
      },
      { buttons: true },
    );
    const buttons = await t.db
      .selectFrom('slack_buttons')
      .innerJoin('alerts', 'alerts.id', 'slack_buttons.alert_id')
      .select(['slack_buttons.id', 'choice', 'scope_id'])
      .execute();
    expect(buttons).toHaveLength(2 * choicesFor('usage.runaway').length);
    const buttonValue = (key: string, choice: string) =>
      buttons.find((b) => b.scope_id === key && b.choice === choice)!.id;

    const r = await slack.pressOverHttp(`http://127.0.0.1:${port}/slack/actions`, SIGNING_SECRET, {
      actionId: 'ack',
      value: buttonValue('k1', 'ack'),
      userId: 'U0ANA',
    });
    expect(r.status).toBe(200);
    await slack.pressOverSocket({ actionId: 'snooze', value: buttonValue('k2', 'snooze:1h'), userId: 'U0BEN' });
    await waitUntil(
      'socket press applied',
      async () => (await t.db.selectFrom('silences').select('id').execute()).length === 1,
      10_000,
    );
    const k1 = await t.db
      .selectFrom('alerts')
      .select('acknowledged_by')
      .where('scope_id', '=', 'k1')
      .executeTakeFirstOrThrow();
    expect(k1.acknowledged_by).toBe('U0ANA');

    await worker.stop();
    expect(worker.current.proc.exitCode).toBe(0);
    const output = worker.output();
    expect(output).not.toContain(SIGNING_SECRET);
    expect(output).not.toContain(STANDIN_APP_TOKEN);
    expect(output).not.toContain(slack.token);
  }, 60_000);
});
