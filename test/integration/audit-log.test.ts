import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
