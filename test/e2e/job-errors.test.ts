import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * What a failing job leaves behind: BullMQ stores the error's message and stack in Redis (failedReason,
 * stacktrace), and a rejection nobody handles ends the process. Neither may carry a secret.
 */

const SECRET = 'CANARYproxyPw0rd-Zq81';
let t: TestDatabase;
const running: Spawned[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  await t.drop();
});

function worker(prefix: string): Spawned {
  const p = spawnNode('test/support/failing-worker.ts', [], {
    DATABASE_URL: t.url,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-job-errors-0000',
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    KW_PREFIX: prefix,
    KW_SECRET: SECRET,
  });
  running.push(p);
  return p;
}

describe('job errors never carry a secret', () => {
  it('a job that throws an error quoting a proxy password: the failed job read back from Redis holds none of it', async () => {
    const prefix = uniquePrefix();
    const w = worker(prefix);
    await w.waitForOutput(/worker started/);
    const queue = new Queue('maintenance', { connection: { url: redisUrl() }, prefix });
    try {
      const added = await queue.add('leak', {}, { attempts: 1 });
      const failed = await waitUntil(
        'the leak job failed',
        async () => {
          const job = await Job.fromId(queue, added.id!);
          return job?.failedReason ? job : null;
        },
        20_000,
      );
      const stored = JSON.stringify({ reason: failed.failedReason, stack: failed.stacktrace });
      expect(failed.stacktrace?.length).toBeGreaterThan(0);
      expect(stored).not.toContain(SECRET);
      expect(failed.failedReason).toContain('http://kw:****@proxy.example:3128/v1/organizations?limit=20&token=****');
      // the raw hash too: what any other reader of Redis would see
      const redis = new Redis(redisUrl());
      const raw = await redis.hgetall(`${prefix}:maintenance:${added.id}`).finally(() => redis.disconnect());
      expect(raw.failedReason).toBeTruthy();
      expect(JSON.stringify(raw)).not.toContain(SECRET);
      expect(w.output()).not.toContain(SECRET);
    } finally {
      w.proc.kill('SIGTERM');
      await w.exited;
      await queue.close();
    }
  });

  it.each([
    ['reject', 'unhandledRejection', /background refresh of http:\/\/kw:\*\*\*\*@proxy\.example/],
    ['throw', 'uncaughtException', /timer callback could not reach http:\/\/kw:\*\*\*\*@proxy\.example/],
  ])('a job that causes an %s (%s): the worker logs it scrubbed and exits non-zero', async (job, event, message) => {
    const prefix = uniquePrefix();
    const w = worker(prefix);
    await w.waitForOutput(/worker started/);
    const queue = new Queue('maintenance', { connection: { url: redisUrl() }, prefix });
    try {
      await queue.add(job, {}, { attempts: 1 });
      const { code } = await w.exited;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const out = w.output();
      expect(out).not.toContain(SECRET);
      const line = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; event?: string; err?: { message: string } })
        .find((l) => l.event === event);
      expect(line).toBeDefined();
      expect(line!.level).toBe(60);
      expect(line!.err?.message).toMatch(message);
    } finally {
      await queue.close();
    }
  });
});
