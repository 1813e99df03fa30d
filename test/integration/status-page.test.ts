import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createDb, type Db } from '../../src/db/index.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { type HealthServer, startHealthServer } from '../../src/http/server.ts';
import { loadStatus } from '../../src/http/status/load.ts';
import { formatUsd, usdToPico } from '../../src/money.ts';
import { spendReport } from '../../src/spend/report.ts';
import { insertFiringAlert } from '../support/alerts.ts';
import { captureLog } from '../support/context.ts';
import { createTestDatabase, redisUrl, type TestDatabase } from '../support/db.ts';

/** Names an organization member can type in the Console, meant to run in whoever's browser shows them. */
const EVIL = {
  script: '<script>alert("key")</script>',
  img: '"><img src=x onerror=alert(1)>',
  workspace: "'><svg onload=alert(2)>",
  owner: 'x</td><script>alert(3)</script>@acme.example',
  title: 'Runaway spend on API key "</script><script>alert(4)</script>"',
  target: '<img src=x onerror=alert(5)>',
  error: '</li><iframe src=javascript:alert(6)>',
  job: 'poll-usage',
  ackBy: 'U1"><script>alert(7)</script>',
  comment: '<img src=x onerror=alert(8)> deploy window',
};
const TOKEN = 'status-token-0123456789abcdef';
const NOW = new Date('2026-12-07T12:00:00Z');

let t: TestDatabase;
let readOnlyDb: Db;
let redis: Redis;
let server: HealthServer;
let off: HealthServer;

beforeAll(async () => {
  t = await createTestDatabase();
  const db = t.db;
  await db
    .insertInto('workspaces')
    .values({ id: 'wrkspc_evil', name: EVIL.workspace, display_color: null, created_at: new Date('2026-01-01') })
    .execute();
  await db
    .insertInto('users')
    .values({ id: 'user_evil', email: EVIL.owner, name: EVIL.owner, role: 'user', added_at: null, left_at: null })
    .execute();
  const key = (id: string, name: string, ageDays: number, workspace: string | null) => ({
    id,
    name,
    status: 'active',
    workspace_id: workspace,
    partial_key_hint: 'sk-ant-api03-R2D...igAA',
    created_at: new Date(NOW.getTime() - ageDays * 86_400_000),
    created_by_id: 'user_evil',
    created_by_type: 'user',
    expires_at: null,
    principal_type: null,
    principal_id: null,
    status_changed_at: null,
    gone_at: null,
  });
  await db
    .insertInto('api_keys')
    .values([
      key('apikey_old', EVIL.script, 120, 'wrkspc_evil'),
      key('apikey_new', EVIL.img, 10, null),
      key('apikey_soon', 'due soon key', 85, null),
    ])
    .execute();
  const projection = (scope_type: 'organization' | 'workspace' | 'key', scope_id: string, mtd: string) => ({
    made_at: new Date(NOW.getTime() - 600_000),
    month: '2026-12-01',
    scope_type,
    scope_id,
    mtd_usd: mtd,
    p10_usd: '900.25',
    p50_usd: '1200.5',
    p90_usd: '1800.75',
    limit_usd: scope_type === 'organization' ? '1500' : null,
    crossing_p50: null,
    crossing_p90: scope_type === 'organization' ? '2026-12-24' : null,
    method: 'weekday-level-trend',
  });
  await db
    .insertInto('projections')
    .values([
      projection('organization', 'org', '321.123456'),
      projection('workspace', 'wrkspc_evil', '200'),
      projection('key', 'apikey_old', '150'),
    ])
    .execute();
  const alertId = await insertFiringAlert(
    db,
    {
      fingerprint: 'fp-evil',
      kind: 'usage.runaway',
      severity: 'critical',
      scope_type: 'key',
      scope_id: 'apikey_old',
      workspace_id: 'wrkspc_evil',
      title: EVIL.title,
      details: '{}',
    },
    new Date(NOW.getTime() - 3_600_000),
    NOW,
  );
  await db
    .insertInto('notifications')
    .values({
      alert_id: alertId,
      fingerprint: 'fp-evil',
      event: 'firing',
      channel: 'email',
      target: EVIL.target,
      payload: JSON.stringify({ fingerprints: ['fp-evil'] }),
      last_error: EVIL.error,
      attempts: 2,
    })
    .execute();
  const repos = createRepos(db);
  await repos.alerts.acknowledge(alertId, new Date(NOW.getTime() - 3_600_000), EVIL.ackBy, NOW);
  await repos.silences.add(
    {
      matchers: { kind: 'usage.*', workspace: EVIL.workspace },
      startsAt: new Date(NOW.getTime() - 3_600_000),
      endsAt: new Date(NOW.getTime() + 3_600_000),
      createdBy: EVIL.ackBy,
      comment: EVIL.comment,
    },
    NOW,
  );
  await db
    .insertInto('job_runs')
    .values({
      job: EVIL.job,
      consecutive_failures: 3,
      last_succeeded_at: null,
      last_failed_at: NOW,
      first_failed_at: NOW,
      last_error: EVIL.script,
    })
    .execute();

  // the page reads through a connection that refuses every write: a write anywhere in it fails the test
  readOnlyDb = createDb(`${t.url}?options=${encodeURIComponent('-c default_transaction_read_only=on')}`, { max: 2 });
  const config = loadConfig({
    env: { KEYWARDEN_CONFIG: 'examples/keywarden.yaml', KEYWARDEN_UI_TOKEN: TOKEN },
  });
  const ctx = { repos: createRepos(readOnlyDb), config, clock: fixedClock(NOW) };
  redis = new Redis(redisUrl());
  const common = {
    port: 0,
    host: '127.0.0.1',
    db: t.db,
    redis,
    metrics: createMetrics(createRepos(t.db)),
    log: captureLog().log,
  };
  server = await startHealthServer({
    ...common,
    status: { token: config.env.uiToken!, load: () => loadStatus(ctx, () => []) },
  });
  off = await startHealthServer(common);
});
afterAll(async () => {
  await server.close();
  await off.close();
  redis.disconnect();
  await readOnlyDb.destroy();
  await t.drop();
});

const url = (path = '/', port = server.port) => `http://127.0.0.1:${port}${path}`;
const bearer = { authorization: `Bearer ${TOKEN}` };

describe('status page: the token', () => {
  it('is off without KEYWARDEN_UI_TOKEN: / is not found', async () => {
    expect((await fetch(url('/', off.port))).status).toBe(404);
  });

  it('asks for the token: the login form, with no figure or name of the organization on it', async () => {
    const res = await fetch(url());
    expect(res.status).toBe(401);
    const body = await res.text();
    expect(body).toContain('name="token"');
    expect(body).not.toContain('wrkspc_evil');
    expect(body).not.toContain('alert');
    expect(body).not.toContain('$');
  });

  it('refuses a wrong bearer token and a wrong cookie', async () => {
    expect((await fetch(url(), { headers: { authorization: 'Bearer status-token-0123456789abcdeX' } })).status).toBe(
      401,
    );
    expect((await fetch(url(), { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(url(), { headers: { cookie: `keywarden_status=${TOKEN}` } })).status).toBe(401);
  });

  it('answers the right bearer token', async () => {
    expect((await fetch(url(), { headers: bearer })).status).toBe(200);
  });

  it('the login form sets an HttpOnly, SameSite cookie that opens the page; a wrong token sets none; sign out clears it', async () => {
    const form = (body: string, headers: Record<string, string> = {}) =>
      fetch(url(), {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        redirect: 'manual',
      });
    const wrong = await form('token=nope');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const right = await form(`token=${encodeURIComponent(TOKEN)}`, { 'x-forwarded-proto': 'https' });
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('./');
    const cookie = right.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^keywarden_status=[A-Za-z0-9_-]+; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    // the cookie is derived from the token, not the token
    expect(cookie).not.toContain(TOKEN);
    const page = await fetch(url(), { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    const out = await form('signout=1');
    expect(out.headers.get('set-cookie')).toMatch(/^keywarden_status=; .*Max-Age=0/);
  });

  it('accepts only GET, HEAD and POST, and a form of bounded size', async () => {
    expect((await fetch(url(), { method: 'DELETE', headers: bearer })).status).toBe(405);
    const big = await fetch(url(), { method: 'POST', body: `token=${'x'.repeat(10_000)}` });
    expect(big.status).toBe(413);
  });
});

describe('status page: safe by construction', () => {
  it('sends a strict Content-Security-Policy and nosniff, on the page and its files', async () => {
    for (const path of ['/', '/status/status.js', '/status/status.css', '/status/chart.umd.min.js']) {
      const res = await fetch(url(path), { headers: bearer });
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const page = await fetch(url(), { headers: bearer });
    expect(page.headers.get('cache-control')).toBe('no-store');
  });

  it('escapes every organization-controlled name: no element, attribute or script comes from them', async () => {
    const body = await (await fetch(url(), { headers: bearer })).text();
    // the page's own three scripts (the JSON block, chart.js, its script), and no other element they could bring
    expect(body.match(/<script/g)).toHaveLength(3);
    expect(body).not.toMatch(/<img|<svg|<iframe/i);
    expect(body.match(/<\/script>/g)).toHaveLength(3);
    expect(body).toContain('&lt;script&gt;alert(&quot;key&quot;)&lt;/script&gt;');
    expect(body).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(body).toContain('&#39;&gt;&lt;svg onload=alert(2)&gt;');
    expect(body).toContain('x&lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;@acme.example');
    expect(body).toContain('&lt;/li&gt;&lt;iframe src=javascript:alert(6)&gt;');
    // the filter's option for the hostile workspace is an escaped attribute value
    expect(body).toContain('<option value="&#39;&gt;&lt;svg onload=alert(2)&gt;">');
  });

  it('a workspace filter and a sort given in the URL are escaped back into the page, never run', async () => {
    const q = new URLSearchParams({ workspace: EVIL.img, sort: '"><script>', dir: 'desc' });
    const body = await (await fetch(url(`/?${q}`), { headers: bearer })).text();
    expect(body.match(/<script/g)).toHaveLength(3);
    expect(body).not.toMatch(/<img/);
    expect(body).toContain('name="sort" value="group"');
  });

  it('shows no secret: key hints as `keywarden keys` shows them, and never the token', async () => {
    const body = await (await fetch(url(), { headers: bearer })).text();
    expect(body).toContain('sk-ant-api03-R2D...igAA');
    expect(body).not.toContain(TOKEN);
    expect(body).not.toMatch(/sk-ant-admin/);
  });
});

describe('status page: the figures', () => {
  it('shows the spend figures `keywarden spend` reads, and the keys by stage with owner and deadline', async () => {
    const body = await (await fetch(url('/?sort=deadline'), { headers: bearer })).text();
    const report = (await spendReport(createRepos(t.db)))!;
    const org = report.rows.find((r) => r.scopeType === 'organization')!;
    for (const v of [org.monthToDateUsd, org.p10Usd, org.p50Usd, org.p90Usd, org.limitUsd!]) {
      expect(body).toContain(formatUsd(usdToPico(v)));
    }
    expect(body).toContain('Limit expected not this month (likely) / 2026-12-24 (fast).');
    expect(body).toContain('<strong>priced</strong>');
    expect(body).toMatch(/1 overdue, 1 due soon, 1 fine, 0 exempt, 0 not active/);
    // sorted by deadline: the overdue key (deadline passed) first
    const rows = body.slice(body.indexOf('id="keys-table"'));
    expect(rows.indexOf('&lt;script&gt;alert')).toBeLessThan(rows.indexOf('due soon key'));
  });

  it('filters the keys table by workspace', async () => {
    const body = await (
      await fetch(url(`/?${new URLSearchParams({ workspace: EVIL.workspace })}`), { headers: bearer })
    ).text();
    const table = body.slice(
      body.indexOf('id="keys-table"'),
      body.indexOf('</table>', body.indexOf('id="keys-table"')),
    );
    expect(table).toContain('&lt;script&gt;alert(&quot;key&quot;)');
    expect(table).not.toContain('due soon key');
    expect(body).toContain('1 of 3 keys shown');
  });

  it('shows firing alerts with their deliveries, who acknowledged them, the silences, and failing jobs', async () => {
    const body = await (await fetch(url(), { headers: bearer })).text();
    expect(body).toContain('acknowledged by U1&quot;&gt;&lt;script&gt;alert(7)&lt;/script&gt;');
    expect(body).toMatch(
      /<tr><td>active<\/td><td>kind=usage\.\* workspace=&#39;&gt;&lt;svg onload=alert\(2\)&gt;<\/td><td>2026-12-07 11:00<\/td><td>2026-12-07 13:00<\/td><td>U1&quot;&gt;&lt;script&gt;alert\(7\)&lt;\/script&gt;<\/td><td>&lt;img src=x onerror=alert\(8\)&gt; deploy window<\/td><\/tr>/,
    );
    expect(body).toContain('1 firing; 0 resolved in the last 7 days.');
    expect(body).toMatch(
      /email &lt;img src=x onerror=alert\(5\)&gt;: <span class="delivery pending">pending<\/span> \(2 attempts\)/,
    );
    expect(body).toMatch(/<td class="nowrap">poll-usage<\/td><td>—<\/td><td class="num">3<\/td>/);
    expect(body).toContain('Usage complete up to — UTC (no poll yet)');
  });

  it('says the Admin API is blind while a keywarden.blind alert fires', async () => {
    await insertFiringAlert(
      t.db,
      {
        fingerprint: 'fp-blind',
        kind: 'keywarden.blind',
        severity: 'critical',
        scope_type: 'organization',
        scope_id: '',
        workspace_id: null,
        title: 'keywarden is blind: the Admin API rejects the admin key',
        details: '{}',
      },
      NOW,
    );
    const body = await (await fetch(url(), { headers: bearer })).text();
    expect(body).toContain('Admin API: <span class="state firing">blind</span>');
  });
});
