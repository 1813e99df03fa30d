import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.ts';
import { WATERMARKS, watermarksRepo } from '../../src/db/repos/watermarks.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { MINUTE_MS } from '../../src/time.ts';
import { ticksOf } from '../support/replica-logs.ts';
import { KEY_A, startTwoOrganizations, type TwoOrganizations } from '../support/two-organizations.ts';
import { storedUsage, truthUsage } from '../support/usage-truth.ts';
import { waitUntil } from '../support/wait.ts';

/**
 * Several organizations from one deployment (#18): two organizations, each on an emulator of its own (their own
 * keys, their own traffic) named by `base_url`, and two worker replicas. Both organizations' usage is polled and
 * stored in its own schema; then organization A's admin key is revoked: keywarden.blind fires for A alone and names
 * it, while B's polls keep every tick (counted on B's emulator and in the replicas' logs, not by a stopwatch).
 */

// a poll here takes 1-3 s on a loaded machine: each tick is a poll of its own, none skipped behind the last
const POLL_EVERY_S = 5;
const USAGE_PATH = '/v1/organizations/usage_report/messages';

let rig: TwoOrganizations;

beforeAll(async () => {
  rig = await startTwoOrganizations({
    replicas: 2,
    pollUsage: `*/${POLL_EVERY_S} * * * * *`,
    policy: (policy) => {
      policy.routes.unshift({ match: { kind: 'keywarden.*' }, slack: ['#ops'], email: ['ops@acme.example'] });
      policy.organizations[1]!.timezone = 'Asia/Tokyo';
    },
  });
  // `keywarden migrate` created both schemas
  expect(rig.migrateOutput).toMatch(/^orga \(schema kw_orga\): applied: 001_initial/m);
  expect(rig.migrateOutput).toMatch(/^orgb \(schema kw_orgb\): applied: 001_initial/m);
});
afterAll(async () => {
  await rig?.close();
});

/** First pages of the usage report: one per poll run (a later page carries `page=`). */
const pollsOf = (emulator: Emulator, since: number, until = Number.POSITIVE_INFINITY) =>
  emulator.requestLog.filter(
    (r) =>
      r.path.startsWith(USAGE_PATH) &&
      !/[?&]page=/.test(r.path) &&
      r.time.getTime() >= since &&
      r.time.getTime() <= until,
  );

describe('two organizations, two replicas', () => {
  it('poll both into their own schemas; a revoked key blinds that organization alone while the other polls on time', async () => {
    const { emulatorA, emulatorB, slack, smtp, replicas, schemaDb } = rig;
    await Promise.all(replicas.map((r) => r.start()));
    const [dbA, dbB] = [schemaDb('kw_orga'), schemaDb('kw_orgb')];
    const start = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 3 * MINUTE_MS);
    // a poll of each completed: its watermark moved past where it was set
    await waitUntil(
      'both organizations polled',
      async () => {
        const marks = await Promise.all([dbA, dbB].map((db) => watermarksRepo(db).read(WATERMARKS.usage)));
        return marks.every((m) => m !== null && m.getTime() > start.getTime());
      },
      120_000,
    );

    // ── A's key revoked ──
    const revokedAt = Date.now();
    emulatorA.setAdminKeys([]);
    const blindPosts = () =>
      slack.calls.filter((c) => c.method === 'chat.postMessage' && /keywarden is blind/.test(String(c.args.text)));
    const blindA = await waitUntil('the blind alert for A in Slack', () => blindPosts()[0], 90_000);
    expect(String(blindA.args.text)).toMatch(/keywarden is blind to Org A/);
    // B keeps polling meanwhile: five more of its runs completed after the revocation
    const runsOfB = () =>
      replicas
        .flatMap((r) => ticksOf(r.output(), 'poll-usage', 'usage polled', 'orgb'))
        .filter((at) => at >= revokedAt);
    await waitUntil('five of B’s polls completed after the revocation', () => runsOfB().length >= 5, 200_000);
    const stoppedAt = Date.now();
    await Promise.all(replicas.map((r) => r.stop()));

    // ── blind for A only, naming A ──
    expect(blindPosts().map((c) => String(c.args.text).includes('Org A'))).toEqual(blindPosts().map(() => true));
    expect(blindPosts().some((c) => String(c.args.text).includes('Org B'))).toBe(false);
    const blindMail = smtp.messages.filter((m) => /keywarden is blind/.test(m.subject));
    // every message names its organization in front of its title
    expect(blindMail.map((m) => m.subject)).toEqual([expect.stringMatching(/\[Org A\] keywarden is blind to Org A/)]);
    expect(blindMail[0]!.text).not.toContain(KEY_A);
    const blindRows = async (db: Db) =>
      (await db.selectFrom('alerts').select('state').where('kind', '=', 'keywarden.blind').execute()).map(
        (a) => a.state,
      );
    expect(await blindRows(dbA)).toEqual(['firing']);
    expect(await blindRows(dbB)).toEqual([]);

    // ── B on time: its ticks since the revocation each once across the replicas, each a completed poll that B's
    // emulator saw. A few ticks may be missing: BullMQ makes a scheduler's next job when the current one starts, so a
    // job started past its successor's time (on a loaded machine) drops that one; A's refusals holding B back would
    // drop most. ──
    const outputs = replicas.map((r) => r.output());
    const ticksB = outputs
      .flatMap((out) => ticksOf(out, 'poll-usage', undefined, 'orgb'))
      .filter((at) => at >= revokedAt)
      .sort((x, y) => x - y);
    expect(ticksB.filter((at, i) => ticksB[i - 1] === at)).toEqual([]);
    const scheduled = Math.floor(stoppedAt / (POLL_EVERY_S * 1000)) - Math.ceil(revokedAt / (POLL_EVERY_S * 1000)) + 1;
    expect(ticksB.length).toBeGreaterThanOrEqual(Math.floor(scheduled * 0.8) - 1); // -1: the one in flight at the stop
    const afterRevocation = outputs
      .flatMap((out) => ticksOf(out, 'poll-usage', 'usage polled', 'orgb'))
      .filter((at) => at >= revokedAt);
    expect(afterRevocation.length).toBeGreaterThanOrEqual(5);
    // before the stop: a chained job enqueued as the replicas close their Redis connection fails then, and says so
    const failedB = outputs
      .flatMap((out) => out.split('\n'))
      .filter((l) => l.includes('"org":"orgb"') && l.includes('"msg":"job failed"'))
      .filter((l) => (JSON.parse(l) as { time: number }).time < stoppedAt);
    expect(failedB).toEqual([]);
    // and B's emulator saw them, counted on its request log: a poll per tick run, every one answered
    const pollsB = pollsOf(emulatorB, revokedAt, stoppedAt);
    expect(pollsB.length).toBeGreaterThanOrEqual(afterRevocation.length - 1); // the first may have begun before
    expect(pollsB.filter((r) => r.status !== 200 && r.status !== null)).toEqual([]);
    const perMinute = (pollsB.length / (stoppedAt - revokedAt)) * MINUTE_MS;
    console.info(
      `after A's revocation: ${pollsB.length} polls of B, ${afterRevocation.length} runs of ${scheduled} ticks scheduled (${perMinute.toFixed(1)}/min, schedule ${60 / POLL_EVERY_S}/min); ` +
        `${pollsOf(emulatorA, revokedAt, stoppedAt).length} refused polls of A; ticks per replica ${outputs.map((o) => ticksOf(o, 'poll-usage', 'usage polled', 'orgb').length).join(' / ')}`,
    );

    // ── each organization's usage in its own schema, equal to its own emulator's ──
    for (const [db, emulator, other] of [
      [dbA, emulatorA, emulatorB],
      [dbB, emulatorB, emulatorA],
    ] as const) {
      const to = (await watermarksRepo(db).read(WATERMARKS.usage))!;
      expect(to.getTime()).toBeGreaterThan(start.getTime());
      const stored = await storedUsage(db, '1m', start, to);
      expect(stored.size).toBeGreaterThan(0);
      expect(stored).toEqual(truthUsage(emulator, '1m', start, to));
      const otherKeys = new Set(other.state.keys.map((k) => k.id));
      const strays = await db.selectFrom('usage_buckets').select('api_key_id').distinct().execute();
      expect(strays.filter((r) => r.api_key_id !== null && otherKeys.has(r.api_key_id))).toEqual([]);
    }
  }, 400_000);
});
