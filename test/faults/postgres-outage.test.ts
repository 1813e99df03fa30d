import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DRILL_ROUTES,
  drillTitle,
  expectUsageEqualsTruth,
  floorMinute,
  logCount,
  MINUTE,
  messagesByTarget,
  outboxRows,
  type Rig,
  raiseDrillAlerts,
  sleep,
  startRig,
  waitForLog,
  waitForOutboxDrained,
  waitForSettled,
  waitForUsageThrough,
} from '../support/fault-rig.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Drill 3: the real worker on a Postgres of its own, killed hard (SIGKILL) for 60 s in the middle of delivering a
 * batch of alerts. The worker must ride it out in one process (no crash loop), its jobs fail and retry, no message
 * may go out while its outbox row cannot be written, and once Postgres is back the backlog clears: every alert
 * delivered, usage complete to the token.
 */

const OUTAGE_MS = Number(process.env.KW_DRILL_PG_OUTAGE_MS ?? 60_000);
const ALERTS = 20;
// A send that was under way when Postgres died is retried once its lease (5 minutes) runs out.
const LEASE_MS = 5 * MINUTE;

let rig: Rig;

beforeAll(async () => {
  rig = await startRig({ name: 'postgres-outage', scenario: 'demo', postgres: 'own', redis: 'shared' });
  await rig.worker.start();
});
afterAll(async () => {
  await rig?.close();
});

/** Job runs that completed on a second or later attempt: `job:attempt` from the jobs' own summary lines. */
function retriedRuns(log: string): string[] {
  const done = new Set(['usage polled', 'inventory synced', 'rotation enforced', 'notifications delivered']);
  return log.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    const entry = JSON.parse(line) as { msg?: string; job?: string; attempt?: number };
    return entry.msg && done.has(entry.msg) && (entry.attempt ?? 1) > 1 ? [`${entry.job}:${entry.attempt}`] : [];
  });
}

const delivered = () => rig.slackPosts.length + rig.emails.length;

describe('drill 3: Postgres stopped hard for 60 s under the real worker', () => {
  it('no crash loop, jobs retry, no message without its outbox row, and the backlog clears after', async () => {
    const { db, worker } = rig;
    const pid = worker.current.proc.pid;
    await waitForSettled(rig);
    await waitForOutboxDrained(db, 60_000);

    // a batch of alerts, and Postgres killed the moment the first of them reaches Slack or SMTP: mid-batch
    const before = delivered();
    const failuresBefore = logCount(worker, 'job failed');
    await raiseDrillAlerts(db, DRILL_ROUTES, 'pg', ALERTS);
    await waitUntil('the first message of the batch', () => delivered() > before, 30_000, 5);
    await rig.postgres!.kill!();
    const killedAt = Date.now();

    // down: the process lives on, failing jobs instead of exiting
    const aliveChecks: boolean[] = [];
    while (Date.now() < killedAt + OUTAGE_MS) {
      aliveChecks.push(worker.current.proc.exitCode === null && worker.current.proc.signalCode === null);
      await sleep(1_000);
    }
    const duringOutage = delivered() - before;
    // a send already past its claim when Postgres died may land a moment later; nothing new may start
    const lateSends = [...rig.slackPosts.map((p) => p.at), ...rig.emails.map((e) => e.at)].filter(
      (at) => at > killedAt + 2_000,
    );
    await rig.postgres!.restart!();
    const back = Date.now();
    expect(aliveChecks.every(Boolean)).toBe(true);
    expect(lateSends).toEqual([]);
    expect(logCount(worker, 'job failed')).toBeGreaterThan(failuresBefore);

    // back: the jobs retry and catch up, usage first, then every alert of the batch
    await waitForUsageThrough(db, floorMinute(back + MINUTE), 180_000);
    const synced = logCount(worker, 'inventory synced');
    await waitForLog(worker, 'inventory synced', synced, 60_000);
    const rows = await waitForOutboxDrained(db, LEASE_MS + 2 * MINUTE);
    const drained = Date.now();
    // the runs that failed were retried by the queue and then completed (a later attempt of the same run)
    expect(retriedRuns(worker.output())).not.toEqual([]);

    expect(worker.current.proc.pid).toBe(pid);
    expect(worker.current.proc.exitCode).toBeNull();
    expect(logCount(worker, 'worker started')).toBe(1);

    // every alert of the batch reached both targets; a second copy only for a send cut off by the kill, and then
    // its row says so (possibly_duplicate) — never a message that no row accounts for
    const drillRows = rows.filter((r) => r.title.startsWith('Drill alert [pg-'));
    expect(drillRows).toHaveLength(ALERTS * 2);
    const ai = rig.slack.channelId('#ai-alerts');
    let duplicates = 0;
    for (let i = 1; i <= ALERTS; i++) {
      const title = drillTitle('pg', i);
      const got = messagesByTarget(rig, title);
      expect([...got.keys()].sort()).toEqual([ai, 'ops@drill.example'].sort());
      for (const [target, n] of got) {
        const row = drillRows.find(
          (r) => r.title === title && (r.channel === 'slack' ? ai === target : r.target === target),
        )!;
        if (n > 1) {
          duplicates += n - 1;
          expect(row.possibly_duplicate).toBe(true);
        }
        expect(n).toBeLessThanOrEqual(2);
      }
    }
    // only what was in flight at the kill can have gone out twice
    expect(duplicates).toBeLessThanOrEqual(duringOutage);
    // nothing else was sent: every message is one of the batch's or one recorded before the outage
    const rowsAll = await outboxRows(db);
    expect(delivered()).toBe(rowsAll.length + duplicates);

    const watermark = await waitForUsageThrough(db, floorMinute(Date.now() - MINUTE), 60_000);
    const cells = await expectUsageEqualsTruth(db, rig.emulator, floorMinute(killedAt - 15 * MINUTE), watermark);
    expect(cells).toBeGreaterThan(100);
    console.info(
      `drill 3: Postgres down ${Math.round((back - killedAt) / 1000)} s; ${duringOutage} message(s) in flight at the kill; ` +
        `${duplicates} resent after the lease; ${rowsAll.filter((r) => r.possibly_duplicate).length} row(s) flagged ` +
        `possibly_duplicate; backlog drained ${Math.round((drained - back) / 1000)} s after restart; ` +
        `${logCount(worker, 'job failed') - failuresBefore} failed job runs`,
    );
  });
});
