import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parsePolicy } from '../../src/config/index.ts';
import { findPriceEntry } from '../../src/usage/core/pricing.ts';

function problemsOf(yaml: string): string[] {
  const problems: string[] = [];
  parsePolicy(yaml, 'keywarden.yaml', problems, ['poll-usage', 'enforce-rotation']);
  return problems;
}

describe('policy file', () => {
  it('an empty file gives the documented defaults', () => {
    const problems: string[] = [];
    const policy = parsePolicy('', 'keywarden.yaml', problems)!;
    expect(problems).toEqual([]);
    expect(policy.rotation).toMatchObject({
      max_age_days: 90,
      remind_before_days: [14, 7, 1],
      grace_days: 7,
      enforce: false,
      drain_window_hours: 24,
      force_after_days: null,
      max_deactivations_per_run: 5,
    });
    expect(policy.spend).toMatchObject({ thresholds: [0.5, 0.8, 1.0], forecast: true });
    expect(policy.anomaly).toMatchObject({ min_hourly_usd: 5, factor: 5, window_minutes: 10 });
    expect(policy.anomaly.auto_deactivate).toEqual({
      enabled: false,
      min_hourly_usd: 200,
      max_per_run: 1,
      max_per_hour: 2,
      mode: 'auto',
    });
    expect(policy.organization.timezone).toBe('UTC');
  });

  it('the example in examples/keywarden.yaml is valid', () => {
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml' } });
    expect(config.policy.routes[0]).toMatchObject({ slack: ['#ai-alerts'], repeat_every: 3_600_000, continue: false });
    expect(config.policy.rotation.exemptions[0]?.until).toBe('2027-01-31');
    expect(Object.isFrozen(config.policy.rotation)).toBe(true);
  });

  it.each([
    [
      'a misspelt key',
      'rotation:\n  max_age_day: 30\n',
      /rotation\.max_age_day: unknown key \(did you mean max_age_days\?\)/,
    ],
    ['a negative age', 'rotation:\n  max_age_days: -5\n', /rotation\.max_age_days: -5: must be above 0/],
    ['a threshold of 80', 'spend:\n  thresholds: [0.5, 80]\n', /spend\.thresholds\[1\]: 80: .* did you mean 0\.8\?/],
    [
      'an unknown alert kind',
      'routes:\n  - { match: { kind: "spending.*" }, slack: ["#x"] }\n',
      /routes\[0\]\.match\.kind: "spending\.\*" matches no alert kind/,
    ],
    [
      'a malformed cron',
      'digests:\n  finance: { cron: "0 25 * * *", email: [a@b.co] }\n',
      /digests\.finance\.cron: "0 25 \* \* \*" is not a valid cron/,
    ],
    [
      'a schedule for an unknown job',
      'schedules: { poll-usages: "* * * * *" }\n',
      /schedules\.poll-usages: no job of that name/,
    ],
    [
      'a price with a unit',
      'pricing: { claude-x: { input: "3 USD" } }\n',
      /pricing\.claude-x\.input: .*USD per million tokens/,
    ],
    [
      'a bad duration',
      'routes:\n  - { match: { kind: "usage.*" }, repeat_every: soon }\n',
      /routes\[0\]\.repeat_every: "soon" is not a duration/,
    ],
    [
      'a bad timezone',
      'organization: { timezone: Mars/Olympus }\n',
      /organization\.timezone: "Mars\/Olympus" is not an IANA time zone/,
    ],
    [
      'an override naming both',
      'rotation:\n  overrides: [{ key: "a", workspace: "b", max_age_days: 3 }]\n',
      /rotation\.overrides\[0\]: an override names exactly one/,
    ],
    [
      'a reminder after the deadline',
      'rotation:\n  max_age_days: 10\n  remind_before_days: [14]\n',
      /rotation\.remind_before_days\[0\] = 14: a reminder must come before the deadline/,
    ],
    ['a bad slack channel', 'routes:\n  - { slack: ["ai alerts"] }\n', /routes\[0\]\.slack\[0\]: a Slack channel is/],
    ['bad YAML', 'rotation: [unclosed\n', /keywarden\.yaml(:\d+:\d+)?: YAML: /],
  ])('%s is refused, naming the field', (_name, yaml, expected) => {
    const problems = problemsOf(yaml);
    expect(problems.join('\n')).toMatch(expected);
  });

  it("carries the price table with the policy's pricing merged in, built once and frozen", () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kw-prices-')), 'keywarden.yaml');
    writeFileSync(file, 'pricing:\n  claude-haiku-9: { input: 2, output: 10 }\n  claude-haiku-4-5: { output: 4 }\n');
    const config = loadConfig({ env: { KEYWARDEN_CONFIG: file } });
    const at = new Date('2026-11-20T00:00:00Z');
    expect(findPriceEntry(config.prices, 'claude-haiku-9', at)?.rates).toEqual({
      input: '2',
      output: '10',
      cache_write_5m: '2.5',
      cache_write_1h: '4',
      cache_read: '0.2',
    });
    expect(findPriceEntry(config.prices, 'claude-haiku-4-5-20251001', at)?.rates).toMatchObject({
      input: '1',
      output: '4',
    });
    expect(Object.isFrozen(config.prices.entries)).toBe(true);
  });

  it('reports every problem at once, one line each', () => {
    const problems = problemsOf('rotation:\n  max_age_day: 30\n  grace_days: -1\nspend:\n  thresholds: [80]\n');
    expect(problems).toHaveLength(3);
  });
});

describe('environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-config-'));

  it('reads secrets from *_FILE variants', () => {
    const file = join(dir, 'admin-key');
    writeFileSync(file, 'sk-ant-admin01-from-a-file-0000\n');
    const config = loadConfig({ env: { ANTHROPIC_ADMIN_KEY_FILE: file, KEYWARDEN_CONFIG: 'examples/keywarden.yaml' } });
    expect(config.env.adminKey?.reveal()).toBe('sk-ant-admin01-from-a-file-0000');
    expect(JSON.stringify(config)).not.toContain('from-a-file');
  });

  it.each([
    [{ SMTP_URL: 'http://mail:25' }, /SMTP_URL: must start with smtp:\/\/ or smtps:\/\//],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must start with postgres:\/\/ or postgresql:\/\//],
    [
      { ANTHROPIC_ADMIN_KEY: 'sk-ant-api03-notanadminkey-0000' },
      /ANTHROPIC_ADMIN_KEY: sk-ant-api03-\*\*\*\*0000 is not an admin key/,
    ],
    [
      { ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-aaaa-0000', ANTHROPIC_ADMIN_KEY_FILE: '/x' },
      /ANTHROPIC_ADMIN_KEY and ANTHROPIC_ADMIN_KEY_FILE are both set/,
    ],
    [{ SLACK_BOT_TOKEN_FILE: '/nonexistent/token' }, /SLACK_BOT_TOKEN_FILE: cannot read \/nonexistent\/token/],
    [{ KEYWARDEN_HTTP_PORT: 'http' }, /KEYWARDEN_HTTP_PORT: "http" is not a port number/],
    [{ LOG_LEVEL: 'verbose' }, /LOG_LEVEL: "verbose" is not one of/],
    // a status page token short enough to guess
    [{ KEYWARDEN_UI_TOKEN: 'hunter2' }, /KEYWARDEN_UI_TOKEN: at least 16 characters/],
    [
      { KEYWARDEN_CONFIG: '/nonexistent/keywarden.yaml' },
      /KEYWARDEN_CONFIG: no file at \/nonexistent\/keywarden\.yaml/,
    ],
  ])('%o is refused', (env, expected) => {
    let error: unknown;
    try {
      loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml', ...env } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(expected);
    expect((error as ConfigError).message).not.toContain('notanadminkey');
  });
});
