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

/** One organization's tables and client, for the metrics read at scrape time. */
interface MetricsSource {
  id: string;
  repos: Repos;
  admin?: Pick<AdminClient, 'clockSkewMs'>;
}

/** The series labels of an organization: its id under `organization` where there are several, nothing where one. */
type OrgLabel = (source: MetricsSource, labels?: Record<string, string>) => Record<string, string>;

/**
 * Prometheus metrics. Job counters are this process's own; everything about the organization (poll age, alerts,
 * pending notifications, cost drift) is read from Postgres at scrape time, so every replica reports the same truth.
 * With several organizations (`sources`), each series carries an `organization` label (its id); one organization's
 * series keep the labels they always had.
 */
export function createMetrics(
  sources: Repos | null | readonly MetricsSource[],
  admin?: Pick<AdminClient, 'clockSkewMs'>,
): Metrics {
  const orgs: readonly MetricsSource[] =
    sources === null ? [] : Array.isArray(sources) ? sources : [{ id: '', repos: sources as Repos, admin }];
  const several = orgs.length > 1;
  const org: OrgLabel = (source, labels = {}) => (several ? { ...labels, organization: source.id } : labels);
  const withOrg = (names: readonly string[]) => (several ? [...names, 'organization'] : [...names]);
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
  if (orgs.length > 0) {
    new Gauge({
      name: 'keywarden_last_successful_poll_age_seconds',
      // the newest minute the API answered with data, not the range asked for: a late API answers empty buckets
      help: 'Seconds since the end of the newest usage minute the Admin API answered with data (poll-usage.settled).',
      labelNames: withOrg([]),
      registers: [registry],
      async collect() {
        for (const o of orgs) {
          this.set(org(o), settledAgeSeconds(await o.repos.watermarks.read(WATERMARKS.usageSettled), new Date()));
        }
      },
    });
    if (orgs.some((o) => o.admin)) {
      new Gauge({
        name: 'keywarden_api_clock_skew_seconds',
        help: "The Admin API's clock minus this process's, from the last answer's Date header (whole seconds).",
        labelNames: withOrg([]),
        registers: [registry],
        collect() {
          for (const o of orgs) {
            const skew = o.admin?.clockSkewMs ?? null;
            this.set(org(o), skew === null ? Number.NaN : skew / 1000);
          }
        },
      });
    }
    // Counted by kind from the alert store: one query shape for "ever fired" and "firing now".
    // alert rows are kept, so "ever fired" only grows: a counter (a gauge named _total is what promtool rejects)
    new Counter({
      name: 'keywarden_alerts_fired_total',
      help: 'Alerts that have fired, by kind (from the alert store).',
      labelNames: withOrg(['kind']),
      registers: [registry],
      async collect() {
        this.reset();
        for (const o of orgs) {
          for (const r of await o.repos.alerts.countByKind({ firingOnly: false })) {
            this.inc(org(o, { kind: r.kind }), r.count);
          }
        }
      },
    });
    new Gauge({
      name: 'keywarden_alerts_firing',
      help: 'Alerts currently firing, by kind.',
      labelNames: withOrg(['kind']),
      registers: [registry],
      async collect() {
        this.reset();
        for (const o of orgs) {
          for (const r of await o.repos.alerts.countByKind({ firingOnly: true })) {
            this.set(org(o, { kind: r.kind }), r.count);
          }
        }
      },
    });
    new Gauge({
      name: 'keywarden_notifications_pending',
      help: 'Notifications in the outbox not yet sent.',
      labelNames: withOrg([]),
      registers: [registry],
      async collect() {
        for (const o of orgs) this.set(org(o), await o.repos.outbox.pendingCount());
      },
    });
    new Gauge({
      name: 'keywarden_cost_drift_ratio',
      help: 'Per workspace, the largest drift this month between priced usage and the cost report (recorded over 2%).',
      labelNames: withOrg(['workspace_id']),
      registers: [registry],
      async collect() {
        const rows = await Promise.all(
          orgs.map(async (o) => ({ o, rows: await o.repos.usage.largestDriftThisMonth() })),
        );
        this.reset();
        // the Default Workspace has no id: labelled "default"
        for (const { o, rows: drift } of rows) {
          for (const r of drift)
            this.set(org(o, { workspace_id: r.workspaceId ?? DEFAULT_WORKSPACE_SCOPE_ID }), r.ratio);
        }
      },
    });
    new Gauge({
      name: 'keywarden_analytics_api_available',
      help:
        'Whether the analytics API answered when last asked (1) or refused (0): analytics.cost refused, costs are ' +
        'reconciled per workspace only; analytics.usage refused, no requests-per-minute headroom.',
      labelNames: withOrg(['api']),
      registers: [registry],
      async collect() {
        this.reset();
        for (const o of orgs) {
          for (const api of ['analytics.cost', 'analytics.usage'] as const) {
            const access = await o.repos.billing.access(api);
            if (access !== null) this.set(org(o, { api }), access.available ? 1 : 0);
          }
        }
      },
    });
    addStatusMetrics(registry, orgs, org, withOrg);
  }
  return { registry, jobRuns, jobDuration };
}

/**
 * What the Grafana dashboard (examples/grafana/keywarden.json) draws beside the metrics above: the spend figures
 * `keywarden spend` prints (through its loader), each job's failures in a row (job_runs, shared by the replicas),
 * and the rate-limit headroom of the limits at risk (from the firing `ratelimit.headroom` alerts: readings are
 * taken by detect-anomalies against the Rate Limits API, never at scrape time).
 */
function addStatusMetrics(
  registry: Registry,
  orgs: readonly MetricsSource[],
  org: OrgLabel,
  withOrg: (names: readonly string[]) => string[],
): void {
  // one read of the projections per scrape for the three spend gauges
  const spend = new Map<string, { at: number; report: Promise<SpendReport | null> }>();
  const report = (o: MetricsSource) => {
    const last = spend.get(o.id);
    if (last !== undefined && Date.now() - last.at <= 1_000) return last.report;
    const next = { at: Date.now(), report: spendReport(o.repos) };
    spend.set(o.id, next);
    return next.report;
  };
  const scopeLabels = withOrg(['scope_type', 'scope_id', 'name']);
  new Gauge({
    name: 'keywarden_spend_month_to_date_usd',
    help: 'Priced usage this month per scope (organization, workspace, key), as `keywarden spend` prints it.',
    labelNames: scopeLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const o of orgs) {
        for (const r of (await report(o))?.rows ?? [])
          this.set(org(o, { scope_type: r.scopeType, scope_id: r.scopeId, name: r.name }), Number(r.monthToDateUsd));
      }
    },
  });
  new Gauge({
    name: 'keywarden_spend_projected_usd',
    // `percentile`, not `quantile`: Prometheus reserves that label for summaries
    help: "The month's projected total per scope: percentile p10, p50 (likely) and p90.",
    labelNames: [...scopeLabels, 'percentile'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const o of orgs) {
        for (const r of (await report(o))?.rows ?? []) {
          const labels = org(o, { scope_type: r.scopeType, scope_id: r.scopeId, name: r.name });
          this.set({ ...labels, percentile: 'p10' }, Number(r.p10Usd));
          this.set({ ...labels, percentile: 'p50' }, Number(r.p50Usd));
          this.set({ ...labels, percentile: 'p90' }, Number(r.p90Usd));
        }
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
      for (const o of orgs) {
        for (const r of (await report(o))?.rows ?? [])
          if (r.limitUsd !== null)
            this.set(org(o, { scope_type: r.scopeType, scope_id: r.scopeId, name: r.name }), Number(r.limitUsd));
      }
    },
  });
  new Gauge({
    name: 'keywarden_spend_limits_from_api',
    // the fallback is a state, not an alert: said once in the log when it starts, and here for as long as it lasts
    help: 'Where spend limits come from: 1 the Spend Limits API (and the policy file), 0 the policy file alone (refused, or spend.limits_from_api: false); absent before the first run.',
    labelNames: withOrg(['reason']),
    registers: [registry],
    async collect() {
      const seen = await Promise.all(orgs.map(async (o) => ({ o, ...(await o.repos.spend.seenLimits()) })));
      this.reset();
      for (const { o, source } of seen) {
        if (source !== null) this.set(org(o, { reason: source.reason ?? '' }), source.source === 'api' ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'keywarden_job_consecutive_failures',
    help: 'Failed runs in a row per job, across every replica (0 once it succeeds).',
    labelNames: withOrg(['job']),
    registers: [registry],
    async collect() {
      this.reset();
      for (const o of orgs) {
        for (const r of await o.repos.jobRuns.all()) this.set(org(o, { job: r.job }), r.consecutiveFailures);
      }
    },
  });
  new Gauge({
    name: 'keywarden_ratelimit_headroom_utilization_ratio',
    help: 'Used ÷ limit of each rate limit at risk (a firing ratelimit.headroom alert), by workspace and limit.',
    labelNames: withOrg(['workspace_id', 'limit']),
    registers: [registry],
    async collect() {
      const rows = await Promise.all(orgs.map(async (o) => ({ o, rows: await o.repos.alerts.headroomAtRisk() })));
      this.reset();
      for (const { o, rows: risks } of rows) {
        for (const r of risks) this.set(org(o, { workspace_id: r.workspaceId, limit: r.limit }), r.utilization);
      }
    },
  });
}
