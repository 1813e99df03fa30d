import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectEachDeliveredOnce,
  expectUsageEqualsTruth,
  floorMinute,
  logCount,
  MINUTE,
  type Rig,
  sleep,
  startRig,
  waitForLog,
  waitForOutboxDrained,
  waitForSettled,
  waitForUsageThrough,
} from '../support/fault-rig.ts';

/**
 * Drill 2: the real worker on a Redis of its own (AOF on), which is killed hard and restarted, then flushed. The
 * worker is never restarted: it must reconnect, get its schedules back (from the AOF after the kill, from its
 * watchdog after the flush), leave no minute of usage out and send no alert twice.
 */

const REDIS_DOWN_MS = 20_000;
let rig: Rig;

beforeAll(async () => {
  rig = await startRig({ name: 'redis', scenario: 'demo', postgres: 'shared', redis: 'own', watchdogInterval: '5s' });
  await rig.worker.start();
});
afterAll(async () => {
  await rig?.close();
});

describe('drill 2: Redis killed and restarted, then flushed, under the real worker', () => {
  it('resumes without a restart: schedules back, no gap in usage, no alert repeated', async () => {
    const { db, worker } = rig;
    const pid = worker.current.proc.pid;
    // settled: the first poll (with its backfill) is in, the inventory synced, the rotation alerts went out
    await waitForSettled(rig);
    await waitForLog(worker, 'rotation enforced', 0, 60_000);
    const settled = await waitForOutboxDrained(db, 60_000);
    expect(settled.length).toBeGreaterThan(0); // the demo organization has overdue keys and an orphaned one

    // ── killed hard, down for a while, restarted on the same data (AOF) ──
    await rig.redis!.kill!();
    const killedAt = Date.now();
    await sleep(REDIS_DOWN_MS);
    await rig.redis!.restart!();
    const back = Date.now();
    let synced = logCount(worker, 'inventory synced');
    let enforced = logCount(worker, 'rotation enforced');
    expect(worker.current.proc.exitCode).toBeNull();
    // every scheduled job runs again: usage moves past the outage, inventory and rotation run
    await waitForUsageThrough(db, floorMinute(back + MINUTE), 150_000);
    const resumed = Date.now();
    await waitForLog(worker, 'inventory synced', synced, 60_000);
    await waitForLog(worker, 'rotation enforced', enforced, 60_000);

    // ── flushed: every scheduler and job gone; the watchdog must re-create them ──
    const repairs = logCount(worker, 'job schedulers missing or stalled: repairing');
    const client = new Redis(rig.redis!.url);
    await client.flushall();
    client.disconnect();
    const flushed = Date.now();
    synced = logCount(worker, 'inventory synced');
    enforced = logCount(worker, 'rotation enforced');
    await waitForLog(worker, 'job schedulers missing or stalled: repairing', repairs, 30_000);
    const repaired = Date.now();
    await waitForUsageThrough(db, floorMinute(flushed + MINUTE), 150_000);
    await waitForLog(worker, 'inventory synced', synced, 60_000);
    await waitForLog(worker, 'rotation enforced', enforced, 60_000);

    // the same process throughout
    expect(worker.current.proc.pid).toBe(pid);
    expect(worker.current.proc.exitCode).toBeNull();
    expect(logCount(worker, 'worker started')).toBe(1);

    // no gap: every minute from before the kill to now equals the emulator's traffic, to the token
    const watermark = await waitForUsageThrough(db, floorMinute(Date.now() - MINUTE), 60_000);
    const cells = await expectUsageEqualsTruth(db, rig.emulator, floorMinute(killedAt - 15 * MINUTE), watermark);
    expect(cells).toBeGreaterThan(100);

    // no alert repeated: each (alert, event, target) has one outbox row, sent once; the alerts that had gone out
    // before the faults have exactly the rows they had (a runaway the detector finds meanwhile is new, not repeated)
    await waitForOutboxDrained(db, 60_000);
    const rows = await expectEachDeliveredOnce(rig);
    const before = new Set(settled.map((r) => r.fingerprint));
    expect(rows.filter((r) => before.has(r.fingerprint)).map((r) => r.id)).toEqual(settled.map((r) => r.id));
    console.info(
      `drill 2: Redis down ${Math.round((back - killedAt) / 1000)} s; usage committed past the outage ` +
        `${Math.round((resumed - back) / 1000)} s after the restart; schedulers repaired ` +
        `${Math.round((repaired - flushed) / 1000)} s after the flush; ${cells} usage cells equal to the truth; ` +
        `${rows.length} notifications, each sent once`,
    );
  });
});
