import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runNode } from '../support/processes.ts';

/** Drill 8 through the command a person runs first: `keywarden check-config` on a broken policy file. */

const dir = mkdtempSync(join(tmpdir(), 'kw-policy-'));
function policyFile(name: string, yaml: string): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}
const checkConfig = (env: Record<string, string>) => runNode('src/cli/index.ts', ['check-config'], env);

describe('keywarden check-config on malformed policy files', () => {
  it('a tab in the indentation: exit 2, the file, line and column', async () => {
    const path = policyFile('tab.yaml', 'rotation:\n  enforce: true\nanomaly:\n\tfactor: 5\n');
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim()).toBe(`config: ${path}:4:1: YAML: Tabs are not allowed as indentation`);
  });

  it('three mistakes: exit 2, one line each, every one named, nothing printed as if valid', async () => {
    const path = policyFile(
      'three.yaml',
      [
        'rotation:',
        '  max_age_days: 90d',
        'spend:',
        '  thresholds: [0.5, 80]',
        'routes:',
        '  - { match: { kind: "spend.*", severity: high }, slack: ["#finance"] }',
        '',
      ].join('\n'),
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim().split('\n')).toEqual([
      `config: ${path}: rotation.max_age_days: expected a number, got string "90d"`,
      `config: ${path}: spend.thresholds[1]: 80: a threshold is a fraction of the limit (0 < t ≤ 1); did you mean 0.8?`,
      `config: ${path}: routes[0].match.severity: "high" is not one of info, warning, critical`,
    ]);
  });

  it('a price for a model the table lacks, without its input or output rate: exit 2, the pricing path named', async () => {
    const path = policyFile(
      'unknown-model-price.yaml',
      'pricing:\n  claude-opus-9:\n    cache_read: 0.5\n  claude-haiku-9: { input: 2 }\n',
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim().split('\n')).toEqual([
      `config: ${path}: pricing.claude-opus-9.input: required for a model the price table does not know`,
      `config: ${path}: pricing.claude-opus-9.output: required for a model the price table does not know`,
      `config: ${path}: pricing.claude-haiku-9.output: required for a model the price table does not know`,
    ]);
  });

  it('two pricing entries for one model (a snapshot id beside its model id): exit 2, both named', async () => {
    const path = policyFile(
      'twice-priced.yaml',
      'pricing:\n  claude-sonnet-4-5: { input: 3 }\n  claude-sonnet-4-5-20250929: { input: 4 }\n',
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim()).toBe(
      `config: ${path}: pricing.claude-sonnet-4-5-20250929: prices the same model as pricing.claude-sonnet-4-5 (claude-sonnet-4-5): keep one`,
    );
  });

  it('a spend limit that rounds to nothing or does not fit (1e-7, 1e21): exit 2, each limit named', async () => {
    const path = policyFile(
      'inexact-limits.yaml',
      'spend:\n  limits:\n    organization: 0.0000001\n    keys: { ci-bot: 1e21, batch: 2500.5, agent: 3544.2000000000003 }\n',
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path });
    expect(code).toBe(2);
    expect(output.trim().split('\n')).toEqual([
      `config: ${path}: spend.limits.organization: 1e-7: a limit is from 0.000001 up to (not including) 1e15 USD per month`,
      `config: ${path}: spend.limits.keys.ci-bot: 1e+21: a limit is from 0.000001 up to (not including) 1e15 USD per month`,
    ]);
  });

  it('a policy with no route for keywarden.blind: valid, with a warning saying where that alert goes', async () => {
    const path = policyFile(
      'no-blind-route.yaml',
      'routes:\n  - { match: { kind: "spend.*" }, slack: ["#finance"] }\n',
    );
    const { code, output } = await checkConfig({ KEYWARDEN_CONFIG: path, SLACK_BOT_TOKEN: 'xoxb-check-config-0000' });
    expect(code).toBe(0);
    expect(output).toMatch(
      /warning: no route matches keywarden\.blind: if the admin key is refused, every route target is told/,
    );
  });
});

describe('keywarden check-config never prints a secret', () => {
  it('query-string passwords are masked; plain http to another host is named in a warning when allowed', async () => {
    const { code, output } = await runNode('src/cli/index.ts', ['check-config', '--json'], {
      KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
      DATABASE_URL: 'postgres://kw:CANARYpw@db:5432/kw?sslmode=require&password=CANARYquery',
      REDIS_URL: 'rediss://cache:6380/0?password=CANARYredis',
      ANTHROPIC_BASE_URL: 'http://emulator:8787',
      KEYWARDEN_ALLOW_INSECURE_HTTP: '1',
    });
    expect(code).toBe(0);
    expect(output).not.toContain('CANARY');
    const json = JSON.parse(output.slice(output.indexOf('{'), output.lastIndexOf('}') + 1));
    expect(json.environment.DATABASE_URL).toBe('postgres://kw:****@db:5432/kw?sslmode=require&password=****');
    expect(json.environment.REDIS_URL).toBe('rediss://cache:6380/0?password=****');
    expect(json.environment.KEYWARDEN_ALLOW_INSECURE_HTTP).toBe(true);
    expect(output).toMatch(
      /warning: ANTHROPIC_BASE_URL uses plain http:\/\/ to emulator \(allowed by KEYWARDEN_ALLOW_INSECURE_HTTP=1\)/,
    );
  });

  it('a base URL with a password: exit 2, the variable named, the password not printed', async () => {
    const { code, output } = await runNode('src/cli/index.ts', ['check-config'], {
      KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
      SLACK_API_URL: 'https://bot:CANARYproxy@slack-proxy.example/api/',
    });
    expect(code).toBe(2);
    expect(output).toMatch(/config: SLACK_API_URL: holds credentials/);
    expect(output).not.toContain('CANARY');
  });
});
