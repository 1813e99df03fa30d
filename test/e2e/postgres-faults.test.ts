import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db, migrateToLatest } from '../../src/db/index.ts';
import { type LocalServer, startLocalPostgres } from '../../src/dev/services.ts';
import { redisUrl, uniquePrefix } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';

// Postgres of its own: this file stops it hard.
let pg: LocalServer;
let db: Db;
let worker: Spawned;

beforeAll(async () => {
  pg = await startLocalPostgres();
  db = createDb(pg.url, { max: 2 });
  await migrateToLatest(db);
  await sql`CREATE TABLE test_ticks (job_id text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(
    db,
  );
  worker = spawnNode('test/support/test-worker.ts', [], {
    DATABASE_URL: pg.url,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-runtime-0000',
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    KW_PREFIX: uniquePrefix(),
    KW_TICK_CRON: '* * * * * *',
  });
  await worker.waitForOutput(/worker started/);
}, 60_000);
afterAll(async () => {
  if (worker.proc.exitCode === null) worker.proc.kill('SIGKILL');
  await db.destroy();
  await pg.stop();
});

describe('the worker and a failing Postgres', () => {
  it('Postgres killed hard for a while: no crash, failed runs retry, and the backlog clears after', async () => {
    await new Promise((r) => setTimeout(r, 2_500));
    await pg.kill!();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 6_000));
    await pg.restart!();
    expect(worker.proc.exitCode).toBeNull();
    // ticks that fired during the outage failed and are retried with backoff (2 s, 4 s, …) once Postgres is back
    let recovered = 0;
    for (let i = 0; i < 60 && recovered < 3; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const rows = await sql<{ job_id: string }>`SELECT DISTINCT job_id FROM test_ticks`
        .execute(db)
        .catch(() => ({ rows: [] }));
      recovered = rows.rows.filter(
        (r) => Number(r.job_id.split(':').at(-1)) > downAt && Number(r.job_id.split(':').at(-1)) < downAt + 6_000,
      ).length;
    }
    expect(recovered).toBeGreaterThanOrEqual(3);
    expect(worker.output()).toMatch(/job failed/);
    expect(worker.proc.exitCode).toBeNull();
  }, 60_000);
});
