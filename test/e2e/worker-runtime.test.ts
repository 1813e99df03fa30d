import { Queue } from 'bullmq';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';
import { waitUntil } from '../support/wait.ts';

let t: TestDatabase;
const running: Spawned[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  await sql`CREATE TABLE test_ticks (job_id text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(
    t.db,
  );
});
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  await t.drop();
});

function worker(env: Record<string, string>): Spawned {
  const p = spawnNode('test/support/test-worker.ts', [], {
    // as deployed: the worker's role, not the tables' owner
    DATABASE_URL: t.runtimeUrl,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-runtime-0000',
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    ...env,
  });
  running.push(p);
  return p;
}

/** Enqueues the test worker's `long` job and waits until it has started. */
async function startLongJob(prefix: string) {
  const q = new Queue('analyze', { connection: { url: redisUrl() }, prefix });
  await q.add('long', {});
  for (let i = 0; i < 100; i++) {
    const r = await sql<{ n: string }>`SELECT count(*) AS n FROM test_ticks WHERE job_id = 'long-started'`.execute(
      t.db,
    );
    if (Number(r.rows[0]!.n) > 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return q;
}

describe('job runtime (real worker processes)', () => {
  it('two workers on one Redis run each scheduled tick exactly once', async () => {
    await sql`DELETE FROM test_ticks`.execute(t.db);
    const prefix = uniquePrefix();
    const env = { KW_PREFIX: prefix, KW_TICK_CRON: '* * * * * *' };
    const a = worker(env);
    const b = worker(env);
    await Promise.all([a.waitForOutput(/worker started/), b.waitForOutput(/worker started/)]);
    await new Promise((r) => setTimeout(r, 6_500));
    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);

    const rows = await sql<{ job_id: string; n: string }>`
      SELECT job_id, count(*) AS n FROM test_ticks GROUP BY job_id ORDER BY job_id`.execute(t.db);
    const ticks = rows.rows.map((r) => ({ at: Number(r.job_id.split(':').at(-1)), n: Number(r.n) }));
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    // exactly once each …
    expect(ticks.filter((x) => x.n !== 1)).toEqual([]);
    // … and none missing between the first and the last
    const times = ticks.map((x) => x.at).sort((x, y) => x - y);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
  });

  it('a run of a job in progress on one replica makes the same job skip its tick on the other', async () => {
    await sql`DELETE FROM test_ticks`.execute(t.db);
    const prefix = uniquePrefix();
    const env = { KW_PREFIX: prefix, KW_LONG_HONOURS_SIGNAL: '1' };
    const a = worker(env);
    const b = worker(env);
    await Promise.all([a.waitForOutput(/worker started/), b.waitForOutput(/worker started/)]);
    const q = await startLongJob(prefix);
    // three more ticks of the same job while it runs: whichever replica and slot takes them, none starts
    for (let i = 0; i < 3; i++) await q.add('long', {});
    await waitUntil(
      'three ticks skipped',
      () => (a.output() + b.output()).match(/previous run still in progress: tick skipped/g)?.length === 3,
      15_000,
    );
    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);
    await q.close();
    const started = await sql<{ n: string }>`
      SELECT count(*) AS n FROM test_ticks WHERE job_id = 'long-started'`.execute(t.db);
    expect(Number(started.rows[0]!.n)).toBe(1);
  });

  it('the watchdog re-creates a scheduler that vanished, and ticks resume', async () => {
    await sql`DELETE FROM test_ticks`.execute(t.db);
    const prefix = uniquePrefix();
    const w = worker({ KW_PREFIX: prefix, KW_TICK_CRON: '* * * * * *' });
    await w.waitForOutput(/worker started/);
    const q = new Queue('maintenance', { connection: { url: redisUrl() }, prefix });
    await new Promise((r) => setTimeout(r, 1_500));
    // what a FLUSHALL or a restore from an old snapshot does to one scheduler: it and its next job are gone
    const scheduler = await q.getJobScheduler('tick');
    expect(scheduler).toBeTruthy();
    await q.removeJobScheduler('tick');
    await q.obliterate({ force: true });
    const removedAt = Date.now();
    await w.waitForOutput(/job schedulers missing or stalled: repairing/, 10_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const after = await sql<{ n: string }>`
      SELECT count(*) AS n FROM test_ticks WHERE at > to_timestamp(${removedAt / 1000})`.execute(t.db);
    expect(Number(after.rows[0]!.n)).toBeGreaterThanOrEqual(1);
    expect(await q.getJobScheduler('tick')).toBeTruthy();
    w.proc.kill('SIGTERM');
    await w.exited;
    await q.close();
  });

  it('SIGTERM during a long job exits cleanly within the deadline', async () => {
    await sql`DELETE FROM test_ticks`.execute(t.db);
    const prefix = uniquePrefix();
    const w = worker({ KW_PREFIX: prefix, KW_SHUTDOWN_MS: '2000', KW_LONG_HONOURS_SIGNAL: '0' });
    await w.waitForOutput(/worker started/);
    const q = await startLongJob(prefix);
    const signalledAt = Date.now();
    w.proc.kill('SIGTERM');
    const exit = await w.exited;
    const took = Date.now() - signalledAt;
    await q.close();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(w.output()).toMatch(/shutdown deadline reached/);
    expect(w.output()).toMatch(/"msg":"stopped"/);
    // the deadline is 2 s; closing Redis and Postgres after it takes a moment, never the job's 60 s
    expect(took).toBeLessThan(15_000);
  });

  it('a job that honours the shutdown signal lets the worker stop before the deadline', async () => {
    await sql`DELETE FROM test_ticks`.execute(t.db);
    const prefix = uniquePrefix();
    const w = worker({ KW_PREFIX: prefix, KW_SHUTDOWN_MS: '30000', KW_LONG_HONOURS_SIGNAL: '1' });
    await w.waitForOutput(/worker started/);
    const q = await startLongJob(prefix);
    w.proc.kill('SIGTERM');
    const exit = await w.exited;
    await q.close();
    expect(exit.code).toBe(0);
    expect(w.output()).not.toMatch(/shutdown deadline reached/);
    const stopped = await sql<{
      n: string;
    }>`SELECT count(*) AS n FROM test_ticks WHERE job_id = 'long-stopped'`.execute(t.db);
    expect(Number(stopped.rows[0]!.n)).toBe(1);
  });
});
