import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parsePolicy } from '../../src/config/index.ts';
import { describeReceivers } from '../../src/config/receivers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kw-receivers-'));
const ROUTING_KEY = 'R0UTINGKEY0123456789abcdefABCDEF';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OLD_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
const TEAMS_URL =
  'https://prod-12.westeurope.logic.azure.com/workflows/0123abcd/triggers/manual/paths/invoke?api-version=2016-06-01&sig=Zm9vYmFyYmF6cXV4';
const GOOD_ENV = {
  KEYWARDEN_CONFIG: 'examples/receivers.yaml',
  PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
  OPS_WEBHOOK_SECRET: SECRET,
  TEAMS_FINANCE_WORKFLOW_URL: TEAMS_URL,
};

function problemsWith(env: Record<string, string>, yaml?: string): string[] {
  let config = env.KEYWARDEN_CONFIG ?? 'examples/receivers.yaml';
  if (yaml !== undefined) {
    config = join(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(config, yaml);
  }
  try {
    loadConfig({ env: { ...GOOD_ENV, ...env, KEYWARDEN_CONFIG: config } });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // nothing secret in any problem, whatever went wrong
    for (const secret of [ROUTING_KEY, SECRET, 'sig=Zm9vYmFy', 'whsec_pasted'])
      expect(err.message).not.toContain(secret);
    return err.problems;
  }
}

describe('receivers in the policy', () => {
  it('the example in examples/receivers.yaml loads with its variables set, secrets read from the environment', () => {
    const config = loadConfig({ env: GOOD_ENV });
    expect(config.receivers.pagerduty.oncall?.routingKey.reveal()).toBe(ROUTING_KEY);
    expect(config.receivers.webhook.ops?.url).toBe('https://hooks.example/keywarden');
    expect(config.receivers.webhook.ops?.secrets.map((s) => s.reveal())).toEqual([SECRET]);
    expect(config.receivers.teams.finance?.url.reveal()).toBe(TEAMS_URL);
    expect(config.policy.routes[0]).toMatchObject({ pagerduty: ['oncall'], webhook: ['ops'], teams: [] });
    expect(config.policy.digests.finance?.webhook).toEqual(['ops']);
    // a Config is logged and printed: it must not carry a secret in clear
    const printed = JSON.stringify(config);
    for (const secret of [ROUTING_KEY, SECRET, 'Zm9vYmFyYmF6cXV4']) expect(printed).not.toContain(secret);
  });

  it('reads a receiver secret from the *_FILE variant of the variable it names', () => {
    const file = join(dir, 'routing-key');
    writeFileSync(file, `${ROUTING_KEY}\n`);
    const { PAGERDUTY_ROUTING_KEY: _, ...env } = GOOD_ENV;
    const config = loadConfig({ env: { ...env, PAGERDUTY_ROUTING_KEY_FILE: file } });
    expect(config.receivers.pagerduty.oncall?.routingKey.reveal()).toBe(ROUTING_KEY);
  });

  it('signs with both secrets while one is being rotated (two in the variable, separated by a space)', () => {
    const config = loadConfig({ env: { ...GOOD_ENV, OPS_WEBHOOK_SECRET: `${SECRET} ${OLD_SECRET}` } });
    expect(config.receivers.webhook.ops?.secrets.map((s) => s.reveal())).toEqual([SECRET, OLD_SECRET]);
  });

  it.each([
    [
      'a route naming an unknown receiver',
      { OPS_WEBHOOK_SECRET: SECRET },
      'receivers:\n  webhook: { ops: { url: "https://h.example/k", secret_env: OPS_WEBHOOK_SECRET } }\nroutes:\n  - { match: { kind: "usage.*" }, webhook: ["opps"] }\n',
      /routes\[0\]\.webhook\[0\]: "opps" is not a webhook receiver: receivers\.webhook has ops/,
    ],
    [
      'a digest naming an unknown webhook',
      {},
      'digests:\n  finance: { cron: "0 8 * * *", webhook: ["finops"] }\n',
      /digests\.finance\.webhook\[0\]: "finops" is not a webhook receiver: define it under receivers\.webhook/,
    ],
    [
      'a receiver whose variable is unset',
      { PAGERDUTY_ROUTING_KEY: '' },
      undefined,
      /receivers\.pagerduty\.oncall\.routing_key_env: PAGERDUTY_ROUTING_KEY is not set: export PAGERDUTY_ROUTING_KEY \(or PAGERDUTY_ROUTING_KEY_FILE/,
    ],
    [
      'a webhook secret that is not whsec_…',
      { OPS_WEBHOOK_SECRET: 'hunter2-is-my-password-0000' },
      undefined,
      /receivers\.webhook\.ops\.secret_env: OPS_WEBHOOK_SECRET is not a Standard Webhooks secret \(whsec_/,
    ],
    [
      'a routing key of the wrong shape',
      { PAGERDUTY_ROUTING_KEY: 'u+abcdefghijklmnop-0000' },
      undefined,
      /receivers\.pagerduty\.oncall\.routing_key_env: PAGERDUTY_ROUTING_KEY \(\*\*\*\*.*\) is not an Events API v2 integration key/,
    ],
    [
      'a secret pasted where the variable name goes (never quoted back)',
      {},
      'receivers:\n  webhook: { ops: { url: "https://h.example/k", secret_env: "whsec_pastedAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } }\n',
      /receivers\.webhook\.ops\.secret_env: names an environment variable that holds the secret/,
    ],
    [
      'a webhook over plain http to another host',
      {},
      'receivers:\n  webhook: { ops: { url: "http://hooks.example/k", secret_env: OPS_WEBHOOK_SECRET } }\n',
      /receivers\.webhook\.ops\.url: plain http:\/\/ to hooks\.example sends alerts in clear text: use https:\/\/, or set KEYWARDEN_ALLOW_INSECURE_HTTP=1/,
    ],
    [
      'a Teams variable that holds no URL (the URL itself is not quoted)',
      { TEAMS_FINANCE_WORKFLOW_URL: 'sig=Zm9vYmFy-not-a-url' },
      undefined,
      /receivers\.teams\.finance\.url_env: TEAMS_FINANCE_WORKFLOW_URL is not a URL/,
    ],
  ])('%s is refused, naming the field and the fix', (_name, env, yaml, expected) => {
    const problems = problemsWith(env, yaml);
    expect(problems.join('\n')).toMatch(expected);
  });

  it('unknown receivers are found without the environment, when the policy is parsed', () => {
    const problems: string[] = [];
    parsePolicy('routes:\n  - { match: { kind: "usage.*" }, teams: ["finance"] }\n', 'keywarden.yaml', problems);
    expect(problems).toEqual([
      `keywarden.yaml: routes[0].teams[0]: "finance" is not a teams receiver: define it under receivers.teams (see the README's section on teams)`,
    ]);
  });

  it('check-config shows each receiver and its variable with the values masked', () => {
    const config = loadConfig({ env: GOOD_ENV });
    const shown = describeReceivers(config.policy.receivers, config.receivers);
    expect(shown).toEqual({
      pagerduty: { oncall: { routing_key_env: 'PAGERDUTY_ROUTING_KEY', routing_key: '****CDEF' } },
      webhook: {
        ops: { url: 'https://hooks.example/keywarden', secret_env: 'OPS_WEBHOOK_SECRET', secrets: ['****LaSw'] },
      },
      teams: {
        finance: { url_env: 'TEAMS_FINANCE_WORKFLOW_URL', url: 'https://prod-12.westeurope.logic.azure.com/****' },
      },
    });
  });
});
