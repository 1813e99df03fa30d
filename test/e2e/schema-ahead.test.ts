import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/services.ts';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { type Spawned, spawnNode } from '../support/processes.ts';

/**
 * A database migrated by a newer image, then the image rolled back: the older code must not run on a schema it
 * does not know (a column it does not write may be NOT NULL, a table it ignores may be the one that matters).
 */

let t: TestDatabase;
const running: Spawned[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  // what `keywarden migrate` of a newer release records (as the owner: the worker's role may not write it)
  await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('999_future', ${new Date().toISOString()})`.execute(
    t.db,
  );
});
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  await t.drop();
});

async function cli(args: string[]) {
  const p = spawnNode('src/cli/index.ts', args, {
    DATABASE_URL: t.runtimeUrl,
    REDIS_URL: redisUrl(),
    ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-schema-ahead-0000',
    ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    KEYWARDEN_HTTP_PORT: String(await freePort()),
  });
  running.push(p);
  return p;
}

const REFUSAL =
  /the database schema is ahead of this code \(999_future applied by a newer keywarden\): run the release that applied it, or restore the database backup taken before it/;

describe('a schema ahead of the code (a rolled-back image)', () => {
  it('keywarden worker refuses to start, naming the unknown migration', async () => {
    const p = await cli(['worker', '--prefix', uniquePrefix()]);
    await p.waitForOutput(REFUSAL);
    const { code } = await p.exited;
    expect(code).not.toBe(0);
    expect(p.output()).not.toMatch(/worker started/);
  });

  it('keywarden migrate of the older release refuses too, naming the unknown migration', async () => {
    const p = spawnNode('src/cli/index.ts', ['migrate'], { DATABASE_URL: t.url });
    running.push(p);
    const { code } = await p.exited;
    expect(p.output()).toMatch(REFUSAL);
    expect(code).not.toBe(0);
  });

  it('keywarden run --once refuses to run the job, naming the unknown migration', async () => {
    const p = await cli(['run', 'usage-retention', '--once']);
    const { code } = await p.exited;
    expect(p.output()).toMatch(REFUSAL);
    expect(code).not.toBe(0);
  });
});
