import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AdminClient } from '../anthropic/client.ts';
import type { Repos } from '../db/repos/index.ts';
import { WATERMARKS } from '../db/repos/watermarks.ts';
import { DEFAULT_WORKSPACE_SCOPE_ID } from '../default-workspace.ts';
import { type SpendReport, spendReport } from '../spend/report.ts';
import { settledAgeSeconds } from '../usage/core/freshness.ts';

export interface Metrics {
  registry: Registry;
  jobRuns: Counter<'job' | 'organization' | 'outcome'>;
  jobDuration: Histogram<'job' | 'organization'>;
}

/**
 * Prometheus metrics. Job counters are this process's own; everything about the organization (poll age, alerts,
 * pending notifications, cost drift) is read from Postgres at scrape time, so every replica reports the same truth.
 */
export function createMetrics(repos: Repos | null, admin?: Pick<AdminClient, 'clockSkewMs'>): Metrics {
  const registry = new Registry();
  const jobRuns = new Counter({
    name: 'keywarden_job_runs_total',
    help: 'Job runs by job, organization (its id) and outcome (completed, failed, skipped: a run of the job was still in progress).',
    labelNames: ['job', 'organization', 'outcome'] as const,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'keywarden_job_duration_seconds',
    help: 'Job run duration, by job and organization (its id).',
    labelNames: ['job', 'organization'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  if (repos) {
    new Gauge({
      name: 'keywarden_last_successful_poll_age_seconds',
      // the newest minute the API answered with data, not the range asked for: a late API answers empty buckets
      help: 'Seconds since the end of the newest usage minute the Admin API answered with data (poll-usage.settled).',
      registers: [registry],
      async collect() {
        this.set(settledAgeSeconds(await repos.watermarks.read(WATERMARKS.usageSettled), new Date()));
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
    // alert rows are kept, so "ever fired" only grows: a counter (a gauge named _total is what promtool rejects)
    new Counter({
      name: 'keywarden_alerts_fired_total',
      help: 'Alerts that have fired, by kind (from the alert store).',
      labelNames: ['kind'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await repos.alerts.countByKind({ firingOnly: false })) this.inc({ kind: r.kind }, r.count);
      },
    });
    new Gauge({
      name: 'keywarden_alerts_firing',
      help: 'Alerts currently firing, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await repos.alerts.countByKind({ firingOnly: true })) this.set({ kind: r.kind }, r.count);
      },
    });
    new Gauge({
      name: 'keywarden_notifications_pending',
      help: 'Notifications in the outbox not yet sent.',
      registers: [registry],
      async collect() {
        this.set(await repos.outbox.pendingCount());
      },
    });
    new Gauge({
      name: 'keywarden_cost_drift_ratio',
      help: 'Per workspace, the largest drift this month between priced usage and the cost report (recorded over 2%).',
      labelNames: ['workspace_id'] as const,
      registers: [registry],
      async collect() {
        const rows = await repos.usage.largestDriftThisMonth();
        this.reset();
        // the Default Workspace has no id: labelled "default"
        for (const r of rows) this.set({ workspace_id: r.workspaceId ?? DEFAULT_WORKSPACE_SCOPE_ID }, r.ratio);
      },
    });
    new Gauge({
      name: 'keywarden_analytics_api_available',
      help:
        'Whether the analytics API answered when last asked (1) or refused (0): analytics.cost refused, costs are ' +
        'reconciled per workspace only; analytics.usage refused, no requests-per-minute headroom.',
      labelNames: ['api'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const api of ['analytics.cost', 'analytics.usage'] as const) {
          const access = await repos.billing.access(api);
          if (access !== null) this.set({ api }, access.available ? 1 : 0);
        }
      },
    });
    addStatusMetrics(registry, repos);
  }
  return { registry, jobRuns, jobDuration };
}

/**
 * What the Grafana dashboard (examples/grafana/keywarden.json) draws beside the metrics above: the spend figures
 * `keywarden spend` prints (through its loader), each job's failures in a row (job_runs, shared by the replicas),
 * and the rate-limit headroom of the limits at risk (from the firing `ratelimit.headroom` alerts: readings are
 * taken by detect-anomalies against the Rate Limits API, never at scrape time).
 */
function addStatusMetrics(registry: Registry, repos: Repos): void {
  // one read of the projections per scrape for the three spend gauges
  let spend: { at: number; report: Promise<SpendReport | null> } | null = null;
  const report = () => {
    if (spend === null || Date.now() - spend.at > 1_000) spend = { at: Date.now(), report: spendReport(repos) };
    return spend.report;
  };
  const scopeLabels = ['scope_type', 'scope_id', 'name'] as const;
  new Gauge({
    name: 'keywarden_spend_month_to_date_usd',
    help: 'Priced usage this month per scope (organization, workspace, key), as `keywarden spend` prints it.',
    labelNames: scopeLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await report())?.rows ?? [])
        this.set({ scope_type: r.scopeType, scope_id: r.scopeId, name: r.name }, Number(r.monthToDateUsd));
    },
  });
  new Gauge({
    name: 'keywarden_spend_projected_usd',
    // `percentile`, not `quantile`: Prometheus reserves that label for summaries
    help: "The month's projected total per scope: percentile p10, p50 (likely) and p90.",
    labelNames: [...scopeLabels, 'percentile'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await report())?.rows ?? []) {
        const labels = { scope_type: r.scopeType, scope_id: r.scopeId, name: r.name };
        this.set({ ...labels, percentile: 'p10' }, Number(r.p10Usd));
        this.set({ ...labels, percentile: 'p50' }, Number(r.p50Usd));
        this.set({ ...labels, percentile: 'p90' }, Number(r.p90Usd));
      }
    },
  });
  new Gauge({
    name: 'keywarden_spend_limit_usd',
    help: 'The monthly spend limit per scope that has one (the Spend Limits API and the policy file).',
    labelNames: scopeLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await report())?.rows ?? [])
        if (r.limitUsd !== null)
          this.set({ scope_type: r.scopeType, scope_id: r.scopeId, name: r.name }, Number(r.limitUsd));
    },
  });
  new Gauge({
    name: 'keywarden_spend_limits_from_api',
    // the fallback is a state, not an alert: said once in the log when it starts, and here for as long as it lasts
    help: 'Where spend limits come from: 1 the Spend Limits API (and the policy file), 0 the policy file alone (refused, or spend.limits_from_api: false); absent before the first run.',
    labelNames: ['reason'] as const,
    registers: [registry],
    async collect() {
      const { source } = await repos.spend.seenLimits();
      this.reset();
      if (source !== null) this.set({ reason: source.reason ?? '' }, source.source === 'api' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'keywarden_job_consecutive_failures',
    help: 'Failed runs in a row per job, across every replica (0 once it succeeds).',
    labelNames: ['job'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await repos.jobRuns.all()) this.set({ job: r.job }, r.consecutiveFailures);
    },
  });
  new Gauge({
    name: 'keywarden_ratelimit_headroom_utilization_ratio',
    help: 'Used ÷ limit of each rate limit at risk (a firing ratelimit.headroom alert), by workspace and limit.',
    labelNames: ['workspace_id', 'limit'] as const,
    registers: [registry],
    async collect() {
      const rows = await repos.alerts.headroomAtRisk();
      this.reset();
      for (const r of rows) this.set({ workspace_id: r.workspaceId, limit: r.limit }, r.utilization);
    },
  });
}
