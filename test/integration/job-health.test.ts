import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { describeFailingJobs, JOB_FAILING_KIND, watchJobs } from '../../src/health/jobs.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { type HealthServer, startHealthServer } from '../../src/http/server.ts';
import { closeQueues, createQueues, type Queues } from '../../src/queue/queues.ts';
import { buildRegistry } from '../../src/queue/registry.ts';
import { enqueueJob, startWorkers, type WorkerPool } from '../../src/queue/runner.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';
import { waitUntil } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'kw-job-health-'));
const policyPath = join(dir, 'keywarden.yaml');
writeFileSync(policyPath, 'routes:\n  - { match: { kind: "keywarden.*" }, slack: ["#ops"] }\n');

// One attempt per run: each enqueued run is one failed run (the retries of a run are not runs).
const registry = buildRegistry([{ ...syncInventory, attempts: 1, followedBy: [] }]);
// an Admin API answer keywarden cannot use, so the sync fails (as a NUL in a name once made it fail)
const unusableKeys = {
  path: '/v1/organizations/api_keys',
  patch: [{ path: 'data.*.created_at', value: 'not a date' }],
};

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

describe('keywarden.job_failing', () => {
  it('a job failing 3 runs in a row raises the alert once, /readyz names it, and a success resolves it', async () => {
    const { ctx, redis, close } = testJobContext({
      db: t.db,
      emulatorUrl: emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock,
      config: loadConfig({ env: { KEYWARDEN_CONFIG: policyPath } }),
    });
    const prefix = uniquePrefix();
    const queues: Queues = createQueues(redis, prefix);
    const jobWatch = watchJobs(ctx, ['sync-inventory'], [], async () => {});
    const metrics = createMetrics(ctx.repos);
    const pool: WorkerPool = startWorkers(ctx, registry, {
      connection: redis,
      prefix,
      queues,
      metrics,
      jobWatch,
    });
    const health: HealthServer = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      db: t.db,
      redis,
      metrics,
      log: ctx.log,
      failingJobs: () => describeFailingJobs(jobWatch.failing),
    });
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${health.port}/readyz`);
      return { status: res.status, text: await res.text() };
    };
    const run = async () => {
      const job = await enqueueJob(registry, queues, 'sync-inventory');
      return waitUntil(`sync-inventory run ${job.id}`, async () => {
        const state = await queues.ingest.getJobState(job.id!);
        return state === 'completed' || state === 'failed' ? state : null;
      });
    };
    const alerts = () => t.db.selectFrom('alerts').selectAll().where('kind', '=', JOB_FAILING_KIND).execute();
    const notifications = () => t.db.selectFrom('notifications').select(['event', 'target']).orderBy('id').execute();
    try {
      emulator.setFaults({ script: [unusableKeys, unusableKeys, unusableKeys, unusableKeys] });
      expect(await run()).toBe('failed');
      expect(await run()).toBe('failed');
      expect(await alerts()).toEqual([]);
      expect((await readyz()).status).toBe(200);

      expect(await run()).toBe('failed');
      const [alert] = await alerts();
      expect(alert).toMatchObject({ state: 'firing', scope_type: 'job', scope_id: 'sync-inventory' });
      expect(await notifications()).toEqual([{ event: 'firing', target: '#ops' }]);
      const ready = await readyz();
      expect(ready.status).toBe(503);
      expect(ready.text).toMatch(/job sync-inventory: failed 3 runs in a row .*created_at/);

      // still failing: no second message (the route's repeat_every is 4 h)
      expect(await run()).toBe('failed');
      expect(await notifications()).toHaveLength(1);

      // fixed: the next run succeeds and resolves it, said once
      expect(await run()).toBe('completed');
      expect((await alerts())[0]).toMatchObject({ state: 'resolved' });
      expect(await notifications()).toEqual([
        { event: 'firing', target: '#ops' },
        { event: 'resolved', target: '#ops' },
      ]);
      expect(await readyz()).toEqual({ status: 200, text: 'ready\n' });
      const stored = await t.db.selectFrom('job_runs').selectAll().executeTakeFirstOrThrow();
      expect(stored).toMatchObject({ job: 'sync-inventory', consecutive_failures: 0, last_error: null });
    } finally {
      await pool.close();
      await health.close();
      await closeQueues(queues);
      await close();
    }
  });
});
