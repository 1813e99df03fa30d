import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createDb, type Db } from '../../src/db/index.ts';
import { TEMPLATE_DB, withDatabase } from './db-url.ts';

export interface TestDatabase {
  /** As the owner of the tables (the role that migrated them). */
  db: Db;
  url: string;
  /** The same database as the worker's role: a member of keywarden_runtime (INSERT and SELECT on audit_log). */
  runtimeUrl: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh database cloned from the migrated template: one per test file, so files run in parallel safely. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('databaseUrl');
  const name = `kw_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`);
  } finally {
    await client.end();
  }
  const url = withDatabase(serverUrl, name);
  const db = createDb(url, { max: 5 });
  return {
    db,
    url,
    runtimeUrl: withDatabase(inject('runtimeDatabaseUrl'), name),
    name,
    drop: async () => {
      await db.destroy();
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A BullMQ prefix of its own for each test, so queues of parallel tests never meet in the shared Redis. */
export function uniquePrefix(): string {
  return `kwtest-${randomBytes(5).toString('hex')}`;
}

export function redisUrl(): string {
  return inject('redisUrl');
}
