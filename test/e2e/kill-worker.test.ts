import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { policySchema } from '../../src/config/policy.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type HoldingProxy, startHoldingProxy } from '../support/holding-proxy.ts';
import { deliveriesByTitle, drillAlert, drillPolicy, drillWorkerEnv } from '../support/kill-drill.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Issue #8 with the real worker: a worker SIGKILLed after Slack took a message but before the outbox recorded it
 * sends that message at most once more, and marks it possibly duplicated; every other message goes exactly once.
 */

let t: TestDatabase;
let emulator: Emulator;
let slack: SlackServer;
let proxy: HoldingProxy;
let smtp: SmtpCapture;
let dir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet') });
  slack = await startSlackServer();
  proxy = await startHoldingProxy(slack.url);
  smtp = await startSmtpCapture();
  dir = mkdtempSync(join(tmpdir(), 'kw-kill-worker-'));
});
afterAll(async () => {
  for (const w of workers) await w.kill9();
  await proxy?.close();
  await slack?.close();
  await smtp?.close();
  await emulator?.close();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('worker killed between send and commit (real process)', () => {
  it('the message in flight goes out twice and is marked possibly duplicate; the others go once', async () => {
    const policy = drillPolicy();
    const routes = policySchema.parse({ routes: policy.routes }).routes;
    const titles = ['drill alert a01x', 'drill alert a02x', 'drill alert a03x'];
    for (const title of titles) {
      await raiseAlerts(
        { repos: createRepos(t.db) },
        { kinds: [], observations: [drillAlert(title)] },
        routes,
        new Date(),
      );
    }
    proxy.holdNext(/chat\.postMessage/);
    const prefix = uniquePrefix();
    const w = workerProcess({
      dir,
      prefix,
      policy: policy.yaml,
      env: drillWorkerEnv({ t, emulator, slack, slackUrl: proxy.url, smtp }),
    });
    workers.push(w);
    await w.start();
    // Slack has posted the message; its answer is held, so the worker still waits to record it
    await waitUntil('a Slack answer held', () => proxy.holding === 1);
    const inFlight = slack.calls.find((c) => c.method === 'chat.postMessage')!;
    const inFlightTitle = titles.find((title) => String(inFlight.args.text).includes(title))!;
    expect(inFlightTitle).toBeDefined();
    await w.kill9();
    proxy.release(); // to nobody: the worker is gone

    // the outbox's lease on the killed worker's claim (5 minutes) has passed, for the in-flight row and the batch
    await sql`UPDATE notifications SET next_attempt_at = now() WHERE status IN ('pending', 'sending')`.execute(t.db);
    await w.start();
    await waitUntil(
      'every notification sent',
      async () => (await t.db.selectFrom('notifications').select('status').execute()).every((r) => r.status === 'sent'),
      30_000,
    );
    await w.stop();

    const delivered = deliveriesByTitle(slack, smtp, titles);
    expect(delivered).toEqual(
      Object.fromEntries(titles.map((title) => [title, { slack: title === inFlightTitle ? 2 : 1, email: 1 }])),
    );
    const rows = await t.db
      .selectFrom('notifications')
      .innerJoin('alerts', 'alerts.id', 'notifications.alert_id')
      .select(['alerts.title', 'notifications.channel', 'notifications.possibly_duplicate', 'notifications.attempts'])
      .where('notifications.possibly_duplicate', '=', true)
      .execute();
    // only the message in flight is marked: the rest of the killed worker's batch had not been tried
    expect(rows).toEqual([{ title: inFlightTitle, channel: 'slack', possibly_duplicate: true, attempts: 2 }]);
  }, 90_000);
});
