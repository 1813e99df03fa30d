import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createLogger, scrubError, scrubSecrets } from '../../src/log.ts';

const ADMIN_KEY = 'sk-ant-admin01-CANARYabcdefghijklmnopqrstuvwxyz0123456789-ZZZZ';
const API_KEY = 'sk-ant-api03-CANARYabcdefghijklmnop_qrstuvwxyz-0123';
const SLACK = 'xoxb-1234567890-CANARY-abcdefghijkl';
const DB_URL = 'postgres://keywarden:CANARYpassw0rd@db.internal:5432/keywarden';

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger({ level: 'trace', destination: stream }), text: () => chunks.join('') };
}

describe('logging never carries a secret', () => {
  it('masks secrets inside error messages and stacks', () => {
    const { log, text } = capture();
    const err = new Error(`request failed with x-api-key ${ADMIN_KEY} via ${DB_URL}`);
    log.error({ err }, `boom while using ${SLACK}`);
    const out = text();
    expect(out).not.toContain('CANARY');
    expect(out).toContain('sk-ant-admin01-****');
    expect(out).toContain('xoxb-****');
    expect(out).toContain('postgres://keywarden:****@db.internal');
  });

  it("drops the arguments a library's error carries of the command it failed (a Redis login's password)", () => {
    const { log, text } = capture();
    // as ioredis rejects the commands waiting behind a refused login
    const err = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'svc', 'CANARYright-pass-123'] },
    });
    const wrapped = new Error('could not connect', { cause: err });
    log.warn({ err }, 'refused');
    log.warn({ err: wrapped }, 'refused');
    log.warn({ err: Object.assign(new Error('bad'), { args: ['CANARYpositional'] }) }, 'refused');
    const out = text();
    expect(out).not.toContain('CANARY');
    expect(out).toContain('WRONGPASS');
    expect(JSON.parse(out.split('\n')[0]!).err.command).toBe('hello');
    const stored = scrubError(err) as Error & { command?: unknown };
    expect(stored.command).toBeUndefined();
    expect(stored.message).toContain('WRONGPASS');
  });

  it('masks secrets in nested fields, URLs and debug lines', () => {
    const { log, text } = capture();
    log.debug(
      { request: { url: `http://x/?token=${SLACK}`, headers: { 'x-api-key': ADMIN_KEY } }, key: API_KEY },
      'debug',
    );
    log.info({ config: { adminKey: new Secret(ADMIN_KEY), password: 'CANARY-plain' } }, 'config');
    const out = text();
    expect(out).not.toContain('CANARY');
    expect(out).toContain('[redacted]');
  });

  it('Secret prints masked everywhere but reveal()', () => {
    const s = new Secret(ADMIN_KEY);
    expect(String(s)).not.toContain('CANARY');
    expect(JSON.stringify({ s })).not.toContain('CANARY');
    expect(`${s}`).toBe('sk-ant-admin01-****ZZZZ');
    expect(s.reveal()).toBe(ADMIN_KEY);
  });

  it.each([
    [ADMIN_KEY, 'sk-ant-admin01-****ZZZZ'],
    [API_KEY, 'sk-ant-api03-****0123'],
    ['redis://:CANARYsecret@cache:6379', 'redis://:****@cache:6379'],
    ['smtps://mailer:CANARY@smtp.example.com:465', 'smtps://mailer:****@smtp.example.com:465'],
    [
      'nothing secret here: apikey_01ABC and hint sk-ant-api03-R2D...igAA',
      'nothing secret here: apikey_01ABC and hint sk-ant-api03-R2D...igAA',
    ],
  ])('scrubSecrets(%s)', (input, expected) => {
    expect(scrubSecrets(input)).toBe(expected);
  });
});
