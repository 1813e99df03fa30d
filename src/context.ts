import type { Redis } from 'ioredis';
import type { AdminClient } from './anthropic/client.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config/index.ts';
import type { Db } from './db/index.ts';
import type { Repos } from './db/repos/index.ts';
import type { Logger } from './log.ts';
import type { Notifier } from './notify/notifier.ts';

/** Everything a job reaches the world through. Built once in app.ts; no module-level singletons. */
export interface Context {
  config: Config;
  db: Db;
  /** Postgres through one repository per table family (src/db/repos/). */
  repos: Repos;
  redis: Redis;
  admin: AdminClient;
  notifier: Notifier;
  clock: Clock;
  log: Logger;
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
