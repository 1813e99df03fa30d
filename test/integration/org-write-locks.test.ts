import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_STATUS_LOCK } from '../../src/db/advisory-lock.ts';
import { createDb, type Db, migrateToLatest } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { WATERMARKS } from '../../src/db/repos/watermarks.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

/**
 * A usage poll and a billed-cost read write their pages inside one transaction that holds a lock while the pages
 * are read from the Admin API. Those locks serialise one organization's writers; one organization's read hung on its
 * API must not hold another organization's (each in its own schema) (#18). The key-status lock is per organization
 * too (test/integration/org-schemas.test.ts); here, that the one organization of a plain file keeps its old name.
 */

let t: TestDatabase;
const pools: Db[] = [];
const repos = (schema: string) => {
  const db = createDb(t.runtimeUrl, { max: 3, schema });
  pools.push(db);
  // as the app builds them: the schema names the organization's locks
  return createRepos(db, schema);
};

beforeAll(async () => {
  t = await createTestDatabase();
  for (const schema of ['kw_hung', 'kw_fine', 'public']) {
    const db = createDb(t.url, { max: 1, schema });
    await migrateToLatest(db, schema === 'public' ? undefined : schema);
    await db.destroy();
  }
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  await t?.drop();
});

/** No pages, once `gate` resolves: the read's end, after as long as the Admin API takes. */
function pagesAfter<T>(gate: Promise<void>): AsyncIterable<readonly T[]> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        await gate;
        return { done: true, value: undefined };
      },
    }),
  };
}

/** Pages that never come until `release` is called: a read hung on the Admin API. */
function hungPages<T>() {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  return { pages: pagesAfter<T>(gate), release };
}

const noPages = <T>() => pagesAfter<T>(Promise.resolve());

/** 'done' when `p` settles within `ms`, else 'waiting'. */
const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), ms))]);

const range = { start: new Date('2026-12-01T00:00:00Z'), end: new Date('2026-12-01T01:00:00Z') };
const seenAt = new Date('2026-12-01T01:05:00Z');

describe('write locks are per organization', () => {
  it("a usage poll hung mid-read holds its own organization's next poll, not another organization's", async () => {
    const hung = hungPages<never>();
    const holding = repos('kw_hung').usage.replaceRange(
      { ...range, width: '1m' },
      hung.pages,
      WATERMARKS.usage,
      seenAt,
    );
    // the hung poll has its lock before the others ask
    await new Promise((r) => setTimeout(r, 300));
    const other = repos('kw_fine').usage.replaceRange({ ...range, width: '1m' }, noPages(), WATERMARKS.usage, seenAt);
    const same = repos('kw_hung').usage.replaceRange({ ...range, width: '1m' }, noPages(), WATERMARKS.usage, seenAt);
    expect(await within(other, 5_000)).toBe('done');
    expect(await within(same, 500)).toBe('waiting');
    hung.release();
    await holding;
    expect(await within(same, 5_000)).toBe('done');
  });

  it("a billed-cost read hung mid-read holds its own organization's writes, not another organization's", async () => {
    const hung = hungPages<never>();
    const holding = repos('kw_hung').billing.replaceBilled({ ...range, width: '1h' }, hung.pages, null);
    await new Promise((r) => setTimeout(r, 300));
    const other = repos('kw_fine').billing.replaceBilled({ ...range, width: '1h' }, noPages(), null);
    const same = repos('kw_hung').billing.replaceBilled({ ...range, width: '1h' }, noPages(), null);
    expect(await within(other, 5_000)).toBe('done');
    expect(await within(same, 500)).toBe('waiting');
    hung.release();
    await holding;
    expect(await within(same, 5_000)).toBe('done');
  });

  it("a raise of alerts holds its own organization's next raise, not another organization's", async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // a raise of thousands yields between its steps with the lock held: another organization's must not wait
    const holding = repos('kw_hung').alerts.raising(() => gate);
    await new Promise((r) => setTimeout(r, 300));
    const other = repos('kw_fine').alerts.raising(async () => {});
    const same = repos('kw_hung').alerts.raising(async () => {});
    expect(await within(other, 5_000)).toBe('done');
    expect(await within(same, 500)).toBe('waiting');
    release();
    await holding;
    expect(await within(same, 5_000)).toBe('done');
  });

  it("the one organization of a file without organizations: keeps its usage write lock's name (an older replica's poll beside)", async () => {
    const older = new pg.Client({ connectionString: t.url });
    await older.connect();
    try {
      await older.query('BEGIN');
      await older.query(`SELECT pg_advisory_xact_lock(hashtext('keywarden.usage:${WATERMARKS.usage}'))`);
      const poll = repos('public').usage.replaceRange({ ...range, width: '1m' }, noPages(), WATERMARKS.usage, seenAt);
      expect(await within(poll, 500)).toBe('waiting');
      await older.query('COMMIT');
      expect(await within(poll, 5_000)).toBe('done');
    } finally {
      await older.end();
    }
  });

  it('the one organization of a file without organizations: keeps the lock name it had (an older replica beside)', async () => {
    const older = new pg.Client({ connectionString: t.url });
    await older.connect();
    try {
      const got = await older.query(`SELECT pg_try_advisory_lock(hashtext('${KEY_STATUS_LOCK}')) AS ok`);
      expect(got.rows[0].ok).toBe(true);
      expect(await repos('public').keys.withStatusLock(async () => 'changed')).toBeNull();
    } finally {
      await older.end();
    }
  });
});
