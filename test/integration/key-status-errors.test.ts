import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { BLIND_KIND, watchAdminKey } from '../../src/health/blind.ts';
import { setKeyStatus } from '../../src/rotation/set-status.ts';
import { testJobContext } from '../support/context.ts';
import { redisUrl } from '../support/db.ts';
import { DEMO_ADMIN_KEY, keyIdByName, useDemoOrg } from '../support/demo-org.ts';
import { runNode } from '../support/processes.ts';

/** Key status changes when the API answers with an error code: retried when it says so, plain when it refuses. */

const org = useDemoOrg();
let env: ReturnType<typeof testJobContext>;

beforeAll(async () => {
  env = testJobContext({ db: org.t.db, emulatorUrl: org.emulator.url, adminKey: DEMO_ADMIN_KEY, clock: org.clock });
  await syncInventory.handler(env.ctx, {});
});
afterAll(async () => {
  await env.close();
});

const deps = () => env.ctx;
const outcomes = (id: string) =>
  org.t.db
    .selectFrom('audit_log')
    .select(['step', 'details'])
    .where('subject_id', '=', id)
    .where('step', '!=', 'intent')
    .orderBy('id')
    .execute();

describe('key status changes and error codes', () => {
  it('a 403 api_key_requester_unconfirmed on deactivation is retried, the key ends inactive, and no blind alert', async () => {
    const id = await keyIdByName(org.t.db, 'Support bot');
    org.emulator.setFaults({
      script: [{ path: '/v1/organizations/api_keys/', status: 403, errorCode: 'api_key_requester_unconfirmed' }],
    });
    const blind = watchAdminKey(env.ctx, async () => {});
    const outcome = await setKeyStatus(deps(), {
      keyId: id,
      to: 'inactive',
      action: 'api_key.deactivate',
      actor: 'keywarden:rotation',
      reason: 'overdue',
    });
    await blind.check();
    expect(outcome).toBe('done');
    const posts = org.emulator.requestLog.filter((r) => r.method === 'POST' && r.path.includes(id));
    expect(posts.map((r) => r.status)).toEqual([403, 200]);
    expect((await env.ctx.admin.getApiKey(id)).status).toBe('inactive');
    expect(env.ctx.admin.keyVerdict.state).toBe('accepted');
    const alerts = await org.t.db.selectFrom('alerts').select('kind').where('kind', '=', BLIND_KIND).execute();
    expect(alerts).toEqual([]);
  });

  it.each([
    ['org_api_key_limit_exceeded', /the organization already has as many active API keys as it is allowed/],
    ['workspace_api_key_limit_exceeded', /its workspace already has as many active API keys as it is allowed/],
  ])('reactivation refused with %s fails with a message that says so', async (code, message) => {
    const id = await keyIdByName(org.t.db, 'Old staging');
    org.emulator.setFaults({ script: [{ path: '/v1/organizations/api_keys/', status: 400, errorCode: code }] });
    const outcome = await setKeyStatus(deps(), {
      keyId: id,
      to: 'active',
      action: 'api_key.reactivate',
      actor: 'cli:test',
      reason: 'back in use',
    });
    expect(outcome).toBe('failed');
    const failed = (await outcomes(id)).at(-1)!;
    expect(failed.step).toBe('failed');
    expect((failed.details as { error: string }).error).toMatch(message);
    expect(env.lines.join('')).toMatch(message);
  });

  it('`keywarden keys reactivate` refused with org_api_key_limit_exceeded prints the plain reason, exit 1', async () => {
    const id = await keyIdByName(org.t.db, 'Old staging');
    org.emulator.setFaults({
      script: [{ path: '/v1/organizations/api_keys/', status: 400, errorCode: 'org_api_key_limit_exceeded' }],
    });
    const cliEnv = {
      DATABASE_URL: org.t.url,
      REDIS_URL: redisUrl(),
      ANTHROPIC_ADMIN_KEY: DEMO_ADMIN_KEY,
      ANTHROPIC_BASE_URL: org.emulator.url,
      LOG_LEVEL: 'error', // what the person reads is the command's own answer, not the log line beside it
    };
    const run = await runNode(
      'src/cli/index.ts',
      ['keys', 'reactivate', 'Old staging', '--reason', 'back in use'],
      cliEnv,
    );
    expect(run.code).toBe(1);
    expect(run.output).not.toContain('see the log');
    expect(run.output).toMatch(
      new RegExp(
        `could not reactivate Old staging: cannot reactivate ${id}: the organization already has as many active API keys as it is allowed; deactivate or archive one first`,
      ),
    );
    expect((await env.ctx.admin.getApiKey(id)).status).not.toBe('active');
  });
});
