import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type HoldingProxy, startHoldingProxy } from '../support/holding-proxy.ts';
import { drillPolicy } from '../support/kill-drill.ts';
import { expectUsageEqualsTruth, storedUsage, truthUsage } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';
import { type WorkerProcess, workerProcess } from '../support/worker-process.ts';

/**
 * The real worker (`keywarden worker`), SIGKILLed at five different points of its first usage poll (a five-week
 * hourly backfill, then 48 hours of 1-minute usage in day chunks, each chunk one transaction written page by page),
 * restarted each time; at the end the stored usage equals the emulator's ground truth to the token, with no
 * duplicate rows and no gap or overlap between the hourly and the 1-minute history. The emulator runs in this
 * process on the wall clock, as the worker does; the worker reaches it through a proxy that can hold a page's
 * answer, which keeps the worker at a chosen page until it is killed.
 */

const ADMIN_KEY = 'sk-ant-admin01-keywarden-quiet-not-a-secret-0001';
const DAY = 86_400_000;
const WEEK = 7 * DAY;
const HOUR = 3_600_000;
const USAGE_PATH = '/v1/organizations/usage_report';

let t: TestDatabase;
let emulator: Emulator;
let proxy: HoldingProxy;
let dir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet'), freshnessDelayMinutes: 0 });
  proxy = await startHoldingProxy(emulator.url);
  dir = mkdtempSync(join(tmpdir(), 'kw-usage-kill-'));
});
afterAll(async () => {
  for (const w of workers) await w.kill9();
  await proxy?.close();
  await emulator?.close();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A usage page request of `width` starting at or after `from`. */
const pageFrom =
  (width: '1m' | '1h', from: Date) =>
  (url: URL): boolean =>
    url.pathname.startsWith(USAGE_PATH) &&
    url.searchParams.get('bucket_width') === width &&
    Date.parse(url.searchParams.get('starting_at') ?? '') >= from.getTime();

const usageRequests = () => emulator.requestLog.filter((r) => r.path.startsWith(USAGE_PATH));

async function watermark(name: string): Promise<Date | null> {
  const row = await t.db.selectFrom('watermarks').select('position').where('name', '=', name).executeTakeFirst();
  return row ? new Date(row.position) : null;
}

async function rowCount(width: '1m' | '1h'): Promise<number> {
  const r = await t.db
    .selectFrom('usage_buckets')
    .select(sql<string>`count(*)`.as('n'))
    .where('bucket_width', '=', width)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The worker's backends in the test database, by what they are doing. */
async function backends(): Promise<{ waitingForLock: number; idleInTransaction: number }> {
  const r = await sql<{ waiting: string; idle: string }>`
    SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,
           count(*) FILTER (WHERE state = 'idle in transaction') AS idle
    FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`.execute(t.db);
  return { waitingForLock: Number(r.rows[0]!.waiting), idleInTransaction: Number(r.rows[0]!.idle) };
}

/**
 * A fresh worker process with one poll-usage run enqueued. Each life gets a queue prefix of its own: the killed
 * process's job would be handed on by BullMQ only after its 60 s lock expired, and a poll enqueued now is the same
 * poll (it starts from the watermarks in Postgres), without the wait.
 */
async function startPolling(): Promise<WorkerProcess> {
  const prefix = uniquePrefix();
  const w = workerProcess({
    dir,
    prefix,
    policy: drillPolicy().yaml,
    env: {
      DATABASE_URL: t.url,
      REDIS_URL: redisUrl(),
      ANTHROPIC_ADMIN_KEY: ADMIN_KEY,
      ANTHROPIC_BASE_URL: proxy.url,
      LOG_LEVEL: 'info',
    },
  });
  workers.push(w);
  await w.start();
  const queue = new Queue('poll', { connection: { url: redisUrl() }, prefix });
  await queue.add('poll-usage', {});
  await queue.close();
  return w;
}

/** Kills the worker while the test holds `lock` in a transaction of its own, then lets go of it. */
async function killWhileBlocked(lock: (c: pg.Client) => Promise<void>) {
  const holder = new pg.Client({ connectionString: t.url });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await lock(holder);
    const w = await startPolling();
    await waitUntil('the worker blocked on the lock', async () => (await backends()).waitingForLock > 0);
    await w.kill9();
    await holder.query('ROLLBACK');
  } finally {
    await holder.end();
  }
  // the killed worker's backend gets its lock, finds its client gone, and rolls back
  await waitUntil('the killed transaction gone', async () => (await backends()).waitingForLock === 0);
}

describe('usage ingestion, worker killed with SIGKILL', () => {
  it('five kills at different points of the first poll, then a restart: stored usage equals the ground truth', async () => {
    const now = new Date();
    const backfillStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) - 35 * DAY);
    // where the 1m history starts (an hour later if the clock crosses an hour before the 1m poll begins)
    const minuteStart = new Date(Math.floor((now.getTime() - 48 * HOUR) / HOUR) * HOUR);

    // 1. during the hourly backfill: two weeks committed, the third week's first page in flight
    proxy.holdNext(pageFrom('1h', new Date(backfillStart.getTime() + 2 * WEEK)));
    let w = await startPolling();
    await waitUntil('the third week held', () => proxy.holding === 1);
    // the third week's transaction is open (its old rows deleted, uncommitted) while the page is awaited
    expect((await backends()).idleInTransaction).toBeGreaterThan(0);
    await w.kill9();
    proxy.release();
    expect(await watermark(WATERMARKS.usageBackfill)).toEqual(new Date(backfillStart.getTime() + 2 * WEEK));
    expect(await watermark(WATERMARKS.usage)).toBeNull();
    expect(await rowCount('1m')).toBe(0);
    const twoWeeks = { from: backfillStart, to: new Date(backfillStart.getTime() + 2 * WEEK) };
    expect(await storedUsage(t.db, '1h', twoWeeks.from, twoWeeks.to)).toEqual(
      truthUsage(emulator, '1h', twoWeeks.from, twoWeeks.to),
    );

    // 2. the backfill resumed where it stopped and finished; the first 1m chunk is half read, its pages written
    // into its open transaction
    let logged = usageRequests().length;
    proxy.holdNext(pageFrom('1m', new Date(minuteStart.getTime() + 6 * HOUR)));
    w = await startPolling();
    await waitUntil('a page in the middle of the first day held', () => proxy.holding === 1);
    const resumed = usageRequests().slice(logged);
    expect(new URL(resumed[0]!.path, 'http://e').searchParams.get('starting_at')).toBe(
      twoWeeks.to.toISOString().replace('.000Z', 'Z'),
    );
    expect(resumed.filter((r) => r.path.includes('bucket_width=1m')).length).toBeGreaterThan(1);
    expect((await backends()).idleInTransaction).toBeGreaterThan(0);
    await w.kill9();
    proxy.release();
    const backfilledTo = (await watermark(WATERMARKS.usageBackfill))!;
    expect(backfilledTo.getTime() - minuteStart.getTime()).toBeLessThanOrEqual(HOUR);
    expect(await watermark(WATERMARKS.usage)).toBeNull();
    expect(await rowCount('1m')).toBe(0);

    // 3. the first 1m chunk fully written, its commit held up at the watermark (the test holds an uncommitted
    // insert of the same watermark row): the killed transaction must leave nothing behind
    await killWhileBlocked(async (c) => {
      await c.query(`INSERT INTO watermarks (name, position) VALUES ($1, 'epoch')`, [WATERMARKS.usage]);
    });
    expect(await watermark(WATERMARKS.usage)).toBeNull();
    expect(await rowCount('1m')).toBe(0);

    // 4. the first day committed (rows and watermark together); the second day half read
    logged = usageRequests().length;
    proxy.holdNext(pageFrom('1m', new Date(backfilledTo.getTime() + DAY + 6 * HOUR)));
    w = await startPolling();
    await waitUntil('a page in the middle of the second day held', () => proxy.holding === 1);
    await w.kill9();
    proxy.release();
    const firstDay = { from: backfilledTo, to: new Date(backfilledTo.getTime() + DAY) };
    expect(await watermark(WATERMARKS.usage)).toEqual(firstDay.to);
    expect(await storedUsage(t.db, '1m', backfilledTo, new Date(now.getTime() + HOUR))).toEqual(
      truthUsage(emulator, '1m', firstDay.from, firstDay.to),
    );

    // 5. the next poll re-reads the 15-minute overlap: its transaction blocked at the DELETE of stored rows (the
    // test holds a lock on one); the killed replace must leave the stored rows as they were
    const storedBefore = await storedUsage(t.db, '1m', firstDay.from, firstDay.to);
    await killWhileBlocked(async (c) => {
      const locked = await c.query(
        `SELECT 1 FROM usage_buckets WHERE bucket_width = '1m' AND starting_at = $1 FOR UPDATE`,
        [new Date(firstDay.to.getTime() - 60_000)],
      );
      expect(locked.rowCount).toBeGreaterThan(0);
    });
    expect(await watermark(WATERMARKS.usage)).toEqual(firstDay.to);
    expect(await storedUsage(t.db, '1m', firstDay.from, firstDay.to)).toEqual(storedBefore);

    // the restart that is left alone catches up, to the last complete minute
    const caughtUpFrom = Date.now();
    w = await startPolling();
    await w.current.waitForOutput(/"msg":"usage polled"/, 60_000);
    await w.stop();
    const wm = (await watermark(WATERMARKS.usage))!;
    expect(wm.getTime()).toBeGreaterThanOrEqual(Math.floor(caughtUpFrom / 60_000) * 60_000 - 60_000);
    await expectUsageEqualsTruth(t.db, emulator, backfillStart);
  }, 120_000);
});
