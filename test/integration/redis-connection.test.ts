import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/services.ts';
import { openRedis } from '../../src/queue/connection.ts';
import { captureLog } from '../support/context.ts';
import { redisUrl } from '../support/db.ts';

/**
 * How openRedis chooses on a Redis that is not a cluster (the suite's): the single-node connection, whatever the
 * prefix; the same when an ACL refuses INFO (said in the log); and, for a CLI command, after a bounded wait when
 * Redis does not answer. The cluster side is test/e2e/redis-cluster.test.ts.
 */

const user = `kwtest-noinfo-${randomBytes(4).toString('hex')}`;
const password = `pw-${randomBytes(8).toString('hex')}`;
// a user that exists but is switched off: its login fails as a wrong password's does
const offUser = `kwtest-off-${randomBytes(4).toString('hex')}`;
const offPassword = `right-pass-${randomBytes(8).toString('hex')}`;
let admin: Redis;

const urlFor = (username: string, pass: string) => {
  const url = new URL(redisUrl());
  url.username = username;
  url.password = pass;
  return url.toString();
};

beforeAll(async () => {
  admin = new Redis(redisUrl());
  await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all', '-info');
  await admin.call('ACL', 'SETUSER', offUser, 'off', `>${offPassword}`, '~*', '&*', '+@all');
});
afterAll(async () => {
  await admin.call('ACL', 'DELUSER', user, offUser);
  admin.disconnect();
});

describe('openRedis on a single Redis', () => {
  it('keeps the single-node connection, and takes a prefix without braces there', async () => {
    const { log, lines } = captureLog();
    const redis = await openRedis(redisUrl(), { prefix: 'kwtest-plain', log });
    expect(redis).toBeInstanceOf(Redis);
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
    expect(lines.join('')).not.toMatch(/cluster/);
  });

  it('with INFO refused by an ACL: says so and keeps the single-node connection, which works', async () => {
    const { log, lines } = captureLog();
    const url = new URL(redisUrl());
    url.username = user;
    url.password = password;
    const redis = await openRedis(url.toString(), { prefix: '{kwtest}', log });
    expect(redis).toBeInstanceOf(Redis);
    expect(await redis.set(`{kwtest}:${user}`, '1', 'EX', 10)).toBe('OK');
    redis.disconnect();
    expect(lines.join('')).toMatch(/could not ask Redis whether it is a cluster \(INFO refused\)/);
    expect(lines.join('')).not.toContain(password);
  });

  it.each([
    ['a user switched off', offUser, offPassword],
    ['a user that does not exist', `kwtest-none-${randomBytes(4).toString('hex')}`, offPassword],
    ['a wrong password', user, offPassword],
  ])(
    'with %s: fails naming the failed login, the user and the host, and never logs the password',
    async (_, who, pass) => {
      const { log, lines } = captureLog();
      const { host } = new URL(redisUrl());
      const failure = await openRedis(urlFor(who, pass), { prefix: '{kwtest}', log }).then(
        () => new Error('openRedis succeeded'),
        (err: Error) => err,
      );
      expect(failure.message).toMatch(/authentication failed/);
      expect(failure.message).toContain(`user "${who}"`);
      expect(failure.message).toContain(host);
      for (const text of [failure.message, failure.stack ?? '', lines.join('')]) {
        expect(text).not.toContain(pass);
        expect(text).not.toContain(encodeURIComponent(pass));
      }
    },
  );

  it('for a command that may not need Redis: gives up asking after the wait, with the single-node connection', async () => {
    const { log, lines } = captureLog();
    const port = await freePort();
    const redis = await openRedis(`redis://127.0.0.1:${port}`, {
      prefix: '{kwtest}',
      log,
      answerWithinMs: 300,
    });
    expect(redis).toBeInstanceOf(Redis);
    expect(redis.status).not.toBe('ready');
    redis.disconnect();
    // on a cluster that answered late, this connection then meets MOVED: the log says why
    expect(lines.join('')).toMatch(/cluster mode could not be checked/);
    expect(lines.join('')).toContain(`127.0.0.1:${port}`);
  });
});
