import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { policySchema } from '../../src/config/policy.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { deliveriesByTitle, drillAlert, drillPolicy, drillWorkerEnv } from '../support/kill-drill.ts';
import { ticksOf } from '../support/replica-logs.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { expectUsageEqualsTruth } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * Two real worker processes (`keywarden worker`, same Redis prefix, same Postgres) against the emulator: every
 * scheduled tick of poll-usage and sync-inventory runs once across both, both replicas take work, the usage stored
 * equals the emulator's ground truth and each alert raised goes out once per target.
 */

const DAY = 86_400_000;
const POLL_EVERY_S = 3;
const SYNC_EVERY_S = 4;

let t: TestDatabase;
let emulator: Emulator;
let slack: SlackServer;
let smtp: SmtpCapture;
let dir: string;
let replicas: WorkerProcess[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet'), freshnessDelayMinutes: 0 });
  slack = await startSlackServer();
  smtp = await startSmtpCapture();
  dir = mkdtempSync(join(tmpdir(), 'kw-replicas-'));
  const policy = JSON.parse(drillPolicy({ pollUsage: `*/${POLL_EVERY_S} * * * * *` }).yaml);
  policy.schedules['sync-inventory'] = `*/${SYNC_EVERY_S} * * * * *`;
  const prefix = uniquePrefix();
  replicas = ['a', 'b'].map(() =>
    workerProcess({
      dir,
      prefix,
      policy: JSON.stringify(policy),
      env: { ...drillWorkerEnv({ t, emulator, slack, smtp }), LOG_LEVEL: 'info' },
    }),
  );
});
afterAll(async () => {
  for (const r of replicas) await r.kill9();
  await slack?.close();
  await smtp?.close();
  await emulator?.close();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('two worker replicas on one Redis and one Postgres', () => {
  it('run each tick once, share the work, and store exactly the emulator’s usage', async () => {
    const backfillStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1) - 35 * DAY);
    await Promise.all(replicas.map((r) => r.start()));
    const titles = Array.from({ length: 6 }, (_, i) => `replica alert ${i + 1}x`);
    const routes = policySchema.parse({ routes: drillPolicy().routes }).routes;
    for (const title of titles) {
      await raiseAlerts(
        { repos: createRepos(t.db) },
        { kinds: [], observations: [drillAlert(title)] },
        routes,
        new Date(),
      );
    }
    // 30 s of both: ten polls, seven inventory syncs, deliveries every second
    await new Promise((r) => setTimeout(r, 30_000));
    await waitUntil('every notification sent', async () => {
      const unsent = await t.db.selectFrom('notifications').select('id').where('status', '<>', 'sent').execute();
      return unsent.length === 0;
    });
    await Promise.all(replicas.map((r) => r.stop()));

    const outputs = replicas.map((r) => r.output());
    for (const [job, everyS] of [
      ['poll-usage', POLL_EVERY_S],
      ['sync-inventory', SYNC_EVERY_S],
    ] as const) {
      const perReplica = outputs.map((out) => ticksOf(out, job));
      const all = perReplica.flat().sort((x, y) => x - y);
      // once each across the replicas …
      expect(all.filter((at, i) => all[i - 1] === at)).toEqual([]);
      expect(all.length).toBeGreaterThanOrEqual(25 / everyS);
      // … and none missing between the first and the last (a tick skipped because the last run still ran counts)
      for (let i = 1; i < all.length; i++) expect(all[i]! - all[i - 1]!).toBe(everyS * 1000);
    }
    // both took work: scheduled ticks of any job, by the job ids in each replica's log
    const ran = outputs.map((out) => ticksOf(out, 'poll-usage').length + ticksOf(out, 'sync-inventory').length);
    expect(ran.every((n) => n > 0)).toBe(true);
    // the emulator saw one inventory read per tick run (its users list, first page), not one per replica
    const syncsRun = outputs
      .map((out) => ticksOf(out, 'sync-inventory', 'inventory synced').length)
      .reduce((a, b) => a + b);
    const usersReads = emulator.requestLog.filter((r) =>
      /^\/v1\/organizations\/users(\?(?!.*after_id)|$)/.test(r.path),
    );
    expect(usersReads).toHaveLength(syncsRun);

    await expectUsageEqualsTruth(t.db, emulator, backfillStart);
    const delivered = deliveriesByTitle(slack, smtp, titles);
    expect(Object.values(delivered)).toEqual(titles.map(() => ({ slack: 1, email: 1 })));
    console.info(
      `two replicas: work taken ${ran.join(' / ')} ticks; ${syncsRun} inventory syncs, ${usersReads.length} users reads`,
    );
  }, 180_000);
});
