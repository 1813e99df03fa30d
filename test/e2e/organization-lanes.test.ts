import { type Job, type JobType, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.ts';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import { QUEUE_NAMES } from '../../src/queue/queues.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { redisUrl } from '../support/db.ts';
import { startTwoOrganizations, type TwoOrganizations } from '../support/two-organizations.ts';
import { storedUsage, truthUsage } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * One organization's hung Admin API never delays another's minute poll (#18): two organizations on emulators of
 * their own, ONE replica. Organization A's emulator never answers, and A runs every job that reads the API every
 * 10 s (its poll, inventory sync, headroom check and projection), so A's runs hang on every queue they use. B's
 * polls must still start at their tick, B's runaway detection right after each poll, and B's stored usage keep up;
 * A's trouble is said for A alone (keywarden.job_failing names it). The delays are read from BullMQ's own records
 * of the jobs (processedOn against the tick or the enqueue time), not timed in the test.
 */

const EVERY_10S = '*/10 * * * * *';
const NEVER = '0 0 1 1 *';
// how late a poll may start on a loaded machine (BullMQ's scheduler, a busy event loop, CI's parallel files): under
// the 10 s between ticks, so a poll that waited a tick for a slot still fails, and far from a hung slot's wait (30 s+)
const ON_TIME_MS = 8_000;

let rig: TwoOrganizations;

beforeAll(async () => {
  rig = await startTwoOrganizations({
    replicas: 1,
    pollUsage: EVERY_10S,
    policy: (policy) => {
      policy.routes.unshift({ match: { kind: 'keywarden.*' }, slack: ['#ops'] });
      // A's poll not completing is said after a minute of ticks
      policy.job_alerts = { missed_intervals: 6 };
      // B reads nothing else from the API; A reads it from every lane it has, every 10 s
      policy.schedules = { ...policy.schedules, 'check-headroom': NEVER, 'project-spend': NEVER };
      policy.organizations[0]!.schedules = {
        ...policy.schedules,
        'sync-inventory': EVERY_10S,
        'check-headroom': EVERY_10S,
        'project-spend': EVERY_10S,
      };
    },
  });
});
afterAll(async () => {
  await rig?.close();
});

async function jobsOn(queueName: string, states: JobType[]): Promise<Job[]> {
  const queue = new Queue(queueName, { connection: { url: redisUrl() }, prefix: rig.prefix });
  try {
    return await queue.getJobs(states);
  } finally {
    await queue.close();
  }
}

/** Every job BullMQ still holds for `name`, on whichever queue runs it. */
async function jobsNamed(name: string): Promise<Job[]> {
  const all = await Promise.all(
    QUEUE_NAMES.map((q) => jobsOn(q, ['completed', 'failed', 'active', 'waiting', 'delayed'])),
  );
  return all.flat().filter((j) => j.name === name);
}

const organizationOf = (job: Job) => (job.data as { organization?: string }).organization;

describe('one replica, organization A hung on every lane', () => {
  it("B's minute polls and runaway detection start on time, B's usage keeps up, and A's trouble names A", async () => {
    const { emulatorA, emulatorB, schemaDb } = rig;
    await rig.replicas[0]!.start();
    const startedAt = Date.now();
    const dbB = schemaDb('kw_orgb');
    const dbA = schemaDb('kw_orga');
    // both poll once while A answers: with usage stored, A's headroom check and projection read A's API too
    await waitUntil(
      'both organizations polled',
      async () => {
        const marks = await Promise.all([dbA, dbB].map((db) => watermarksRepo(db).read(WATERMARKS.usage)));
        return marks.every(
          (m) => m !== null && m.getTime() > Math.floor(startedAt / MINUTE_MS) * MINUTE_MS - 3 * MINUTE_MS,
        );
      },
      60_000,
    );
    // never answered from now: each of A's runs waits out the client's timeouts and retries (minutes)
    emulatorA.setFaults({ hangShare: 1 });
    const hungAt = Date.now();
    // A's runs have taken their slots by the first ticks after; B's ticks from then on are measured
    const from = hungAt + 15_000;
    const until = from + 60_000;
    // the ticks measured, and the last one's start
    await new Promise((r) => setTimeout(r, until + ON_TIME_MS - Date.now()));

    const polls = (await jobsNamed('poll-usage'))
      .filter((j) => organizationOf(j) === 'orgb')
      .map((j) => ({ tick: Number(j.id!.split(':').at(-1)), started: j.processedOn ?? null }))
      .sort((x, y) => x.tick - y.tick);
    // a start after the tick, or never (still waiting when the test looked)
    const delay = (p: (typeof polls)[number]) => (p.started === null ? Number.POSITIVE_INFINITY : p.started - p.tick);
    const measured = polls.filter((p) => p.tick >= from && p.tick <= until);
    // BullMQ makes a scheduler's next job when the current one starts: a poll that waits for a slot drops its
    // successors' ticks, so a tick without a job is a late poll too
    const ticks = Math.floor(until / 10_000) - Math.ceil(from / 10_000) + 1;
    const detections = (await jobsNamed('detect-anomalies')).filter(
      (j) => organizationOf(j) === 'orgb' && j.timestamp >= from && j.timestamp <= until,
    );
    const detectionDelays = detections.map((j) =>
      j.processedOn === undefined ? Number.POSITIVE_INFINITY : j.processedOn - j.timestamp,
    );
    // what A's hung runs hold at the end: a run per job on each lane it uses
    const heldByA = (
      await Promise.all(
        QUEUE_NAMES.map(async (q) => (await jobsOn(q, ['active'])).filter((j) => organizationOf(j) === 'orga')),
      )
    )
      .flat()
      .map((j) => `${j.queueName}/${j.name}`)
      .sort();
    const seconds = (ms: number[]) => ms.map((d) => (d / 1000).toFixed(1)).join(' ');
    console.info(
      `B's polls since A hung, tick (s after A hung) → start delay (s): ${polls
        .filter((p) => p.tick >= hungAt)
        .map((p) => `${((p.tick - hungAt) / 1000).toFixed(0)}→${(delay(p) / 1000).toFixed(1)}`)
        .join(' ')}\n` +
        `measured: ${measured.length} polls of ${ticks} ticks; runaway detection start delays after B's polls (s): ${seconds(detectionDelays)}\n` +
        `A's hung runs at the end: ${heldByA.join(', ')}`,
    );
    // the premise: A's runs did hang, holding a slot on the poll and ingest lanes at the end
    expect(heldByA).toEqual(expect.arrayContaining(['poll/poll-usage', 'ingest/sync-inventory']));
    expect(measured.length).toBeGreaterThanOrEqual(ticks - 1);
    expect(measured.map(delay).filter((d) => d > ON_TIME_MS)).toEqual([]);
    expect(detections.length).toBeGreaterThanOrEqual(ticks - 2);
    expect(detectionDelays.filter((d) => d > ON_TIME_MS)).toEqual([]);

    // B's stored usage keeps up with the minute, equal to its emulator's
    const markB = (await watermarksRepo(dbB).read(WATERMARKS.usage))!;
    expect(markB.getTime()).toBeGreaterThanOrEqual(Math.floor(until / MINUTE_MS) * MINUTE_MS - MINUTE_MS);
    const start = new Date(Math.floor(startedAt / MINUTE_MS) * MINUTE_MS - 3 * MINUTE_MS);
    const stored = await storedUsage(dbB, '1m', start, markB);
    expect(stored.size).toBeGreaterThan(0);
    expect(stored).toEqual(truthUsage(emulatorB, '1m', start, markB));

    // A's poll not completing is said for A, and for A alone
    const failing = async (db: Db) =>
      (await db.selectFrom('alerts').select('title').where('kind', '=', 'keywarden.job_failing').execute()).map(
        (a) => a.title,
      );
    await waitUntil('keywarden.job_failing for A’s poll', async () =>
      (await failing(dbA)).some((title) => /poll-usage for Org A is not completing/.test(title)),
    );
    expect(await failing(dbB)).toEqual([]);
  }, 300_000);
});
