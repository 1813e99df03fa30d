import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pollUsageJob } from '../../jobs/poll-usage.ts';
import { syncInventory } from '../../jobs/sync-inventory.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import type { AnthropicVersion } from '../../src/anthropic/transport.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { loadFinanceData } from '../../src/digest/finance-data.ts';
import { loadSecurityData } from '../../src/digest/security-data.ts';
import { loadScenario, parseScenario } from '../../src/emulator/scenario.ts';
import { startEmulator } from '../../src/emulator/server.ts';
import { testJobContext } from '../support/context.ts';
import { createTestDatabase } from '../support/db.ts';
import { DEMO_ADMIN_KEY, DEMO_START } from '../support/demo-org.ts';
import { runNode } from '../support/processes.ts';

/**
 * A key bound to a principal and scoped to the organization (no workspace) is not a Default Workspace key: after
 * sync-inventory, `keywarden keys` and `keys --json` say it is organization-scoped, whichever version carries the
 * 2026 shapes.
 */

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const demo = loadScenario('demo');
const scenario = parseScenario({
  ...demo,
  keys: [
    ...demo.keys,
    {
      name: 'Agent for Ana',
      principal: 'ana@acme.example',
      scope: 'organization',
      traffic: { tokens_per_minute: 20_000 },
    },
  ],
});

// a rotation override for the Default Workspace must not reach a key that is in no workspace
const policyFile = join(mkdtempSync(join(tmpdir(), 'kw-scope-')), 'keywarden.yaml');
writeFileSync(policyFile, 'rotation:\n  overrides: [{ workspace: "Default Workspace", max_age_days: 30 }]\n');

describe.each<[string, AnthropicVersion, 'by_version' | '2026']>([
  ['2026-10-21, the SDK shapes', '2026-10-21', 'by_version'],
  ['2023-06-01 answered in 2026 shapes', '2023-06-01', '2026'],
])('%s', (_name, version, shape) => {
  it('`keywarden keys` shows the organization-scoped key as such, not under the Default Workspace', async () => {
    const clock = fixedClock(DEMO_START);
    const t = await createTestDatabase();
    cleanup.push(() => t.drop());
    const em = await startEmulator({ scenario: { ...scenario, api_shape: shape }, clock, startAt: DEMO_START });
    cleanup.push(() => em.close());
    const env = testJobContext({ db: t.db, emulatorUrl: em.url, adminKey: DEMO_ADMIN_KEY, clock });
    cleanup.push(() => env.close());
    const admin = new AdminClient({
      baseUrl: em.url,
      adminKey: new Secret(DEMO_ADMIN_KEY),
      anthropicVersion: version,
      log: env.ctx.log,
    });
    await syncInventory.handler({ ...env.ctx, admin }, {});
    clock.advance(10 * 60_000);
    await pollUsageJob.handler({ ...env.ctx, admin }, {});

    const cliEnv = { DATABASE_URL: t.url, KEYWARDEN_CONFIG: policyFile, LOG_LEVEL: 'warn' };
    const table = await runNode('src/cli/index.ts', ['keys'], cliEnv);
    expect(table.code).toBe(0);
    const line = table.output.split('\n').find((l) => l.startsWith('Agent for Ana'))!;
    expect(line).toContain('(organization)');
    expect(line).not.toContain('Default Workspace');
    // who is behind it: Ana, as its principal says
    expect(line).toMatch(/\sactive\s+personal\s/);
    // a key that is in the Default Workspace still says so
    expect(table.output.split('\n').find((l) => l.startsWith('Legacy integration'))).toContain('Default Workspace');

    const json = await runNode('src/cli/index.ts', ['keys', '--json'], cliEnv);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.output) as Array<{ name: string; workspace: string; scope: string; policy: string }>;
    expect(rows.find((r) => r.name === 'Agent for Ana')).toMatchObject({
      workspace: '(organization)',
      scope: 'organization',
      policy: 'default',
      identity: 'personal',
    });
    expect(rows.find((r) => r.name === 'Production Backend')).toMatchObject({ identity: 'service_account' });
    expect(rows.find((r) => r.name === 'Legacy integration')).toMatchObject({ identity: 'legacy' });
    expect(rows.find((r) => r.name === 'Legacy integration')).toMatchObject({
      workspace: 'Default Workspace',
      scope: 'workspace',
      policy: 'workspace Default Workspace',
    });

    const stored = await t.db
      .selectFrom('api_keys')
      .select(['workspace_id', 'scope_type', 'principal_type', 'principal_id'])
      .where('name', '=', 'Agent for Ana')
      .executeTakeFirstOrThrow();
    const ana = await t.db.selectFrom('users').select('id').where('email', '=', 'ana@acme.example').executeTakeFirst();
    expect(stored).toEqual({
      workspace_id: null,
      scope_type: 'organization',
      principal_type: 'user_actor',
      principal_id: ana!.id,
    });

    // the finance digest: the key reads (organization), and its spend is no workspace's
    const agentId = (
      await t.db.selectFrom('api_keys').select('id').where('name', '=', 'Agent for Ana').executeTakeFirstOrThrow()
    ).id;
    const finance = await loadFinanceData(createRepos(t.db), clock.now(), {
      organizationName: 'Acme AI',
      timezone: 'UTC',
      organizationLimitUsd: null,
    });
    const agent = finance.keys.find((k) => k.id === agentId)!;
    expect(agent.mtd).toBeGreaterThan(0n);
    expect(agent.workspaceName).toBe('(organization)');
    const keysInDefault = finance.keys
      .filter((k) => k.workspaceName === 'Default Workspace')
      .reduce((sum, k) => sum + k.mtd, 0n);
    const consoleInDefault = await t.db
      .selectFrom('usage_buckets')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('workspace_id', 'is', null)
      .where('api_key_id', 'is', null)
      .executeTakeFirstOrThrow();
    expect(consoleInDefault.n).toBe('0'); // so the Default Workspace's spend is its keys' spend
    expect(finance.workspaces.find((w) => w.id === null)?.mtd ?? 0n).toBe(keysInDefault);

    // the security digest names it the same way
    const security = await loadSecurityData(createRepos(t.db), clock.now(), {
      organizationName: 'Acme AI',
      timezone: 'UTC',
    });
    expect(security.keys.find((k) => k.id === agentId)?.workspaceName).toBe('(organization)');
  }, 60_000);
});
