import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { runNode } from '../support/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'kw-cli-'));
function policyFile(name: string, yaml: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, yaml);
  return path;
}
const cli = (args: string[], env: Record<string, string> = {}) => runNode('src/cli/index.ts', args, env);

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

describe('keywarden check-config', () => {
  it.each([
    [
      'a misspelt key',
      { KEYWARDEN_CONFIG: policyFile('a', 'rotation:\n  max_age_day: 30\n') },
      /rotation\.max_age_day: unknown key \(did you mean max_age_days\?\)/,
    ],
    [
      'a negative age',
      { KEYWARDEN_CONFIG: policyFile('b', 'rotation:\n  max_age_days: -1\n') },
      /rotation\.max_age_days: /,
    ],
    [
      'a threshold of 80',
      { KEYWARDEN_CONFIG: policyFile('c', 'spend: { thresholds: [80] }\n') },
      /spend\.thresholds\[0\]: 80: .*did you mean 0\.8\?/,
    ],
    [
      'an unknown alert kind',
      { KEYWARDEN_CONFIG: policyFile('d', 'routes: [{ match: { kind: "spnd.*" } }]\n') },
      /routes\[0\]\.match\.kind: "spnd\.\*" matches no alert kind/,
    ],
    [
      'a malformed cron',
      { KEYWARDEN_CONFIG: policyFile('e', 'schedules: { sync-inventory: "0 25 * * *" }\n') },
      /schedules\.sync-inventory: "0 25 \* \* \*" is not a valid cron/,
    ],
    [
      'an SMTP_URL that is not smtp',
      { SMTP_URL: 'https://mail.example.com' },
      /SMTP_URL: must start with smtp:\/\/ or smtps:\/\//,
    ],
  ])('%s: exit 2, one line naming the field', async (_name, env, expected) => {
    const { code, output } = await cli(['check-config'], env);
    expect(code).toBe(2);
    expect(output).toMatch(expected);
    expect(output.trim().split('\n')).toHaveLength(1);
  });

  it('prints the effective config with secrets masked', async () => {
    const { code, output } = await cli(['check-config'], {
      KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
      ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-CANARY-secret-value-9999',
      DATABASE_URL: 'postgres://kw:CANARYpw@db:5432/kw',
      SLACK_BOT_TOKEN: 'xoxb-CANARY-token-1234',
    });
    expect(code).toBe(0);
    expect(output).not.toContain('CANARY');
    expect(output).toMatch(/ANTHROPIC_ADMIN_KEY: sk-ant-admin01-\*\*\*\*9999/);
    expect(output).toMatch(/DATABASE_URL: postgres:\/\/kw:\*\*\*\*@db:5432\/kw/);
    expect(output).toMatch(/max_age_days: 90/);
  });
});

describe('keywarden commands', () => {
  it('migrate applies the schema (up to date on a migrated database) and fails naming the problem', async () => {
    const ok = await cli(['migrate'], { DATABASE_URL: t.url });
    expect(ok.code).toBe(0);
    expect(ok.output).toMatch(/the schema is up to date/);
    const port = await freePort();
    const bad = await cli(['migrate'], { DATABASE_URL: `postgres://kw:CANARYpw@127.0.0.1:${port}/kw` });
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/keywarden migrate: .*ECONNREFUSED|connect/);
    expect(bad.output).not.toContain('CANARY');
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['run'], /which job\?/],
    [['run', 'poll-everything'], /<job>: no job named "poll-everything"/],
    [['worker', '--shutdown-timeout', 'soon'], /--shutdown-timeout: "soon" is not a duration/],
    [['worker', '--bogus'], /Unknown option '--bogus'/],
    [['keys'], /DATABASE_URL \(or DATABASE_URL_FILE\) is not set; `keywarden keys` needs it/],
  ])('%j: exit 2 naming the bad argument', async (args, expected) => {
    const { code, output } = await cli(args);
    expect(output).toMatch(expected);
    expect(code).toBe(2);
  });

  it('--help describes each command', async () => {
    const { code, output } = await cli(['worker', '--help']);
    expect(code).toBe(0);
    expect(output).toMatch(/--shutdown-timeout/);
  });
});
