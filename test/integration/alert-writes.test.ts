import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { policySchema } from '../../src/config/policy.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { overdueObservation } from '../support/alerts.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const T0 = new Date('2026-11-29T10:00:00Z');
const routes = policySchema.parse({ routes: [{ match: { kind: 'rotation.*' }, slack: ['#security'] }] }).routes;

/** Counts the statements a raise sends to Postgres, by kind (`UpdateQueryNode`, `InsertQueryNode`, …). */
function statementCounter() {
  const counts = new Map<string, number>();
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => {
      counts.set(node.kind, (counts.get(node.kind) ?? 0) + 1);
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  return { plugin, counts };
}

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

describe('raising alerts: what is written', () => {
  it('a finding whose firing alert is unchanged is not written again: one statement moves every last_seen_at', async () => {
    const observations = Array.from({ length: 300 }, (_, i) => overdueObservation(`k${i}`, `key ${i}`, null));
    const input = { kinds: ['rotation.overdue' as const], observations };
    await raiseAlerts({ repos: createRepos(tdb.db) }, input, routes, T0);
    const before = await tdb.db.selectFrom('alerts').selectAll().orderBy('fingerprint').execute();

    const later = new Date(T0.getTime() + 10 * 60_000);
    const { plugin, counts } = statementCounter();
    const r = await raiseAlerts({ repos: createRepos(tdb.db.withPlugin(plugin)) }, input, routes, later);
    expect(r).toEqual({ fired: 0, repeated: 0, resolved: 0, notifications: 0 });
    expect(counts.get('InsertQueryNode') ?? 0).toBe(0);
    expect(counts.get('UpdateQueryNode')).toBe(1);

    const after = await tdb.db.selectFrom('alerts').selectAll().orderBy('fingerprint').execute();
    expect(after.map((a) => a.last_seen_at)).toEqual(after.map(() => later));
    const rest = (rows: typeof before) => rows.map(({ last_seen_at: _, ...row }) => row);
    expect(rest(after)).toEqual(rest(before));
  });

  it('a raise reads what the store holds across pages', async () => {
    const fingerprints = (await tdb.db.selectFrom('alerts').select('fingerprint').execute()).map((r) => r.fingerprint);
    const repos = createRepos(tdb.db);
    expect(fingerprints.length).toBeGreaterThan(7);
    const byKind = await repos.alerts.forRaise(['rotation.overdue'], [], 7);
    const byFingerprint = await repos.alerts.forRaise([], fingerprints, 7);
    expect(byKind.map((a) => a.fingerprint).sort()).toEqual([...fingerprints].sort());
    expect(byFingerprint.map((a) => a.fingerprint).sort()).toEqual([...fingerprints].sort());
    expect(await repos.alerts.forRaise(['usage.runaway'], fingerprints.slice(0, 3), 2)).toHaveLength(3);
  });
});
