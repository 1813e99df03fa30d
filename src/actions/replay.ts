import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { MAX_SKEW_SECONDS } from './verify.ts';

/**
 * The replay guard: a signed request (by its signature) or a Socket Mode envelope (by its id) is handled once. The
 * mark lives in Redis a little longer than the signature window, after which the timestamp check refuses the
 * request anyway; every replica shares it. Only a digest of the identity is stored.
 */
export async function firstDelivery(redis: Redis, kind: 'signature' | 'envelope', id: string): Promise<boolean> {
  const digest = createHash('sha256').update(id).digest('hex');
  const set = await redis.set(`keywarden:slack-press:${kind}:${digest}`, '1', 'EX', 2 * MAX_SKEW_SECONDS, 'NX');
  return set === 'OK';
}
