import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type Config, ConfigError, loadConfig, orgConfig } from '../../src/config/index.ts';

const KEY_A = 'sk-ant-admin01-emea-organization-key-0123456789abcdefAAAA';
const KEY_B = 'sk-ant-admin01-apac-organization-key-0123456789abcdefBBBB';

const dir = mkdtempSync(join(tmpdir(), 'kw-orgs-config-'));
let files = 0;

function load(yaml: string, env: Record<string, string> = {}): Config {
  const file = join(dir, `keywarden-${files++}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig({ env: { KEYWARDEN_CONFIG: file, ...env }, knownJobs: ['poll-usage', 'sync-inventory'] });
}

function problemsOf(yaml: string, env: Record<string, string> = { EMEA_KEY: KEY_A, APAC_KEY: KEY_B }): string[] {
  try {
    load(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.replace(/^.*?\.yaml: /, ''));
    throw err;
  }
  return [];
}

const TWO = `spend: { thresholds: [0.5, 1.0] }
routes:
  - { match: { kind: "*" }, slack: ["#ai-alerts"] }
organizations:
  - { id: emea, name: "Acme EMEA", timezone: Europe/Paris, admin_key_env: EMEA_KEY }
  - id: apac
    name: "Acme APAC"
    timezone: Asia/Tokyo
    admin_key_env: APAC_KEY
    base_url: "http://127.0.0.1:4011"
    spend: { thresholds: [0.9], limits: { organization: 100 } }
`;

describe('organizations: a list of organizations in the policy file', () => {
  it('gives each entry its id, name, schema, key, base URL and its own policy', () => {
    const config = load(TWO, { EMEA_KEY: KEY_A, APAC_KEY: KEY_B, ANTHROPIC_BASE_URL: 'https://api.example' });
    expect(config.organizations.map((o) => [o.id, o.name, o.schema, o.baseUrl])).toEqual([
      ['emea', 'Acme EMEA', 'kw_emea', 'https://api.example'],
      ['apac', 'Acme APAC', 'kw_apac', 'http://127.0.0.1:4011'],
    ]);
    const [emea, apac] = config.organizations;
    expect(emea!.adminKey?.reveal()).toBe(KEY_A);
    expect(apac!.adminKey?.reveal()).toBe(KEY_B);
    expect(emea!.policy.organization).toEqual({ name: 'Acme EMEA', timezone: 'Europe/Paris' });
    expect(apac!.policy.organization).toEqual({ name: 'Acme APAC', timezone: 'Asia/Tokyo' });
    // the key never prints, not even through the list
    expect(inspect(config, { depth: 10 })).not.toContain(KEY_A);
    expect(JSON.stringify(config)).not.toContain(KEY_B);
    expect(Object.isFrozen(config.organizations[1]!.policy.spend)).toBe(true);
  });

  it('an override replaces the whole section for that organization; the rest are the file’s', () => {
    const [emea, apac] = load(TWO, { EMEA_KEY: KEY_A, APAC_KEY: KEY_B }).organizations;
    expect(emea!.policy.spend.thresholds).toEqual([0.5, 1.0]);
    expect(emea!.policy.spend.limits.organization).toBeNull();
    // replaced, not merged: the file's thresholds do not show through
    expect(apac!.policy.spend.thresholds).toEqual([0.9]);
    expect(apac!.policy.spend.limits.organization).toBe(100);
    expect(apac!.policy.routes).toEqual(emea!.policy.routes);
    expect(apac!.policy.routes[0]!.slack).toEqual(['#ai-alerts']);
  });

  it('an organization’s view of the config has its own policy where one organization’s would be', () => {
    const config = load(TWO, { EMEA_KEY: KEY_A, APAC_KEY: KEY_B });
    const view = orgConfig(config, config.organizations[1]!);
    expect(view.policy.organization.name).toBe('Acme APAC');
    expect(view.policy.spend.thresholds).toEqual([0.9]);
    expect(view.organization?.id).toBe('apac');
    expect(view.organizations).toHaveLength(2);
  });

  it('reads a key from admin_key_file', () => {
    const keyFile = join(dir, 'emea.key');
    writeFileSync(keyFile, `${KEY_A}\n`);
    const config = load(
      `organizations:\n  - { id: emea, name: EMEA, admin_key_file: "${keyFile}" }\n  - { id: apac, name: APAC, admin_key_env: APAC_KEY }\n`,
      { APAC_KEY: KEY_B },
    );
    expect(config.organizations[0]!.adminKey?.reveal()).toBe(KEY_A);
  });

  it('database_schema: public keeps an existing database’s rows for that entry', () => {
    const config = load(
      'organizations:\n  - { id: acme, name: Acme, admin_key_env: EMEA_KEY, database_schema: public }\n  - { id: apac, name: APAC, admin_key_env: APAC_KEY }\n',
      { EMEA_KEY: KEY_A, APAC_KEY: KEY_B },
    );
    expect(config.organizations.map((o) => o.schema)).toEqual(['public', 'kw_apac']);
  });

  it.each([
    [
      'organization and organizations together',
      `organization: { name: Acme }\n${TWO}`,
      'organization and organizations: keep one (organizations: is the list, each entry with its own name and timezone)',
    ],
    [
      'an id that is no slug',
      'organizations:\n  - { id: "EMEA-1", name: EMEA, admin_key_env: EMEA_KEY }\n',
      'organizations[0].id: an organization id is a lowercase letter, then up to 30 lowercase letters, digits or "_" (like emea or bu_2)',
    ],
    [
      // the id of a file with `organization:` alone, whose connections keep their own search_path: in a list it would
      // read public beside the entry that takes public over
      'the id default in a list',
      'organizations:\n  - { id: default, name: EMEA, admin_key_env: EMEA_KEY }\n',
      'organizations[0].id: "default" is the id of a file with organization: alone; give this organization another',
    ],
    [
      'an entry without an id',
      'organizations:\n  - { name: EMEA, admin_key_env: EMEA_KEY }\n',
      'organizations[0].id: missing (required, a string)',
    ],
    [
      'two entries with one id',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY }\n  - { id: emea, name: Other, admin_key_env: APAC_KEY }\n',
      'organizations[1].id: "emea" is already organizations[0]\'s id: each organization\'s id is its own',
    ],
    [
      'two entries in public',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, database_schema: public }\n  - { id: apac, name: APAC, admin_key_env: APAC_KEY, database_schema: public }\n',
      "organizations[1].database_schema: schema public is already organizations[0]'s: two organizations may not share a schema (only one entry takes over the rows in public)",
    ],
    [
      'a schema other than public',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, database_schema: kw_apac }\n',
      'organizations[0].database_schema: "kw_apac" is not one of public',
    ],
    [
      'neither admin_key_env nor admin_key_file',
      'organizations:\n  - { id: emea, name: EMEA }\n',
      "organizations[0]: give exactly one of admin_key_env (the variable holding organization emea's admin key) or admin_key_file (a file holding it)",
    ],
    [
      'both admin_key_env and admin_key_file',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, admin_key_file: /run/secrets/emea }\n',
      "organizations[0]: give exactly one of admin_key_env (the variable holding organization emea's admin key) or admin_key_file (a file holding it)",
    ],
    [
      'a variable that is not set',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_MISSING_KEY }\n',
      'organizations[0].admin_key_env: EMEA_MISSING_KEY is not set: export EMEA_MISSING_KEY (or EMEA_MISSING_KEY_FILE naming a file that holds it)',
    ],
    [
      'a file that cannot be read',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_file: /nonexistent/emea.key }\n',
      'organizations[0].admin_key_file: cannot read /nonexistent/emea.key (ENOENT)',
    ],
    [
      'a key that is no admin key',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: NOT_ADMIN }\n',
      'organizations[0].admin_key_env: sk-ant-api03-****0000 is not an admin key (they start with sk-ant-admin)',
    ],
    [
      'a base URL in clear text to another host',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, base_url: "http://api.internal" }\n',
      'organizations[0].base_url: plain http:// to a host other than this machine (api.internal) sends secrets in clear text: use https://, or set KEYWARDEN_ALLOW_INSECURE_HTTP=1 for a network you trust',
    ],
    [
      'a bad value in an override',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, spend: { thresholds: [80] } }\n',
      'organizations[0].spend.thresholds[0]: 80: a threshold is a fraction of the limit (0 < t ≤ 1); did you mean 0.8?',
    ],
    [
      'a misspelt key in an override',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, rotation: { max_age_dys: 30 } }\n',
      'organizations[0].rotation.max_age_dys: unknown key (did you mean max_age_days?)',
    ],
    [
      'an override naming an unknown job',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, schedules: { pol-usage: "* * * * *" } }\n',
      'organizations[0].schedules.pol-usage: no job of that name (jobs: poll-usage, sync-inventory)',
    ],
    [
      'an unknown field in an entry',
      'organizations:\n  - { id: emea, name: EMEA, admin_key_env: EMEA_KEY, timezon: UTC }\n',
      'organizations[0].timezon: unknown key (did you mean timezone?)',
    ],
    ['an empty list', 'organizations: []\n', 'organizations: Too small: expected array to have >=1 items'],
  ])('%s is a ConfigError naming the field', (_name, yaml, expected) => {
    const problems = problemsOf(yaml, {
      EMEA_KEY: KEY_A,
      APAC_KEY: KEY_B,
      NOT_ADMIN: 'sk-ant-api03-a-regular-api-key-not-an-admin-key-0000',
    });
    expect(problems).toContain(expected);
    expect(problems.join('\n')).not.toContain(KEY_A);
  });
});

describe('organization: alone, as before', () => {
  it('is one organization, default, in public, with the environment’s key and base URL', () => {
    const config = load('organization: { name: "Acme AI", timezone: Europe/Paris }\nspend: { thresholds: [0.7] }\n', {
      ANTHROPIC_ADMIN_KEY: KEY_A,
      ANTHROPIC_BASE_URL: 'https://api.example',
    });
    expect(config.organizations).toHaveLength(1);
    const [org] = config.organizations;
    expect([org!.id, org!.name, org!.schema, org!.baseUrl]).toEqual([
      'default',
      'Acme AI',
      'public',
      'https://api.example',
    ]);
    expect(org!.adminKey?.reveal()).toBe(KEY_A);
    expect(org!.policy).toBe(config.policy);
    expect(config.policy.spend.thresholds).toEqual([0.7]);
    expect(config.policy.organization.name).toBe('Acme AI');
  });

  it('a file with neither key is one organization too, and needs no admin key to load', () => {
    const config = load('spend: { thresholds: [0.7] }\n');
    expect(config.organizations.map((o) => [o.id, o.schema, o.adminKey])).toEqual([['default', 'public', null]]);
  });
});
