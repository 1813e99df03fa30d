/** What a benchmark runs against: Postgres with a database of its own, and Redis. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, type Db } from '../src/db/index.ts';
import { WATERMARKS } from '../src/db/repos/watermarks.ts';
import { startLocalPostgres, startLocalRedis } from '../src/dev/services.ts';
import { HOUR_MS, MINUTE_MS } from '../src/time.ts';

export interface BenchServices {
  databaseUrl: string;
  redisUrl: string;
  /** A pool on the benchmark's database. */
  db: Db;
  /** Drops the database and stops the servers this started (not those DATABASE_URL or REDIS_URL named). */
  close(): Promise<void>;
}

/**
 * DATABASE_URL and REDIS_URL where set, else a local Postgres (fsync off) and Redis started here; in Postgres, a fresh
 * database named `<prefix>_<random>`, so a run never sees another's rows.
 */
export async function startBenchServices(prefix: string, poolMax: number): Promise<BenchServices> {
  const server = process.env.DATABASE_URL
    ? { url: process.env.DATABASE_URL, stop: async () => {} }
    : await startLocalPostgres();
  const redis = process.env.REDIS_URL ? { url: process.env.REDIS_URL, stop: async () => {} } : await startLocalRedis();
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), { max: poolMax });
  return {
    databaseUrl: url.toString(),
    redisUrl: redis.url,
    db,
    async close() {
      await db.destroy();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
      await redis.stop();
      await server.stop();
    },
  };
}

/**
 * Watermarks as a worker that has run for a while has them (polled up to the last minute, the backfill done): a
 * benchmark of the steady state, not of the first backfill.
 */
export async function presetPolled(db: Db): Promise<void> {
  const lastMinute = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS);
  await db
    .insertInto('watermarks')
    .values([
      { name: WATERMARKS.usageBackfill, position: new Date(lastMinute.getTime() - 48 * HOUR_MS) },
      { name: WATERMARKS.usage, position: lastMinute },
    ])
    .execute();
}
