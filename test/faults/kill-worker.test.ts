import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { policySchema } from '../../src/config/policy.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { seededRandom } from '../../src/emulator/random/hash.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type HoldingProxy, startHoldingProxy } from '../support/holding-proxy.ts';
import { deliveriesByTitle, drillAlert, drillPolicy, drillWorkerEnv } from '../support/kill-drill.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { expectUsageEqualsTruth } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Issue #9, drill 1: the real worker polling usage and delivering alerts, `kill -9`ed 20 times at seeded random
 * moments and restarted each time. At the end: stored usage equals the emulator's ground truth to the token, every
 * alert raised has all its notifications delivered, and a message went out more than once only where sends of it
 * were in flight when a worker died (at most one extra per such death), and then it is marked possibly duplicate.
 */

const KILLS = 20;
const SEED = 20261129;
const DAY = 86_400_000;
const HOUR = 3_600_000;
const UNKNOWN_MODEL = 'claude-haiku-9-preview';

let t: TestDatabase;
let emulator: Emulator;
let slack: SlackServer;
let proxy: HoldingProxy;
let smtp: SmtpCapture;
let dir: string;
let worker: WorkerProcess;

beforeAll(async () => {
  t = await createTestDatabase();
  // the quiet organization with one key on a model the price table lacks: the worker's polls raise
  // pricing.unknown_model themselves, once
  const text = readFileSync('src/emulator/scenarios/quiet.yaml', 'utf8').replace(
    'models: { claude-haiku-4-5: 1 }, web_search_per_minute',
    `models: { ${UNKNOWN_MODEL}: 1 }, web_search_per_minute`,
  );
  // slow usage pages now and then: polls spend real time fetching, where kills can land
  emulator = await startEmulator({
    scenario: parseScenario(parseYaml(text)),
    freshnessDelayMinutes: 0,
    faults: { pathPrefix: '/v1/organizations/usage_report', slowShare: 0.3, slowMs: 700, seed: SEED },
  });
  slack = await startSlackServer();
  // Slack answers after 300 ms: a kill in that window is one after the post and before the outbox records it
  proxy = await startHoldingProxy(slack.url, { delayMs: 300 });
  smtp = await startSmtpCapture();
  dir = mkdtempSync(join(tmpdir(), 'kw-kill-drill-'));
  worker = workerProcess({
    dir,
    prefix: uniquePrefix(),
    policy: drillPolicy({ pollUsage: '*/2 * * * * *' }).yaml,
    env: drillWorkerEnv({ t, emulator, slack, slackUrl: proxy.url, smtp }),
  });
});
afterAll(async () => {
  await worker?.kill9();
  await proxy?.close();
  await slack?.close();
  await smtp?.close();
  await emulator?.close();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kill -9 drill (real worker, 20 kills)', () => {
  it('after 20 kills at random points of polling and delivery: usage exact, no alert lost, duplicates marked', async () => {
    const random = seededRandom(SEED);
    const routes = policySchema.parse({ routes: drillPolicy().routes }).routes;
    const titles: string[] = [];
    const backfillStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1) - 35 * DAY);
    const minuteHistoryStart = Math.floor((Date.now() - 48 * HOUR) / HOUR) * HOUR;

    for (let kill = 1; kill <= KILLS; kill++) {
      // a rule evaluation raises two alerts while the worker is down: their notifications wait in the outbox
      for (const letter of ['a', 'b']) {
        const title = `drill alert k${String(kill).padStart(2, '0')}${letter}x`;
        titles.push(title);
        await raiseAlerts(
          { repos: createRepos(t.db) },
          { kinds: [], observations: [drillAlert(title)] },
          routes,
          new Date(),
        );
      }
      // a gap of 1–24 hours to catch up (as after downtime): each life's first poll replaces a day or so of rows
      const gapMs = Math.ceil(random() * 24) * HOUR;
      await sql`UPDATE watermarks SET position = greatest(${new Date(minuteHistoryStart + HOUR)}, position - ${`${gapMs} milliseconds`}::interval)
        WHERE name = ${WATERMARKS.usage}`.execute(t.db);
      await worker.start();
      await sleep(200 + random() * 2_800);
      await worker.kill9();
      // the outbox's lease on the killed worker's claim (5 minutes) has passed: for the row in flight and for the
      // rest of its batch, leased but not yet tried
      await sql`UPDATE notifications SET next_attempt_at = now() WHERE status IN ('pending', 'sending')`.execute(t.db);
    }

    // the last restart, left alone: it catches up and delivers everything
    emulator.setFaults({});
    await worker.start();
    await waitUntil(
      'every notification sent and a poll up to now',
      async () => {
        const unsent = await t.db.selectFrom('notifications').select('id').where('status', '<>', 'sent').execute();
        const wm = await t.db
          .selectFrom('watermarks')
          .select('position')
          .where('name', '=', WATERMARKS.usage)
          .executeTakeFirst();
        return unsent.length === 0 && wm !== undefined && new Date(wm.position).getTime() > Date.now() - 3 * 60_000;
      },
      120_000,
    );
    await worker.current.waitForOutput(/"msg":"usage polled"/);
    await worker.stop();

    // usage: to the token, no duplicates, hourly and 1m history tiling
    await expectUsageEqualsTruth(t.db, emulator, backfillStart);

    // no alert lost: every alert raised (the drill's and the worker's own pricing notice) has all its
    // notifications sent, one per route target
    const alerts = await t.db.selectFrom('alerts').select(['id', 'kind', 'title']).execute();
    expect(alerts.filter((a) => a.kind === 'pricing.unknown_model').map((a) => a.title)).toEqual([
      `Model ${UNKNOWN_MODEL} is not in the price table`,
    ]);
    // and nothing else, each by kind and title, so an extra alert names itself (a keywarden.job_failing here is a job
    // that stopped completing at the cadence the drill's policy allows, see drillPolicy)
    expect(alerts.map((a) => `${a.kind}: ${a.title}`).sort()).toEqual(
      [
        ...titles.map((title) => `key.orphaned: ${title}`),
        `pricing.unknown_model: Model ${UNKNOWN_MODEL} is not in the price table`,
      ].sort(),
    );
    expect(alerts).toHaveLength(titles.length + 1);
    const rows = await t.db
      .selectFrom('notifications')
      .innerJoin('alerts', 'alerts.id', 'notifications.alert_id')
      .select([
        'alerts.title',
        'notifications.channel',
        'notifications.status',
        'notifications.possibly_duplicate',
        'notifications.attempts',
      ])
      .execute();
    expect(rows).toHaveLength(2 * alerts.length);
    expect(rows.filter((r) => r.status !== 'sent')).toEqual([]);

    // delivered at least once each; more than once only where sends were in flight when a worker died (each
    // such life claimed the row: one attempt each), and then marked possibly duplicate
    const delivered = deliveriesByTitle(
      slack,
      smtp,
      alerts.map((a) => a.title),
    );
    const wrong: string[] = [];
    let duplicates = 0;
    for (const r of rows) {
      // the drill routes to Slack and email only
      const n = delivered[r.title]![r.channel as 'slack' | 'email'];
      duplicates += Math.max(0, n - 1);
      if (n < 1 || n > r.attempts || (n > 1 && !r.possibly_duplicate)) {
        wrong.push(
          `${r.title} ${r.channel}: ${n} deliveries in ${r.attempts} attempts, possibly_duplicate ${r.possibly_duplicate}`,
        );
      }
    }
    expect(wrong).toEqual([]);
    const flagged = rows.filter((r) => r.possibly_duplicate).length;
    // a kill leaves at most one send in flight: only that one may be marked
    expect(flagged).toBeLessThanOrEqual(KILLS);
    // a killed worker's usage request stays unanswered in the emulator's log (slow answers come after the kill)
    const killedFetching = emulator.requestLog.filter((r) => r.status === null).length;
    console.log(
      `kill drill: ${KILLS} kills (${killedFetching} during a usage page fetch), ${rows.length} notifications, ` +
        `${duplicates} duplicate deliveries, ${flagged} marked possibly duplicate`,
    );
  });
});
