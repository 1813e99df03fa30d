import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRepos } from '../../src/db/repos/index.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { insertFiringAlert } from '../support/alerts.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { ROOT } from '../support/processes.ts';

/**
 * /metrics as Prometheus reads it (`promtool check metrics`, Debian's `prometheus` package, installed by .ci/run),
 * and the Grafana dashboard over it: every panel's query names a metric /metrics exports.
 */

/** Grafana's variable syntax (a dollar and braces), not a template placeholder: the dashboard asks which Prometheus. */
const DATASOURCE_VARIABLE = ['$', '{datasource}'].join('');
const PROMTOOL = process.env.PROMTOOL_PATH ?? 'promtool';
const NOW = new Date();
const MONTH = `${NOW.toISOString().slice(0, 7)}-01`;

let t: TestDatabase;
let text: string;

beforeAll(async () => {
  t = await createTestDatabase();
  const projection = (scope_type: 'organization' | 'workspace' | 'key', scope_id: string) => ({
    made_at: NOW,
    month: MONTH,
    scope_type,
    scope_id,
    mtd_usd: '12.5',
    p10_usd: '20',
    p50_usd: '25',
    p90_usd: '31.25',
    limit_usd: scope_type === 'key' ? null : '30',
    crossing_p50: null,
    crossing_p90: null,
    method: 'straight-line',
  });
  await t.db
    .insertInto('api_keys')
    .values({
      id: 'apikey_q',
      // a name with what the exposition format must escape: a quote, a backslash, a line break
      name: 'ci "prod"\\\nkey',
      status: 'active',
      workspace_id: null,
      partial_key_hint: null,
      created_at: NOW,
      created_by_id: null,
      created_by_type: null,
      expires_at: null,
      principal_type: null,
      principal_id: null,
      status_changed_at: null,
      gone_at: null,
    })
    .execute();
  await t.db
    .insertInto('projections')
    .values([projection('organization', 'org'), projection('workspace', 'default'), projection('key', 'apikey_q')])
    .execute();
  await t.db
    .insertInto('job_runs')
    .values({ job: 'poll-usage', consecutive_failures: 2, last_failed_at: NOW, first_failed_at: NOW, last_error: 'x' })
    .execute();
  await insertFiringAlert(
    t.db,
    {
      fingerprint: 'fp-headroom',
      kind: 'ratelimit.headroom',
      severity: 'warning',
      scope_type: 'workspace',
      scope_id: 'wrkspc_1',
      workspace_id: 'wrkspc_1',
      period: 'input_tokens_per_minute:grp_1',
      title: 'Workspace uses 85% of its input tokens per minute limit',
      details: JSON.stringify({ utilization: 0.85 }),
    },
    NOW,
  );
  const metrics = createMetrics(createRepos(t.db), { clockSkewMs: 0 });
  metrics.jobRuns.inc({ job: 'poll-usage', outcome: 'failed' });
  metrics.jobDuration.observe({ job: 'poll-usage' }, 0.2);
  text = await metrics.registry.metrics();
});
afterAll(async () => {
  await t.drop();
});

/** The metric families /metrics declares (histograms also answer as _bucket, _sum and _count). */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m[1]}${s}`);
  }
  return names;
}

describe('/metrics', () => {
  it('passes `promtool check metrics` with no problem reported', () => {
    const run = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (run.error) throw new Error(`promtool not found (${run.error.message}): apt-get install prometheus`);
    expect(`${run.stdout}${run.stderr}`).toBe('');
    expect(run.status).toBe(0);
  });

  it('exports spend against limit and projection, job failures and headroom', () => {
    expect(text).toContain(
      'keywarden_spend_month_to_date_usd{scope_type="organization",scope_id="org",name="Organization"} 12.5',
    );
    expect(text).toContain(
      'keywarden_spend_projected_usd{scope_type="organization",scope_id="org",name="Organization",percentile="p90"} 31.25',
    );
    expect(text).toContain(
      'keywarden_spend_limit_usd{scope_type="workspace",scope_id="default",name="Default Workspace"} 30',
    );
    // the key's name escaped as the exposition format says: one line, quote and backslash escaped
    expect(text).toContain('name="ci \\"prod\\"\\\\\\nkey"} 12.5');
    expect(text).toContain('keywarden_job_consecutive_failures{job="poll-usage"} 2');
    expect(text).toMatch(
      /# TYPE keywarden_alerts_fired_total counter\nkeywarden_alerts_fired_total\{kind="ratelimit.headroom"\} 1\n/,
    );
    expect(text).toContain(
      'keywarden_ratelimit_headroom_utilization_ratio{workspace_id="wrkspc_1",limit="input_tokens_per_minute:grp_1"} 0.85',
    );
  });
});

describe('examples/grafana/keywarden.json', () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples/grafana/keywarden.json'), 'utf8')) as {
    title: string;
    uid: string;
    schemaVersion: number;
    panels: Array<{
      type: string;
      title: string;
      gridPos: { x: number; y: number; w: number; h: number };
      datasource?: { type: string; uid: string };
      targets?: Array<{ expr: string; refId: string }>;
    }>;
    templating: { list: Array<{ name: string; type: string; query?: unknown }> };
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('is a dashboard Grafana imports: title, uid, schema version, panels placed on the 24-column grid', () => {
    expect(dashboard.title).toBe('keywarden');
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((v) => [v.name, v.type])).toContainEqual(['datasource', 'datasource']);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it("every panel's query names only metrics /metrics exports, through the datasource variable", () => {
    const exported = exportedNames(text);
    const queried = new Set<string>();
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: DATASOURCE_VARIABLE });
      for (const target of p.targets!) {
        const names = target.expr.match(/\bkeywarden_[a-z0-9_]+/g) ?? [];
        expect(names.length, `${p.title}: ${target.expr}`).toBeGreaterThan(0);
        for (const n of names) {
          expect(exported.has(n), `${p.title} queries ${n}, which /metrics does not export`).toBe(true);
          queried.add(n);
        }
      }
    }
    // what the issue asks the dashboard to show
    for (const n of [
      'keywarden_spend_month_to_date_usd',
      'keywarden_spend_projected_usd',
      'keywarden_spend_limit_usd',
      'keywarden_alerts_firing',
      'keywarden_last_successful_poll_age_seconds',
      'keywarden_job_consecutive_failures',
      'keywarden_ratelimit_headroom_utilization_ratio',
    ]) {
      expect(queried.has(n), n).toBe(true);
    }
  });
});
