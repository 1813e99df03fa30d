import Anthropic from '@anthropic-ai/sdk';
import type { BetaAnalyticsActor } from '@anthropic-ai/sdk/resources/beta/organization/analytics/analytics';
import type { BetaAnalyticsCostItem } from '@anthropic-ai/sdk/resources/beta/organization/analytics/cost';
import type { BetaAnalyticsUsageItem } from '@anthropic-ai/sdk/resources/beta/organization/analytics/usage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ANALYTICS_BETA,
  type AnalyticsCostRow,
  AnalyticsRefusedError,
  AnalyticsRequestError,
} from '../../src/anthropic/analytics.ts';
import { AdminClient } from '../../src/anthropic/client.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { centsToPico, type Pico, picoToCents } from '../../src/money.ts';

/**
 * The Usage and Cost Analytics API (beta) of the emulator against Anthropic's SDK, as sdk-contract.test.ts does for
 * the entities: (a) rows fetched raw are parsed with strict schemas whose types tsc proves equal to the SDK's
 * `BetaAnalyticsUsageItem` and `BetaAnalyticsCostItem`; (b) the SDK, constructed plainly, walks both endpoints
 * (`client.beta.organization.analytics.usage/cost`) and its answers are compared with the scenario's truth;
 * (c) keywarden's own client reads the same rows, and names the errors.
 */

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const ok = <_ extends true>() => {};

const nullable = <S extends z.ZodType>(s: S) => s.nullable();
const federatedProvider = z.union([
  z.strictObject({ account_id: z.string(), signed_principal: z.string(), type: z.literal('aws') }),
  z.strictObject({ subscription_id: z.string(), type: z.literal('azure') }),
  z.strictObject({ project_number: z.string(), type: z.literal('gcp') }),
  z.strictObject({ issuer: z.string().nullable(), type: z.literal('oidc') }),
]);
const actor = z.union([
  z.strictObject({
    deleted: z.boolean(),
    email_address: z.string().nullable(),
    name: z.string().nullable(),
    type: z.literal('user_actor'),
    user_id: z.string(),
  }),
  z.strictObject({ service_account_id: z.string(), type: z.literal('service_account_actor') }),
  z.strictObject({ provider: federatedProvider, subject: z.string().nullable(), type: z.literal('federated_actor') }),
  z.strictObject({ api_key_id: z.string(), type: z.literal('api_actor') }),
]);
ok<Same<z.output<typeof actor>, BetaAnalyticsActor>>();

const groupFields = {
  actor: actor.nullable(),
  actor_type: nullable(z.enum(['api_actor', 'federated_actor', 'service_account_actor', 'user_actor'])),
  agent_id: z.string().nullable(),
  api_key_id: z.string().nullable(),
  claude_tag_category: nullable(z.enum(['dm', 'engaged', 'monitoring', 'proactive', 'scheduled'])),
  claude_tag_user_id: z.string().nullable(),
  context_window: nullable(z.enum(['0-200k', '200k-1M'])),
  deployment_id: z.string().nullable(),
  environment_id: z.string().nullable(),
  inference_geo: nullable(z.enum(['global', 'us'])),
  model: z.string().nullable(),
  organization_id: z.string().nullable(),
  product: z.string().nullable(),
  rbac_group_id: z.string().nullable(),
  service_tier: nullable(z.enum(['batch', 'flex', 'flex_discount', 'priority', 'priority_on_demand', 'standard'])),
  session_id: z.string().nullable(),
  slack_channel_id: z.string().nullable(),
  speed: nullable(z.enum(['fast', 'standard'])),
  user_profile_id: z.string().nullable(),
  workspace_id: z.string().nullable(),
};
const usageItem = z.strictObject({
  ending_at: z.string(),
  group: z.strictObject(groupFields),
  starting_at: z.string(),
  usage: z.strictObject({
    cache_creation: z.strictObject({ ephemeral_1h_input_tokens: z.number(), ephemeral_5m_input_tokens: z.number() }),
    cache_read_input_tokens: z.number(),
    output_tokens: z.number(),
    requests: z.number().nullable(),
    server_tool_use: z.strictObject({ web_search_requests: z.number() }),
    total_tokens: z.number(),
    uncached_input_tokens: z.number(),
  }),
});
ok<Same<z.output<typeof usageItem>, BetaAnalyticsUsageItem>>();

const costItem = z.strictObject({
  cost: z.strictObject({
    amount: z.string(),
    currency: z.string(),
    list_amount: z.string(),
    requests: z.number().nullable(),
  }),
  ending_at: z.string(),
  group: z.strictObject({
    ...groupFields,
    cost_type: nullable(z.enum(['code_execution', 'session_usage', 'tokens', 'web_search'])),
    token_type: nullable(
      z.enum([
        'cache_creation.ephemeral_1h_input_tokens',
        'cache_creation.ephemeral_5m_input_tokens',
        'cache_read_input_tokens',
        'output_tokens',
        'uncached_input_tokens',
      ]),
    ),
  }),
  starting_at: z.string(),
});
ok<Same<z.output<typeof costItem>, BetaAnalyticsCostItem>>();

const reportPage = <S extends z.ZodType>(item: S) =>
  z.strictObject({
    data: z.array(item),
    has_more: z.boolean(),
    next_page: z.string().nullable(),
    data_refreshed_at: z.string().nullable(),
  });

// ── the organization ────────────────────────────────────────────────────────────────────────────────────────

const ADMIN_KEY = 'sk-ant-admin01-sdk-analytics-test-key-0001';
const START = new Date('2026-11-16T10:00:00Z');
const traffic = (tokens: number, models: Record<string, number>, extra: object = {}) => ({
  tokens_per_minute: tokens,
  models,
  noise: 0.1,
  ...extra,
});

const scenario = (analytics: 'available' | 'refused') =>
  parseScenario({
    name: 'sdk-analytics',
    seed: 5,
    admin_keys: [ADMIN_KEY],
    analytics_api: analytics,
    workspaces: [{ name: 'Alpha' }, { name: 'Beta' }],
    users: [{ name: 'Dev', email: 'dev@sdk.example', role: 'developer', workspaces: { Alpha: 'workspace_developer' } }],
    keys: [
      {
        name: 'alpha',
        workspace: 'Alpha',
        created_by: 'dev@sdk.example',
        traffic: traffic(20_000, { 'claude-sonnet-4-5': 2, 'claude-haiku-4-5': 1 }, { batch_share: 0.3 }),
      },
      {
        name: 'bot',
        workspace: 'Beta',
        created_by: 'svac_01AnalyticsBot',
        principal: 'svac_01AnalyticsBot',
        traffic: traffic(8_000, { 'claude-opus-4-6': 1 }, { web_search_per_minute: 1 }),
      },
      {
        name: 'personal',
        scope: 'organization',
        principal: 'dev@sdk.example',
        created_by: 'dev@sdk.example',
        traffic: traffic(3_000, { 'claude-haiku-4-5': 1 }),
      },
      // its Opus requests are blocked: their tokens are reported, nothing is billed
      {
        name: 'default',
        traffic: traffic(
          5_000,
          { 'claude-sonnet-4-5': 1, 'claude-opus-4-6': 1 },
          { blocked_models: ['claude-opus-4-6'] },
        ),
      },
    ],
  });

let em: Emulator;
let refused: Emulator;
beforeAll(async () => {
  em = await startEmulator({ scenario: scenario('available'), clock: fixedClock(START), startAt: START });
  refused = await startEmulator({ scenario: scenario('refused'), clock: fixedClock(START), startAt: START });
});
afterAll(async () => {
  await em?.close();
  await refused?.close();
});

const key = (name: string) => em.state.keys.find((k) => k.name === name)!;
const FROM = '2026-11-14T00:00:00Z';
const TO = '2026-11-16T10:00:00Z';

async function raw(path: string, beta: string | null = ANALYTICS_BETA): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}`, 'anthropic-version': '2026-10-21' };
  if (beta !== null) headers['anthropic-beta'] = beta;
  const res = await fetch(`${em.url}${path}`, { headers });
  return { status: res.status, body: await res.json() };
}

describe('(a) the analytics rows, as the SDK types them', () => {
  it.each([
    `/v1/organizations/analytics/usage?starting_at=${FROM}&ending_at=${TO}&time_bucket_width=1h&limit=50&group_by[]=actor&group_by[]=api_key_id&group_by[]=workspace_id&group_by[]=model&group_by[]=service_tier`,
    `/v1/organizations/analytics/usage?starting_at=${FROM}&group_by[]=actor_type&group_by[]=context_window&group_by[]=inference_geo&group_by[]=speed&group_by[]=product`,
    `/v1/organizations/analytics/cost?starting_at=${FROM}&ending_at=${TO}&time_bucket_width=1d&group_by[]=api_key_id&group_by[]=model&group_by[]=cost_type&group_by[]=token_type`,
    `/v1/organizations/analytics/cost?starting_at=${FROM}&ending_at=${TO}&time_bucket_width=1d&group_by[]=actor&group_by[]=workspace_id&group_by[]=cost_type`,
  ])('GET %s', async (path) => {
    const { status, body } = await raw(path);
    expect(status).toBe(200);
    const schema = path.includes('/cost?') ? reportPage(costItem) : reportPage(usageItem);
    const parsed = schema.safeParse(body);
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect((body as { data: unknown[] }).data.length).toBeGreaterThan(0);
  });

  it('without the beta header the API refuses, naming the header', async () => {
    const { status, body } = await raw(`/v1/organizations/analytics/usage?starting_at=${FROM}`, null);
    expect(status).toBe(400);
    expect(JSON.stringify(body)).toContain(ANALYTICS_BETA);
  });
});

describe('(b) the official SDK over client.beta.organization.analytics', () => {
  const sdk = (target = em) => new Anthropic({ apiKey: ADMIN_KEY, baseURL: target.url });

  it('cost per key across pages equals the scenario billed cost; amounts are fractional cents', async () => {
    const sums = new Map<string, Pico>();
    let pages = 0;
    const first = await sdk().beta.organization.analytics.cost.list({
      starting_at: FROM,
      ending_at: TO,
      time_bucket_width: '1h',
      group_by: ['api_key_id'],
      limit: 25,
    });
    for await (const page of first.iterPages()) {
      pages++;
      expect(page.data_refreshed_at).toBe('2026-11-16T10:00:00Z');
      for (const row of page.data) {
        expect(row.cost.amount).toBe(row.cost.list_amount);
        const id = row.group.api_key_id!;
        sums.set(id, (sums.get(id) ?? 0n) + centsToPico(row.cost.amount));
      }
    }
    expect(pages).toBeGreaterThan(2);
    for (const k of em.state.keys) {
      const truth = em.billedPicoFor(k.id, new Date(FROM), new Date(TO));
      expect(`${k.name} ${picoToCents(sums.get(k.id) ?? 0n)}`).toBe(`${k.name} ${picoToCents(truth)}`);
    }
  });

  it('usage: ranked by total_tokens by default, time order when asked, no empty buckets, actors per key', async () => {
    const ranked: BetaAnalyticsUsageItem[] = [];
    for await (const r of sdk().beta.organization.analytics.usage.list({
      starting_at: FROM,
      ending_at: TO,
      time_bucket_width: '1h',
      group_by: ['api_key_id'],
      limit: 1000,
    })) {
      ranked.push(r);
    }
    const totals = ranked.map((r) => r.usage.total_tokens);
    expect(totals).toEqual([...totals].sort((a, b) => b - a));
    expect(ranked.every((r) => r.usage.total_tokens > 0 && (r.usage.requests ?? 0) > 0)).toBe(true);

    const timed: BetaAnalyticsUsageItem[] = [];
    for await (const r of sdk().beta.organization.analytics.usage.list({
      starting_at: FROM,
      ending_at: TO,
      time_bucket_width: '1h',
      group_by: ['actor'],
      order_by: 'time',
      order: 'asc',
      limit: 7,
    })) {
      timed.push(r);
    }
    const starts = timed.map((r) => r.starting_at);
    expect(starts).toEqual([...starts].sort());
    expect(timed.length).toBe(ranked.length);
    const actors = new Set(timed.map((r) => JSON.stringify(r.group.actor)));
    expect([...actors].sort()).toEqual(
      [
        { type: 'api_actor', api_key_id: key('alpha').id },
        { type: 'service_account_actor', service_account_id: 'svac_01AnalyticsBot' },
        {
          type: 'user_actor',
          user_id: em.state.users[0]!.id,
          email_address: 'dev@sdk.example',
          name: 'Dev',
          deleted: false,
        },
        { type: 'api_actor', api_key_id: key('default').id },
      ]
        .map((a) => JSON.stringify(a))
        .sort(),
    );
  });

  it('blocked requests: their model shows tokens in usage and no cost row', async () => {
    const params = {
      starting_at: FROM,
      ending_at: TO,
      time_bucket_width: '1d' as const,
      group_by: ['api_key_id' as const, 'model' as const],
      api_key_ids: [key('default').id],
      limit: 100,
    };
    const usedModels = new Set<string>();
    for await (const r of sdk().beta.organization.analytics.usage.list(params)) usedModels.add(r.group.model!);
    const billedModels = new Set<string>();
    for await (const r of sdk().beta.organization.analytics.cost.list(params)) billedModels.add(r.group.model!);
    expect([...usedModels].sort()).toEqual(['claude-opus-4-6', 'claude-sonnet-4-5']);
    expect([...billedModels]).toEqual(['claude-sonnet-4-5']);
  });

  it('the range and grouping limits, as the SDK raises them', async () => {
    const analytics = sdk().beta.organization.analytics;
    const tooMany = await analytics.usage
      .list({
        starting_at: FROM,
        group_by: ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window', 'actor'],
      })
      .catch((e: unknown) => e);
    expect(tooMany).toMatchObject({ status: 400, errorCode: 'too_many_report_groups' });
    expect(tooMany!.constructor.name).toBe('BetaTooManyReportGroupsError');
    // cost_type and token_type do not count toward the 5
    await analytics.cost.list({
      starting_at: FROM,
      group_by: ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window', 'cost_type', 'token_type'],
    });
    const refusals = [
      { starting_at: FROM, time_bucket_width: '1h' as const },
      { starting_at: '2026-10-01T00:00:00Z', ending_at: '2026-11-02T00:00:00Z', time_bucket_width: '1d' as const },
      { starting_at: FROM, ending_at: '2026-11-15T00:00:01Z', time_bucket_width: '1m' as const },
      { starting_at: '2025-12-31T00:00:00Z' },
    ];
    for (const params of refusals) {
      await expect(analytics.usage.list(params), JSON.stringify(params)).rejects.toBeInstanceOf(
        Anthropic.BadRequestError,
      );
    }
  });

  it('an organization without access is refused with a 403', async () => {
    await expect(sdk(refused).beta.organization.analytics.cost.list({ starting_at: FROM })).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
  });
});

describe("(c) keywarden's client", () => {
  const client = (target = em) =>
    new AdminClient({ baseUrl: target.url, adminKey: new Secret(ADMIN_KEY), clock: fixedClock(START) });

  it('reads billed and list amounts exactly, the Default Workspace as null, across pages', async () => {
    const rows: AnalyticsCostRow[] = [];
    for await (const r of client().analytics.cost({
      startingAt: new Date(FROM),
      endingAt: new Date(TO),
      bucketWidth: '1d',
      groupBy: ['api_key_id', 'workspace_id', 'model'],
      limit: 3,
    })) {
      rows.push(r);
    }
    const perKey = new Map<string, Pico>();
    for (const r of rows) perKey.set(r.apiKeyId!, (perKey.get(r.apiKeyId!) ?? 0n) + r.amount);
    for (const k of em.state.keys) {
      expect(perKey.get(k.id)).toBe(em.billedPicoFor(k.id, new Date(FROM), new Date(TO)));
    }
    expect(new Set(rows.filter((r) => r.apiKeyId === key('default').id).map((r) => r.workspaceId))).toEqual(
      new Set([null]),
    );
    expect(rows.find((r) => r.apiKeyId === key('alpha').id)!.workspaceId).toBe(key('alpha').workspace!.id);
  });

  it('names what to change on a 400, and a refusal is not a rejected admin key', async () => {
    const c = client();
    const err = await c.analytics
      .usage({
        startingAt: new Date(FROM),
        groupBy: ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window', 'actor'],
      })
      .toArray()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnalyticsRequestError);
    expect((err as Error).message).toContain('group by at most 5 dimensions');

    const r = client(refused);
    const refusal = await r.analytics
      .cost({ startingAt: new Date(FROM) })
      .toArray()
      .catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(AnalyticsRefusedError);
    expect((refusal as Error).message).toContain('keywarden uses the classic reports instead');
    expect(r.keyVerdict.state).not.toBe('rejected');
  });

  it('takes a bare 403 there (no error code) as a refusal too, not as a rejected admin key', async () => {
    // what an organization without the beta may get: a 403 that names nothing; the admin key itself is proven
    // (or not) by the endpoints every organization has, so this one must not make keywarden blind
    const bare403: typeof fetch = async (input, init) =>
      String(input).includes('/analytics/')
        ? new Response(JSON.stringify({ type: 'error', error: { type: 'permission_error', message: 'forbidden' } }), {
            status: 403,
            headers: { 'content-type': 'application/json' },
          })
        : fetch(input, init);
    const c = new AdminClient({
      baseUrl: em.url,
      adminKey: new Secret(ADMIN_KEY),
      clock: fixedClock(START),
      fetch: bare403,
    });
    const refusal = await c.analytics
      .usage({ startingAt: new Date(FROM) })
      .toArray()
      .catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(AnalyticsRefusedError);
    expect(c.keyVerdict.state).not.toBe('rejected');
  });
});
