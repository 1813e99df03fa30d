import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient, type AdminClientOptions } from '../../src/anthropic/client.ts';
import {
  AdminApiConnectionError,
  AdminApiError,
  AdminApiResponseError,
  AdminApiTimeoutError,
  AdminKeyRejectedError,
} from '../../src/anthropic/errors.ts';
import type { UsageBucket } from '../../src/anthropic/types.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, type EmulatorOptions, startEmulator } from '../../src/emulator/server.ts';
import { createLogger } from '../../src/log.ts';
import { priceUsage } from '../../src/usage/core/pricing.ts';

/** A canary: if this string shows up in an error, a log line or JSON, the key leaked. */
const ADMIN_KEY = 'sk-ant-admin01-CANARYcontractTestKey0123456789-ZZZZ';
const START = new Date('2026-03-02T10:00:00Z'); // a Monday
const MINUTE = 60_000;
const DAY = 86_400_000;

const SONNETS = ['claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-sonnet-4'];

const SCENARIO = parseScenario({
  name: 'contract',
  seed: 3,
  admin_keys: [ADMIN_KEY],
  traffic_defaults: { noise: 0.3, cache_write_1h_ratio: 0.02 },
  workspaces: [
    {
      name: 'Alpha',
      age_days: 300,
      rate_limits: [{ group_type: 'model_group', models: SONNETS, limits: { requests_per_minute: 100 } }],
    },
    { name: 'Beta', age_days: 200 },
    { name: 'Gamma', age_days: 100 },
    { name: 'Old', age_days: 400, archived_days_ago: 10 },
  ],
  users: [
    { name: 'Admin', email: 'admin@contract.example', role: 'admin', age_days: 500 },
    ...['u1', 'u2', 'u3', 'u4'].map((u, i) => ({
      name: u,
      email: `${u}@contract.example`,
      age_days: 100 + i,
      workspaces: { Alpha: 'workspace_developer' },
    })),
    { name: 'u5', email: 'u5@contract.example', role: 'managed', age_days: 50 },
  ],
  keys: [
    {
      name: 'alpha-prod',
      workspace: 'Alpha',
      created_by: 'u1@contract.example',
      age_days: 120,
      traffic: {
        tokens_per_minute: 20_000,
        models: { 'claude-sonnet-4-5': 0.7, 'claude-haiku-4-5': 0.3 },
        web_search_per_minute: 2,
      },
    },
    {
      name: 'alpha-batch',
      workspace: 'Alpha',
      created_by: 'u2@contract.example',
      age_days: 40,
      traffic: { tokens_per_minute: 8000, models: 'claude-haiku-4-5', batch_share: 1 },
    },
    {
      name: 'beta-app',
      workspace: 'Beta',
      created_by: 'u3@contract.example',
      age_days: 20,
      traffic: { tokens_per_minute: 5000, models: 'claude-opus-4-5', long_context_share: 0.2 },
    },
    {
      name: 'default-app',
      created_by: null,
      age_days: 365,
      traffic: { tokens_per_minute: 1000, models: 'claude-3-5-haiku' },
    },
    { name: 'gamma-paused', workspace: 'Gamma', created_by: 'u1@contract.example', status: 'inactive' },
    { name: 'gamma-expired', workspace: 'Gamma', created_by: 'u1@contract.example', expires_in_days: -1 },
    { name: 'old-key', workspace: 'Old', created_by: 'u4@contract.example', age_days: 200 },
  ],
});

const running: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

async function emulator(
  opts: Partial<EmulatorOptions> = {},
): Promise<Emulator & { clock: ReturnType<typeof fixedClock> }> {
  const clock = fixedClock(new Date(START.getTime() + 2 * 60 * MINUTE));
  const em = await startEmulator({
    scenario: SCENARIO,
    clock,
    startAt: START,
    freshnessDelayMinutes: 0,
    ...opts,
  });
  running.push(em);
  return Object.assign(em, { clock });
}

function capture() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines: () => chunks.join('') };
}

/** A client whose waits are recorded instead of slept, unless a test asks for real sleeping. */
function client(em: { url: string }, opts: Partial<AdminClientOptions> = {}) {
  const waits: number[] = [];
  const c = new AdminClient({
    baseUrl: em.url,
    adminKey: new Secret(ADMIN_KEY),
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...opts,
  });
  return Object.assign(c, { waits });
}

async function pages<P>(iterable: { pages(): AsyncIterable<P> }): Promise<P[]> {
  const out: P[] = [];
  for await (const p of iterable.pages()) out.push(p);
  return out;
}

describe('contract: every endpoint through the client against the emulator', () => {
  it('organization, users, workspaces and members, across id-cursor pages', async () => {
    const em = await emulator();
    const c = client(em);
    expect(await c.getOrganization()).toEqual({ id: em.state.id, name: 'Emulated Org' });

    const userPages = await pages(c.listUsers({ limit: 2 }));
    expect(userPages.length).toBeGreaterThanOrEqual(3);
    const users = userPages.flatMap((p) => p.data);
    expect(users.map((u) => u.email)).toEqual(em.state.users.map((u) => u.email));
    expect(new Set(users.map((u) => u.id)).size).toBe(users.length);
    expect(users.find((u) => u.email === 'u5@contract.example')?.role).toBe('managed');
    const [ana] = await c.listUsers({ email: 'u2@contract.example' }).toArray();
    expect(await c.getUser(ana!.id)).toEqual(ana);

    // before_id, which the client does not use, pages backwards: the `limit` items just before the cursor.
    const headers = { 'x-api-key': ADMIN_KEY, 'anthropic-version': '2023-06-01' };
    const before = await fetch(`${em.url}/v1/organizations/users?limit=2&before_id=${users.at(-1)!.id}`, { headers });
    expect(await before.json()).toMatchObject({
      data: [{ id: users.at(-3)!.id }, { id: users.at(-2)!.id }],
      has_more: true,
      first_id: users.at(-3)!.id,
      last_id: users.at(-2)!.id,
    });

    const workspacePages = await pages(c.listWorkspaces({ limit: 1 }));
    expect(workspacePages.length).toBe(3);
    expect(workspacePages.flatMap((p) => p.data.map((w) => w.name)).sort()).toEqual(['Alpha', 'Beta', 'Gamma']);
    const all = await c.listWorkspaces({ includeArchived: true }).toArray();
    const old = all.find((w) => w.name === 'Old')!;
    expect(old.archivedAt?.getTime()).toBe(START.getTime() - 10 * DAY);
    expect(await c.getWorkspace(old.id)).toEqual(old);

    const alpha = all.find((w) => w.name === 'Alpha')!;
    const memberPages = await pages(c.listWorkspaceMembers(alpha.id, { limit: 2 }));
    expect(memberPages.length).toBe(3);
    const members = memberPages.flatMap((p) => p.data);
    expect(members).toHaveLength(5); // four developers and the org admin
    expect(members.find((m) => m.workspaceRole === 'workspace_admin')?.userId).toBe(users[0]!.id);
    expect(members.every((m) => m.workspaceId === alpha.id)).toBe(true);
  });

  it('API keys: listed across pages with filters, read, renamed', async () => {
    const em = await emulator();
    const c = client(em);
    const keyPages = await pages(c.listApiKeys({ limit: 2 }));
    expect(keyPages.length).toBe(4);
    const keys = keyPages.flatMap((p) => p.data);
    expect(keys.map((k) => k.name).sort()).toEqual(SCENARIO.keys.map((k) => k.name).sort());

    const byName = new Map(keys.map((k) => [k.name, k]));
    expect(byName.get('default-app')).toMatchObject({
      workspaceId: null,
      createdBy: null,
      scope: 'workspace',
      status: 'active',
    });
    expect(byName.get('alpha-prod')!.createdAt.getTime()).toBe(START.getTime() - 120 * DAY);
    expect(byName.get('alpha-prod')!.partialKeyHint).toMatch(/^sk-ant-api03-.{3}\.\.\..{4}$/);
    expect(byName.get('gamma-expired')!.status).toBe('expired');
    expect(byName.get('old-key')!.status).toBe('archived');

    const alphaId = byName.get('alpha-prod')!.workspaceId!;
    expect((await c.listApiKeys({ workspaceId: alphaId }).toArray()).map((k) => k.name).sort()).toEqual([
      'alpha-batch',
      'alpha-prod',
    ]);
    expect((await c.listApiKeys({ status: 'inactive' }).toArray()).map((k) => k.name)).toEqual(['gamma-paused']);
    const u1 = byName.get('alpha-prod')!.createdBy!.id;
    expect((await c.listApiKeys({ createdByUserId: u1, status: 'active' }).toArray()).map((k) => k.name)).toEqual([
      'alpha-prod',
    ]);

    const id = byName.get('beta-app')!.id;
    expect(await c.getApiKey(id)).toEqual(byName.get('beta-app'));
    const renamed = await c.updateApiKey(id, { name: 'beta-app (old)' });
    expect(renamed.name).toBe('beta-app (old)');
    expect((await c.getApiKey(id)).name).toBe('beta-app (old)');
  });

  it('one page of the usage report is one request: the page asked for, with the token for the next', async () => {
    const em = await emulator();
    const c = client(em);
    const from = new Date(START.getTime() + 30 * MINUTE);
    const range = { startingAt: from, endingAt: new Date(from.getTime() + 10 * MINUTE), bucketWidth: '1m' as const };
    const walked = (await pages(c.usageReport({ ...range, limit: 3, groupBy: ['api_key_id'] })))[0]!;
    const page = await c.usageReportPage({ ...range, limit: 3, groupBy: ['api_key_id'] });
    expect(page.hasMore).toBe(true);
    expect(page.data).toEqual(walked.data);
    const next = await c.usageReportPage({ ...range, limit: 3, groupBy: ['api_key_id'], page: page.nextPage! });
    expect(next.data[0]!.starting_at.getTime()).toBe(from.getTime() + 3 * MINUTE);
  });

  it('the usage report across report pages matches the ground truth, minute by minute', async () => {
    const em = await emulator();
    const c = client(em);
    const from = new Date(START.getTime() + 30 * MINUTE);
    const report = c.usageReport({
      startingAt: from,
      endingAt: new Date(from.getTime() + 10 * MINUTE),
      bucketWidth: '1m',
      limit: 3,
      groupBy: ['api_key_id', 'model'],
    });
    const reportPages = await pages(report);
    expect(reportPages.map((p) => p.data.length)).toEqual([3, 3, 3, 1]);
    const buckets = reportPages.flatMap((p) => p.data);
    buckets.forEach((b, i) => {
      expect(b.starting_at.getTime()).toBe(from.getTime() + i * MINUTE);
      expect(b.ending_at.getTime()).toBe(from.getTime() + (i + 1) * MINUTE);
    });
    for (const bucket of buckets) {
      for (const key of em.state.keys) {
        const truth = em.usageAt(key.id, bucket.starting_at);
        const rows = bucket.results.filter((r) => r.api_key_id === key.id);
        for (const model of new Set(truth.map((t) => t.model))) {
          const expected = truth.filter((t) => t.model === model);
          const row = rows.find((r) => r.model === model)!;
          expect(row.output_tokens).toBe(expected.reduce((s, t) => s + t.output_tokens, 0));
          expect(row.cache_creation_1h_input_tokens).toBe(
            expected.reduce((s, t) => s + t.cache_creation_1h_input_tokens, 0),
          );
          expect(row.web_search_requests).toBe(expected.reduce((s, t) => s + t.web_search_requests, 0));
          expect(row.workspace_id).toBeNull(); // not grouped by it
          expect(row.service_tier).toBeNull();
        }
        expect(rows).toHaveLength(new Set(truth.map((t) => t.model)).size);
      }
    }
    // A 1h bucket over the same organization: the Default Workspace's key shows with workspace_id null.
    const [hour] = await c
      .usageReport({
        startingAt: START,
        endingAt: new Date(START.getTime() + 60 * MINUTE),
        bucketWidth: '1h',
        groupBy: ['workspace_id'],
      })
      .toArray();
    expect(hour!.results.some((r) => r.workspace_id === null && r.uncached_input_tokens > 0)).toBe(true);
  });

  it('empty buckets come back with no results, and nothing from the future', async () => {
    const em = await emulator();
    const c = client(em);
    const now = em.clock.now().getTime();
    const buckets = await c
      .usageReport({
        startingAt: new Date(now - 3 * MINUTE),
        endingAt: new Date(now + 60 * MINUTE),
        bucketWidth: '1m',
        apiKeyIds: [em.state.keys.find((k) => k.name === 'gamma-paused')!.id],
      })
      .toArray();
    expect(buckets).toHaveLength(3);
    expect(buckets.every((b) => b.results.length === 0)).toBe(true);
  });

  it('the cost report across report pages equals the usage report priced, per workspace and day, to the picodollar', async () => {
    const em = await emulator();
    const c = client(em);
    const firstDay = new Date(Date.UTC(2026, 1, 27));
    const lastDay = new Date(firstDay.getTime() + 3 * DAY);
    const costPages = await pages(
      c.costReport({ startingAt: firstDay, endingAt: lastDay, limit: 1, groupBy: ['workspace_id'] }),
    );
    expect(costPages).toHaveLength(3);
    const costs = costPages.flatMap((p) => p.data);

    const usage = await c
      .usageReport({
        startingAt: firstDay,
        endingAt: lastDay,
        bucketWidth: '1d',
        groupBy: ['workspace_id', 'model', 'service_tier', 'context_window'],
      })
      .toArray();
    expect(usage).toHaveLength(3);
    for (const [i, day] of costs.entries()) {
      const priced = new Map<string | null, bigint>();
      for (const row of usage[i]!.results) {
        const cost = priceUsage(row, em.state.priceTable, day.starting_at).cost;
        priced.set(row.workspace_id, (priced.get(row.workspace_id) ?? 0n) + cost);
      }
      expect(day.results.length).toBe(priced.size);
      for (const r of day.results) {
        expect(r.amount_pico).toBe(priced.get(r.workspace_id));
        expect(r.amount_pico).toBe(em.costPicoFor(r.workspace_id, day.starting_at));
        expect(r.currency).toBe('USD');
      }
    }
    // Grouped by description, the rows of a day add up to the same total.
    const [detailed] = await c
      .costReport({ startingAt: firstDay, endingAt: new Date(firstDay.getTime() + DAY), groupBy: ['description'] })
      .toArray();
    const total = detailed!.results.reduce((s, r) => s + r.amount_pico, 0n);
    expect(total).toBe(costs[0]!.results.reduce((s, r) => s + r.amount_pico, 0n));
    expect(detailed!.results.find((r) => r.service_tier === 'batch')?.description).toMatch(
      /Claude Haiku 4\.5 Usage - .*Batch/,
    );
    expect(detailed!.results.some((r) => r.cost_type === 'web_search')).toBe(true);
  });

  it('rate limits of the organization and of a workspace, across pages', async () => {
    const em = await emulator();
    const c = client(em);
    const limitPages = await pages(c.listRateLimits({ limit: 2 }));
    expect(limitPages.length).toBe(3);
    const groups = limitPages.flatMap((p) => p.data);
    expect(groups.map((g) => g.groupType)).toEqual([
      'model_group',
      'model_group',
      'model_group',
      'batch',
      'web_search',
    ]);
    expect(groups[1]!.limits.find((l) => l.type === 'requests_per_minute')?.value).toBe(4000);

    const alpha = (await c.listWorkspaces().toArray()).find((w) => w.name === 'Alpha')!;
    const own = await c.listWorkspaceRateLimits(alpha.id).toArray();
    expect(own).toHaveLength(1);
    expect(own[0]).toMatchObject({ type: 'workspace_rate_limit', models: SONNETS });
    expect(own[0]!.limits).toEqual([{ type: 'requests_per_minute', value: 100, orgLimit: 4000, source: 'workspace' }]);
    const inherited = await c.listWorkspaceRateLimits(alpha.id, { includeInherited: true }).toArray();
    expect(inherited).toHaveLength(5);
  });

  it('rejects a report asking for more buckets than the width allows, as the API does', async () => {
    const em = await emulator();
    const c = client(em);
    const err = await c
      .usageReport({ startingAt: START, bucketWidth: '1h', limit: 169 })
      .toArray()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiError);
    expect(err).toMatchObject({ status: 400, errorType: 'invalid_request_error', retryable: false });
    expect((err as Error).message).toMatch(/limit: must be an integer from 1 to 168 for bucket_width 1h/);
  });

  it('sends anthropic-version 2026-10-21 on the API-key reads only; the reports and the rest keep 2023-06-01', async () => {
    const em = await emulator();
    const sent: string[] = [];
    const c = client(em, {
      fetch: (input, init) => {
        const path = new URL(String(input)).pathname;
        const headers = (init?.headers ?? {}) as Record<string, string>;
        sent.push(`${init?.method} ${path} ${headers['anthropic-version']}`);
        return fetch(input, init);
      },
    });
    const [key] = await c.listApiKeys().toArray();
    await c.getApiKey(key!.id);
    await c.updateApiKey(key!.id, { name: key!.name });
    await c.usageReportPage({ startingAt: START, endingAt: em.clock.now(), bucketWidth: '1h' });
    await c.costReport({ startingAt: new Date('2026-03-01T00:00:00Z') }).toArray();
    await c.getOrganization();
    await c.listWorkspaces().toArray();
    const keyId = encodeURIComponent(key!.id);
    expect(sent).toEqual([
      'GET /v1/organizations/api_keys 2026-10-21',
      // the Default Workspace lookup the 2026 `scope` needs, in the same version
      'GET /v1/organizations/workspaces 2026-10-21',
      'GET /v1/organizations/workspaces 2026-10-21',
      `GET /v1/organizations/api_keys/${keyId} 2026-10-21`,
      `POST /v1/organizations/api_keys/${keyId} 2023-06-01`,
      'GET /v1/organizations/usage_report/messages 2023-06-01',
      'GET /v1/organizations/cost_report 2023-06-01',
      'GET /v1/organizations/me 2023-06-01',
      'GET /v1/organizations/workspaces 2023-06-01',
    ]);
  });

  it('reads the 2026 key shape (scope instead of workspace_id), the Default Workspace as null', async () => {
    const em = await emulator({ scenario: { ...SCENARIO, api_shape: '2026' } });
    const keys = await client(em).listApiKeys().toArray();
    const alpha = keys.find((k) => k.name === 'alpha-prod')!;
    expect(alpha.workspaceId).toBe(em.state.workspaces.find((w) => w.name === 'Alpha')!.id);
    expect(alpha.principal).toBeNull();
    expect(keys.find((k) => k.name === 'default-app')!.workspaceId).toBeNull();
  });
});

describe('a key set inactive through the client', () => {
  it('has no usage in later buckets', async () => {
    const em = await emulator();
    const c = client(em);
    const key = em.state.keys.find((k) => k.name === 'alpha-prod')!;
    const changedAt = em.clock.now().getTime();
    const updated = await c.updateApiKey(key.id, { status: 'inactive' });
    expect(updated.status).toBe('inactive');
    em.clock.advance(10 * MINUTE);

    const buckets = await c
      .usageReport({
        startingAt: new Date(changedAt - 5 * MINUTE),
        endingAt: new Date(changedAt + 10 * MINUTE),
        bucketWidth: '1m',
        apiKeyIds: [key.id],
        groupBy: ['api_key_id'],
      })
      .toArray();
    expect(buckets).toHaveLength(15);
    const tokens = (b: UsageBucket) => b.results.reduce((s, r) => s + r.uncached_input_tokens + r.output_tokens, 0);
    expect(buckets.slice(0, 5).every((b) => tokens(b) > 0)).toBe(true);
    expect(buckets.slice(5).map(tokens)).toEqual(Array(10).fill(0));
    expect((await c.listApiKeys({ status: 'inactive' }).toArray()).map((k) => k.id)).toContain(key.id);
  });
});

describe('retries', () => {
  it('waits as long as retry-after says before sending again, then succeeds', async () => {
    const em = await emulator({ faults: { script: [{ status: 429, retryAfterSeconds: 2 }] } });
    const { log, lines } = capture();
    // Real sleeping, once: the request log proves the second request came after the wait.
    const c = new AdminClient({ baseUrl: em.url, adminKey: new Secret(ADMIN_KEY), log, random: () => 0 });
    const org = await c.getOrganization();
    expect(org.id).toBe(em.state.id);
    expect(em.requestLog.map((r) => r.status)).toEqual([429, 200]);
    const [first, second] = em.requestLog;
    expect(second!.time.getTime() - first!.time.getTime()).toBeGreaterThanOrEqual(2000);
    const warn = JSON.parse(
      lines()
        .split('\n')
        .find((l) => l.includes('retrying'))!,
    );
    expect(warn).toMatchObject({ level: 40, status: 429, attempt: 1, waitMs: 2000, errorType: 'rate_limit_error' });
    expect(warn.requestId).toMatch(/^req_/);
    expect(lines()).not.toContain('CANARY');
  });

  it('keeps a call asleep on one retry-after until a longer one, told meanwhile, has also ended', async () => {
    // B is in flight before any pause and answered 429 (3 s) only after 1 s; A's immediate 429 (2 s) has put X to
    // sleep by then: X must not wake at A's end into B's window (fault drill 4 saw two calls do that)
    const em = await emulator({
      faults: {
        script: [
          { status: 429, retryAfterSeconds: 3, delayMs: 1_000, path: '/v1/organizations/users' },
          { status: 429, retryAfterSeconds: 2, path: '/v1/organizations/me' },
        ],
      },
    });
    const c = new AdminClient({ baseUrl: em.url, adminKey: new Secret(ADMIN_KEY), random: () => 0 });
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const b = c.listUsers().toArray();
    await pause(50);
    const a = c.getOrganization();
    await pause(200);
    const x = c.listWorkspaces().toArray();
    await Promise.all([a, b, x]);
    const told = em.requestLog.find((r) => r.status === 429 && r.path.startsWith('/v1/organizations/users'))!;
    const answeredAt = told.time.getTime() + (told.durationMs ?? 0);
    const tooSoon = em.requestLog
      .filter((r) => r.time.getTime() > answeredAt + 100 && r.time.getTime() < answeredAt + 3_000)
      .map((r) => ({ path: r.path, afterMs: r.time.getTime() - answeredAt }));
    expect(tooSoon).toEqual([]);
    expect(em.requestLog.filter((r) => r.status === 429)).toHaveLength(2);
  });

  it('rides out a burst of 500s with growing backoff', async () => {
    const em = await emulator({
      faults: { script: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 529 }] },
    });
    const c = client(em, { random: () => 0.999 });
    const keys = await c.listApiKeys().toArray();
    expect(keys.length).toBe(SCENARIO.keys.length);
    // the key list's own requests: the 2026 shapes it reads then cost the Default Workspace lookup after it
    const keyReads = em.requestLog.filter((r) => r.path.startsWith('/v1/organizations/api_keys'));
    expect(keyReads.map((r) => r.status)).toEqual([500, 500, 500, 529, 200]);
    expect(c.waits).toEqual([500, 999, 1998, 3996]); // full jitter at its top: 0.5 s doubling
  });

  it('takes retry-after as a floor under the jittered backoff', async () => {
    const em = await emulator({ faults: { script: [{ status: 529, retryAfterSeconds: 7 }] } });
    const c = client(em, { random: () => 0 });
    await c.getOrganization();
    expect(c.waits).toEqual([7000]);
  });

  it('gives up after maxAttempts, with the last error', async () => {
    const em = await emulator({ faults: { script: Array(5).fill({ status: 503 }) } });
    const c = client(em, { maxAttempts: 3 });
    const err = await c.getOrganization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiError);
    expect(err).toMatchObject({ status: 503, attempts: 3 });
    expect(em.requestLog).toHaveLength(3);
  });

  it('does not wait past maxElapsedMs for a retry-after it cannot honour in time', async () => {
    const em = await emulator({ faults: { script: [{ status: 429, retryAfterSeconds: 300 }] } });
    const c = client(em, { maxElapsedMs: 60_000 });
    const err = await c.getOrganization().catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, retryAfterMs: 300_000 });
    expect(c.waits).toEqual([]);
    expect(em.requestLog).toHaveLength(1);
  });

  it('cuts a hanging request at the timeout, and retries it', async () => {
    const em = await emulator({ faults: { script: [{ hang: true }, { hang: true }] } });
    const once = client(em, { timeoutMs: 200, maxAttempts: 1 });
    const err = await once.getOrganization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiTimeoutError);
    expect((err as Error).message).toContain('within 200 ms');
    const twice = client(em, { timeoutMs: 200, maxAttempts: 2 });
    expect((await twice.getOrganization()).id).toBe(em.state.id);
    expect(twice.waits).toHaveLength(1);
  });

  it('retries a refused connection, then says it cannot reach the API', async () => {
    const em = await emulator();
    const url = em.url;
    await em.close();
    const c = client({ url }, { maxAttempts: 3 });
    const err = await c.getOrganization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiConnectionError);
    expect(err).toMatchObject({ status: 0, errorType: 'connection_error', attempts: 3, retryable: true });
    expect((err as Error).message).toMatch(/cannot reach the Admin API for GET \/v1\/organizations\/me: ECONNREFUSED/);
    expect(c.waits).toHaveLength(2);
  });

  it('stops at once when the caller aborts, during a request or a backoff', async () => {
    const em = await emulator({ faults: { script: [{ hang: true }] } });
    const c = client(em);
    const during = new AbortController();
    setTimeout(() => during.abort(new Error('shutting down')), 50);
    await expect(c.getOrganization({ signal: during.signal })).rejects.toThrow('shutting down');

    em.setFaults({ script: [{ status: 429, retryAfterSeconds: 60 }] });
    const sleeping = new AdminClient({ baseUrl: em.url, adminKey: new Secret(ADMIN_KEY) });
    const backoff = new AbortController();
    setTimeout(() => backoff.abort(new Error('shutting down')), 100);
    await expect(sleeping.getOrganization({ signal: backoff.signal })).rejects.toThrow('shutting down');
  });
});

describe('a rejected admin key', () => {
  it('raises AdminKeyRejectedError at once, naming the key by its hint only', async () => {
    const em = await emulator();
    em.setAdminKeys(['sk-ant-admin01-some-other-key-entirely-0000']);
    const { log, lines } = capture();
    const c = client(em, { log });
    const err = await c
      .listApiKeys()
      .toArray()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminKeyRejectedError);
    const rejected = err as AdminKeyRejectedError;
    expect(rejected).toMatchObject({ status: 401, errorType: 'authentication_error', retryable: false });
    expect(rejected.requestId).toMatch(/^req_/);
    expect(rejected.message).toContain('rejected the admin key sk-ant-admin01-****ZZZZ');
    expect(rejected.message).toContain('ANTHROPIC_ADMIN_KEY');
    for (const text of [rejected.message, String(rejected.stack), JSON.stringify(rejected), lines()]) {
      expect(text).not.toContain('CANARY');
    }
    expect(em.requestLog).toHaveLength(1);
    expect(c.waits).toEqual([]);
  });
});

describe('malformed responses', () => {
  const KEY = {
    id: 'apikey_01X',
    type: 'api_key',
    name: 'k',
    status: 'active',
    created_at: '2026-04-30T18:46:40.501292Z',
    created_by: { id: 'user_01A', type: 'user' },
    partial_key_hint: 'sk-ant-api03-R2D...igAA',
    workspace_id: null,
    expires_at: null,
  };
  const ROUTES: Record<string, { status?: number; type?: string; body: string }> = {
    '/v1/organizations/me': { type: 'text/html', body: '<html><body><h1>502 Bad Gateway</h1></body></html>' },
    '/v1/organizations/users': {
      body: '{"data":[{"id":"user_01A","email":"a@b.c","name":"A","role":"user","added_at":"2026-01-0',
    },
    '/v1/organizations/api_keys/apikey_01X': { body: JSON.stringify({ ...KEY, created_at: 5 }) },
    '/v1/organizations/api_keys': {
      body: JSON.stringify({
        data: [KEY, KEY, { ...KEY, name: undefined }],
        has_more: false,
        first_id: 'apikey_01X',
        last_id: 'apikey_01X',
      }),
    },
    '/v1/organizations/workspaces': { status: 502, type: 'text/html', body: '<html>Bad gateway</html>' },
    '/v1/organizations/api_keys/apikey_2026': {
      body: JSON.stringify({
        id: 'apikey_2026',
        type: 'api_key',
        name: 'org key',
        status: 'active',
        created_at: '2026-10-01T00:00:00Z',
        created_by: null,
        partial_key_hint: null,
        workspace_id: null,
        expires_at: null,
        principal: { type: 'service_account_actor', service_account_id: 'svac_01Z' },
        scope: { type: 'organization' },
        some_future_field: { nested: true },
      }),
    },
    '/v1/organizations/users/user_new': {
      body: JSON.stringify({
        id: 'user_new',
        type: 'user',
        email: 'n@b.c',
        name: 'N',
        role: 'primary_owner',
        added_at: '2026-10-01T00:00:00Z',
        extra: 1,
      }),
    },
  };

  async function badServer(): Promise<{ url: string }> {
    const server: Server = createServer((req, res) => {
      const route = ROUTES[new URL(req.url ?? '/', 'http://x').pathname];
      res.writeHead(route?.status ?? (route ? 200 : 404), { 'content-type': route?.type ?? 'application/json' });
      res.end(route?.body ?? '{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    running.push({ close: () => new Promise((resolve) => server.close(resolve)) });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it.each([
    [
      'HTML instead of JSON',
      (c: AdminClient) => c.getOrganization(),
      null,
      /GET \/v1\/organizations\/me: got HTML instead of JSON/,
    ],
    [
      'truncated JSON',
      (c: AdminClient) => c.listUsers().toArray(),
      null,
      /GET \/v1\/organizations\/users: the body is not valid JSON \(truncated\?\)/,
    ],
    [
      'a wrong type',
      (c: AdminClient) => c.getApiKey('apikey_01X'),
      'created_at',
      /created_at: expected string, got number/,
    ],
    [
      'a missing field',
      (c: AdminClient) => c.listApiKeys().toArray(),
      'data[2].name',
      /data\[2\]\.name: expected string, got missing/,
    ],
  ])('%s gives an AdminApiResponseError naming the problem', async (_name, call, field, message) => {
    const c = client(await badServer());
    const err = await call(c).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiResponseError);
    expect((err as AdminApiResponseError).field).toBe(field);
    expect((err as Error).message).toMatch(message);
    expect((err as AdminApiResponseError).retryable).toBe(false);
  });

  it('returns nothing from a page with one bad item', async () => {
    const c = client(await badServer());
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const key of c.listApiKeys()) seen.push(key.id);
      })(),
    ).rejects.toBeInstanceOf(AdminApiResponseError);
    expect(seen).toEqual([]);
  });

  it('an HTML error page with a 5xx status is a retryable API error, not a response error', async () => {
    const c = client(await badServer(), { maxAttempts: 2 });
    const err = await c
      .listWorkspaces()
      .toArray()
      .catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(AdminApiResponseError);
    expect(err).toMatchObject({ status: 502, errorType: 'http_502', attempts: 2 });
  });

  it('tolerates the 2026 shapes: scope, principal, nullable creator and hint, new roles, extra fields', async () => {
    const c = client(await badServer());
    expect(await c.getApiKey('apikey_2026')).toEqual({
      id: 'apikey_2026',
      name: 'org key',
      status: 'active',
      createdAt: new Date('2026-10-01T00:00:00Z'),
      createdBy: null,
      partialKeyHint: null,
      workspaceId: null,
      scope: 'organization',
      expiresAt: null,
      principal: { type: 'service_account_actor', userId: null, serviceAccountId: 'svac_01Z' },
    });
    expect((await c.getUser('user_new')).role).toBe('primary_owner');
  });
});
