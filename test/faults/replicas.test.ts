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
 * Drill: three replicas of the real worker on one Redis (AOF on) and one Postgres, watching three organizations (an
 * `organizations:` list: each on an emulator of its own, its rows in its own schema, each job scheduled per
 * organization). The replica running a poll of the second organization is `kill -9`ed (and restarted, as an
 * orchestrator does); then the one running a delivery; then Redis is killed and restarted under all three. The
 * killed poll is taken over by another replica through BullMQ's stalled-job recovery; every replica resumes after
 * Redis returns and so does every organization's polling; per organization, stored usage equals its emulator's to
 * the token, no alert is lost, and a message goes out twice only where its send was in flight in a killed replica,
 * marked.
 */

const REDIS_DOWN_MS = 10_000;
const ALERTS = 30;
// other scenarios or seeds, so other keys and traffic: a row filed in the wrong schema could not equal that one's truth
const ORGANIZATIONS = [
  { id: 'emea', scenario: 'demo' },
  { id: 'apac', scenario: 'quiet' },
  { id: 'amer', scenario: 'demo', seed: 43 },
] as const;
/** The organization whose poll is killed: the second, so a job of a scheduler other than the first is recovered. */
const KILLED_POLL_OF = ORGANIZATIONS[1].id;
let rig: Rig;
const queues: Queue[] = [];

beforeAll(async () => {
  rig = await startRig({
    name: 'replicas',
    organizations: ORGANIZATIONS,
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

/** The organization a job runs for: its data names it (each organization's scheduler puts its id there). */
const organizationOf = (j: Job): string => (j.data as { organization: string }).organization;

/**
 * Waits for a replica running a job of `job` on `q` (of `organization` when given: active in BullMQ, and, for a
 * poll, not yet past its last log line: a job stays active a moment after its handler returns), kills it with
 * SIGKILL and starts it again. Returns the caught job, and the replica's runs of `job` then active per organization.
 */
async function killReplicaRunning(q: Queue, job: string, organization?: string) {
  const caught = await waitUntil(
    `a replica in the middle of ${job}${organization ? ` of ${organization}` : ''}`,
    async () => {
      const active = (await q.getActive()).filter((j) => j.name === job && j.processedBy);
      for (const j of active) {
        if (organization !== undefined && organizationOf(j) !== organization) continue;
        const w = rig.workers.find((x) => replicaName(x) === j.processedBy);
        const tick = Number(j.id?.split(':').at(-1));
        const done = ticksOf(w?.current.output() ?? '', job, 'usage polled', organizationOf(j));
        if (w && job === 'poll-usage' && done.includes(tick)) continue;
        if (w) return { w, job: j, runs: active.filter((a) => a.processedBy === j.processedBy) };
      }
      return null;
    },
    90_000,
    20,
  );
  await caught.w.kill9();
  await caught.w.start();
  const runs = new Map<string, number>();
  for (const r of caught.runs) runs.set(organizationOf(r), (runs.get(organizationOf(r)) ?? 0) + 1);
  return { jobId: caught.job.id!, organization: organizationOf(caught.job), runs };
}

describe('drill: kill -9 of one of three replicas mid-poll and mid-delivery over three organizations, then Redis restarted under them', () => {
  it('the killed poll is taken over, all resume, usage is exact per organization, no alert lost or repeated unmarked', async () => {
    const orgs = rig.organizations;
    const pollLane = queue('poll');
    const notify = queue('notify');
    await Promise.all(
      orgs.map(async ({ db }) => {
        await waitForUsageThrough(db, floorMinute(Date.now() - MINUTE), 120_000);
        await waitForOutboxDrained(db, 60_000);
      }),
    );

    // slow usage pages: a poll takes seconds, long enough to be caught in the middle of
    const slowOrg = orgs.find((o) => o.id === KILLED_POLL_OF)!;
    slowOrg.emulator.setFaults({
      pathPrefix: '/v1/organizations/usage_report',
      slowShare: 0.5,
      slowMs: 1_500,
      seed: 18,
    });
    const poll = await killReplicaRunning(pollLane, 'poll-usage', KILLED_POLL_OF);
    for (const { id, db } of orgs) await raiseDrillAlerts(db, DRILL_ROUTES, `replicas-${id}`, ALERTS);
    const delivery = await killReplicaRunning(notify, 'deliver-notifications');
    slowOrg.emulator.setFaults({});

    // the killed poll's tick is run again by a replica once its BullMQ lock expires (stalled-job recovery), or
    // skipped there when another tick's poll holds the job's run lock (that poll catches up from the watermark)
    const takenOver = await waitUntil(
      `poll ${poll.jobId} completed after the kill`,
      async () => {
        const job: Job | undefined = await pollLane.getJob(poll.jobId);
        return job && (await job.getState()) === 'completed' ? job : null;
      },
      150_000,
    );
    expect(poll.organization).toBe(KILLED_POLL_OF);
    const tick = Number(poll.jobId.split(':').at(-1));
    const polledBy = rig.workers.filter((w) =>
      ticksOf(w.output(), 'poll-usage', undefined, KILLED_POLL_OF).includes(tick),
    );
    expect(polledBy).toHaveLength(1);

    // the rows the killed delivery had leased wait out their 5-minute lease; the drill moves the clock past it
    for (const { db } of orgs) {
      await sql`UPDATE notifications SET next_attempt_at = now() WHERE status IN ('pending', 'sending')`.execute(db);
    }

    // ── Redis killed and restarted under the three ──
    const pids = rig.workers.map((w) => w.current.proc.pid);
    await rig.redis!.kill!();
    await sleep(REDIS_DOWN_MS);
    await rig.redis!.restart!();
    const back = Date.now();
    // every replica takes work again (the same processes: nothing restarted them), and every organization's polls
    // run again
    const names = rig.workers.map(replicaName);
    await waitUntil(
      'every replica completing jobs, and every organization polled, after the restart',
      async () => {
        const polls = (await pollLane.getCompleted(0, 200)).filter((j) => (j.finishedOn ?? 0) > back);
        const done = [...polls, ...(await notify.getCompleted(0, 200)).filter((j) => (j.finishedOn ?? 0) > back)];
        const by = new Set(done.map((j) => j.processedBy));
        const polled = new Set(polls.filter((j) => j.name === 'poll-usage').map(organizationOf));
        return names.every((n) => by.has(n)) && orgs.every((o) => polled.has(o.id));
      },
      120_000,
    );
    expect(rig.workers.map((w) => w.current.proc.pid)).toEqual(pids);
    expect(rig.workers.every((w) => w.current.proc.exitCode === null)).toBe(true);

    // per organization, in its own schema against its own emulator
    const report = new Map<string, string>();
    for (const { id, db, emulator } of orgs) {
      // usage: every minute from before the kills to the last poll equals the emulator's, to the token
      const watermark = await waitForUsageThrough(db, floorMinute(Date.now() - MINUTE), 120_000);
      const cells = await expectUsageEqualsTruth(
        db,
        emulator,
        floorMinute(rig.startedAt.getTime() - 30 * MINUTE),
        watermark,
      );
      report.set(id, `${cells} usage cells equal to the truth`);
    }

    const outboxesSent = () =>
      waitUntil(
        "every organization's outbox sent",
        async () => {
          const all = await Promise.all(orgs.map(({ db }) => outboxRows(db)));
          return all.every((rows) => rows.every((r) => r.status === 'sent')) ? all : null;
        },
        120_000,
      );
    // The messages are counted between two reads of the rows, each with every row sent: by the first, every send of
    // the drill is done; by the second, every message counted has its row (a row is committed before its send),
    // while an alert the worker raised meanwhile (the scenario's own) only adds rows.
    await outboxesSent();
    const messages = rig.slackPosts.length + rig.emails.length;
    const outboxes = await outboxesSent();
    let rows = 0;
    let flagged = 0;
    for (const [k, { id }] of orgs.entries()) {
      // alerts: none lost; a message twice only where a killed replica had it in flight, and then marked
      const sent = outboxes[k]!;
      const marked = sent.filter((r) => r.possibly_duplicate);
      const wrong: string[] = [];
      for (let i = 1; i <= ALERTS; i++) {
        const title = drillTitle(`replicas-${id}`, i);
        const received = messagesByTarget(rig, title);
        for (const r of sent.filter((x) => x.title === title)) {
          const n = received.get(r.channel === 'slack' ? rig.slack.channelId(r.target) : r.target) ?? 0;
          if (n < 1 || (n > 1 && !r.possibly_duplicate)) wrong.push(`${title} ${r.channel}: ${n} received`);
        }
      }
      expect(wrong).toEqual([]);
      expect(sent.filter((r) => r.title?.startsWith(`Drill alert [replicas-${id}-`))).toHaveLength(2 * ALERTS);
      // a killed replica has at most one send in flight per delivery run it was running
      expect(marked.length).toBeLessThanOrEqual(1 + (delivery.runs.get(id) ?? 0));
      expect(sent.filter((r) => r.status !== 'sent')).toEqual([]);
      rows += sent.length;
      flagged += marked.length;
      report.set(id, `${report.get(id)}, ${sent.length} notifications, ${marked.length} marked`);
    }
    // every message received is one row's (of any organization), or a marked row's second send
    expect(messages - rows).toBeLessThanOrEqual(flagged);
    const inFlight = [...delivery.runs.values()].reduce((a, b) => a + b, 0);
    expect(flagged).toBeLessThanOrEqual(1 + inFlight);

    console.info(
      `replicas drill: poll ${poll.jobId} taken over after the kill (${takenOver.processedBy}); ` +
        `${inFlight} delivery run(s) in the killed replica; Redis down ${REDIS_DOWN_MS / 1000} s, ` +
        `all three completing jobs again; ${[...report].map(([id, r]) => `${id}: ${r}`).join('; ')}; ${messages} messages`,
    );
  });
});
