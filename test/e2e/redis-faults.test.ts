import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalServer, startLocalRedis } from '../../src/dev/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';

// Redis of its own: this file kills and flushes it.
let redis: LocalServer;
let t: TestDatabase;
let worker: Spawned;

beforeAll(async () => {
  t = await createTestDatabase();
  await sql`CREATE TABLE test_ticks (job_id text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(
    t.db,
  );
  redis = await startLocalRedis();
  worker = spawnNode('test/support/test-worker.ts', [], {
    DATABASE_URL: t.url,
    REDIS_URL: redis.url,
    ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-runtime-0000',
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    KW_PREFIX: 'kwfaults',
    KW_TICK_CRON: '* * * * * *',
  });
  await worker.waitForOutput(/worker started/);
});
afterAll(async () => {
  if (worker.proc.exitCode === null) worker.proc.kill('SIGKILL');
  await redis.stop();
  await t.drop();
});

async function ticksSince(at: number): Promise<number> {
  const r = await sql<{
    n: string;
  }>`SELECT count(DISTINCT job_id) AS n FROM test_ticks WHERE at > to_timestamp(${at / 1000})`.execute(t.db);
  return Number(r.rows[0]!.n);
}

async function waitForTicks(since: number, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  while (Date.now() < deadline) {
    seen = await ticksSince(since);
    if (seen >= n) return seen;
    await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

describe('the worker and a failing Redis', () => {
  it('Redis killed hard and restarted (AOF on): the same worker resumes its schedule without a restart', async () => {
    expect(await waitForTicks(Date.now() - 5_000, 2, 10_000)).toBeGreaterThanOrEqual(2);
    await redis.kill!();
    await new Promise((r) => setTimeout(r, 2_000));
    await redis.restart!();
    const back = Date.now();
    expect(await waitForTicks(back, 3, 20_000)).toBeGreaterThanOrEqual(3);
    expect(worker.proc.exitCode).toBeNull();
  });

  it('Redis flushed: the watchdog re-creates the schedule and ticks resume, each tick still once', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url);
    await client.flushall();
    client.disconnect();
    const flushed = Date.now();
    await worker.waitForOutput(/job schedulers missing or stalled: repairing/, 15_000);
    expect(await waitForTicks(flushed, 3, 20_000)).toBeGreaterThanOrEqual(3);
    const dupes = await sql<{
      job_id: string;
    }>`SELECT job_id FROM test_ticks GROUP BY job_id HAVING count(*) > 1`.execute(t.db);
    expect(dupes.rows).toEqual([]);
    expect(worker.proc.exitCode).toBeNull();
  });
});
