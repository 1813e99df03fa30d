import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionSchema, DEFAULT_ORGANIZATION_ID } from '../../src/config/index.ts';
import { KEY_STATUS_LOCK, withAdvisoryLock } from '../../src/db/advisory-lock.ts';
import { createDb, type Db, migrateToLatest, schemaProblem } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

/**
 * One Postgres schema per organization: `keywarden migrate` creates kw_<id> and applies the migrations in it, and
 * an organization's repositories, on a pool whose search_path is its schema alone, see its rows and nobody else's.
 */

let t: TestDatabase;
const pools: Db[] = [];
const open = (url: string, schema: string | undefined) => {
  const db = createDb(url, { max: 2, schema });
  pools.push(db);
  return db;
};
/** An organization's repositories as the app builds them: on its connections' schema, knowing which it is. */
const reposOf = (url: string, schema: string) => createRepos(open(url, schema), schema);

beforeAll(async () => {
  t = await createTestDatabase();
  for (const schema of ['kw_emea', 'kw_apac']) await migrateToLatest(open(t.url, schema), schema);
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  await t?.drop();
});

describe('a schema per organization', () => {
  it('migrate creates each schema with its own migration table, and a second run applies nothing', async () => {
    const { rows } = await sql<{ schema: string; n: number }>`
      SELECT table_schema AS schema, count(*)::int AS n FROM information_schema.tables
      WHERE table_name = 'kysely_migration' GROUP BY table_schema ORDER BY table_schema`.execute(t.db);
    expect(rows.map((r) => r.schema)).toEqual(['kw_apac', 'kw_emea', 'public']);
    const again = await migrateToLatest(open(t.url, 'kw_emea'), 'kw_emea');
    expect(again.results).toEqual([]);
    expect(await schemaProblem(open(t.runtimeUrl, 'kw_apac'))).toBeNull();
  });

  it("one organization's repositories cannot see another's rows, nor public's", async () => {
    // as the worker connects: a member of keywarden_runtime, which migration 007 granted each schema to
    const emea = createRepos(open(t.runtimeUrl, 'kw_emea'));
    const apac = createRepos(open(t.runtimeUrl, 'kw_apac'));
    const single = createRepos(open(t.runtimeUrl, 'public'));
    await emea.jobRuns.recordFailure('poll-usage', 'emea failed', new Date('2026-12-01T00:00:00Z'));
    await single.jobRuns.recordSuccess('sync-inventory', new Date('2026-12-01T00:00:00Z'));
    expect((await emea.jobRuns.all()).map((r) => [r.job, r.lastError])).toEqual([['poll-usage', 'emea failed']]);
    expect(await apac.jobRuns.all()).toEqual([]);
    expect((await single.jobRuns.all()).map((r) => r.job)).toEqual(['sync-inventory']);
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM kw_emea.job_runs`.execute(t.db);
    expect(rows[0]!.n).toBe(1);
  });

  it('metrics read from Postgres carry each organization’s id, each from its own schema', async () => {
    const metrics = createMetrics([
      { id: 'emea', repos: createRepos(open(t.runtimeUrl, 'kw_emea')) },
      { id: 'apac', repos: createRepos(open(t.runtimeUrl, 'kw_apac')) },
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('keywarden_job_consecutive_failures{job="poll-usage",organization="emea"} 1');
    expect(text).not.toMatch(/keywarden_job_consecutive_failures\{[^}]*organization="apac"/);
    expect(text).toContain('keywarden_notifications_pending{organization="apac"} 0');
    metrics.jobRuns.inc({ job: 'poll-usage', organization: 'apac', outcome: 'completed' });
    expect(await metrics.registry.metrics()).toContain(
      'keywarden_job_runs_total{job="poll-usage",organization="apac",outcome="completed"} 1',
    );
  });

  it("one organization's key-status lock never holds another's, and still holds its own", async () => {
    // enforce-rotation and the kill switch of every organization start on the same tick: one lock for all would
    // skip every organization's run but the first's, tick after tick
    const emea = reposOf(t.runtimeUrl, 'kw_emea');
    const emeaElsewhere = reposOf(t.runtimeUrl, 'kw_emea');
    const apac = reposOf(t.runtimeUrl, 'kw_apac');
    const single = reposOf(t.runtimeUrl, 'public');
    const inside = await emea.keys.withStatusLock(async () => ({
      emea: await emeaElsewhere.keys.withStatusLock(async () => 'ran'),
      apac: await apac.keys.withStatusLock(async () => 'ran'),
      single: await single.keys.withStatusLock(async () => 'ran'),
    }));
    expect(inside?.value).toEqual({ emea: null, apac: { value: 'ran' }, single: { value: 'ran' } });
  });

  it("the one organization of a file with organization: takes the lock of the versions before, whatever its connections' search_path", async () => {
    // as the app opens it: no schema of its own, the role's search_path as the deployment set it; a role's
    // "$user", public may land elsewhere than public, and the lock name must not follow it
    const org = { id: DEFAULT_ORGANIZATION_ID, schema: 'public' };
    const url = new URL(t.runtimeUrl);
    url.searchParams.set('options', '-c search_path=kw_emea');
    const single = createRepos(open(url.toString(), connectionSchema(org)), connectionSchema(org));
    const heldByAnOlderVersion = await withAdvisoryLock(t.db, KEY_STATUS_LOCK, async () => ({
      single: await single.keys.withStatusLock(async () => 'ran'),
      emea: await reposOf(t.runtimeUrl, 'kw_emea').keys.withStatusLock(async () => 'ran'),
    }));
    expect(heldByAnOlderVersion?.value).toEqual({ single: null, emea: { value: 'ran' } });
  });

  it('a schema that is not migrated fails, rather than reading public behind it', async () => {
    const stray = createRepos(open(t.runtimeUrl, 'kw_nowhere'));
    await expect(stray.jobRuns.all()).rejects.toThrow(/relation "job_runs" does not exist/);
  });

  it('refuses a schema name that is no organization schema', () => {
    expect(() => createDb(t.url, { schema: 'kw_a; DROP TABLE x' })).toThrow(/not an organization's schema/);
  });
});
