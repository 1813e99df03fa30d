import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, redisUrl, type TestDatabase, uniquePrefix } from '../support/db.ts';
import { spawnNode } from '../support/processes.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

const env = () => ({
  DATABASE_URL: t.url,
  REDIS_URL: redisUrl(),
  ANTHROPIC_ADMIN_KEY: 'sk-ant-admin01-test-insecure-http-0000',
  ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
  SLACK_BOT_TOKEN: 'xoxb-test-insecure-http-0000',
  SLACK_API_URL: 'http://slack-relay.internal.example/api/',
  KW_PREFIX: uniquePrefix(),
});

describe('plain http to another host', () => {
  it('refused: the worker does not start, and says which variable and how to allow it', async () => {
    const w = spawnNode('test/support/failing-worker.ts', [], env());
    // a worker that starts anyway would run until stopped
    const stop = setTimeout(() => w.proc.kill('SIGKILL'), 15_000);
    const { code } = await w.exited;
    clearTimeout(stop);
    expect(code).not.toBeNull();
    expect(code).not.toBe(0);
    expect(w.output()).toMatch(/SLACK_API_URL: plain http:\/\/ to a host other than this machine/);
    expect(w.output()).toMatch(/KEYWARDEN_ALLOW_INSECURE_HTTP=1/);
  });

  it('allowed with KEYWARDEN_ALLOW_INSECURE_HTTP=1: the worker starts and warns, naming the variable and host', async () => {
    const w = spawnNode('test/support/failing-worker.ts', [], { ...env(), KEYWARDEN_ALLOW_INSECURE_HTTP: '1' });
    try {
      await w.waitForOutput(/worker started/);
      const warning = w
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; variable?: string })
        .find((l) => l.variable === 'SLACK_API_URL');
      expect(warning?.level).toBe(40);
      expect(warning?.msg).toMatch(/SLACK_API_URL uses plain http:\/\/ to slack-relay\.internal\.example/);
    } finally {
      w.proc.kill('SIGTERM');
      await w.exited;
    }
  });
});
