import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { maskUrl } from '../../src/config/secret.ts';
import { scrubSecrets } from '../../src/log.ts';

function problemsFor(env: Record<string, string>): string[] {
  try {
    loadConfig({ env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml', ...env } });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe('URLs from the environment', () => {
  it.each([
    ['postgres://kw:CANARYpw@db:5432/kw?sslmode=require&password=CANARYq', 'sslmode=require', 'password=****'],
    ['postgres://kw@db/kw?sslpassword=CANARYssl', 'kw@db/kw', 'sslpassword=****'],
    ['redis://cache:6379/0?password=CANARYredis', 'cache:6379', 'password=****'],
    ['https://proxy.example/api?access_token=CANARYtok&x=1', 'x=1', 'access_token=****'],
    ['https://hooks.example/x?api_key=CANARYkey', 'hooks.example', 'api_key=****'],
  ])('maskUrl(%s) masks the password and every secret-named query value', (url, kept, masked) => {
    const out = maskUrl(url);
    expect(out).not.toContain('CANARY');
    expect(out).toContain(kept);
    expect(out).toContain(masked);
  });

  it.each([
    ['a query-string password', 'connecting to postgres://kw@db/kw?password=CANARYpw failed', 'password=****'],
    [
      'a token after other parameters',
      'GET https://x.example/a?page=2&token=CANARYtok#frag',
      '?page=2&token=****#frag',
    ],
    ['a secret in a redis URL query', 'redis://cache:6379?sslmode=x&secret=CANARYs next', 'secret=**** next'],
    ['an api_key', 'url=http://x/?api_key=CANARYkey"', 'api_key=****"'],
  ])('the log scrubber masks %s', (_name, line, expected) => {
    const out = scrubSecrets(line);
    expect(out).not.toContain('CANARY');
    expect(out).toContain(expected);
  });

  it('a JSON log line stays valid JSON when a masked value ends at an escaped quote', () => {
    const line = JSON.stringify({ msg: 'GET http://x/?token=CANARYtok"quoted" failed' });
    const out = scrubSecrets(line);
    expect(out).not.toContain('CANARY');
    expect(JSON.parse(out).msg).toBe('GET http://x/?token=****"quoted" failed');
  });

  it('the scrubber leaves harmless query strings alone', () => {
    const line = 'GET /v1/organizations/usage_report/messages?starting_at=2026-01-01&bucket_width=1m&page=abc';
    expect(scrubSecrets(line)).toBe(line);
  });

  it.each([
    ['ANTHROPIC_BASE_URL', 'https://kw:CANARYproxy@proxy.example/'],
    ['ANTHROPIC_BASE_URL', 'https://token@proxy.example/'],
    ['SLACK_API_URL', 'https://bot:CANARY@slack-proxy.example/api/'],
    ['PAGERDUTY_EVENTS_URL', 'https://u:CANARY@events.example'],
  ])('%s with credentials in it is refused, naming the variable and not the password', (name, url) => {
    const problems = problemsFor({ [name]: url });
    expect(problems.join('\n')).toMatch(
      new RegExp(`${name}: holds credentials \\(user or password\\); a base URL must not carry them`),
    );
    expect(problems.join('\n')).not.toContain('CANARY');
  });

  it.each([
    ['ANTHROPIC_BASE_URL', 'http://api.example.com'],
    ['SLACK_API_URL', 'http://10.0.0.7:8080/api/'],
    ['PAGERDUTY_EVENTS_URL', 'http://events.internal'],
  ])('%s over plain http to another host (%s) is refused without the opt-in', (name, url) => {
    const problems = problemsFor({ [name]: url });
    expect(problems.join('\n')).toMatch(
      new RegExp(`${name}: plain http:// to a host other than this machine .*KEYWARDEN_ALLOW_INSECURE_HTTP=1`),
    );
  });

  it.each(['http://127.0.0.1:4646', 'http://localhost:4646/', 'http://[::1]:4646', 'https://api.anthropic.com'])(
    'ANTHROPIC_BASE_URL=%s (loopback http or https) is accepted',
    (url) => {
      expect(problemsFor({ ANTHROPIC_BASE_URL: url })).toEqual([]);
    },
  );

  it('the opt-in accepts plain http to another host and names it for a warning', () => {
    const config = loadConfig({
      env: {
        KEYWARDEN_CONFIG: 'examples/keywarden.yaml',
        ANTHROPIC_BASE_URL: 'http://emulator:8787',
        SLACK_API_URL: 'http://slack-standin/api/',
        KEYWARDEN_ALLOW_INSECURE_HTTP: '1',
      },
    });
    expect(config.env.insecureHttp).toEqual([
      { variable: 'ANTHROPIC_BASE_URL', host: 'emulator' },
      { variable: 'SLACK_API_URL', host: 'slack-standin' },
    ]);
  });

  it('the opt-in only takes 1', () => {
    expect(problemsFor({ KEYWARDEN_ALLOW_INSECURE_HTTP: 'yes' }).join('\n')).toMatch(
      /KEYWARDEN_ALLOW_INSECURE_HTTP: "yes": set it to 1 to allow plain http:\/\/ to other hosts, or leave it unset/,
    );
  });
});
