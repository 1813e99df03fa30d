import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb, migrateToLatest } from '../../src/db/index.ts';
import { ensureRuntimeLogin, provideServices, type Services } from '../../src/dev/services.ts';
import { TEMPLATE_DB, withDatabase } from './db-url.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    /** The same server as the worker's role (a member of keywarden_runtime, not the tables' owner). */
    runtimeDatabaseUrl: string;
    redisUrl: string;
  }
}

let services: Services | undefined;

/**
 * Real Postgres and Redis for the whole run: TEST_DATABASE_URL / TEST_REDIS_URL, else a container runtime, else
 * local binaries in a temp dir. A template database is migrated once (as the server's owner role, as `keywarden
 * migrate` is run); each test file clones it (test/support/db.ts).
 */
export async function setup(project: TestProject): Promise<void> {
  services = await provideServices({
    databaseUrl: process.env.TEST_DATABASE_URL,
    redisUrl: process.env.TEST_REDIS_URL,
  });
  const client = new pg.Client({ connectionString: services.postgres.url });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB}`);
  await client.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  await client.end();
  const template = createDb(withDatabase(services.postgres.url, TEMPLATE_DB), { max: 1 });
  await migrateToLatest(template);
  await template.destroy();
  project.provide('databaseUrl', services.postgres.url);
  project.provide('runtimeDatabaseUrl', await ensureRuntimeLogin(services.postgres.url));
  project.provide('redisUrl', services.redis.url);
}

export async function teardown(): Promise<void> {
  await services?.postgres.stop();
  await services?.redis.stop();
}
