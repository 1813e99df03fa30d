import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { canAlterAuditLog, createDb, type Db, migrateToLatest } from '../../src/db/index.ts';
import { auditRepo } from '../../src/db/repos/audit.ts';
import { jobRunsRepo } from '../../src/db/repos/job-runs.ts';
import { setKeyStatus } from '../../src/rotation/set-status.ts';
import { testJobContext } from '../support/context.ts';
import { withDatabase } from '../support/db-url.ts';
import { DEMO_ADMIN_KEY, keyIdByName, useDemoOrg } from '../support/demo-org.ts';

// The worker's role (a member of keywarden_runtime) against a database the owner role migrated, as deployed.
const org = useDemoOrg();
let worker: Db;
beforeAll(() => {
  worker = createDb(org.t.runtimeUrl, { max: 2 });
});
afterAll(async () => {
  await worker.destroy();
});

describe('the worker’s database role', () => {
  it('cannot disable, drop, rename or bypass the audit log’s protection', async () => {
    const { rows } = await sql<{ user: string }>`SELECT current_user AS user`.execute(worker);
    expect(rows[0]!.user).not.toBe('postgres');
    const { operation_id: operationId } = await auditRepo(worker).recordIntent(
      { actor: 'test', action: 'api_key.deactivate', subjectType: 'api_key', subjectId: 'apikey_01Test' },
      { reason: 'overdue' },
    );
    const refusals: [string, () => Promise<unknown>][] = [
      ['DISABLE TRIGGER', () => sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`.execute(worker)],
      ['DISABLE TRIGGER ALL', () => sql`ALTER TABLE audit_log DISABLE TRIGGER ALL`.execute(worker)],
      ['DROP TRIGGER', () => sql`DROP TRIGGER audit_log_append_only ON audit_log`.execute(worker)],
      ['RENAME', () => sql`ALTER TABLE audit_log RENAME TO audit_log_old`.execute(worker)],
      ['DROP TABLE', () => sql`DROP TABLE audit_log`.execute(worker)],
      ['UPDATE', () => worker.updateTable('audit_log').set({ action: 'rewritten' }).execute()],
      ['DELETE', () => worker.deleteFrom('audit_log').execute()],
      ['TRUNCATE', () => sql`TRUNCATE audit_log`.execute(worker)],
      ['a swapped-in table', () => sql`CREATE TABLE audit_log_swap (LIKE audit_log)`.execute(worker)],
      ['DROP FUNCTION', () => sql`DROP FUNCTION audit_log_refuse_change() CASCADE`.execute(worker)],
    ];
    for (const [what, attempt] of refusals) {
      await expect(attempt(), what).rejects.toThrow(/must be owner|permission denied/);
    }
    // still whole, trigger enabled
    const intent = await worker
      .selectFrom('audit_log')
      .selectAll()
      .where('operation_id', '=', operationId)
      .executeTakeFirstOrThrow();
    expect(intent).toMatchObject({ action: 'api_key.deactivate', step: 'intent' });
    const { rows: triggers } = await sql<{ tgenabled: string }>`
      SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_log_append_only'`.execute(org.t.db);
    expect(triggers).toEqual([{ tgenabled: 'O' }]);
    await auditRepo(worker).recordOutcome(intent, 'done', {});
  });

  it('does the worker’s work: inventory, alerts, outbox, key status changes with their audit rows, job outcomes', async () => {
    const { ctx, close } = testJobContext({
      db: worker,
      emulatorUrl: org.emulator.url,
      adminKey: DEMO_ADMIN_KEY,
      clock: org.clock,
    });
    try {
      await syncInventory.handler(ctx, {});
      // the demo's keys come with their principal: who is behind them is said by key.identity alerts (Bob's
      // personal key among them), and key.orphaned keeps to keys no one stands behind (none in the demo)
      const kinds = (await worker.selectFrom('alerts').select('kind').execute()).map((a) => a.kind);
      expect(kinds).toContain('key.identity');
      expect(kinds).not.toContain('key.orphaned');
      expect((await worker.selectFrom('notifications').select('id').execute()).length).toBeGreaterThan(0);
      const id = await keyIdByName(worker, 'Legacy integration');
      const deps = ctx; // its repositories are on the worker's role
      const change = { keyId: id, actor: 'test', reason: 'role test' } as const;
      expect(await setKeyStatus(deps, { ...change, to: 'inactive', action: 'api_key.deactivate' })).toBe('done');
      expect(await setKeyStatus(deps, { ...change, to: 'active', action: 'api_key.reactivate' })).toBe('done');
      const audit = await worker.selectFrom('audit_log').select('step').where('subject_id', '=', id).execute();
      expect(audit.map((a) => a.step)).toEqual(['intent', 'done', 'intent', 'done']);
      await jobRunsRepo(worker).recordSuccess('sync-inventory', org.clock.now());
    } finally {
      await close();
    }
  });
});

describe('canAlterAuditLog (the worker warns at start when it holds the owner role)', () => {
  it('is true for the owner, false for the worker’s role', async () => {
    expect(await canAlterAuditLog(org.t.db)).toBe(true);
    expect(await canAlterAuditLog(worker)).toBe(false);
  });
});

describe('migrations run by an owner role that is not a superuser', () => {
  it('leave the worker’s role the same grants: it writes, and cannot lift the audit log’s protection', async () => {
    const server = inject('databaseUrl');
    const suffix = randomBytes(4).toString('hex');
    const owner = `kw_owner_${suffix}`;
    const database = `kw_owned_${suffix}`;
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${owner} LOGIN PASSWORD 'owner' CREATEROLE`);
      await admin.query(`CREATE DATABASE ${database} OWNER ${owner}`);
      const ownerUrl = new URL(withDatabase(server, database));
      ownerUrl.username = owner;
      ownerUrl.password = 'owner';
      const ownerDb = createDb(ownerUrl.toString(), { max: 1 });
      await migrateToLatest(ownerDb);
      const runtime = createDb(withDatabase(inject('runtimeDatabaseUrl'), database), { max: 1 });
      try {
        expect(await canAlterAuditLog(ownerDb)).toBe(true);
        expect(await canAlterAuditLog(runtime)).toBe(false);
        await auditRepo(runtime).recordIntent(
          { actor: 'test', action: 'api_key.deactivate', subjectType: 'api_key', subjectId: 'apikey_01Test' },
          {},
        );
        await jobRunsRepo(runtime).recordSuccess('sync-inventory', new Date());
        await expect(sql`ALTER TABLE audit_log DISABLE TRIGGER ALL`.execute(runtime)).rejects.toThrow(/must be owner/);
        await expect(sql`DROP TABLE audit_log`.execute(runtime)).rejects.toThrow(/must be owner/);
      } finally {
        await runtime.destroy();
        await ownerDb.destroy();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${owner}`);
      await admin.end();
    }
  });
});
