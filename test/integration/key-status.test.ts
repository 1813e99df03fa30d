import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { setKeyStatus, settleInterruptedStatusChanges } from '../../src/rotation/set-status.ts';
import { testJobContext } from '../support/context.ts';
import { redisUrl } from '../support/db.ts';
import { DEMO_ADMIN_KEY, keyIdByName, useDemoOrg } from '../support/demo-org.ts';
import { runNode } from '../support/processes.ts';

const org = useDemoOrg();
const clock = org.clock;
let env: ReturnType<typeof testJobContext>;

beforeAll(async () => {
  env = testJobContext({ db: org.t.db, emulatorUrl: org.emulator.url, adminKey: DEMO_ADMIN_KEY, clock });
  await syncInventory.handler(env.ctx, {});
});
afterAll(async () => {
  await env.close();
});

const keyId = (name: string) => keyIdByName(org.t.db, name);
/** The environment `keywarden keys reactivate` runs with: this test's database and emulator. */
const cliEnvironment = () => ({
  DATABASE_URL: org.t.url,
  REDIS_URL: redisUrl(),
  ANTHROPIC_ADMIN_KEY: DEMO_ADMIN_KEY,
  ANTHROPIC_BASE_URL: org.emulator.url,
  LOG_LEVEL: 'warn',
});
const deps = () => env.ctx;
const auditOf = (id: string) =>
  org.t.db
    .selectFrom('audit_log')
    .select(['step', 'action', 'operation_id'])
    .where('subject_id', '=', id)
    .orderBy('id')
    .execute();

describe('key status changes, audited', () => {
  it('deactivates through the Admin API with an intent row before and a done row after', async () => {
    const id = await keyId('Legacy integration');
    expect(
      await setKeyStatus(deps(), {
        keyId: id,
        to: 'inactive',
        action: 'api_key.deactivate',
        actor: 'keywarden:rotation',
        reason: 'overdue',
      }),
    ).toBe('done');
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');
    expect((await auditOf(id)).map((r) => r.step)).toEqual(['intent', 'done']);
    const stored = await org.t.db
      .selectFrom('api_keys')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(stored.status).toBe('inactive');
    const change = await org.t.db
      .selectFrom('api_key_status_changes')
      .selectAll()
      .where('api_key_id', '=', id)
      .where('source', '=', 'keywarden')
      .executeTakeFirstOrThrow();
    expect(change).toMatchObject({ from_status: 'active', to_status: 'inactive', reason: 'overdue' });
  });

  it('a crash between the API call and the audit write is settled on the next run: one row per step, right state', async () => {
    const id = await keyId('Research notebook');
    // what setKeyStatus does before the process dies: the intent, then the call; no outcome row
    await env.ctx.repos.audit.recordIntent(
      { actor: 'keywarden:rotation', action: 'api_key.deactivate', subjectType: 'api_key', subjectId: id },
      { from: 'active', to: 'inactive', reason: 'overdue' },
    );
    await env.ctx.admin.updateApiKey(id, { status: 'inactive' });

    // the next run, once the interrupted call's retry budget has run out (minAgeMs: 0 stands for the wait)
    expect(await settleInterruptedStatusChanges(deps(), { minAgeMs: 0 })).toBe(1);
    expect(await settleInterruptedStatusChanges(deps(), { minAgeMs: 0 })).toBe(0); // a second run: nothing left
    expect((await auditOf(id)).map((r) => r.step)).toEqual(['intent', 'reconciled']);
    const stored = await org.t.db
      .selectFrom('api_keys')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(stored.status).toBe('inactive');
  });

  it('a crash before the API call is settled as not applied, and the key is untouched', async () => {
    const id = await keyId('Support bot');
    await env.ctx.repos.audit.recordIntent(
      { actor: 'keywarden:anomaly', action: 'api_key.deactivate', subjectType: 'api_key', subjectId: id },
      { from: 'active', to: 'inactive', reason: 'runaway' },
    );
    expect(await settleInterruptedStatusChanges(deps(), { minAgeMs: 0 })).toBe(1);
    const rows = await org.t.db
      .selectFrom('audit_log')
      .select(['step', 'details'])
      .where('subject_id', '=', id)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => r.step)).toEqual(['intent', 'reconciled']);
    expect(rows[1]!.details).toMatchObject({ applied: false, status: 'active' });
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
  });

  it('an update that went through but whose answer was lost is settled by reading the key back, not audited failed', async () => {
    const id = await keyId('Support bot');
    const earlier = (await auditOf(id)).length;
    // the emulator applies the change, then the answer is cut after 5 bytes (a dropped connection)
    org.emulator.setFaults({ script: [{ path: `/v1/organizations/api_keys/${id}`, truncateAt: 5 }] });
    try {
      const outcome = await setKeyStatus(deps(), {
        keyId: id,
        to: 'inactive',
        action: 'api_key.deactivate',
        actor: 'keywarden:rotation',
        reason: 'overdue',
      });
      expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');
      const rows = await org.t.db
        .selectFrom('audit_log')
        .select(['step', 'details'])
        .where('subject_id', '=', id)
        .orderBy('id')
        .execute()
        .then((all) => all.slice(earlier));
      expect(rows.map((r) => r.step)).toEqual(['intent', 'reconciled']);
      expect(rows[1]!.details).toMatchObject({ status: 'inactive', readBack: true });
      expect(outcome).toBe('done');
      const change = await org.t.db
        .selectFrom('api_key_status_changes')
        .select(['from_status', 'to_status', 'source'])
        .where('api_key_id', '=', id)
        .where('source', '=', 'keywarden')
        .executeTakeFirstOrThrow();
      expect(change).toEqual({ from_status: 'active', to_status: 'inactive', source: 'keywarden' });
    } finally {
      org.emulator.setFaults({});
      await env.ctx.admin.updateApiKey(id, { status: 'active' });
      await org.t.db.updateTable('api_keys').set({ status: 'active' }).where('id', '=', id).execute();
    }
  });

  it('a reactivation a crash interrupted is settled by the next enforcement or kill switch run, like a deactivation', async () => {
    const id = await keyId('Research notebook');
    await env.ctx.admin.updateApiKey(id, { status: 'inactive' });
    await syncInventory.handler(env.ctx, {});
    const earlier = (await auditOf(id)).length;
    // `keys reactivate` dies after its call went through: an intent, no outcome
    await env.ctx.repos.audit.recordIntent(
      { actor: 'cli:ana', action: 'api_key.reactivate', subjectType: 'api_key', subjectId: id },
      { from: 'inactive', to: 'active', reason: 'false alarm' },
    );
    await env.ctx.admin.updateApiKey(id, { status: 'active' });
    // what enforce-rotation and the kill switch run under the key-status lock before they act
    expect(await settleInterruptedStatusChanges(deps(), { minAgeMs: 0 })).toBe(1);
    expect((await auditOf(id)).slice(earlier).map((r) => [r.action, r.step])).toEqual([
      ['api_key.reactivate', 'intent'],
      ['api_key.reactivate', 'reconciled'],
    ]);
    const change = await org.t.db
      .selectFrom('api_key_status_changes')
      .selectAll()
      .where('api_key_id', '=', id)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(change).toMatchObject({ from_status: 'inactive', to_status: 'active', source: 'keywarden' });
  });

  it('an intent younger than the retry budget is another run in flight: it is left alone', async () => {
    const id = await keyId('Support bot');
    await env.ctx.repos.audit.recordIntent(
      { actor: 'keywarden:rotation', action: 'api_key.deactivate', subjectType: 'api_key', subjectId: id },
      { from: 'active', to: 'inactive', reason: 'overdue' },
    );
    // the default budget is the admin client's: its calls may still be retrying for ~2.5 minutes
    expect(await settleInterruptedStatusChanges(deps())).toBe(0);
    expect((await auditOf(id)).slice(-1).map((r) => r.step)).toEqual(['intent']);
    expect(await settleInterruptedStatusChanges(deps(), { minAgeMs: 0 })).toBe(1);
  });

  it('`keywarden keys reactivate` undoes a deactivation, audited, and insists on a reason', async () => {
    const id = await keyId('Legacy integration');
    const cliEnv = cliEnvironment();
    const noReason = await runNode('src/cli/index.ts', ['keys', 'reactivate', 'Legacy integration'], cliEnv);
    expect(noReason.code).toBe(2);
    expect(noReason.output).toMatch(/--reason: say why/);
    const ok = await runNode(
      'src/cli/index.ts',
      ['keys', 'reactivate', 'Legacy integration', '--reason', 'vendor needs one more week'],
      cliEnv,
    );
    expect(ok.output).toMatch(/Legacy integration \(apikey_\w+\) is active again; audited/);
    expect(ok.code).toBe(0);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    const rows = await org.t.db
      .selectFrom('audit_log')
      .select(['step', 'action', 'actor'])
      .where('subject_id', '=', id)
      .orderBy('id')
      .execute();
    expect(rows.slice(-2)).toEqual([
      { step: 'intent', action: 'api_key.reactivate', actor: expect.stringMatching(/^cli:/) },
      { step: 'done', action: 'api_key.reactivate', actor: expect.stringMatching(/^cli:/) },
    ]);
  });

  it('`keywarden keys reactivate <id>` reactivates that key, even when another key is named like its id', async () => {
    const id = await keyId('Old staging');
    await env.ctx.admin.updateApiKey(id, { status: 'inactive' });
    // someone names a key after the id (the name is the organization's to choose)
    org.emulator.state.keys.find((k) => k.name === 'Partner sandbox')!.name = id;
    clock.advance(60_000);
    await syncInventory.handler(env.ctx, {});
    const cliEnv = cliEnvironment();
    const ok = await runNode('src/cli/index.ts', ['keys', 'reactivate', id, '--reason', 'staging is back'], cliEnv);
    expect(ok.output).toMatch(new RegExp(`Old staging \\(${id}\\) is active again; audited`));
    expect(ok.code).toBe(0);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
    // and a name that reads like an id names no key by its name
    const byName = await runNode(
      'src/cli/index.ts',
      ['keys', 'reactivate', 'apikey_01Nobody', '--reason', 'x'],
      cliEnv,
    );
    expect(byName.code).toBe(2);
    expect(byName.output).toMatch(/no stored key with id "apikey_01Nobody"/);
  });
  it('`keywarden keys reactivate` refuses while another run changes key statuses (the key-status lock), and changes nothing', async () => {
    const id = await keyId('Slack assistant');
    await env.ctx.admin.updateApiKey(id, { status: 'inactive' });
    clock.advance(60_000);
    await syncInventory.handler(env.ctx, {});
    const before = await auditOf(id);
    const args = ['keys', 'reactivate', id, '--reason', 'false alarm'];
    // an enforcement run or the kill switch holds the key-status lock
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let locked: Promise<unknown> = Promise.resolve();
    await new Promise<void>((taken) => {
      locked = env.ctx.repos.keys.withStatusLock(async () => {
        taken();
        await held;
      });
    });
    try {
      const refused = await runNode('src/cli/index.ts', args, cliEnvironment());
      expect(refused.output).toMatch(/another run is changing key statuses/);
      expect(refused.code).toBe(1);
      expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');
      expect(await auditOf(id)).toEqual(before);
    } finally {
      release();
      await locked;
    }
    const ok = await runNode('src/cli/index.ts', args, cliEnvironment());
    expect(ok.code).toBe(0);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('active');
  });
});
