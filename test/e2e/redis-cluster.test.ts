import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Redis with cluster mode on (one node holding every slot): Redis refuses there, with CROSSSLOT, any command or
 * script whose keys fall in different slots, as BullMQ's scripts do unless every key of a queue shares a hash tag.
 * The worker on the `{…}` prefix runs its ticks; a prefix without braces is refused.
 */

let t: TestDatabase;
let dir: string;
let redisProc: ChildProcess;
let redisUrl: string;
const running: Spawned[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  await sql`CREATE TABLE test_ticks (job_id text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`.execute(
    t.db,
  );
  dir = mkdtempSync(join(tmpdir(), 'kw-redis-cluster-'));
  const port = await freePort();
  redisProc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--cluster-enabled', 'yes'],
    { stdio: 'ignore' },
  );
  redisUrl = `redis://127.0.0.1:${port}`;
  // reconnects every 100 ms until the server listens; a command waits for the connection meanwhile
  const admin = new Redis(redisUrl, { retryStrategy: () => 100 });
  admin.on('error', () => {});
  await waitUntil('redis-server in cluster mode', async () => (await admin.ping()) === 'PONG', 10_000);
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  await waitUntil('cluster_state:ok', async () =>
    String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
  );
  admin.disconnect();
});
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  redisProc?.kill('SIGKILL');
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster', () => {
  it('the worker on a {hash-tagged} prefix runs its scheduled ticks', async () => {
    const w = spawnNode('test/support/test-worker.ts', [], {
      DATABASE_URL: t.runtimeUrl,
      REDIS_URL: redisUrl,
      ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-runtime-0000',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      KW_PREFIX: '{kwtest-cluster}',
      KW_TICK_CRON: '* * * * * *',
    });
    running.push(w);
    await w.waitForOutput(/worker started/);
    await waitUntil('three ticks run', async () => {
      const r = await sql<{ n: string }>`SELECT count(*) AS n FROM test_ticks`.execute(t.db);
      return Number(r.rows[0]!.n) >= 3;
    });
    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(w.output()).not.toMatch(/CROSSSLOT/);
  }, 60_000);

  it('a prefix without braces is refused there (what the hash tag prevents)', async () => {
    const q = new Queue('maintenance', { connection: { url: redisUrl }, prefix: 'kwtest-plain' });
    await expect(q.add('tick', {})).rejects.toThrow(/CROSSSLOT/);
    await q.close();
  });
});
