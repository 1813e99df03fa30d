/**
 * Usage ingestion speed, memory and size. `npm run bench -- ingest [rows]` (DATABASE_URL and REDIS_URL, else a
 * local Postgres, with fsync off, and Redis are started).
 *
 * 1. The poll cycle of the `large` scenario (5,000 keys, 100 workspaces; 15 one-minute buckets grouped by key,
 *    workspace, model, tier and context window) run by the REAL worker (`keywarden worker`, a child process), against
 *    the emulator in another child process (`keywarden emulator`): p50/p95 of 20 poll-usage runs (BullMQ's
 *    processing time of each), and the worker's peak RSS (VmHWM), its own memory only (targets: p95 < 5 s,
 *    RSS < 300 MB). Run with the V8 flags of the Dockerfile's `ENV NODE_OPTIONS` (what a deployment runs), then
 *    with node's defaults for comparison. detect-anomalies follows each poll in the same worker, as deployed.
 * 2. keywarden's upsert (the usage repository's `upsertBuckets`) of `rows` rows (default 100k), as inserts and again as the same rows
 *    (every row a conflict: the overlap re-read), beside the ceiling of the same Postgres in the same run: COPY FROM
 *    STDIN into a staging table, then one set-based upsert.
 * 3. How large a year of the `large` organization gets, measured: a weekday's hourly rows (the 1h report of the
 *    whole day), 1m rows a minute (sampled at four hours of that day), one hour of 1m rows stored and rolled up by
 *    the retention job (checking that the rollup makes exactly the report's hourly rows), bytes a row with indexes,
 *    and the total for 48 hours of 1m rows plus 13 months of hourly rows.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Job, Queue, QueueEvents } from 'bullmq';
import { sql } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { jobs } from '../jobs/index.ts';
import { AdminClient } from '../src/anthropic/client.ts';
import type { UsageGroupBy } from '../src/anthropic/types.ts';
import { fixedClock } from '../src/clock.ts';
import { Secret } from '../src/config/secret.ts';
import { type Db, migrateToLatest } from '../src/db/index.ts';
import { createRepos } from '../src/db/repos/index.ts';
import { USAGE_COLUMNS, USAGE_UPSERT_CONFLICT, usageRepo } from '../src/db/repos/usage.ts';
import { WATERMARKS } from '../src/db/repos/watermarks.ts';
import { freePort } from '../src/dev/services.ts';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../src/time.ts';
import { PRICE_TABLE } from '../src/usage/core/prices.ts';
import { toUsageBucketRow, type UsageRow } from '../src/usage/core/rows.ts';
import { POLL_OVERLAP_MINUTES } from '../src/usage/ingest.ts';
import { applyUsageRetention } from '../src/usage/retention.ts';
import { deployedNodeOptions, rssOf, startCli } from './_cli.ts';
import { presetPolled, startBenchServices } from './_services.ts';
import { quantile } from './_stats.ts';

const ADMIN_KEY = 'sk-ant-admin01-keywarden-bench-not-a-secret-0001';
const GROUPS: UsageGroupBy[] = ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window'];

const MODELS = ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-5', 'claude-sonnet-4-6', 'claude-opus-4-6'];

function syntheticRows(n: number, at: Date): UsageRow[] {
  const rows: UsageRow[] = [];
  for (let i = 0; i < n; i++) {
    rows.push({
      bucket_width: '1m',
      starting_at: new Date(at.getTime() + (i % POLL_OVERLAP_MINUTES) * MINUTE_MS),
      api_key_id: `apikey_${Math.floor(i / 75)
        .toString()
        .padStart(6, '0')}`,
      workspace_id: `wrkspc_${Math.floor(i / 7500)}`,
      model: MODELS[Math.floor(i / POLL_OVERLAP_MINUTES) % 5]!,
      service_tier: 'standard',
      context_window: '0-200k',
      uncached_input_tokens: 1000 + (i % 97),
      cache_read_input_tokens: 300,
      cache_creation_5m_input_tokens: 20,
      cache_creation_1h_input_tokens: 0,
      output_tokens: 250 + (i % 13),
      web_search_requests: 0,
      cost_usd: '0.004512000000',
      cost_uncached_input_usd: '0.003000000000',
      cost_cache_read_usd: '0.000090000000',
      cost_cache_creation_5m_usd: '0.000075000000',
      cost_cache_creation_1h_usd: '0',
      cost_output_usd: '0.001347000000',
      cost_web_search_usd: '0',
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

const pct = (xs: number[], p: number) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    p,
  );

// ── 1. the poll cycle, in the worker ──────────────────────────────────────────────────────────────────────────

async function workerPollCycles(
  db: Db,
  env: { databaseUrl: string; redisUrl: string; emulatorUrl: string; nodeOptions?: string },
) {
  const dir = mkdtempSync(join(tmpdir(), 'kw-bench-'));
  // every job left to the bench: nothing scheduled runs beside the polls it times
  const policy = { schedules: Object.fromEntries(jobs.filter((j) => j.schedule).map((j) => [j.name, '0 0 1 1 *'])) };
  writeFileSync(join(dir, 'keywarden.yaml'), JSON.stringify(policy));
  const prefix = `kwbench-${randomBytes(4).toString('hex')}`;
  // a history already polled: each run reads the 15-minute overlap, as every steady-state poll does
  await sql`TRUNCATE usage_buckets, watermarks`.execute(db);
  await presetPolled(db);
  const worker = await startCli(
    ['worker', '--prefix', prefix],
    {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      ANTHROPIC_ADMIN_KEY: ADMIN_KEY,
      ANTHROPIC_BASE_URL: env.emulatorUrl,
      KEYWARDEN_CONFIG: join(dir, 'keywarden.yaml'),
      KEYWARDEN_HTTP_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
      ...(env.nodeOptions ? { NODE_OPTIONS: env.nodeOptions } : {}),
    },
    /worker started/,
  );
  const idle = rssOf(worker.pid, 'VmRSS');
  const connection = { url: env.redisUrl };
  const queue = new Queue('poll', { connection, prefix });
  const events = new QueueEvents('poll', { connection, prefix });
  await events.waitUntilReady();
  const cycles: number[] = [];
  let rows = 0;
  try {
    for (let i = 0; i < 20; i++) {
      await db
        .updateTable('watermarks')
        .set({ position: new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS) })
        .where('name', '=', WATERMARKS.usage)
        .execute();
      const job = await queue.add('poll-usage', {});
      const result = (await job.waitUntilFinished(events, 120_000)) as { rows: number };
      const done = await Job.fromId(queue, job.id!);
      cycles.push((done!.finishedOn! - done!.processedOn!) / 1000);
      rows = result.rows;
    }
    return { cycles, rows, idle, peak: rssOf(worker.pid, 'VmHWM') };
  } finally {
    await events.close();
    await queue.close();
    await worker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ── 2. keywarden's upsert against COPY + one set-based upsert ─────────────────────────────────────────────────

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value in COPY's text format. */
function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  const s = v instanceof Date ? v.toISOString() : String(v);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : s;
}

async function keywardenUpsert(db: Db, rows: UsageRow[]) {
  await db.transaction().execute((tx) => usageRepo(tx).upsertBuckets(rows));
}

/** The ceiling: COPY into a staging table, one INSERT … SELECT … ON CONFLICT, one transaction. */
async function copyUpsert(url: string, rows: UsageRow[]) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE staging (LIKE usage_buckets INCLUDING DEFAULTS) ON COMMIT DROP');
    const copy = client.query(copyFrom(`COPY staging (${USAGE_COLUMNS.join(', ')}) FROM STDIN`));
    async function* lines() {
      let chunk = '';
      for (const r of rows) {
        chunk += `${USAGE_COLUMNS.map((c) => copyField(r[c])).join('\t')}\n`;
        if (chunk.length > 64 * 1024) {
          yield chunk;
          chunk = '';
        }
      }
      if (chunk) yield chunk;
    }
    await pipeline(lines(), copy);
    await client.query(`
      INSERT INTO usage_buckets (${USAGE_COLUMNS.join(', ')}) SELECT ${USAGE_COLUMNS.join(', ')} FROM staging
      ${USAGE_UPSERT_CONFLICT}`);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

// ── 3. the size of a year ─────────────────────────────────────────────────────────────────────────────────────

async function reportRows(client: AdminClient, width: '1m' | '1h', from: Date, to: Date, pageBuckets: number) {
  const rows: UsageRow[] = [];
  const report = client.usageReport({
    startingAt: from,
    endingAt: to,
    bucketWidth: width,
    groupBy: GROUPS,
    limit: pageBuckets,
  });
  for await (const bucket of report) {
    for (const result of bucket.results) {
      rows.push(toUsageBucketRow(width, { startingAt: bucket.starting_at, result }, PRICE_TABLE));
    }
  }
  return rows;
}

async function tableBytes(db: Db): Promise<number> {
  const r = await sql<{ bytes: string }>`SELECT pg_total_relation_size('usage_buckets')::text AS bytes`.execute(db);
  return Number(r.rows[0]!.bytes);
}

/** The most recent whole UTC weekday before today: the busier days, so the estimate errs high. */
function lastWeekday(now: number): Date {
  let d = Math.floor(now / DAY_MS) * DAY_MS - DAY_MS;
  while ([0, 6].includes(new Date(d).getUTCDay())) d -= DAY_MS;
  return new Date(d);
}

async function yearlySize(db: Db, emulatorUrl: string) {
  const client = new AdminClient({ baseUrl: emulatorUrl, adminKey: new Secret(ADMIN_KEY) });
  const day = lastWeekday(Date.now());
  await sql`TRUNCATE usage_buckets, watermarks`.execute(db);

  // hourly rows of the whole day, from the 1h report (what the backfill stores)
  const hourly = await reportRows(client, '1h', day, new Date(day.getTime() + DAY_MS), 24);
  await usageRepo(db).upsertBuckets(hourly);
  await sql`VACUUM ANALYZE usage_buckets`.execute(db);
  const hourlyBytes = (await tableBytes(db)) / hourly.length;
  const perHour = new Map<number, number>();
  for (const r of hourly) {
    const h = (r.starting_at as Date).getTime();
    perHour.set(h, (perHour.get(h) ?? 0) + 1);
  }
  const busiest = [...perHour].sort((a, b) => b[1] - a[1])[0]!;

  // 1m rows a minute: 15 minutes at four hours of the day
  let sampled = 0;
  for (const h of [2, 8, 14, 20]) {
    const from = new Date(day.getTime() + h * HOUR_MS);
    sampled += (await reportRows(client, '1m', from, new Date(from.getTime() + 15 * MINUTE_MS), 15)).length;
  }
  const minuteRowsPerMinute = sampled / 60;

  // the busiest hour in 1m rows, stored, then rolled up by the retention job: the same hourly rows as the report?
  await sql`TRUNCATE usage_buckets`.execute(db);
  const hourStart = new Date(busiest[0]);
  const minuteRows = await reportRows(client, '1m', hourStart, new Date(hourStart.getTime() + HOUR_MS), 60);
  await usageRepo(db).upsertBuckets(minuteRows);
  await sql`VACUUM ANALYZE usage_buckets`.execute(db);
  const minuteBytes = (await tableBytes(db)) / minuteRows.length;
  const rolled = await applyUsageRetention({
    repos: createRepos(db),
    clock: fixedClock(new Date(hourStart.getTime() + 49 * HOUR_MS)),
  });

  const hourlyPerDay = hourly.length;
  const minuteRowsKept = minuteRowsPerMinute * 2 * 1440;
  const hourlyRowsKept = hourlyPerDay * 395; // 13 months
  return {
    day,
    hourlyPerDay,
    busiest,
    rolled: rolled.hourlyRowsWritten,
    minuteRowsPerMinute,
    minuteRowsInBusiestHour: minuteRows.length,
    hourlyBytes,
    minuteBytes,
    minuteRowsKept,
    hourlyRowsKept,
    totalBytes: minuteRowsKept * minuteBytes + hourlyRowsKept * hourlyBytes,
  };
}

// ── the run ──────────────────────────────────────────────────────────────────────────────────────────────────

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
const gb = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GB`;
const millions = (n: number) => `${(n / 1e6).toFixed(1)} M`;

export async function run(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 100_000);
  if (!Number.isInteger(n) || n < 1) throw new Error(`rows: "${args[0]}" is not a positive integer`);
  const services = await startBenchServices('kw_bench', 4);
  const { db } = services;
  // on the wall clock: the bench only reads the past
  const emulator = await startCli(
    ['emulator', '--scenario', 'large', '--port', '0', '--delay', '0', '--admin-key', ADMIN_KEY],
    { LOG_LEVEL: 'warn' },
    /ANTHROPIC_BASE_URL=\S+/,
  );
  const emulatorUrl = /ANTHROPIC_BASE_URL=(\S+)/.exec(emulator.output())![1]!;
  try {
    await migrateToLatest(db);

    // As deployed, and with node's defaults beside it: V8 sizes its heap for the machine and lets garbage pile up
    // far beyond the live set before a full collection, which the image's flags bound.
    for (const nodeOptions of [deployedNodeOptions(), undefined]) {
      const { cycles, rows, idle, peak } = await workerPollCycles(db, {
        databaseUrl: services.databaseUrl,
        redisUrl: services.redisUrl,
        emulatorUrl,
        nodeOptions,
      });
      const rss = (b: number | null) => (b === null ? 'n/a (no /proc)' : mb(b));
      console.log(
        `large poll cycle in the worker ${nodeOptions ? `as deployed (NODE_OPTIONS=${nodeOptions})` : "with node's default heap"}: 5,000 keys, ` +
          `15 one-minute buckets, ${rows} rows: p50 ${pct(cycles, 0.5).toFixed(2)} s, p95 ${pct(cycles, 0.95).toFixed(2)} s ` +
          `over 20 runs`,
      );
      console.log(`  worker RSS: ${rss(idle)} idle after start, ${rss(peak)} peak (the emulator is another process)`);
    }
    await sql`TRUNCATE usage_buckets, watermarks`.execute(db);

    const synthetic = syntheticRows(n, new Date('2026-11-16T10:00:00Z'));
    const insert = await timed(() => keywardenUpsert(db, synthetic));
    const update = await timed(() => keywardenUpsert(db, synthetic));
    await sql`TRUNCATE usage_buckets`.execute(db);
    const copyInsert = await timed(() => copyUpsert(services.databaseUrl, synthetic));
    const copyUpdate = await timed(() => copyUpsert(services.databaseUrl, synthetic));
    const rate = (s: number) => Math.round(n / s).toString();
    console.log(`upsert of ${n} rows, rows/s                        insert  conflict-update`);
    console.log(
      `  keywarden (usage.upsertBuckets, unnest batches) ${rate(insert).padStart(7)}  ${rate(update).padStart(8)}`,
    );
    console.log(
      `  ceiling (COPY to staging + one set upsert)      ${rate(copyInsert).padStart(7)}  ${rate(copyUpdate).padStart(8)}`,
    );
    console.log(
      `  keywarden / ceiling                             ${`${((100 * copyInsert) / insert).toFixed(0)}%`.padStart(7)}  ${`${((100 * copyUpdate) / update).toFixed(0)}%`.padStart(8)}`,
    );

    const y = await yearlySize(db, emulatorUrl);
    console.log(`a year of the large organization (measured on ${y.day.toISOString().slice(0, 10)}, a weekday):`);
    console.log(
      `  hourly rows: ${y.hourlyPerDay} a day (busiest hour ${y.busiest[1]}), ${y.hourlyBytes.toFixed(0)} bytes a row with indexes`,
    );
    console.log(
      `  1m rows: ${y.minuteRowsPerMinute.toFixed(0)} a minute (sampled at 02, 08, 14, 20 UTC), ` +
        `${y.minuteBytes.toFixed(0)} bytes a row with indexes`,
    );
    console.log(
      `  rollup check: the busiest hour's ${y.minuteRowsInBusiestHour} 1m rows rolled up to ${y.rolled} hourly rows ` +
        `(the 1h report has ${y.busiest[1]})`,
    );
    console.log(
      `  kept: 48 h of 1m rows ${millions(y.minuteRowsKept)} (${gb(y.minuteRowsKept * y.minuteBytes)}) + ` +
        `13 months of hourly rows ${millions(y.hourlyRowsKept)} (${gb(y.hourlyRowsKept * y.hourlyBytes)}) = ${gb(y.totalBytes)}`,
    );
  } finally {
    await emulator.stop();
    await services.close();
  }
}
