import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { type PollUsageOptions, pollUsage, USAGE_WATERMARK } from '../../src/usage/ingest.ts';
import { PRICE_TABLE } from '../../src/usage/prices.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

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
  pageBuckets: 7,
};

beforeAll(async () => {
  t = await createTestDatabase();
  emulator = await startEmulator({ scenario: loadScenario('quiet'), clock, startAt: START, freshnessDelayMinutes: 0 });
  admin = new AdminClient({ baseUrl: emulator.url, adminKey: new Secret(ADMIN_KEY), maxAttempts: 1 });
});
afterAll(async () => {
  await emulator?.close();
  await t?.drop();
});

const cellId = (key: string, minute: number, m: string, tier: string, cw: string) =>
  `${key}|${new Date(minute).toISOString()}|${m}|${tier}|${cw}`;
const counts = (c: Record<string, unknown>) =>
  [
    c.uncached_input_tokens,
    c.cache_read_input_tokens,
    c.cache_creation_5m_input_tokens,
    c.cache_creation_1h_input_tokens,
    c.output_tokens,
  ]
    .map(String)
    .join(',');

/** Stored 1m usage of [from, to) against the emulator's ground truth, to the token, cell by cell. */
async function expectStoredEqualsTruth(from: Date, to: Date) {
  const stored = await t.db
    .selectFrom('usage_buckets')
    .selectAll()
    .where('bucket_width', '=', '1m')
    .where('starting_at', '>=', from)
    .where('starting_at', '<', to)
    .execute();
  const got = new Map(
    stored.map((r) => [
      cellId(r.api_key_id!, new Date(r.starting_at).getTime(), r.model, r.service_tier, r.context_window),
      counts(r),
    ]),
  );
  const want = new Map<string, string>();
  for (const key of emulator.state.keys) {
    for (let m = from.getTime(); m < to.getTime(); m += MINUTE) {
      for (const c of emulator.usageAt(key.id, new Date(m))) {
        const v = counts(c as unknown as Record<string, unknown>);
        if (v !== '0,0,0,0,0') want.set(cellId(key.id, m, c.model, c.service_tier, c.context_window), v);
      }
    }
  }
  expect(want.size).toBeGreaterThan(0);
  expect(got).toEqual(want);
}

async function duplicateRows() {
  const r = await sql<{ n: string }>`
    SELECT count(*) AS n FROM (
      SELECT 1 FROM usage_buckets
      GROUP BY bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window
      HAVING count(*) > 1) d`.execute(t.db);
  return Number(r.rows[0]!.n);
}

describe('poll-usage against the emulator', () => {
  it('stores usage equal to the ground truth after crashes at five points of a poll and after a 2-hour gap', async () => {
    const first = await pollUsage(t.db, admin, clock.now(), OPTS);
    const firstStart = new Date(START.getTime() - 60 * MINUTE);
    expect(first.watermark).toEqual(new Date(START.getTime() - MINUTE));
    await expectStoredEqualsTruth(firstStart, first.watermark!);

    // two hours of downtime, then a worker that dies at a different page of the catch-up five times
    clock.advance(2 * 60 * MINUTE);
    for (const crashAt of [1, 2, 5, 11, 19]) {
      const before = await t.db.selectFrom('watermarks').selectAll().where('name', '=', USAGE_WATERMARK).execute();
      await expect(
        pollUsage(t.db, admin, clock.now(), {
          ...OPTS,
          afterPage: (page) => {
            if (page === crashAt) throw new Error(`killed at page ${page}`);
          },
        }),
      ).rejects.toThrow(`killed at page ${crashAt}`);
      // nothing of the interrupted chunk moved the watermark
      expect(await t.db.selectFrom('watermarks').selectAll().where('name', '=', USAGE_WATERMARK).execute()).toEqual(
        before,
      );
      clock.advance(MINUTE);
    }
    const caughtUp = await pollUsage(t.db, admin, clock.now(), OPTS);
    expect(caughtUp.watermark).toEqual(new Date(clock.now().getTime() - MINUTE));
    await expectStoredEqualsTruth(firstStart, caughtUp.watermark!);
    expect(await duplicateRows()).toBe(0);

    // polling again over the overlap changes nothing
    const rowsBefore = await t.db.selectFrom('usage_buckets').select(sql<string>`count(*)`.as('n')).executeTakeFirst();
    await pollUsage(t.db, admin, clock.now(), OPTS);
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

describe('poll-usage with a model missing from the price table', () => {
  it('prices it at its family maximum and records it once', async () => {
    const db = await createTestDatabase();
    const text = readFileSync('src/emulator/scenarios/quiet.yaml', 'utf8').replace(
      'models: { claude-haiku-4-5: 1 }, web_search_per_minute',
      'models: { claude-haiku-9-preview: 1 }, web_search_per_minute',
    );
    const clock2 = fixedClock(START);
    const emu = await startEmulator({
      scenario: parseScenario(parseYaml(text)),
      clock: clock2,
      startAt: START,
      freshnessDelayMinutes: 0,
    });
    try {
      const client = new AdminClient({ baseUrl: emu.url, adminKey: new Secret(ADMIN_KEY), maxAttempts: 1 });
      const first = await pollUsage(db.db, client, clock2.now(), OPTS);
      expect(first.newUnknownModels).toEqual(['claude-haiku-9-preview']);
      const priced = await db.db
        .selectFrom('usage_buckets')
        .select(['priced_by'])
        .where('model', '=', 'claude-haiku-9-preview')
        .execute();
      expect(priced.length).toBeGreaterThan(0);
      expect(new Set(priced.map((r) => r.priced_by))).toEqual(new Set(['family_max']));
      clock2.advance(5 * MINUTE);
      const second = await pollUsage(db.db, client, clock2.now(), OPTS);
      expect(second.newUnknownModels).toEqual([]);
      expect(await db.db.selectFrom('pricing_unknown_models').select(['model', 'priced_by']).execute()).toEqual([
        { model: 'claude-haiku-9-preview', priced_by: 'family_max' },
      ]);
    } finally {
      await emu.close();
      await db.drop();
    }
  });
});
