import type { Db } from '../index.ts';

/** What job_runs holds for one job. */
export interface JobRunRecord {
  job: string;
  consecutiveFailures: number;
  lastSucceededAt: Date | null;
  firstFailedAt: Date | null;
  lastError: string | null;
}

/** The `job_runs` table: each job's latest outcome and its run of failures, for keywarden.job_failing. */
export function jobRunsRepo(db: Db) {
  return {
    /** A run succeeded: its run of failures ends. */
    async recordSuccess(job: string, at: Date): Promise<void> {
      const reset = { consecutive_failures: 0, last_succeeded_at: at, first_failed_at: null, last_error: null };
      await db
        .insertInto('job_runs')
        .values({ job, ...reset })
        .onConflict((oc) => oc.column('job').doUpdateSet(reset))
        .execute();
    },

    /** A run failed (its last attempt): one more in the run of failures. `error` is stored as given: scrub it first. */
    async recordFailure(job: string, error: string, at: Date): Promise<void> {
      await db
        .insertInto('job_runs')
        .values({ job, consecutive_failures: 1, last_failed_at: at, first_failed_at: at, last_error: error })
        .onConflict((oc) =>
          oc.column('job').doUpdateSet((eb) => ({
            consecutive_failures: eb('job_runs.consecutive_failures', '+', 1),
            last_failed_at: at,
            first_failed_at: eb.fn.coalesce('job_runs.first_failed_at', eb.val(at)),
            last_error: error,
          })),
        )
        .execute();
    },

    /** Every job's record. */
    async all(): Promise<JobRunRecord[]> {
      const rows = await db.selectFrom('job_runs').selectAll().execute();
      return rows.map((r) => ({
        job: r.job,
        consecutiveFailures: r.consecutive_failures,
        lastSucceededAt: r.last_succeeded_at,
        firstFailedAt: r.first_failed_at,
        lastError: r.last_error,
      }));
    },
  };
}
