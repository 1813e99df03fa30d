import { createHash } from 'node:crypto';
import type { RedisConnection } from '../queue/connection.ts';
import { DEFAULT_PREFIX } from '../queue/queues.ts';
import { MAX_SKEW_SECONDS } from './verify.ts';

/**
 * The replay guard: a signed request (by its signature) or a Socket Mode envelope (by its id) is handled once. The
 * mark lives in Redis a little longer than the signature window, after which the timestamp check refuses the
 * request anyway; every replica shares it. Only a digest of the identity is stored. Its key starts with the
 * deployment's queue prefix (`prefix`, default {keywarden}): beside BullMQ's keys, in their hash slot on a Redis
 * Cluster, and apart from another deployment's on the same Redis.
 */
export async function firstDelivery(
  guard: { redis: RedisConnection; prefix?: string },
  kind: 'signature' | 'envelope',
  id: string,
): Promise<boolean> {
  const digest = createHash('sha256').update(id).digest('hex');
  const key = `${guard.prefix ?? DEFAULT_PREFIX}:keywarden:slack-press:${kind}:${digest}`;
  const set = await guard.redis.set(key, '1', 'EX', 2 * MAX_SKEW_SECONDS, 'NX');
  return set === 'OK';
}
