import type { z } from 'zod';
import type { Policy } from '../config/policy.ts';
import type { JobContext } from '../context.ts';
import type { QueueName } from './queues.ts';

/**
 * One job: its name, its queue, its default schedule (the policy file's `schedules` may override it), the schema of
 * its payload, and a short handler. Handlers must be safe to run twice (BullMQ runs jobs at least once) and catch
 * up from a watermark in Postgres (BullMQ does not replay missed ticks).
 */
export interface JobDefinition<N extends string = string, P extends z.ZodType = z.ZodType, F extends string = string> {
  name: N;
  queue: QueueName;
  /**
   * Cron expression in the organization's timezone; null for jobs that only run when enqueued; or a function of the
   * policy, for a job whose schedule is a section of it (a digest's `cron`), null when the policy does not ask.
   */
  schedule: string | null | ((policy: Policy) => string | null);
  payload: P;
  /** Attempts before a run is given up (the next tick starts afresh from the watermark). Default 5. */
  attempts?: number;
  /**
   * Whether two runs of this job may run at once (on two replicas, or two slots of one). By default they may not: a
   * run holds a Postgres lock named for the job, and a tick that finds it held is skipped (the run in progress
   * catches up from the watermark). A skipped run is dropped with its payload: a job whose payload names work to do,
   * and work leased row by row (where more runs share the load), set `true`.
   */
  overlaps?: boolean;
  /** Jobs to enqueue after a successful run (e.g. detect-anomalies after poll-usage); defineJobs checks the names. */
  followedBy?: readonly F[];
  handler(ctx: JobContext, payload: z.infer<P>): Promise<unknown>;
}

/** A job definition whose name and chained names stay literal types, for defineJobs and `JobName`. */
export function defineJob<const N extends string, P extends z.ZodType, const F extends string = never>(
  definition: JobDefinition<N, P, F>,
): JobDefinition<N, P, F> {
  return definition;
}

type ChainsOf<J> = J extends JobDefinition<string, z.ZodType, infer F> ? F : never;

/** Compiles only when every `followedBy` names a job in the list; else names the missing ones. */
type ChainsListed<J extends readonly JobDefinition[]> = [Exclude<ChainsOf<J[number]>, J[number]['name']>] extends [
  never,
]
  ? unknown
  : { followedByNamesAJobNotInTheList: Exclude<ChainsOf<J[number]>, J[number]['name']> };

/**
 * The registry (jobs/index.ts): a `followedBy` naming a job that is not in it does not compile. The worker checks
 * the same at start (duplicates, queues, schedules too), for lists built where the compiler cannot see them.
 */
export function defineJobs<const J extends readonly JobDefinition[]>(jobs: J & ChainsListed<J>): J {
  return jobs;
}
