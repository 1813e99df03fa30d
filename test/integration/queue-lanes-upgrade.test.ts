import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobs } from '../../jobs/index.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { createQueues, type Queues } from '../../src/queue/queues.ts';
import { buildRegistry } from '../../src/queue/registry.ts';
import { startWorkers } from '../../src/queue/runner.ts';
import { checkSchedules, desiredSchedules, reconcileSchedules } from '../../src/queue/schedules.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Upgrading a deployment whose poll-usage and usage-retention ran on `ingest`: the first replica of the new version
 * moves their schedulers to their lanes (`poll`, `maintenance`) and removes the old ones with their next jobs, so
 * no tick runs twice; a tick the old version had already queued on `ingest` still runs there, once.
 */

let t: TestDatabase;
let emulator: Emulator;
const clock = fixedClock(DEMO_START);

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('demo'), clock, startAt: DEMO_START });
});
afterAll(async () => {
  await emulator.close();
  await t.drop();
});

const schedulerIds = async (queues: Queues) =>
  Object.fromEntries(
    await Promise.all(
      Object.entries(queues).map(async ([name, q]) => [
        name,
        (await q.getJobSchedulers(0, -1)).map((s) => s.key).sort(),
      ]),
    ),
  );
const jobIds = async (queues: Queues, name: string) =>
  Object.fromEntries(
    await Promise.all(
      Object.entries(queues).map(async ([queue, q]) => [
        queue,
        (await q.getJobs(['waiting', 'delayed', 'active', 'completed']))
          .filter((j) => j.name === name)
          .map((j) => j.id),
      ]),
    ),
  );

describe('upgrade to the lanes', () => {
  it('moves the schedulers of the moved jobs, and a poll queued on ingest by the old version still runs once', async () => {
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml' } });
    const { ctx, redis, close, lines } = testJobContext({
      db: t.db,
      emulatorUrl: emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock,
      config,
    });
    const prefix = uniquePrefix();
    const queues = createQueues(redis, prefix);
    const registry = buildRegistry(jobs, config.policy);
    const specs = desiredSchedules(registry, config.policy);
    const moved = ['poll-usage', 'usage-retention'];
    try {
      // ── the old version's schedules: the moved jobs on ingest ──
      const before = specs.map((s) => (moved.includes(s.job) ? { ...s, queue: 'ingest' as const } : s));
      await reconcileSchedules(queues, redis, prefix, before, ctx.log);
      expect((await schedulerIds(queues)).ingest).toEqual([
        'poll-usage',
        'reconcile-costs',
        'sync-inventory',
        'usage-retention',
      ]);
      expect((await jobIds(queues, 'poll-usage')).ingest).toHaveLength(1); // the scheduler's next tick
      // a tick the old version queued and no worker has taken yet
      await queues.ingest.add('poll-usage', {}, { jobId: 'queued-before-the-upgrade' });

      // ── the new version starts ──
      const result = await reconcileSchedules(queues, redis, prefix, specs, ctx.log);
      expect(result.removed.sort()).toEqual(['ingest/poll-usage', 'ingest/usage-retention']);
      // (the set's fingerprint changed, so every scheduler is upserted again: idempotent in BullMQ)
      expect(result.upserted).toEqual(expect.arrayContaining(['poll-usage', 'usage-retention']));
      const after = await schedulerIds(queues);
      expect(after.ingest).toEqual(['reconcile-costs', 'sync-inventory']);
      expect(after.poll).toEqual(['poll-usage']);
      expect(after.maintenance).toEqual(['usage-retention']);
      // the old scheduler's next tick went with it; the queued tick stays, and the new lane has its own next tick
      const polls = await jobIds(queues, 'poll-usage');
      expect(polls.ingest).toEqual(['queued-before-the-upgrade']);
      expect(polls.poll).toHaveLength(1);
      expect((await jobIds(queues, 'usage-retention')).ingest).toEqual([]);
      // the watchdog finds the moved schedulers whole
      expect(await checkSchedules(queues, redis, prefix, specs, ctx.log)).toEqual([]);

      // ── the queued tick runs on the ingest lane's worker (a job is run by its name, on whichever queue) ──
      await t.db
        .insertInto('watermarks')
        .values({ name: WATERMARKS.usage, position: new Date(DEMO_START.getTime() - 3 * MINUTE_MS) })
        .execute();
      // the poll lane's own next tick (within the minute) would poll too: here only the queued tick runs
      await queues.poll.obliterate({ force: true });
      const pool = startWorkers(ctx, registry, {
        connection: redis,
        prefix,
        queues,
        metrics: createMetrics(ctx.repos),
      });
      try {
        const state = await waitUntil('the queued poll run', async () => {
          const s = await queues.ingest.getJobState('queued-before-the-upgrade');
          return s === 'completed' || s === 'failed' ? s : null;
        });
        expect(state, lines.join('\n')).toBe('completed');
        expect((await watermarksRepo(t.db).read(WATERMARKS.usage))!.getTime()).toBeGreaterThan(
          DEMO_START.getTime() - 3 * MINUTE_MS,
        );
      } finally {
        await pool.close(true);
      }
    } finally {
      await close();
    }
  }, 60_000);
});
