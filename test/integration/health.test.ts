import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRepos } from '../../src/db/repos/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { freePort } from '../../src/dev/services.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { type HealthServer, startHealthServer } from '../../src/http/server.ts';
import { captureLog } from '../support/context.ts';
import { createTestDatabase, redisUrl, type TestDatabase } from '../support/db.ts';

let t: TestDatabase;
let redis: Redis;
let server: HealthServer;
const metrics = { current: null as ReturnType<typeof createMetrics> | null };

beforeAll(async () => {
  t = await createTestDatabase();
  redis = new Redis(redisUrl());
  metrics.current = createMetrics(createRepos(t.db));
  server = await startHealthServer({
    port: 0,
    host: '127.0.0.1',
    db: t.db,
    redis,
    metrics: metrics.current,
    log: captureLog().log,
  });
});
afterAll(async () => {
  await server.close();
  redis.disconnect();
  await t.drop();
});

const get = (path: string, port = server.port) => fetch(`http://127.0.0.1:${port}${path}`);

describe('health and metrics endpoints', () => {
  it('/healthz and /readyz answer 200 when Postgres and Redis are up', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
  });

  it('/readyz answers 503 naming Redis when Redis is unreachable, while /healthz stays 200', async () => {
    const deadRedis = new Redis(`redis://127.0.0.1:${await freePort()}`, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    deadRedis.on('error', () => {});
    const other = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      db: t.db,
      redis: deadRedis,
      metrics: metrics.current!,
      log: captureLog().log,
    });
    try {
      const ready = await get('/readyz', other.port);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toMatch(/^not ready\nredis: /);
      expect((await get('/healthz', other.port)).status).toBe(200);
    } finally {
      await other.close();
      deadRedis.disconnect();
    }
  });

  it('/metrics exposes job runs, durations, poll age, alerts and pending notifications', async () => {
    metrics.current!.jobRuns.inc({ job: 'poll-usage', outcome: 'completed' });
    metrics.current!.jobDuration.observe({ job: 'poll-usage' }, 0.3);
    await t.db
      .insertInto('watermarks')
      .values([
        { name: WATERMARKS.usage, position: new Date(Date.now() - 60_000) },
        // the age is that of the newest minute the API answered with data, not of the range asked for
        { name: WATERMARKS.usageSettled, position: new Date(Date.now() - 120_000) },
      ])
      .execute();
    await t.db
      .insertInto('notifications')
      .values({
        fingerprint: 'f1',
        event: 'firing',
        channel: 'slack',
        target: '#ai-alerts',
        payload: JSON.stringify({}),
      })
      .execute();
    const body = await (await get('/metrics')).text();
    expect(body).toMatch(/keywarden_job_runs_total\{job="poll-usage",outcome="completed"\} 1/);
    expect(body).toMatch(/keywarden_job_duration_seconds_count\{job="poll-usage"\} 1/);
    const age = Number(/^keywarden_last_successful_poll_age_seconds (\S+)$/m.exec(body)?.[1]);
    expect(age).toBeGreaterThanOrEqual(120);
    expect(age).toBeLessThan(600);
    expect(body).toMatch(/keywarden_notifications_pending 1/);
  });
});
