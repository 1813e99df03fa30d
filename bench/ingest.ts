/**
 * Usage ingestion speed. `npm run bench -- ingest [rows]` (DATABASE_URL, else a local Postgres is started):
 * 1. keywarden's upsert (`upsertUsageBuckets`: batches of one INSERT … SELECT FROM unnest … ON CONFLICT, in one
 *    transaction) for
 *    100k rows, first as inserts, then as the same rows again (every row a conflict: the overlap re-read);
 * 2. the ceiling of the same Postgres in the same run: the rows loaded into a staging table in one statement
 *    (unnest of arrays: COPY FROM STDIN needs pg-copy-streams, which is not a dependency) and one set-based upsert;
 * 3. one poll cycle of the emulator's `large` scenario (5,000 keys, 15 one-minute buckets), p50/p95 of 20 cycles,
 *    with this process's peak RSS (the emulator runs in the same process, so it is included).
 * Then the table's size per row, for the size estimate of a year.
 */
import { randomBytes } from 'node:crypto';
import { type Insertable, sql } from 'kysely';
import pg from 'pg';
import { AdminClient } from '../src/anthropic/client.ts';
import { fixedClock } from '../src/clock.ts';
import { Secret } from '../src/config/secret.ts';
import { createDb, type Db, migrateToLatest } from '../src/db/index.ts';
import type { UsageBucketsTable } from '../src/db/types.ts';
import { startLocalPostgres } from '../src/dev/services.ts';
import { loadScenario } from '../src/emulator/scenario.ts';
import { startEmulator } from '../src/emulator/server.ts';
import { pollUsage, USAGE_WATERMARK } from '../src/usage/ingest.ts';
import { PRICE_TABLE } from '../src/usage/prices.ts';
import { upsertUsageBuckets } from '../src/usage/store.ts';

const MINUTE = 60_000;
const MODELS = ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-5', 'claude-sonnet-4-6', 'claude-opus-4-6'];

function syntheticRows(n: number, at: Date): Insertable<UsageBucketsTable>[] {
  const rows: Insertable<UsageBucketsTable>[] = [];
  for (let i = 0; i < n; i++) {
    rows.push({
      bucket_width: '1m',
      starting_at: new Date(at.getTime() + (i % 15) * MINUTE),
      api_key_id: `apikey_${Math.floor(i / 75)
        .toString()
        .padStart(6, '0')}`,
      workspace_id: `wrkspc_${Math.floor(i / 7500)}`,
      model: MODELS[Math.floor(i / 15) % 5]!,
      service_tier: 'standard',
      context_window: '0-200k',
      uncached_input_tokens: 1000 + (i % 97),
      cache_read_input_tokens: 300,
      cache_creation_5m_input_tokens: 20,
      cache_creation_1h_input_tokens: 0,
      output_tokens: 250 + (i % 13),
      web_search_requests: 0,
      cost_usd: '0.004512000000',
      priced_by: 'table',
    });
  }
  return rows;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

async function keywardenUpsert(db: Db, rows: Insertable<UsageBucketsTable>[]) {
  await db.transaction().execute((tx) => upsertUsageBuckets(tx, rows));
}

const COLS = [
  'starting_at',
  'api_key_id',
  'workspace_id',
  'model',
  'uncached_input_tokens',
  'cache_read_input_tokens',
  'cache_creation_5m_input_tokens',
  'output_tokens',
  'cost_usd',
] as const;
const TYPES = ['timestamptz', 'text', 'text', 'text', 'bigint', 'bigint', 'bigint', 'bigint', 'numeric'];

async function ceilingUpsert(db: Db, rows: Insertable<UsageBucketsTable>[]) {
  const arrays = COLS.map((c) => rows.map((r) => r[c as keyof typeof r]));
  const unnest = sql.join(
    arrays.map((a, i) => sql`${sql.val(a)}::${sql.raw(TYPES[i]!)}[]`),
    sql`, `,
  );
  await db.transaction().execute(async (tx) => {
    await sql`CREATE TEMP TABLE staging (LIKE usage_buckets INCLUDING DEFAULTS) ON COMMIT DROP`.execute(tx);
    await sql`INSERT INTO staging (bucket_width, service_tier, context_window, ${sql.join(COLS.map((c) => sql.ref(c)))})
      SELECT '1m', 'standard', '0-200k', * FROM unnest(${unnest})`.execute(tx);
    await sql`INSERT INTO usage_buckets SELECT * FROM staging
      ON CONFLICT (bucket_width, starting_at, api_key_id, workspace_id, model, service_tier, context_window)
      DO UPDATE SET uncached_input_tokens = excluded.uncached_input_tokens,
        cache_read_input_tokens = excluded.cache_read_input_tokens,
        cache_creation_5m_input_tokens = excluded.cache_creation_5m_input_tokens,
        output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, updated_at = now()`.execute(tx);
  });
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

export async function run(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 100_000);
  const server = process.env.DATABASE_URL
    ? { url: process.env.DATABASE_URL, stop: async () => {} }
    : await startLocalPostgres();
  const name = `kw_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), { max: 4 });
  try {
    await migrateToLatest(db);
    const rows = syntheticRows(n, new Date('2026-11-16T10:00:00Z'));
    const insert = await timed(() => keywardenUpsert(db, rows));
    // measured after the inserts only: the update pass leaves dead tuples until vacuum
    const size = await sql<{ bytes: string }>`SELECT pg_total_relation_size('usage_buckets')::text AS bytes`.execute(
      db,
    );
    const bytesPerRow = Number(size.rows[0]!.bytes) / n;
    const update = await timed(() => keywardenUpsert(db, rows));
    await sql`TRUNCATE usage_buckets`.execute(db);
    const ceilInsert = await timed(() => ceilingUpsert(db, rows));
    const ceilUpdate = await timed(() => ceilingUpsert(db, rows));
    const rate = (s: number) => Math.round(n / s);
    console.log(`upsert of ${n} rows (rows/s)        insert   conflict-update`);
    console.log(
      `  keywarden (upsertUsageBuckets)  ${rate(insert).toString().padStart(8)} ${rate(update).toString().padStart(8)}`,
    );
    console.log(
      `  ceiling (bulk load + set upsert) ${rate(ceilInsert).toString().padStart(7)} ${rate(ceilUpdate).toString().padStart(8)}`,
    );
    console.log(
      `  keywarden / ceiling             ${((100 * ceilInsert) / insert).toFixed(0).padStart(7)}% ${((100 * ceilUpdate) / update).toFixed(0).padStart(7)}%`,
    );
    console.log(`usage_buckets size with indexes: ${bytesPerRow.toFixed(0)} bytes/row`);
    await sql`TRUNCATE usage_buckets, watermarks`.execute(db);

    const now = new Date('2026-11-16T15:00:00Z');
    const clock = fixedClock(now);
    const scenario = loadScenario('large');
    const emulator = await startEmulator({
      scenario,
      clock,
      startAt: now,
      freshnessDelayMinutes: 0,
    });
    try {
      const client = new AdminClient({ baseUrl: emulator.url, adminKey: new Secret(scenario.admin_keys[0]!) });
      const cycles: number[] = [];
      let rowsPerCycle = 0;
      for (let i = 0; i < 20; i++) {
        // a watermark one minute back: each cycle reads the 15-minute overlap, as every steady-state poll does
        await db
          .insertInto('watermarks')
          .values({ name: USAGE_WATERMARK, position: new Date(clock.now().getTime() - MINUTE) })
          .onConflict((oc) => oc.column('name').doUpdateSet({ position: (eb) => eb.ref('excluded.position') }))
          .execute();
        cycles.push(
          await timed(async () => {
            const r = await pollUsage(db, client, clock.now(), {
              overlapMinutes: 14,
              freshnessMinutes: 0,
              firstPollHours: 1,
              table: PRICE_TABLE,
            });
            rowsPerCycle = r.rows;
          }),
        );
        clock.advance(MINUTE);
      }
      console.log(
        `large poll cycle (5,000 keys, 15 buckets, ${rowsPerCycle} rows): p50 ${pct(cycles, 0.5).toFixed(2)} s, p95 ${pct(cycles, 0.95).toFixed(2)} s`,
      );
    } finally {
      await emulator.close();
    }
    console.log(`peak RSS (bench process, emulator included): ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
  } finally {
    await db.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    await server.stop();
  }
}
