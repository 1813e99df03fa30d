import type { z } from 'zod';
import type { JobContext } from '../context.ts';
import type { QueueName } from './queues.ts';

/**
 * One job: its name, its queue, its default schedule (the policy file's `schedules` may override it), the schema of
 * its payload, and a short handler. Handlers must be safe to run twice (BullMQ runs jobs at least once) and catch
 * up from a watermark in Postgres (BullMQ does not replay missed ticks).
 */
export interface JobDefinition<P extends z.ZodType = z.ZodType> {
  name: string;
  queue: QueueName;
  /** Cron expression in the organization's timezone, or null for jobs that only run when enqueued. */
  schedule: string | null;
  payload: P;
  /** Attempts before a run is given up (the next tick starts afresh from the watermark). Default 5. */
  attempts?: number;
  /** Jobs to enqueue after a successful run (e.g. detect-anomalies after poll-usage). */
  followedBy?: string[];
  handler(ctx: JobContext, payload: z.infer<P>): Promise<unknown>;
}

export function defineJob<P extends z.ZodType>(definition: JobDefinition<P>): JobDefinition<P> {
  return definition;
}
