import type { z } from 'zod';
import type { AdminClient } from './anthropic/client.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config/index.ts';
import type { Repos } from './db/repos/index.ts';
import type { Logger } from './log.ts';
import type { Notifier } from './notify/notifier.ts';

/**
 * The shipped jobs by name. Empty here: jobs/index.ts fills it (declaration merging) from its registry, so `JobName`
 * is derived from that one list while src/ never imports jobs/ (which imports src/).
 */
// biome-ignore lint/suspicious/noEmptyInterface: jobs/index.ts adds the members
export interface JobRegistry {}

/** The name of a job in jobs/index.ts: a job name typed anywhere else is checked against the registry. */
export type JobName = keyof JobRegistry & string;

/** What a job accepts as its payload, by its schema in the registry. */
type JobPayload<N extends JobName> = JobRegistry[N] extends { payload: infer P extends z.ZodType } ? z.input<P> : never;

/** Hands a job to the worker (validated against its payload schema first); resolves once it is queued. */
export type Enqueue = <N extends JobName>(name: N, payload: JobPayload<N>) => Promise<void>;

/** Everything a job reaches the world through. Built once in app.ts; no module-level singletons. */
export interface Context {
  config: Config;
  /** Postgres through one repository per table family (src/db/repos/). */
  repos: Repos;
  admin: AdminClient;
  notifier: Notifier;
  clock: Clock;
  log: Logger;
  /** Queues another job for the worker, e.g. the delivery of what a run has just raised. */
  enqueue: Enqueue;
  /**
   * Progress for a person waiting at a terminal: `keywarden run <job> --once` prints these lines; the worker leaves
   * it out (its log has the same facts).
   */
  progress?: (line: string) => void;
}

/** The Context as a handler sees it: a logger bound to the job, and a signal that fires on shutdown. */
export interface JobContext extends Context {
  /** Aborted when the worker is shutting down: stop at the next safe point (progress is in the watermark). */
  signal: AbortSignal;
  job: { id: string; name: string; attempt: number };
}
