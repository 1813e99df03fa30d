import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { AdminKeyRejectedError } from '../anthropic/errors.ts';
import type { Context, Enqueue, JobContext, JobName } from '../context.ts';
import { withAdvisoryLock } from '../db/advisory-lock.ts';
import type { Db } from '../db/index.ts';
import { watchAdminKey } from '../health/blind.ts';
import { type JobWatch, recordJobFailure } from '../health/jobs.ts';
import type { Metrics } from '../http/metrics.ts';
import { scrubError, scrubSecrets } from '../log.ts';
import { QUEUE_NAMES, type QueueName, type Queues } from './queues.ts';
import type { Registry } from './registry.ts';
import { retryOptions } from './schedules.ts';

export interface WorkerPool {
  workers: Worker[];
  /** Fired on shutdown: handlers see it as `ctx.signal` and stop at their next safe point. */
  abort(): void;
  /** Waits for running jobs (force: abandon them; BullMQ hands them to another worker once their lock expires). */
  close(force?: boolean): Promise<void>;
}

interface WorkerPoolOptions {
  connection: Redis;
  prefix: string;
  queues: Queues;
  metrics: Metrics;
  /** Jobs run at once per queue. Analysis and ingestion are mostly waiting on Postgres and the Admin API. */
  concurrency?: Partial<Record<QueueName, number>>;
  /** Watches the runs' outcomes (keywarden.job_failing); without it outcomes are not recorded. */
  jobWatch?: JobWatch;
  /**
   * A pool of its own for the run locks (a job that may not overlap itself holds one connection for its run): on
   * the Context's pool, runs holding every connection would wait forever for one more. Without it runs may overlap.
   */
  runLocks?: Db;
  /** The name BullMQ records as each job's `processedBy` and lists in `getWorkers()`: which replica ran what. */
  name?: string;
}

/**
 * Runs `fn` as the one run of `job` in progress anywhere (a worker's or `run --once`), holding a Postgres session lock
 * named for the job on a connection of `db`: a process that dies drops its connection, and the lock with it. Null at
 * once when another run holds it. A job whose definition says it `overlaps` runs without the lock.
 */
export async function withRunLock<T>(
  db: Db,
  registry: Registry,
  job: string,
  fn: () => Promise<T>,
): Promise<{ value: T } | null> {
  if (registry.get(job)?.overlaps) return { value: await fn() };
  return withAdvisoryLock(db, `keywarden.job:${job}`, fn);
}

/** Enqueues a job by name for the worker, with its retry options; a payload its schema refuses is not queued. */
export async function enqueueJob(
  registry: Registry,
  queues: Queues,
  name: string,
  data: unknown = {},
  jobId?: string,
): Promise<Job> {
  const def = registry.get(name);
  if (!def) throw new Error(`no job named "${name}" (jobs: ${[...registry.keys()].join(', ')})`);
  const parsed = def.payload.safeParse(data);
  if (!parsed.success) throw new Error(`job ${name}: invalid payload: ${describeIssues(parsed.error)}`);
  return queues[def.queue].add(name, parsed.data, {
    ...retryOptions(def.attempts ?? 5),
    ...(jobId ? { jobId } : {}),
  });
}

/** `ctx.enqueue` over the worker's queues. */
export function enqueuer(registry: Registry, queues: Queues): Enqueue {
  return async (name, payload) => {
    await enqueueJob(registry, queues, name, payload);
  };
}

/**
 * The outbox's delivery job, enqueued when an alert is raised outside a job run (the admin key refused, jobs
 * failing) so it goes out now rather than at the next minute's run. Worker setups without the job (tests) only
 * record the alert.
 */
const DELIVERY_JOB = 'deliver-notifications' satisfies JobName;

export async function deliverSoon(ctx: Pick<Context, 'enqueue'>, registry: Registry): Promise<void> {
  if (registry.has(DELIVERY_JOB)) await ctx.enqueue(DELIVERY_JOB, {});
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ');
}

/** Runs one job's handler with a job-scoped context. Shared by the worker and `keywarden run <job> --once`. */
export async function runHandler(
  ctx: Context,
  registry: Registry,
  name: string,
  data: unknown,
  meta: { id: string; attempt: number; signal: AbortSignal },
): Promise<unknown> {
  const def = registry.get(name);
  if (!def) {
    throw new UnrecoverableError(`no job named "${name}" in jobs/index.ts (jobs: ${[...registry.keys()].join(', ')})`);
  }
  const parsed = def.payload.safeParse(data ?? {});
  if (!parsed.success) throw new UnrecoverableError(`job ${name}: invalid payload: ${describeIssues(parsed.error)}`);
  const jobCtx: JobContext = {
    ...ctx,
    log: ctx.log.child({ job: name, jobId: meta.id, attempt: meta.attempt }),
    signal: meta.signal,
    job: { id: meta.id, name, attempt: meta.attempt },
  };
  return await def.handler(jobCtx, parsed.data);
}

export function startWorkers(ctx: Context, registry: Registry, options: WorkerPoolOptions): WorkerPool {
  const controller = new AbortController();
  const blind = watchAdminKey(ctx, () => deliverSoon(ctx, registry));
  // An outcome that cannot be recorded (Postgres down) must not change the job's own outcome.
  const recordOutcome = async (record: () => Promise<void>) => {
    if (!options.jobWatch) return;
    try {
      await record();
      await options.jobWatch.check();
    } catch (err) {
      ctx.log.warn({ err }, 'could not record the job outcome');
    }
  };
  const usedQueues = QUEUE_NAMES.filter((q) => [...registry.values()].some((d) => d.queue === q));
  const runJob = async (job: Job) => {
    const stopTimer = options.metrics.jobDuration.startTimer({ job: job.name });
    try {
      const result = await runHandler(ctx, registry, job.name, job.data, {
        id: job.id ?? '?',
        attempt: job.attemptsMade + 1,
        signal: controller.signal,
      });
      options.metrics.jobRuns.inc({ job: job.name, outcome: 'completed' });
      await recordOutcome(() => ctx.repos.jobRuns.recordSuccess(job.name, ctx.clock.now()));
      for (const next of registry.get(job.name)?.followedBy ?? []) {
        // one chained run per parent run, even if this job is retried after a crash past this point
        await enqueueJob(registry, options.queues, next, {}, `${next}-after-${job.id}`);
      }
      return result;
    } catch (err) {
      options.metrics.jobRuns.inc({ job: job.name, outcome: 'failed' });
      ctx.log.warn({ err, job: job.name, jobId: job.id, attempt: job.attemptsMade + 1 }, 'job failed');
      // A run has failed once its last attempt has (an attempt BullMQ retries may still succeed). A refused
      // admin key fails every job at once, and keywarden.blind already says so: not each job's failure.
      const lastAttempt = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (lastAttempt && !(err instanceof AdminKeyRejectedError)) {
        await recordOutcome(() => recordJobFailure(ctx, job.name, err, ctx.clock.now()));
      }
      // The same key is refused again in 2 s: no retries; the next scheduled run tries again.
      if (err instanceof AdminKeyRejectedError) throw new UnrecoverableError(scrubSecrets(err.message));
      // BullMQ stores the message and the stack in Redis, where the log's scrubber does not reach
      throw scrubError(err);
    } finally {
      stopTimer();
      // after every job, not only Admin API jobs: a key deactivation failing inside enforce-rotation is
      // caught there, yet the client saw the 401
      await blind.check();
    }
  };
  // BullMQ's own lock keeps one job (one tick) on one replica; this one keeps the next tick of the same job from
  // starting while the last still runs (a long backfill, on another replica or another slot of this one).
  const runAlone = async (job: Job) => {
    if (!options.runLocks) return runJob(job);
    let started = false;
    let ran: { value: unknown } | null;
    try {
      ran = await withRunLock(options.runLocks, registry, job.name, () => {
        started = true;
        return runJob(job);
      });
    } catch (err) {
      if (started) throw err; // the run's own failure, counted and logged by runJob
      // no connection for the lock (Postgres down): the attempt fails before the handler, and BullMQ retries it
      options.metrics.jobRuns.inc({ job: job.name, outcome: 'failed' });
      ctx.log.warn({ err, job: job.name, jobId: job.id }, 'job failed: could not take its run lock in Postgres');
      throw scrubError(err);
    }
    if (ran !== null) return ran.value;
    options.metrics.jobRuns.inc({ job: job.name, outcome: 'skipped' });
    ctx.log.info({ job: job.name, jobId: job.id }, 'previous run still in progress: tick skipped');
    return { skipped: `a run of ${job.name} is in progress` };
  };
  const workers = usedQueues.map(
    (queueName) =>
      new Worker(queueName, runAlone, {
        ...(options.name ? { name: options.name } : {}),
        connection: options.connection,
        prefix: options.prefix,
        concurrency: options.concurrency?.[queueName] ?? (queueName === 'notify' ? 4 : 2),
        // a lost worker's job is picked up again after this long
        lockDuration: 60_000,
        stalledInterval: 30_000,
        maxStalledCount: 2,
      }),
  );
  for (const w of workers) {
    w.on('error', (err) => ctx.log.warn({ err, queue: w.name }, 'worker connection error'));
  }
  return {
    workers,
    abort: () => controller.abort(new Error('shutting down')),
    close: async (force = false) => {
      if (force) {
        // BullMQ's close(true) after a graceful close() returns the graceful promise (still waiting for the job),
        // so a forced stop does not wait at all: the process exits, the job's lock expires, and another worker
        // runs it again from its watermark.
        for (const w of workers) w.close(true).catch(() => {});
        return;
      }
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
