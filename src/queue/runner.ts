import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { z } from 'zod';
import { AdminKeyRejectedError } from '../anthropic/errors.ts';
import { DEFAULT_ORGANIZATION_ID } from '../config/index.ts';
import type { Context, Enqueue, JobContext, JobName } from '../context.ts';
import { withAdvisoryLock } from '../db/advisory-lock.ts';
import type { Db } from '../db/index.ts';
import { watchAdminKey } from '../health/blind.ts';
import { type JobWatch, recordJobFailure } from '../health/jobs.ts';
import type { Metrics } from '../http/metrics.ts';
import { scrubError, scrubSecrets } from '../log.ts';
import type { RedisConnection } from './connection.ts';
import { QUEUE_NAMES, type QueueName, type Queues } from './queues.ts';
import type { Registry } from './registry.ts';
import { ORGANIZATION_FIELD, retryOptions } from './schedules.ts';

export interface WorkerPool {
  workers: Worker[];
  /** Fired on shutdown: handlers see it as `ctx.signal` and stop at their next safe point. */
  abort(): void;
  /** Waits for running jobs (force: abandon them; BullMQ hands them to another worker once their lock expires). */
  close(force?: boolean): Promise<void>;
}

interface WorkerPoolOptions {
  connection: RedisConnection;
  prefix: string;
  queues: Queues;
  metrics: Metrics;
  /** Jobs run at once per queue, where not `queueConcurrency`'s. */
  concurrency?: Partial<Record<QueueName, number>>;
  /** Watches the runs' outcomes (keywarden.job_failing); without it outcomes are not recorded. */
  jobWatch?: JobWatch;
  /**
   * Each organization's Context (and its outcome watch) by id: a job runs in the one its data names. Without it,
   * `ctx` is the one organization, `default`.
   */
  organizations?: ReadonlyMap<string, { ctx: Context; jobWatch?: JobWatch }>;
  /**
   * A pool of its own for the run locks (a job that may not overlap itself holds one connection for its run): on
   * the Context's pool, runs holding every connection would wait forever for one more. Without it runs may overlap.
   */
  runLocks?: Db;
  /** The name BullMQ records as each job's `processedBy` and lists in `getWorkers()`: which replica ran what. */
  name?: string;
}

/**
 * Jobs run at once per queue on one replica, for the queues `registry` uses. A run holds its slot while it waits on
 * its organization's Admin API, and the run lock lets an organization hold at most one slot per job: so a queue
 * runs one more job at once than it has jobs, and an organization whose API hangs on all of them still leaves a slot
 * to the others. `poll` (the minute poll alone) has a slot per organization, so no organization's poll waits for
 * another's. `overrides` (the worker's --concurrency) replace a queue's number.
 */
export function queueConcurrency(
  registry: Registry,
  organizations: number,
  overrides: Partial<Record<QueueName, number>> = {},
): Partial<Record<QueueName, number>> {
  const used = QUEUE_NAMES.map(
    (queue) => [queue, [...registry.values()].filter((d) => d.queue === queue).length] as const,
  );
  return Object.fromEntries(
    used
      .filter(([, jobs]) => jobs > 0)
      .map(([queue, jobs]) => [queue, overrides[queue] ?? (queue === 'poll' ? Math.max(organizations, 2) : jobs + 1)]),
  );
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
  organization: string = DEFAULT_ORGANIZATION_ID,
): Promise<{ value: T } | null> {
  if (registry.get(job)?.overlaps) return { value: await fn() };
  // per organization: one organization's long backfill never holds another's minute poll
  const name = organization === DEFAULT_ORGANIZATION_ID ? job : `${job}@${organization}`;
  return withAdvisoryLock(db, `keywarden.job:${name}`, fn);
}

/**
 * The organization a job's data names, and its payload without that field. Payload schemas never see it; a job
 * without it (queued before organizations existed) belongs to the one organization, when there is one.
 */
function splitJobData(data: unknown): { organization: string | null; payload: unknown } {
  if (data === null || typeof data !== 'object' || !(ORGANIZATION_FIELD in data)) {
    return { organization: null, payload: data };
  }
  const { [ORGANIZATION_FIELD]: organization, ...payload } = data as Record<string, unknown>;
  return { organization: typeof organization === 'string' ? organization : String(organization), payload };
}

/** Enqueues a job by name for the worker, with its retry options; a payload its schema refuses is not queued. */
export async function enqueueJob(
  registry: Registry,
  queues: Queues,
  name: string,
  data: unknown = {},
  jobId?: string,
  organization: string = DEFAULT_ORGANIZATION_ID,
): Promise<Job> {
  const def = registry.get(name);
  if (!def) throw new Error(`no job named "${name}" (jobs: ${[...registry.keys()].join(', ')})`);
  const parsed = def.payload.safeParse(data);
  if (!parsed.success) throw new Error(`job ${name}: invalid payload: ${describeIssues(parsed.error)}`);
  return queues[def.queue].add(
    name,
    { ...(parsed.data as object), [ORGANIZATION_FIELD]: organization },
    {
      ...retryOptions(def.attempts ?? 5),
      ...(jobId ? { jobId } : {}),
    },
  );
}

/** `ctx.enqueue` over the worker's queues, for one organization's jobs. */
export function enqueuer(registry: Registry, queues: Queues, organization: string = DEFAULT_ORGANIZATION_ID): Enqueue {
  return async (name, payload) => {
    await enqueueJob(registry, queues, name, payload, undefined, organization);
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
  const parsed = def.payload.safeParse(splitJobData(data ?? {}).payload ?? {});
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
  const organizations =
    options.organizations ?? new Map([[DEFAULT_ORGANIZATION_ID, { ctx, jobWatch: options.jobWatch }]]);
  const ids = [...organizations.keys()];
  // the organization label only where there are several: one organization's series keep the names they had
  const jobLabels = (job: string, organization: string) => (ids.length > 1 ? { job, organization } : { job });
  // one blind watch per organization: a key refused in one says so for that one, and never waits on another's
  const watched = new Map(
    [...organizations].map(([id, o]) => [
      id,
      { ...o, blind: watchAdminKey(o.ctx, () => deliverSoon(o.ctx, registry)) },
    ]),
  );
  /** The organization a job runs in; a job naming none belongs to the only one, if there is only one. */
  const organizationOf = (job: Job) => {
    const named = splitJobData(job.data).organization ?? (ids.length === 1 ? ids[0]! : null);
    const found = named === null ? undefined : watched.get(named);
    if (!found) {
      throw new UnrecoverableError(
        named === null
          ? `job ${job.name}: its data names no organization (organizations: ${ids.join(', ')})`
          : `job ${job.name}: no organization "${named}" in the policy file (organizations: ${ids.join(', ')}); nothing done`,
      );
    }
    return { id: named!, ...found };
  };
  // An outcome that cannot be recorded (Postgres down) must not change the job's own outcome.
  const recordOutcome = async (org: { ctx: Context; jobWatch?: JobWatch }, record: () => Promise<void>) => {
    if (!org.jobWatch) return;
    try {
      await record();
      await org.jobWatch.check();
    } catch (err) {
      org.ctx.log.warn({ err }, 'could not record the job outcome');
    }
  };
  const concurrency = queueConcurrency(registry, ids.length, options.concurrency);
  const runJob = async (job: Job, org: ReturnType<typeof organizationOf>) => {
    const labels = jobLabels(job.name, org.id);
    const stopTimer = options.metrics.jobDuration.startTimer(labels);
    const octx = org.ctx;
    try {
      const result = await runHandler(octx, registry, job.name, job.data, {
        id: job.id ?? '?',
        attempt: job.attemptsMade + 1,
        signal: controller.signal,
      });
      options.metrics.jobRuns.inc({ ...labels, outcome: 'completed' });
      await recordOutcome(org, () => octx.repos.jobRuns.recordSuccess(job.name, octx.clock.now()));
      for (const next of registry.get(job.name)?.followedBy ?? []) {
        // one chained run per parent run, even if this job is retried after a crash past this point
        await enqueueJob(registry, options.queues, next, {}, `${next}-after-${job.id}`, org.id);
      }
      return result;
    } catch (err) {
      options.metrics.jobRuns.inc({ ...labels, outcome: 'failed' });
      octx.log.warn({ err, job: job.name, jobId: job.id, attempt: job.attemptsMade + 1 }, 'job failed');
      // A run has failed once its last attempt has (an attempt BullMQ retries may still succeed). A refused
      // admin key fails every job at once, and keywarden.blind already says so: not each job's failure.
      const lastAttempt = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (lastAttempt && !(err instanceof AdminKeyRejectedError)) {
        await recordOutcome(org, () => recordJobFailure(octx, job.name, err, octx.clock.now()));
      }
      // The same key is refused again in 2 s: no retries; the next scheduled run tries again.
      if (err instanceof AdminKeyRejectedError) throw new UnrecoverableError(scrubSecrets(err.message));
      // BullMQ stores the message and the stack in Redis, where the log's scrubber does not reach
      throw scrubError(err);
    } finally {
      stopTimer();
      // after every job, not only Admin API jobs: a key deactivation failing inside enforce-rotation is
      // caught there, yet the client saw the 401
      await org.blind.check();
    }
  };
  // BullMQ's own lock keeps one job (one tick) on one replica; this one keeps the next tick of the same job from
  // starting while the last still runs (a long backfill, on another replica or another slot of this one).
  const runAlone = async (job: Job) => {
    let org: ReturnType<typeof organizationOf>;
    try {
      org = organizationOf(job);
    } catch (err) {
      options.metrics.jobRuns.inc({ job: job.name, outcome: 'failed' });
      ctx.log.warn({ err, job: job.name, jobId: job.id }, 'job failed');
      throw err;
    }
    if (!options.runLocks) return runJob(job, org);
    let started = false;
    let ran: { value: unknown } | null;
    try {
      ran = await withRunLock(
        options.runLocks,
        registry,
        job.name,
        () => {
          started = true;
          return runJob(job, org);
        },
        org.id,
      );
    } catch (err) {
      if (started) throw err; // the run's own failure, counted and logged by runJob
      // no connection for the lock (Postgres down): the attempt fails before the handler, and BullMQ retries it
      options.metrics.jobRuns.inc({ ...jobLabels(job.name, org.id), outcome: 'failed' });
      org.ctx.log.warn({ err, job: job.name, jobId: job.id }, 'job failed: could not take its run lock in Postgres');
      throw scrubError(err);
    }
    if (ran !== null) return ran.value;
    options.metrics.jobRuns.inc({ ...jobLabels(job.name, org.id), outcome: 'skipped' });
    org.ctx.log.info({ job: job.name, jobId: job.id }, 'previous run still in progress: tick skipped');
    return { skipped: `a run of ${job.name} is in progress` };
  };
  const workers = Object.entries(concurrency).map(
    ([queueName, slots]) =>
      new Worker(queueName, runAlone, {
        ...(options.name ? { name: options.name } : {}),
        connection: options.connection,
        prefix: options.prefix,
        concurrency: slots,
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
