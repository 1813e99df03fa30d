import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAuditedAction } from '../../src/audit.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

describe('audit log', () => {
  it('accepts new rows and refuses UPDATE, DELETE and TRUNCATE', async () => {
    await t.db
      .insertInto('audit_log')
      .values({
        actor: 'keywarden',
        action: 'api_key.deactivate',
        step: 'intent',
        subject_type: 'api_key',
        subject_id: 'apikey_01',
        operation_id: 'op-1',
        details: JSON.stringify({ reason: 'overdue' }),
      })
      .execute();

    await expect(t.db.updateTable('audit_log').set({ action: 'rewritten' }).execute()).rejects.toThrow(
      /append-only: UPDATE refused/,
    );
    await expect(t.db.deleteFrom('audit_log').execute()).rejects.toThrow(/append-only: DELETE refused/);
    await expect(sql`TRUNCATE audit_log`.execute(t.db)).rejects.toThrow(/append-only: TRUNCATE refused/);

    const rows = await t.db.selectFrom('audit_log').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'api_key.deactivate', step: 'intent', details: { reason: 'overdue' } });
  });
});

describe('withAuditedAction', () => {
  const subject = (id: string) => ({
    actor: 'test',
    action: 'api_key.deactivate',
    subjectType: 'api_key',
    subjectId: id,
  });
  const rowsOf = (id: string) =>
    t.db.selectFrom('audit_log').selectAll().where('subject_id', '=', id).orderBy('id').execute();

  it('records the intent before the call and the outcome after it, under one operation id', async () => {
    const repos = createRepos(t.db);
    let stepsAtCall: string[] = [];
    const outcome = await withAuditedAction(repos, {
      subject: subject('apikey_01Done'),
      intent: { to: 'inactive' },
      act: async () => {
        stepsAtCall = (await rowsOf('apikey_01Done')).map((r) => r.step);
        return { step: 'done', details: { status: 'inactive' } };
      },
    });
    expect(outcome).toEqual({ step: 'done', details: { status: 'inactive' } });
    expect(stepsAtCall).toEqual(['intent']);
    const rows = await rowsOf('apikey_01Done');
    expect(rows.map((r) => [r.step, r.details])).toEqual([
      ['intent', { to: 'inactive' }],
      ['done', { status: 'inactive' }],
    ]);
    expect(rows[1]!.operation_id).toBe(rows[0]!.operation_id);
    // a retry that records the same outcome again adds nothing
    await repos.audit.recordOutcome(rows[0]!, 'done', { status: 'inactive' });
    expect(await rowsOf('apikey_01Done')).toHaveLength(2);
  });

  it('leaves the intent open for settling when nobody can tell how the call ended, or when it throws', async () => {
    const repos = createRepos(t.db);
    expect(
      await withAuditedAction(repos, { subject: subject('apikey_01Lost'), intent: {}, act: async () => null }),
    ).toBeNull();
    await expect(
      withAuditedAction(repos, {
        subject: subject('apikey_01Threw'),
        intent: {},
        act: async () => {
          throw new Error('connection reset');
        },
      }),
    ).rejects.toThrow('connection reset');
    const open = await repos.audit.unsettledIntents(['api_key.deactivate']);
    expect(open.map((r) => r.subject_id).filter((id) => id !== 'apikey_01')).toEqual([
      'apikey_01Lost',
      'apikey_01Threw',
    ]);
  });
});
