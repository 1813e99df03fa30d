import { Redis } from 'ioredis';
import type { Secret } from '../config/secret.ts';
import type { Logger } from '../log.ts';

/**
 * One ioredis connection. `maxRetriesPerRequest: null` is what BullMQ workers need: a command waits for Redis to
 * come back instead of failing the job, so a Redis restart is a pause, not a crash.
 */
export function createRedis(url: Secret | string, name = 'keywarden'): Redis {
  const redis = new Redis(typeof url === 'string' ? url : url.reveal(), {
    maxRetriesPerRequest: null,
    connectionName: name,
    // reconnect with a capped backoff forever: the worker must resume by itself when Redis returns
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 5), 5_000),
  });
  // Without a listener, ioredis prints connection errors to stderr and may crash the process on some paths;
  // reconnection is automatic and /readyz reports the outage.
  redis.on('error', () => {});
  return redis;
}

/**
 * BullMQ keeps its jobs and schedules in Redis keys; an eviction policy other than noeviction lets Redis drop them
 * under memory pressure, and jobs and schedules then vanish silently. Managed Redis may forbid CONFIG: say so.
 */
export async function checkRedisSettings(redis: Redis, log: Logger): Promise<void> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = reply[1];
    if (policy && policy !== 'noeviction') {
      log.warn(
        { maxmemoryPolicy: policy },
        `Redis maxmemory-policy is "${policy}": Redis may evict queued jobs and schedules under memory pressure. Set maxmemory-policy noeviction.`,
      );
    }
  } catch (err) {
    log.warn({ err }, 'could not read Redis maxmemory-policy (CONFIG GET refused); make sure it is noeviction');
  }
}
