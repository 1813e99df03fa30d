import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raiseAlerts } from '../../src/alerts/store.ts';
import { createDb, type Db } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { drillAlert } from '../support/kill-drill.ts';
import { runNode } from '../support/processes.ts';

/**
 * The CLI with an organizations: list: `migrate` creates each organization's schema, and the commands that read one
 * organization's tables take `--org`; without it they name the ids and exit 2, so one organization's table is never
 * taken for another's.
 */

let t: TestDatabase;
let dir: string;
let env: Record<string, string>;
let db: Db;
const cli = (args: string[]) => runNode('src/cli/index.ts', args, env);

beforeAll(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'kw-orgs-cli-'));
  const policy = join(dir, 'keywarden.yaml');
  writeFileSync(
    policy,
    `organizations:
  - { id: emea, name: "Acme EMEA", admin_key_env: EMEA_KEY }
  - { id: apac, name: "Acme APAC", admin_key_env: APAC_KEY }
`,
  );
  env = {
    DATABASE_URL: t.url,
    KEYWARDEN_CONFIG: policy,
    EMEA_KEY: 'sk-ant-admin01-emea-cli-test-key-0123456789abcdef0000',
    APAC_KEY: 'sk-ant-admin01-apac-cli-test-key-0123456789abcdef0000',
  };
  const migrated = await cli(['migrate']);
  expect(migrated.output).toContain('emea (schema kw_emea): applied: 001_initial');
  expect(migrated.code).toBe(0);
  db = createDb(t.url, { max: 2, schema: 'kw_emea' });
  await raiseAlerts(
    { repos: createRepos(db) },
    { kinds: [], observations: [drillAlert('emea only alert')] },
    [],
    new Date(),
  );
});
afterAll(async () => {
  await db?.destroy();
  await t?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('--org', () => {
  it('a second migrate applies nothing in either schema', async () => {
    const again = await cli(['migrate']);
    expect(again.output.trim().split('\n')).toEqual([
      'emea (schema kw_emea): the schema is up to date',
      'apac (schema kw_apac): the schema is up to date',
    ]);
  });

  it('reads the named organization’s tables only', async () => {
    const emea = await cli(['alerts', '--org', 'emea']);
    expect(emea.code).toBe(0);
    expect(emea.output).toContain('emea only alert');
    const apac = await cli(['alerts', '--org=apac']);
    expect(apac.code).toBe(0);
    expect(apac.output.trim()).toBe('No firing alerts.');
  });

  it('check-config shows each organization (its key masked) and wants no ANTHROPIC_ADMIN_KEY', async () => {
    const r = await cli(['check-config']);
    expect(r.code).toBe(0);
    expect(r.output).toContain('schema: kw_apac');
    expect(r.output).toContain('admin_key: sk-ant-admin01-****0000');
    expect(r.output).not.toContain(env.EMEA_KEY!);
    expect(r.output).not.toContain('ANTHROPIC_ADMIN_KEY is not set');
    const probe = await cli(['check-config', '--probe']);
    expect(probe.code).toBe(2);
    expect(probe.output).toContain('--org: the policy file lists several organizations: name one (emea, apac)');
  });

  it('without --org, names the organizations and exits 2; an unknown id too', async () => {
    for (const args of [['alerts'], ['keys'], ['spend'], ['silence', 'list']]) {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(r.output).toContain('--org: the policy file lists several organizations: name one (emea, apac)');
    }
    const unknown = await cli(['keys', '--org', 'nowhere']);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toContain('--org: no organization "nowhere" in the policy file (organizations: emea, apac)');
  });
});
