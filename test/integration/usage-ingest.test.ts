import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { deliverNotifications } from '../../src/notify/outbox.ts';
import { createSlackClient } from '../../src/notify/slack.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { type PollUsageOptions, pollUsage } from '../../src/usage/ingest.ts';
import { testJobContext, usageContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { type SlackServer, startSlackServer } from '../support/slack-server.ts';
import { duplicateUsageRows, storedUsage, truthUsage } from '../support/usage-truth.ts';

const START = new Date('2026-11-16T15:00:00Z');
const ADMIN_KEY = 'sk-ant-admin01-keywarden-quiet-not-a-secret-0001';
const MINUTE = 60_000;
let t: TestDatabase;
let emulator: Emulator;
let admin: AdminClient;
const clock = fixedClock(START);

// small pages, so that a poll has many pages to die between
const OPTS: PollUsageOptions = {
  overlapMinutes: 15,
  freshnessMinutes: 1,
  firstPollHours: 1,
  table: PRICE_TABLE,
  pageRows: 40,
};

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet'), clock, startAt: START, freshnessDelayMinutes: 0 });
  admin = new AdminClient({ baseUrl: emulator.url, adminKey: new Secret(ADMIN_KEY), maxAttempts: 1, clock });
});
afterAll(async () => {
  await emulator?.close();
  await t?.drop();
});

/** Stored 1m usage of [from, to) against the emulator's ground truth, to the token, cell by cell. */
async function expectStoredEqualsTruth(from: Date, to: Date) {
  const want = truthUsage(emulator, '1m', from, to);
  expect(want.size).toBeGreaterThan(0);
  expect(await storedUsage(t.db, '1m', from, to)).toEqual(want);
}

describe('poll-usage against the emulator', () => {
  it('stores usage equal to the ground truth after crashes at five points of a poll and after a 2-hour gap', async () => {
    const first = await pollUsage(usageContext(t.db, admin, clock), OPTS);
    const firstStart = new Date(START.getTime() - 60 * MINUTE);
    expect(first.watermark).toEqual(new Date(START.getTime() - MINUTE));
    await expectStoredEqualsTruth(firstStart, first.watermark!);

    // two hours of downtime, then a worker that dies at a different page of the catch-up five times
    clock.advance(2 * 60 * MINUTE);
    for (const crashAt of [1, 2, 5, 11, 19]) {
      const before = await t.db.selectFrom('watermarks').selectAll().where('name', '=', WATERMARKS.usage).execute();
      await expect(
        pollUsage(usageContext(t.db, admin, clock), {
          ...OPTS,
          afterPage: (page) => {
            if (page === crashAt) throw new Error(`killed at page ${page}`);
          },
        }),
      ).rejects.toThrow(`killed at page ${crashAt}`);
      // nothing of the interrupted chunk moved the watermark
      expect(await t.db.selectFrom('watermarks').selectAll().where('name', '=', WATERMARKS.usage).execute()).toEqual(
        before,
      );
      clock.advance(MINUTE);
    }
    const caughtUp = await pollUsage(usageContext(t.db, admin, clock), OPTS);
    expect(caughtUp.watermark).toEqual(new Date(clock.now().getTime() - MINUTE));
    await expectStoredEqualsTruth(firstStart, caughtUp.watermark!);
    expect(await duplicateUsageRows(t.db)).toBe(0);

    // polling again over the overlap changes nothing
    const rowsBefore = await t.db.selectFrom('usage_buckets').select(sql<string>`count(*)`.as('n')).executeTakeFirst();
    await pollUsage(usageContext(t.db, admin, clock), OPTS);
    expect(await t.db.selectFrom('usage_buckets').select(sql<string>`count(*)`.as('n')).executeTakeFirst()).toEqual(
      rowsBefore,
    );
    await expectStoredEqualsTruth(firstStart, caughtUp.watermark!);

    // the scheduled job runs the same poll: three minutes later it moves the watermark three minutes on
    clock.advance(3 * MINUTE);
    const { ctx, close } = testJobContext({ db: t.db, emulatorUrl: emulator.url, adminKey: ADMIN_KEY, clock });
    try {
      const run = (await pollUsageJob.handler(ctx, {})) as { watermark: Date };
      expect(run.watermark).toEqual(new Date(caughtUp.watermark!.getTime() + 3 * MINUTE));
      await expectStoredEqualsTruth(firstStart, run.watermark);
    } finally {
      await close();
    }
  });
});

describe('poll-usage given a bucket dated in the future', () => {
  it('refuses it, naming the response, and stores the rest', async () => {
    clock.advance(10 * MINUTE);
    emulator.setFaults({
      script: [
        {
          path: '/v1/organizations/usage_report/messages',
          patch: [
            { path: 'data.0.starting_at', value: '2027-01-01T00:00:00Z' },
            { path: 'data.0.ending_at', value: '2027-01-01T00:01:00Z' },
          ],
        },
      ],
    });
    const refused: number[] = [];
    try {
      const result = await pollUsage(usageContext(t.db, admin, clock), {
        ...OPTS,
        onRefused: (buckets) => refused.push(buckets.length),
      });
      const future = await t.db
        .selectFrom('usage_buckets')
        .select('starting_at')
        .where('starting_at', '>', clock.now())
        .execute();
      expect(future).toEqual([]);
      expect(result.refusedBuckets).toBe(1);
      expect(refused).toEqual([1]);
      expect(result.settled!.getTime()).toBeLessThanOrEqual(clock.now().getTime());
    } finally {
      emulator.setFaults({});
    }
  });
});

describe('poll-usage with a model missing from the price table', () => {
  let u: TestDatabase;
  let emu: Emulator;
  let slack: SlackServer;
  const clock2 = fixedClock(START);

  beforeAll(async () => {
    u = await createTestDatabase();
    const text = readFileSync('src/emulator/scenarios/quiet.yaml', 'utf8').replace(
      'models: { claude-haiku-4-5: 1 }, web_search_per_minute',
      'models: { claude-haiku-9-preview: 1 }, web_search_per_minute',
    );
    emu = await startEmulator({
      scenario: parseScenario(parseYaml(text)),
      clock: clock2,
      startAt: START,
      freshnessDelayMinutes: 0,
    });
    slack = await startSlackServer();
  });
  afterAll(async () => {
    await emu?.close();
    await slack?.close();
    await u?.drop();
  });

  it('prices it at its family maximum and records it once', async () => {
    const client = new AdminClient({
      baseUrl: emu.url,
      adminKey: new Secret(ADMIN_KEY),
      maxAttempts: 1,
      clock: clock2,
    });
    const first = await pollUsage(usageContext(u.db, client, clock2), OPTS);
    expect(first.newUnknownModels).toEqual(['claude-haiku-9-preview']);
    const priced = await u.db
      .selectFrom('usage_buckets')
      .select(['priced_by'])
      .where('model', '=', 'claude-haiku-9-preview')
      .execute();
    expect(priced.length).toBeGreaterThan(0);
    expect(new Set(priced.map((r) => r.priced_by))).toEqual(new Set(['family_max']));
    clock2.advance(5 * MINUTE);
    const second = await pollUsage(usageContext(u.db, client, clock2), OPTS);
    expect(second.newUnknownModels).toEqual([]);
    expect(await u.db.selectFrom('pricing_unknown_models').select(['model', 'priced_by']).execute()).toEqual([
      { model: 'claude-haiku-9-preview', priced_by: 'family_max' },
    ]);
  });

  it('raises pricing.unknown_model once, sent once, across repeated polls (and after a poll that died before raising it)', async () => {
    // the polls above recorded the model without raising anything: what a worker killed between the usage commit
    // and the alert leaves behind. The next scheduled poll raises it.
    expect(await u.db.selectFrom('alerts').selectAll().execute()).toEqual([]);
    const notifier = {
      slack: createSlackClient({ token: new Secret(slack.token), apiUrl: slack.url }),
      email: null,
      close: async () => {},
    };
    const { ctx, close } = testJobContext({
      db: u.db,
      emulatorUrl: emu.url,
      adminKey: ADMIN_KEY,
      clock: clock2,
      notifier,
    });
    try {
      for (let i = 0; i < 4; i++) {
        clock2.advance(MINUTE);
        await pollUsageJob.handler(ctx, {});
        await deliverNotifications(ctx);
      }
      // routed by examples/keywarden.yaml's catch-all route to #ai-alerts
      expect(await u.db.selectFrom('alerts').select(['kind', 'scope_id', 'state']).execute()).toEqual([
        { kind: 'pricing.unknown_model', scope_id: 'claude-haiku-9-preview', state: 'firing' },
      ]);
      expect(await u.db.selectFrom('notifications').select(['event', 'target', 'status']).execute()).toEqual([
        { event: 'firing', target: '#ai-alerts', status: 'sent' },
      ]);
      const posts = slack.calls.filter((c) => c.method === 'chat.postMessage');
      expect(posts).toHaveLength(1);
      expect(String(posts[0]!.args.text)).toContain('claude-haiku-9-preview is not in the price table');
    } finally {
      await close();
    }
  });
});
