import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/anthropic/client.ts';
import { Secret } from '../../src/config/secret.ts';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import { seededRandom } from '../../src/emulator/random/hash.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { drillPolicy, drillWorkerEnv } from '../support/kill-drill.ts';
import { runNode } from '../support/processes.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-capture.ts';
import { expectUsageEqualsTruth } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * The real worker, `kill -9`ed and restarted at seeded random moments, while the Admin API's usage data arrives 30
 * minutes late, with rotation enforced (enforce: true, grace 0, a 30-minute drain window: late data that was lost,
 * or judged fresh, would make every busy overdue key look drained). Then the API catches up. At the end: stored
 * usage equals the emulator's ground truth to the token, and no key was deactivated.
 */

const KILLS = 5;
const SEED = 20261204;
const DAY = 86_400_000;
const MINUTE = 60_000;

let t: TestDatabase;
let emulator: Emulator;
let slack: SlackServer;
let smtp: SmtpCapture;
let dir: string;
let worker: WorkerProcess;

beforeAll(async () => {
  t = await createTestDatabase();
  // on the wall clock, as the worker's; the demo's own 1-minute delay off, so that a late minute is the fault's
  emulator = await startEmulator({
    scenario: loadScenario('demo'),
    freshnessDelayMinutes: 0,
    faults: { dataDelayMinutes: 30 },
  });
  slack = await startSlackServer();
  smtp = await startSmtpCapture();
  dir = mkdtempSync(join(tmpdir(), 'kw-late-drill-'));
  const base = JSON.parse(drillPolicy().yaml) as { routes: unknown[]; schedules: Record<string, string> };
  const policy = {
    rotation: { enforce: true, grace_days: 0, drain_window_hours: 0.5 },
    routes: [...base.routes, { match: { kind: 'rotation.*' }, slack: ['#security'] }],
    schedules: { ...base.schedules, 'poll-usage': '*/3 * * * * *', 'enforce-rotation': '*/5 * * * * *' },
  };
  worker = workerProcess({
    dir,
    prefix: uniquePrefix(),
    policy: JSON.stringify(policy, null, 2),
    env: drillWorkerEnv({ t, emulator, slack, smtp }),
  });
});
afterAll(async () => {
  await worker?.kill9();
  await slack?.close();
  await smtp?.close();
  await emulator?.close();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

describe('kill -9 drill with usage data 30 minutes late', () => {
  it('stores every late minute once it shows, to the token, and deactivates no busy key', async () => {
    const random = seededRandom(SEED);
    const admin = new AdminClient({
      baseUrl: emulator.url,
      adminKey: new Secret(emulator.state.scenario.admin_keys[0]!),
    });
    const statuses = async () =>
      Object.fromEntries((await admin.listApiKeys().toArray()).map((k) => [k.name, k.status]));
    const before = await statuses();
    // the inventory first (sync-inventory is not scheduled in the drill): enforcement needs the keys
    const sync = await runNode('src/cli/index.ts', ['run', 'sync-inventory', '--once'], {
      ...envOf(),
      KEYWARDEN_CONFIG: join(dir, 'keywarden.yaml'),
    });
    expect(sync.code).toBe(0);

    // the first poll (the month's hourly backfill and 48 hours of minutes) while the data is late
    await worker.start();
    await waitUntil(
      'the first poll committed',
      async () => {
        const w = await watermarksRepo(t.db).read(WATERMARKS.usage);
        return w !== null && w.getTime() >= Date.now() - 3 * MINUTE;
      },
      120_000,
    );
    await worker.kill9();
    // then lives cut short at random moments of polling and enforcing, the data still late
    for (let kill = 1; kill <= KILLS; kill++) {
      await worker.start();
      await sleep(1_000 + random() * 5_000);
      await worker.kill9();
    }
    // a life left alone while the data is still late: it polls and enforces over and over, long enough that the
    // minutes held back fall out of the 15-minute overlap
    await worker.start();
    const polledFrom = count(worker.output(), /"msg":"usage polled"/);
    await waitUntil(
      'polls and enforcement runs with the data late',
      () =>
        count(worker.output(), /"msg":"rotation enforced"/) >= 6 &&
        count(worker.output(), /"msg":"usage polled"/) >= polledFrom + 10,
      120_000,
    );

    // the API catches up: the 30 held-back minutes show
    emulator.setFaults({});
    await waitUntil(
      'usage settled up to the API\'s "now"',
      async () => {
        const settled = await watermarksRepo(t.db).read(WATERMARKS.usageSettled);
        return settled !== null && settled.getTime() >= Date.now() - 2 * MINUTE;
      },
      90_000,
    );
    const enforcedSoFar = count(worker.output(), /"msg":"rotation enforced"/);
    await waitUntil(
      'an enforcement run on the caught-up data',
      () => count(worker.output(), /"msg":"rotation enforced"/) > enforcedSoFar,
      // runs every 20 s; a loaded machine (the catch-up's re-reads, other suites) can hold one back a while
      90_000,
    );
    await worker.current.waitForOutput(/"msg":"usage polled"/);
    await worker.stop();

    // usage: to the token, no duplicates, hourly and 1m history tiling
    const backfillStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1) - 35 * DAY);
    await expectUsageEqualsTruth(t.db, emulator, backfillStart);

    // no key was deactivated, and no deactivation was even begun; the busy overdue keys were held and reported
    expect(await statuses()).toEqual(before);
    const intents = await t.db
      .selectFrom('audit_log')
      .select(['subject_id', 'step'])
      .where('action', '=', 'api_key.deactivate')
      .execute();
    expect(intents).toEqual([]);
    const held = await t.db
      .selectFrom('alerts')
      .select('kind')
      .where('kind', 'in', ['rotation.blocked', 'rotation.overdue'])
      .execute();
    expect(held.length).toBeGreaterThan(0);
  });
});

function envOf(): Record<string, string> {
  return {
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: emulator.state.scenario.admin_keys[0]!,
    ANTHROPIC_BASE_URL: emulator.url,
    LOG_LEVEL: 'warn',
  };
}
