import { sql } from 'kysely';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AdminClient } from '../anthropic/client.ts';
import type { Db } from '../db/index.ts';
import { WATERMARKS, watermarksRepo } from '../db/repos/watermarks.ts';
import { DEFAULT_WORKSPACE_SCOPE_ID } from '../default-workspace.ts';
import { settledAgeSeconds } from '../usage/core/freshness.ts';

export interface Metrics {
  registry: Registry;
  jobRuns: Counter<'job' | 'outcome'>;
  jobDuration: Histogram<'job'>;
}

/**
 * Prometheus metrics. Job counters are this process's own; everything about the organization (poll age, alerts,
 * pending notifications, cost drift) is read from Postgres at scrape time, so every replica reports the same truth.
 */
export function createMetrics(db: Db | null, admin?: Pick<AdminClient, 'clockSkewMs'>): Metrics {
  const registry = new Registry();
  const jobRuns = new Counter({
    name: 'keywarden_job_runs_total',
    help: 'Job runs by job and outcome (completed, failed).',
    labelNames: ['job', 'outcome'] as const,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'keywarden_job_duration_seconds',
    help: 'Job run duration.',
    labelNames: ['job'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  if (db) {
    new Gauge({
      name: 'keywarden_last_successful_poll_age_seconds',
      // the newest minute the API answered with data, not the range asked for: a late API answers empty buckets
      help: 'Seconds since the end of the newest usage minute the Admin API answered with data (poll-usage.settled).',
      registers: [registry],
      async collect() {
        this.set(settledAgeSeconds(await watermarksRepo(db).read(WATERMARKS.usageSettled), new Date()));
      },
    });
    if (admin) {
      new Gauge({
        name: 'keywarden_api_clock_skew_seconds',
        help: "The Admin API's clock minus this process's, from the last answer's Date header (whole seconds).",
        registers: [registry],
        collect() {
          const skew = admin.clockSkewMs;
          this.set(skew === null ? Number.NaN : skew / 1000);
        },
      });
    }
    // Counted by kind from the alert store: one query shape for "ever fired" and "firing now".
    const alertsByKind = async (firingOnly: boolean) => {
      let q = db.selectFrom('alerts').select(['kind', sql<string>`count(*)`.as('n')]);
      if (firingOnly) q = q.where('state', '=', 'firing');
      return q.groupBy('kind').execute();
    };
    for (const [name, help, firingOnly] of [
      ['keywarden_alerts_fired_total', 'Alerts that have fired, by kind (from the alert store).', false],
      ['keywarden_alerts_firing', 'Alerts currently firing, by kind.', true],
    ] as const) {
      new Gauge({
        name,
        help,
        labelNames: ['kind'] as const,
        registers: [registry],
        async collect() {
          this.reset();
          for (const r of await alertsByKind(firingOnly)) this.set({ kind: r.kind }, Number(r.n));
        },
      });
    }
    new Gauge({
      name: 'keywarden_notifications_pending',
      help: 'Notifications in the outbox not yet sent.',
      registers: [registry],
      async collect() {
        const row = await db
          .selectFrom('notifications')
          .select(sql<string>`count(*)`.as('n'))
          .where('status', 'in', ['pending', 'sending'])
          .executeTakeFirst();
        this.set(Number(row?.n ?? 0));
      },
    });
    new Gauge({
      name: 'keywarden_cost_drift_ratio',
      help: 'Per workspace, the largest drift this month between priced usage and the cost report (recorded over 2%).',
      labelNames: ['workspace_id'] as const,
      registers: [registry],
      async collect() {
        const rows = await db
          .selectFrom('cost_drift')
          .select(['workspace_id', sql<number>`max(drift_ratio)`.as('ratio')])
          .where('day', '>=', sql<string>`date_trunc('month', now() AT TIME ZONE 'UTC')::date`)
          .groupBy('workspace_id')
          .execute();
        this.reset();
        // the Default Workspace has no id: labelled "default"
        for (const r of rows) this.set({ workspace_id: r.workspace_id ?? DEFAULT_WORKSPACE_SCOPE_ID }, Number(r.ratio));
      },
    });
  }
  return { registry, jobRuns, jobDuration };
}
