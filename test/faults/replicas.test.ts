import { hostname } from 'node:os';
import { type Job, Queue } from 'bullmq';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DRILL_ROUTES,
  drillTitle,
  expectUsageEqualsTruth,
  floorMinute,
  MINUTE,
  messagesByTarget,
  outboxRows,
  type Rig,
  raiseDrillAlerts,
  sleep,
  startRig,
  waitForOutboxDrained,
  waitForUsageThrough,
} from '../support/fault-rig.ts';
import { ticksOf } from '../support/replica-logs.ts';
import { waitUntil } from '../support/wait.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

/**
 * Drill: three replicas of the real worker on one Redis (AOF on) and one Postgres. The replica running a poll is
 * `kill -9`ed (and restarted, as an orchestrator does); then the one running a delivery; then Redis is killed and
 * restarted under all three. The killed poll is taken over by another replica through BullMQ's stalled-job
 * recovery; every replica resumes after Redis returns; stored usage equals the emulator's to the token; no alert is
 * lost, and a message goes out twice only where its send was in flight in a killed replica, marked.
 */

const REDIS_DOWN_MS = 10_000;
const ALERTS = 30;
let rig: Rig;
const queues: Queue[] = [];

beforeAll(async () => {
  rig = await startRig({
    name: 'replicas',
    scenario: 'demo',
    postgres: 'shared',
    redis: 'own',
    replicas: 3,
    watchdogInterval: '5s',
  });
  await Promise.all(rig.workers.map((w) => w.start()));
});
afterAll(async () => {
  for (const q of queues) await q.close().catch(() => {});
  await rig?.close();
});

/** The name a replica goes by in BullMQ (`processedBy`, `getWorkers()`): its host and pid. */
const replicaName = (w: WorkerProcess) => `${hostname()}:${w.current.proc.pid}`;

function queue(name: string): Queue {
  const q = new Queue(name, { connection: { url: rig.redis!.url }, prefix: rig.prefix });
  // the drill's own reads reconnect by themselves while Redis is down: nothing to print
  q.on('error', () => {});
  queues.push(q);
  return q;
}

/**
 * Waits for a replica running a job of `job` on `q` (active in BullMQ, and, for a poll, not yet past its last log
 * line: a job stays active a moment after its handler returns), kills it with SIGKILL and starts it again.
 */
async function killReplicaRunning(q: Queue, job: string) {
  const caught = await waitUntil(
    `a replica in the middle of ${job}`,
    async () => {
      const active = (await q.getActive()).filter((j) => j.name === job && j.processedBy);
      for (const j of active) {
        const w = rig.workers.find((x) => replicaName(x) === j.processedBy);
        const tick = Number(j.id?.split(':').at(-1));
        if (w && job === 'poll-usage' && ticksOf(w.current.output(), job, 'usage polled').includes(tick)) continue;
        if (w) return { w, job: j, runs: active.filter((a) => a.processedBy === j.processedBy).length };
      }
      return null;
    },
    90_000,
    20,
  );
  await caught.w.kill9();
  await caught.w.start();
  return { jobId: caught.job.id!, deliveriesInFlight: job === 'deliver-notifications' ? caught.runs : 0 };
}

describe('drill: kill -9 of one of three replicas mid-poll and mid-delivery, then Redis restarted under them', () => {
  it('the killed poll is taken over, all resume, usage is exact, no alert lost or repeated unmarked', async () => {
    const { db, emulator } = rig;
    const polls = queue('poll');
    const notify = queue('notify');
    await waitForUsageThrough(db, floorMinute(Date.now() - MINUTE), 120_000);
    await waitForOutboxDrained(db, 60_000);

    // slow usage pages: a poll takes seconds, long enough to be caught in the middle of
    emulator.setFaults({ pathPrefix: '/v1/organizations/usage_report', slowShare: 0.5, slowMs: 1_500, seed: 18 });
    const poll = await killReplicaRunning(polls, 'poll-usage');
    await raiseDrillAlerts(db, DRILL_ROUTES, 'replicas', ALERTS);
    const delivery = await killReplicaRunning(notify, 'deliver-notifications');
    emulator.setFaults({});

    // the killed poll's tick is run again by a replica once its BullMQ lock expires (stalled-job recovery), or
    // skipped there when another tick's poll holds the job's run lock (that poll catches up from the watermark)
    const takenOver = await waitUntil(
      `poll ${poll.jobId} completed after the kill`,
      async () => {
        const job: Job | undefined = await polls.getJob(poll.jobId);
        return job && (await job.getState()) === 'completed' ? job : null;
      },
      150_000,
    );
    const tick = Number(poll.jobId.split(':').at(-1));
    const polledBy = rig.workers.filter((w) => ticksOf(w.output(), 'poll-usage').includes(tick));
    expect(polledBy).toHaveLength(1);

    // the rows the killed delivery had leased wait out their 5-minute lease; the drill moves the clock past it
    await sql`UPDATE notifications SET next_attempt_at = now() WHERE status IN ('pending', 'sending')`.execute(db);

    // ── Redis killed and restarted under the three ──
    const pids = rig.workers.map((w) => w.current.proc.pid);
    await rig.redis!.kill!();
    await sleep(REDIS_DOWN_MS);
    await rig.redis!.restart!();
    const back = Date.now();
    // every replica takes work again (the same processes: nothing restarted them)
    const names = rig.workers.map(replicaName);
    await waitUntil(
      'every replica completing jobs after the restart',
      async () => {
        const done = [...(await polls.getCompleted(0, 200)), ...(await notify.getCompleted(0, 200))];
        const by = new Set(done.filter((j) => (j.finishedOn ?? 0) > back).map((j) => j.processedBy));
        return names.every((n) => by.has(n));
      },
      120_000,
    );
    expect(rig.workers.map((w) => w.current.proc.pid)).toEqual(pids);
    expect(rig.workers.every((w) => w.current.proc.exitCode === null)).toBe(true);

    // usage: every minute from before the kills to the last poll equals the emulator's, to the token
    const watermark = await waitForUsageThrough(db, floorMinute(Date.now() - MINUTE), 120_000);
    const cells = await expectUsageEqualsTruth(
      db,
      emulator,
      floorMinute(rig.startedAt.getTime() - 30 * MINUTE),
      watermark,
    );

    // alerts: none lost; a message twice only where a killed replica had it in flight, and then marked
    const rows = await waitForOutboxDrained(db, 120_000);
    const flagged = rows.filter((r) => r.possibly_duplicate);
    const wrong: string[] = [];
    for (let i = 1; i <= ALERTS; i++) {
      const title = drillTitle('replicas', i);
      const received = messagesByTarget(rig, title);
      for (const r of rows.filter((x) => x.title === title)) {
        const n = received.get(r.channel === 'slack' ? rig.slack.channelId(r.target) : r.target) ?? 0;
        if (n < 1 || (n > 1 && !r.possibly_duplicate)) wrong.push(`${title} ${r.channel}: ${n} received`);
      }
    }
    expect(wrong).toEqual([]);
    expect(rows.filter((r) => r.title?.startsWith('Drill alert [replicas-'))).toHaveLength(2 * ALERTS);
    // every message received is one row's, or a marked row's second send
    const messages = rig.slackPosts.length + rig.emails.length;
    expect(messages - rows.length).toBeLessThanOrEqual(flagged.length);
    // a killed replica has at most one send in flight per delivery run it was running
    expect(flagged.length).toBeLessThanOrEqual(1 + delivery.deliveriesInFlight);
    expect((await outboxRows(db)).every((r) => r.status === 'sent')).toBe(true);

    console.info(
      `replicas drill: poll ${poll.jobId} taken over after the kill (${takenOver.processedBy}); ` +
        `${delivery.deliveriesInFlight} delivery run(s) in the killed replica; Redis down ${REDIS_DOWN_MS / 1000} s, ` +
        `all three completing jobs again; ${cells} usage cells equal to the truth; ${rows.length} notifications, ` +
        `${messages} messages, ${flagged.length} marked possibly duplicate`,
    );
  });
});
