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
let admin: Redis;

beforeAll(async () => {
  admin = new Redis(redisUrl());
  await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all', '-info');
});
afterAll(async () => {
  await admin.call('ACL', 'DELUSER', user);
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

  it('for a command that may not need Redis: gives up asking after the wait, with the single-node connection', async () => {
    const { log } = captureLog();
    const redis = await openRedis(`redis://127.0.0.1:${await freePort()}`, {
      prefix: '{kwtest}',
      log,
      answerWithinMs: 300,
    });
    expect(redis).toBeInstanceOf(Redis);
    expect(redis.status).not.toBe('ready');
    redis.disconnect();
  });
});
