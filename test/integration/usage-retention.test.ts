import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { loadScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { PRICE_TABLE } from '../../src/usage/core/prices.ts';
import { pollUsage } from '../../src/usage/ingest.ts';
import { applyUsageRetention } from '../../src/usage/retention.ts';
import { usageContext } from '../support/context.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const NOW = new Date('2026-11-16T15:00:00Z');
const HOUR = 3_600_000;
let t: TestDatabase;
let emulator: Emulator;

beforeAll(async () => {
  t = await createTestDatabase();
  const clock = fixedClock(NOW);
  emulator = await startEmulator({
    scenario: loadScenario('quiet'),
    clock,
    startAt: NOW,
    freshnessDelayMinutes: 0,
  });
  const admin = new AdminClient({
    baseUrl: emulator.url,
    adminKey: new Secret('sk-ant-admin01-keywarden-quiet-not-a-secret-0001'),
    clock,
  });
  await pollUsage(usageContext(t.db, admin, fixedClock(NOW)), {
    overlapMinutes: 15,
    freshnessMinutes: 0,
    firstPollHours: 3,
    table: PRICE_TABLE,
  });
});
afterAll(async () => {
  await emulator?.close();
  await t?.drop();
});

const totals = () =>
  sql<{ width: string; rows: string; output: string; cost: string }>`
    SELECT bucket_width AS width, count(*)::text AS rows, sum(output_tokens)::text AS output, sum(cost_usd)::text AS cost
    FROM usage_buckets GROUP BY bucket_width ORDER BY bucket_width`
    .execute(t.db)
    .then((r) => r.rows);

describe('usage retention', () => {
  it('rolls 1m rows older than 48 hours into hourly rows, exactly, once', async () => {
    const before = await totals();
    expect(before.map((r) => r.width)).toEqual(['1m']);
    // 47.5 hours later the cutoff is 14:00: the first two of the three polled hours are older than 48 h; the third is not yet
    const later = new Date(NOW.getTime() + 47 * HOUR + 30 * 60_000);
    const first = await applyUsageRetention({ repos: createRepos(t.db), clock: fixedClock(later) });
    expect(first.rolledUpBefore).toEqual(new Date('2026-11-16T14:00:00Z'));
    expect(first.minuteRowsRolledUp).toBeGreaterThan(0);
    const after = await totals();
    expect(after.map((r) => r.width)).toEqual(['1h', '1m']);
    const sum = (rows: typeof after, k: 'output' | 'cost') =>
      rows.reduce((s, r) => s + BigInt(r[k].replace('.', '')), 0n);
    expect(sum(after, 'output')).toBe(sum(before, 'output'));
    expect(sum(after, 'cost')).toBe(sum(before, 'cost'));
    // the 1m rows left keep their cost split by token kind, summing to their cost; hourly rows keep the total only
    const split = await sql<{ width: string; off: string; kept: string }>`
      SELECT bucket_width AS width,
        count(*) FILTER (WHERE cost_usd <> cost_uncached_input_usd + cost_cache_read_usd + cost_cache_creation_5m_usd
          + cost_cache_creation_1h_usd + cost_output_usd + cost_web_search_usd)::text AS off,
        count(cost_output_usd)::text AS kept
      FROM usage_buckets GROUP BY 1 ORDER BY 1`.execute(t.db);
    expect(split.rows.map((r) => [r.width, r.off, r.kept])).toEqual([
      ['1h', '0', '0'],
      ['1m', '0', after.find((r) => r.width === '1m')!.rows],
    ]);
    const remaining = await t.db
      .selectFrom('usage_buckets')
      .select(sql<Date>`min(starting_at)`.as('first'))
      .where('bucket_width', '=', '1m')
      .executeTakeFirstOrThrow();
    expect(new Date(remaining.first).getTime()).toBeGreaterThanOrEqual(first.rolledUpBefore.getTime());

    // a rerun changes nothing
    const again = await applyUsageRetention({ repos: createRepos(t.db), clock: fixedClock(later) });
    expect(again.minuteRowsRolledUp).toBe(0);
    expect(await totals()).toEqual(after);

    // thirteen months on, the hourly rows are gone
    const muchLater = await applyUsageRetention({
      repos: createRepos(t.db),
      clock: fixedClock(new Date('2027-12-20T00:00:00Z')),
    });
    expect(muchLater.hourlyRowsDeleted).toBeGreaterThan(0);
  });
});
