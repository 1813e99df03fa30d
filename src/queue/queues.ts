import { Queue } from 'bullmq';
import type { RedisConnection } from './connection.ts';

/**
 * Queues by kind of work, so a slow backfill on `ingest` never delays a Slack post on `notify`:
 * - poll: the minute usage poll alone, a slot per organization, so neither an hourly job nor another organization's
 *   slow Admin API ever holds up an organization's poll
 * - ingest: reads from the Admin API into Postgres (inventory, costs)
 * - analyze: decisions over stored data (rotation, projections, anomalies)
 * - notify: delivery of the outbox and digests
 * - maintenance: retention and housekeeping
 */
export const QUEUE_NAMES = ['poll', 'ingest', 'analyze', 'notify', 'maintenance'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/**
 * Every key BullMQ writes starts with the prefix. The braces are a Redis Cluster hash tag: only `keywarden` is hashed,
 * so every key of every queue lands in one slot, as BullMQ's multi-key scripts need (a prefix without one fails there
 * with CROSSSLOT). On a single Redis the braces are just characters.
 */
export const DEFAULT_PREFIX = '{keywarden}';

export type Queues = Record<QueueName, Queue>;

export function createQueues(connection: RedisConnection, prefix: string): Queues {
  const entries = QUEUE_NAMES.map((name) => [
    name,
    new Queue(name, {
      connection,
      prefix,
      defaultJobOptions: {
        // history for `keywarden` operators, bounded so Redis does not grow without end
        removeOnComplete: { count: 200, age: 24 * 3600 },
        removeOnFail: { count: 500, age: 7 * 24 * 3600 },
      },
    }),
  ]);
  return Object.fromEntries(entries) as Queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
