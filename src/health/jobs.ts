import { CronExpressionParser } from 'cron-parser';
import type { AlertObservation } from '../alerts/core/lifecycle.ts';
import { raiseAlerts } from '../alerts/store.ts';
import type { Policy } from '../config/policy.ts';
import type { Context } from '../context.ts';
import type { JobRunRecord } from '../db/repos/job-runs.ts';
import { scrubSecrets } from '../log.ts';
import { blindRoutes, organizationInMessages } from './blind.ts';

/**
 * `keywarden.job_failing`: a job that fails every run (a name Postgres refuses, a schema it cannot read, a
 * receiver it cannot reach) or that stops completing at all (its scheduler lost, its worker stuck) shows only in
 * the log otherwise. Outcomes are kept in Postgres (job_runs) so the count survives restarts and a Redis flush.
 */

export const JOB_FAILING_KIND = 'keywarden.job_failing';

interface JobSchedule {
  job: string;
  pattern: string;
  tz: string;
}

export interface FailingJob {
  job: string;
  /** `failing`: its last runs failed; `not_completing`: no run completed in its last intervals. */
  reason: 'failing' | 'not_completing';
  consecutiveFailures: number;
  /** The last success (or, when none is known, when watching began). */
  lastSucceededAt: Date | null;
  lastError: string | null;
}

/** The time of the `count`-th scheduled tick at or before `now`. */
function tickBefore(schedule: JobSchedule, count: number, now: Date): Date {
  const ticks = CronExpressionParser.parse(schedule.pattern, { currentDate: now, tz: schedule.tz });
  let at = now;
  for (let i = 0; i < count; i++) at = ticks.prev().toDate();
  return at;
}

/**
 * The jobs to alert on at `now`, of `jobs` (the registry's: a job since removed says nothing). Pure. A job fails
 * after `failed_runs` failed runs in a row; it is not completing when its last `missed_intervals` scheduled ticks
 * passed with no completed run since `watchingSince` (the process's start: ticks missed while no worker ran are
 * not the job's failure) or its last success.
 */
export function failingJobs(
  jobs: readonly string[],
  records: readonly JobRunRecord[],
  schedules: readonly JobSchedule[],
  limits: Policy['job_alerts'],
  watchingSince: Date,
  now: Date,
): FailingJob[] {
  const byJob = new Map(records.map((r) => [r.job, r]));
  const out: FailingJob[] = [];
  for (const job of [...jobs].sort()) {
    const r = byJob.get(job);
    const facts = {
      job,
      consecutiveFailures: r?.consecutiveFailures ?? 0,
      lastSucceededAt: r?.lastSucceededAt ?? null,
      lastError: r?.lastError ?? null,
    };
    if (facts.consecutiveFailures >= limits.failed_runs) {
      out.push({ ...facts, reason: 'failing' });
      continue;
    }
    const schedule = schedules.find((s) => s.job === job);
    if (schedule === undefined) continue;
    const since = Math.max(watchingSince.getTime(), facts.lastSucceededAt?.getTime() ?? 0);
    if (since < tickBefore(schedule, limits.missed_intervals, now).getTime()) {
      out.push({ ...facts, reason: 'not_completing' });
    }
  }
  return out;
}

function describe(f: FailingJob): string {
  const last = f.lastSucceededAt === null ? 'no success recorded' : `last success ${f.lastSucceededAt.toISOString()}`;
  const why =
    f.reason === 'failing'
      ? `failed ${f.consecutiveFailures} runs in a row`
      : 'completed no run in its last scheduled intervals';
  return `job ${f.job}: ${why} (${last})${f.lastError ? `: ${f.lastError}` : ''}`;
}

/** One line per failing job, for /readyz. */
export function describeFailingJobs(jobs: readonly FailingJob[]): string[] {
  return jobs.map(describe);
}

/** The alert for a failing job. Pure. `organization`: its name, where the deployment watches several. */
function jobFailingObservation(f: FailingJob, organization: string | null): AlertObservation {
  const of = organization === null ? '' : ` for ${organization}`;
  return {
    kind: JOB_FAILING_KIND,
    severity: 'critical',
    scopeType: 'job',
    scopeId: f.job,
    workspaceId: null,
    period: '',
    title: `keywarden job ${f.job}${of} is ${f.reason === 'failing' ? 'failing' : 'not completing'}`,
    summary: `${describe(f)}.\nWhat it does is not being done until it succeeds again; the worker's log has each failure.`,
    fields: [
      { label: 'Job', value: f.job },
      ...(organization === null ? [] : [{ label: 'Organization', value: organization }]),
      { label: 'Failed runs in a row', value: String(f.consecutiveFailures) },
      { label: 'Last success', value: f.lastSucceededAt?.toISOString() ?? 'none recorded' },
    ],
    details: { job: f.job, reason: f.reason, consecutiveFailures: f.consecutiveFailures, lastError: f.lastError },
  };
}

// ── job_runs ─────────────────────────────────────────────────────────────────────────────────────────────────

/** A run's error as stored and alerted: scrubbed of secrets, one line, bounded. */
function storedError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return scrubSecrets(message).replace(/\s+/g, ' ').slice(0, 500);
}

/** A run's last attempt failed: recorded with its error scrubbed, one line, bounded. */
export async function recordJobFailure(
  ctx: Pick<Context, 'repos'>,
  job: string,
  err: unknown,
  now: Date,
): Promise<void> {
  await ctx.repos.jobRuns.recordFailure(job, storedError(err), now);
}

export interface JobWatch {
  /** Reads job_runs, raises or resolves keywarden.job_failing, and returns the failing jobs. */
  check(): Promise<FailingJob[]>;
  /** The failing jobs as the last check found them (for /readyz without another query per probe). */
  readonly failing: readonly FailingJob[];
}

/**
 * Watches the jobs' outcomes. Routed like `keywarden.blind`: a route matching the kind wins; without one it goes
 * to every channel and address the routes name, since a job that stops working silences the alerts it raises.
 */
export function watchJobs(
  ctx: Pick<Context, 'repos' | 'clock' | 'config'>,
  jobs: readonly string[],
  schedules: readonly JobSchedule[],
  onNotifications: () => Promise<unknown>,
): JobWatch {
  const since = ctx.clock.now();
  let failing: FailingJob[] = [];
  let queue: Promise<unknown> = Promise.resolve();
  const update = async () => {
    const now = ctx.clock.now();
    const records = await ctx.repos.jobRuns.all();
    const found = failingJobs(jobs, records, schedules, ctx.config.policy.job_alerts, since, now);
    const result = await raiseAlerts(
      ctx,
      {
        kinds: [JOB_FAILING_KIND],
        observations: found.map((f) => jobFailingObservation(f, organizationInMessages(ctx))),
      },
      blindRoutes(ctx.config.policy.routes, JOB_FAILING_KIND),
      now,
    );
    failing = found;
    if (result.notifications > 0) await onNotifications();
    return found;
  };
  return {
    check() {
      // one at a time, so the alert's writes follow the order of the outcomes
      const next = queue.then(update, update);
      queue = next.catch(() => {});
      return next;
    },
    get failing() {
      return failing;
    },
  };
}
