import Anthropic from '@anthropic-ai/sdk';
import type {
  IncreaseRequestApproveResponse,
  SpendLimitIncreaseRequest,
} from '@anthropic-ai/sdk/resources/organization/spend-limits/increase-requests';
import type { SpendLimit, SpendSummary } from '@anthropic-ai/sdk/resources/organization/spend-limits/spend-limits';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AdminClient } from '../../src/anthropic/client.ts';
import { IncreaseAnswerRefusedError, NotEnterpriseError } from '../../src/anthropic/enterprise-spend.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { periodStart } from '../../src/emulator/enterprise-spend.ts';
import { parseScenario, ScenarioError } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { centsToPico } from '../../src/money.ts';

/**
 * A Claude Enterprise organization's per-member spend limits in the emulator against the official SDK: the rows
 * tied to the SDK's `SpendSummary` and `SpendLimitIncreaseRequest` types, `client.organization.spendLimits.effective
 * .list` and `.increaseRequests.list/retrieve` over pages, each member's period-to-date spend equal to the billed
 * cost of the member's keys; and a Console organization's 400 `organization_type_not_supported` as the SDK's class.
 */

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const ok = <_ extends true>() => {};

const scope = z.union([
  z.strictObject({ type: z.literal('user'), user_id: z.string() }),
  z.strictObject({ type: z.literal('seat_tier'), seat_tier: z.string() }),
  z.strictObject({ type: z.literal('rbac_group'), rbac_group_id: z.string() }),
  z.strictObject({ type: z.literal('organization_service'), service: z.string() }),
  z.strictObject({ type: z.literal('organization') }),
  z.strictObject({ type: z.literal('workspace'), workspace_id: z.string() }),
  z.strictObject({ type: z.literal('usage_tier') }),
]);
const userActor = z.strictObject({
  deleted: z.boolean(),
  email_address: z.string().nullable(),
  name: z.string().nullable(),
  type: z.literal('user_actor'),
  user_id: z.string(),
});
const actor = z.union([
  userActor,
  z.strictObject({ scoped_api_key_id: z.string(), type: z.literal('scoped_api_key_actor') }),
]);
const summary = z.strictObject({
  actor,
  amount: z.string().regex(/^\d+$/).nullable(),
  currency: z.string(),
  period: z.enum(['daily', 'monthly', 'weekly']),
  period_to_date_spend: z.string().regex(/^\d+(\.\d{1,3})?$/),
  scope,
  source: scope,
  spend_limit_id: z.string(),
});
ok<Same<z.output<typeof summary>, SpendSummary>>();
const increaseRequest = z.strictObject({
  id: z.string(),
  actor,
  created_at: z.string(),
  period: z.enum(['daily', 'monthly', 'weekly']),
  resolved_at: z.string().nullable(),
  resolved_by: actor.nullable(),
  spend_summary: summary.nullable(),
  status: z.enum(['approved', 'denied', 'pending']),
  type: z.literal('spend_limit_increase_request'),
});
ok<Same<z.output<typeof increaseRequest>, SpendLimitIncreaseRequest>>();
const spendLimit = z.strictObject({
  id: z.string(),
  amount: z.string().regex(/^\d+$/).nullable(),
  created_at: z.string(),
  currency: z.string(),
  is_enabled: z.boolean(),
  period: z.enum(['daily', 'monthly', 'weekly']),
  scope,
  type: z.literal('spend_limit'),
  updated_at: z.string(),
});
ok<Same<z.output<typeof spendLimit>, SpendLimit>>();
const approved = z.strictObject({ ...increaseRequest.shape, spend_limit: spendLimit.nullable() });
ok<Same<z.output<typeof approved>, IncreaseRequestApproveResponse>>();
const page = <S extends z.ZodType>(item: S) =>
  z.strictObject({ data: z.array(item), next_page: z.string().nullable() });

const ADMIN_KEY = 'sk-ant-admin01-sdk-contract-enterprise-0001';
const START = new Date('2026-11-18T10:00:00Z');
// organization-controlled text: it travels as data, whatever it looks like
const HOSTILE = 'Eve <script>alert(1)</script> *bold* @channel';

const users = [
  { name: 'Ana', email: 'ana@ent.example', role: 'developer' },
  { name: HOSTILE, email: 'eve@ent.example', role: 'developer' },
  { name: 'Bo', email: 'bo@ent.example', role: 'admin' },
  { name: 'Cy', email: 'cy@ent.example', role: 'developer' },
];
const traffic = (tokens: number) => ({ tokens_per_minute: tokens, models: { 'claude-sonnet-4-5': 1 }, noise: 0.1 });

const enterprise = (type: 'enterprise' | 'console') =>
  parseScenario({
    name: `sdk-contract-${type}-spend`,
    seed: 21,
    admin_keys: [ADMIN_KEY],
    users,
    keys: [
      { name: 'ana-1', principal: 'ana@ent.example', created_by: 'ana@ent.example', traffic: traffic(4_000) },
      { name: 'ana-2', created_by: 'ana@ent.example', traffic: traffic(1_000) },
      { name: 'eve', principal: 'eve@ent.example', created_by: 'bo@ent.example', traffic: traffic(2_000) },
      { name: 'shared', created_by: 'bo@ent.example', principal: 'svac_01Shared', traffic: traffic(9_000) },
    ],
    events: [{ type: 'user_removed', user: 'cy@ent.example', at_minutes: -60 }],
    spend_limits:
      type === 'console'
        ? {}
        : {
            organization_type: 'enterprise',
            members: [
              { user: 'ana@ent.example', period: 'monthly', amount_usd: 150, source: 'user' },
              { user: 'ana@ent.example', period: 'daily', amount_usd: 20, source: 'seat_tier' },
              { user: 'eve@ent.example', period: 'monthly', amount_usd: 75.5, source: 'rbac_group' },
              { user: 'bo@ent.example', period: 'weekly', amount_usd: null, source: 'organization' },
              { user: 'cy@ent.example', period: 'monthly', amount_usd: 10 },
            ],
            increase_requests: [
              { user: 'ana@ent.example', period: 'monthly', status: 'pending', age_days: 1 },
              {
                user: 'eve@ent.example',
                period: 'monthly',
                status: 'denied',
                age_days: 4,
                resolved_days_ago: 3,
                resolved_by: 'bo@ent.example',
              },
              { user: 'eve@ent.example', period: 'monthly', status: 'approved', age_days: 6, resolved_days_ago: 5 },
              { user: 'cy@ent.example', period: 'monthly', status: 'pending', age_days: 2 },
            ],
          },
  });

let em: Emulator;
let consoleOrg: Emulator;
beforeAll(async () => {
  em = await startEmulator({ scenario: enterprise('enterprise'), clock: fixedClock(START), startAt: START });
  consoleOrg = await startEmulator({ scenario: enterprise('console'), clock: fixedClock(START), startAt: START });
});
afterAll(async () => {
  await em?.close();
  await consoleOrg?.close();
});

const sdk = (e: Emulator = em) => new Anthropic({ apiKey: ADMIN_KEY, baseURL: e.url });
const client = (e: Emulator = em) =>
  new AdminClient({ baseUrl: e.url, adminKey: new Secret(ADMIN_KEY), clock: fixedClock(START), maxAttempts: 1 });
const user = (email: string) => em.state.users.find((u) => u.email === email)!;
const key = (name: string) => em.state.keys.find((k) => k.name === name)!;

async function raw(path: string, e: Emulator = em): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${e.url}${path}`, {
    headers: { 'x-api-key': ADMIN_KEY, 'anthropic-version': '2023-06-01' },
  });
  return { status: res.status, body: await res.json() };
}

describe('an Enterprise organization’s per-member spend limits, as the SDK types them', () => {
  it('GET /spend_limits/effective: one row per current member and period, in the SDK’s SpendSummary shape', async () => {
    const { status, body } = await raw('/v1/organizations/spend_limits/effective');
    expect(status).toBe(200);
    const parsed = page(summary).safeParse(body);
    expect(parsed.error?.issues ?? []).toEqual([]);
    const rows = parsed.data!.data;
    // Cy left the organization: no row
    expect(rows.map((r) => [(r.actor as { email_address: string }).email_address, r.period, r.amount])).toEqual([
      ['ana@ent.example', 'monthly', '15000'],
      ['ana@ent.example', 'daily', '2000'],
      ['eve@ent.example', 'monthly', '7550'],
      ['bo@ent.example', 'weekly', null],
    ]);
    expect(rows[2]!.actor).toEqual({
      type: 'user_actor',
      user_id: user('eve@ent.example').id,
      email_address: 'eve@ent.example',
      name: HOSTILE,
      deleted: false,
    });
    expect(rows.map((r) => r.source.type)).toEqual(['user', 'seat_tier', 'rbac_group', 'organization']);
    expect(rows.every((r) => r.scope.type === 'user' && r.currency === 'USD')).toBe(true);
  });

  it('period_to_date_spend is the billed cost of the member’s keys since the period began (the bound key, and the unbound key it created)', async () => {
    const rows: SpendSummary[] = [];
    for await (const r of sdk().organization.spendLimits.effective.list()) rows.push(r);
    const spend = (email: string, period: string) =>
      centsToPico(
        rows.find((r) => r.period === period && (r.actor as { email_address: string }).email_address === email)!
          .period_to_date_spend,
      );
    const billed = (names: string[], period: 'daily' | 'weekly' | 'monthly') => {
      const from = new Date(periodStart(period, START.getTime()));
      return names.reduce((sum, n) => sum + em.billedPicoFor(key(n).id, from, START), 0n);
    };
    const milli = 10n ** 7n; // the API shows thousandths of a cent
    for (const [email, period, names] of [
      ['ana@ent.example', 'monthly', ['ana-1', 'ana-2']],
      ['ana@ent.example', 'daily', ['ana-1', 'ana-2']],
      ['eve@ent.example', 'monthly', ['eve']],
      // Bo created the service account's key: it is the service account's spend, not Bo's
      ['bo@ent.example', 'weekly', []],
    ] as const) {
      const truth = billed([...names], period);
      expect(spend(email, period) <= truth && truth - spend(email, period) < milli, `${email} ${period}`).toBe(true);
      if (names.length > 0) expect(spend(email, period) > 0n).toBe(true);
    }
    expect(spend('ana@ent.example', 'monthly') > spend('ana@ent.example', 'daily')).toBe(true);
  });

  it('the SDK pages by member (a member’s periods never split) and filters by period and user', async () => {
    const pages: number[] = [];
    let p = await sdk().organization.spendLimits.effective.list({ limit: 1 });
    pages.push(p.data.length);
    while (p.hasNextPage()) {
      p = await p.getNextPage();
      pages.push(p.data.length);
    }
    expect(pages).toEqual([2, 1, 1]);
    const monthly: string[] = [];
    for await (const r of sdk().organization.spendLimits.effective.list({ period: ['monthly'] }))
      monthly.push(r.period);
    expect(monthly).toEqual(['monthly', 'monthly']);
    const eve: string[] = [];
    for await (const r of sdk().organization.spendLimits.effective.list({ user_ids: [user('eve@ent.example').id] }))
      eve.push(r.amount!);
    expect(eve).toEqual(['7550']);
    const { status } = await raw('/v1/organizations/spend_limits/effective?period[]=yearly');
    expect(status).toBe(400);
  });

  it('GET /spend_limit_increase_requests: newest first, departed members left out, a live spend summary while pending', async () => {
    const { status, body } = await raw('/v1/organizations/spend_limit_increase_requests');
    expect(status).toBe(200);
    const parsed = page(increaseRequest).safeParse(body);
    expect(parsed.error?.issues ?? []).toEqual([]);
    const list = parsed.data!.data;
    expect(list.map((r) => [(r.actor as { email_address: string }).email_address, r.status])).toEqual([
      ['ana@ent.example', 'pending'],
      ['eve@ent.example', 'denied'],
      ['eve@ent.example', 'approved'],
    ]);
    expect(list[0]).toMatchObject({
      created_at: '2026-11-17T10:00:00.000000Z',
      resolved_at: null,
      resolved_by: null,
      spend_summary: { period: 'monthly', amount: '15000', actor: { user_id: user('ana@ent.example').id } },
    });
    expect(list[1]).toMatchObject({
      resolved_at: '2026-11-15T10:00:00.000000Z',
      resolved_by: { type: 'user_actor', email_address: 'bo@ent.example' },
      spend_summary: null,
    });
    expect(list[2]!.resolved_by).toMatchObject({ type: 'scoped_api_key_actor' });
  });

  it('client.organization.spendLimits.increaseRequests lists over pages, filters by status and actor, retrieves one', async () => {
    const all: SpendLimitIncreaseRequest[] = [];
    for await (const r of sdk().organization.spendLimits.increaseRequests.list({ limit: 1 })) all.push(r);
    expect(all).toHaveLength(3);
    const pending: string[] = [];
    for await (const r of sdk().organization.spendLimits.increaseRequests.list({ status: ['pending'] }))
      pending.push(r.id);
    expect(pending).toEqual([all[0]!.id]);
    const eve: string[] = [];
    for await (const r of sdk().organization.spendLimits.increaseRequests.list({
      actor_ids: [user('eve@ent.example').id],
    }))
      eve.push(r.status);
    expect(eve).toEqual(['denied', 'approved']);
    const one = await sdk().organization.spendLimits.increaseRequests.retrieve(all[1]!.id);
    expect(one).toEqual(all[1]);
    const missing = await sdk()
      .organization.spendLimits.increaseRequests.retrieve('splir_01nope')
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
  });

  it('a Console organization answers both with 400 organization_type_not_supported, as the SDK classes it', async () => {
    for (const call of [
      () => sdk(consoleOrg).organization.spendLimits.effective.list(),
      () => sdk(consoleOrg).organization.spendLimits.increaseRequests.list(),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect(err).toMatchObject({ status: 400, errorCode: 'organization_type_not_supported' });
    }
  });

  it('a scenario names what is wrong with its members and requests', () => {
    const base = enterprise('enterprise');
    const err = (() => {
      try {
        parseScenario({
          ...base,
          spend_limits: {
            ...base.spend_limits,
            members: [
              { user: 'nobody@ent.example', amount_usd: 1 },
              { user: 'ana@ent.example', period: 'daily', amount_usd: 1 },
              { user: 'ana@ent.example', period: 'daily', amount_usd: 2 },
            ],
            increase_requests: [{ user: 'ana@ent.example', status: 'pending', resolved_days_ago: 0 }],
          },
        });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ScenarioError);
    const problems = (err as ScenarioError).problems;
    expect(problems).toEqual([
      'spend_limits.members[0].user: "nobody@ent.example" is not a user of this scenario',
      'spend_limits.members[2]: "ana@ent.example" already has a daily limit',
      'spend_limits.increase_requests[0]: a pending request has no resolved_days_ago or resolved_by',
    ]);
  });
});

describe('keywarden’s client over the same answers', () => {
  it('listMemberSpend: members, limits and spend in picodollars, over pages; names kept as data', async () => {
    const sdkRows: SpendSummary[] = [];
    for await (const r of sdk().organization.spendLimits.effective.list()) sdkRows.push(r);
    const rows = await client().listMemberSpend({ limit: 1 }).toArray();
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => [r.actor.type === 'user' ? r.actor.email : null, r.period, r.limit, r.source])).toEqual([
      ['ana@ent.example', 'monthly', 150n * 10n ** 12n, 'user'],
      ['ana@ent.example', 'daily', 20n * 10n ** 12n, 'seat_tier'],
      ['eve@ent.example', 'monthly', 75_500_000_000_000n, 'rbac_group'],
      ['bo@ent.example', 'weekly', null, 'organization'],
    ]);
    expect(rows.map((r) => r.spent)).toEqual(sdkRows.map((r) => centsToPico(r.period_to_date_spend)));
    expect(rows[2]!.actor).toEqual({
      type: 'user',
      userId: user('eve@ent.example').id,
      email: 'eve@ent.example',
      name: HOSTILE,
      deleted: false,
    });
    const daily = await client()
      .listMemberSpend({ periods: ['daily'] })
      .toArray();
    expect(daily.map((r) => r.period)).toEqual(['daily']);
    expect(() => client().listMemberSpend({ userIds: Array.from({ length: 101 }, (_, n) => `user_${n}`) })).toThrow(
      'userIds: at most 100',
    );
  });

  it('listIncreaseRequests: status, dates and the live summary of a pending one', async () => {
    const list = await client().listIncreaseRequests().toArray();
    expect(list.map((r) => [r.status, r.createdAt.toISOString(), r.resolvedAt?.toISOString() ?? null])).toEqual([
      ['pending', '2026-11-17T10:00:00.000Z', null],
      ['denied', '2026-11-14T10:00:00.000Z', '2026-11-15T10:00:00.000Z'],
      ['approved', '2026-11-12T10:00:00.000Z', '2026-11-13T10:00:00.000Z'],
    ]);
    expect(list[0]!.summary).toMatchObject({ period: 'monthly', limit: 150n * 10n ** 12n });
    expect(list[0]!.requester).toMatchObject({ type: 'user', email: 'ana@ent.example' });
    const pending = await client()
      .listIncreaseRequests({ statuses: ['pending'] })
      .toArray();
    expect(pending.map((r) => r.id)).toEqual([list[0]!.id]);
  });

  it('a Console organization: NotEnterpriseError on both, and the admin key is still trusted', async () => {
    const c = client(consoleOrg);
    await c.getOrganization();
    for (const read of [() => c.listMemberSpend().toArray(), () => c.listIncreaseRequests().toArray()]) {
      const err = await read().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotEnterpriseError);
      expect(err).toMatchObject({ status: 400, errorCode: 'organization_type_not_supported' });
      expect((err as Error).message).toContain('not an Enterprise organization');
    }
    expect(c.keyVerdict.state).toBe('accepted');
  });
});

describe('approving and denying increase requests', () => {
  // answers change the organization: an emulator of their own, so the reads above see the scenario as written
  let answered: Emulator;
  beforeAll(async () => {
    answered = await startEmulator({ scenario: enterprise('enterprise'), clock: fixedClock(START), startAt: START });
  });
  afterAll(async () => {
    await answered?.close();
  });
  const pendingOf = async (email: string) => {
    for await (const r of sdk(answered).organization.spendLimits.increaseRequests.list({ status: ['pending'] })) {
      if ((r.actor as { email_address: string | null }).email_address === email) return r;
    }
    throw new Error(`no pending request of ${email}`);
  };
  const effectiveOf = async (email: string, period: string) => {
    for await (const r of sdk(answered).organization.spendLimits.effective.list({ period: [period as 'monthly'] })) {
      if ((r.actor as { email_address: string | null }).email_address === email) return r;
    }
    return null;
  };
  const posts = () => answered.requestLog.filter((r) => r.method === 'POST').length;

  it('the SDK’s approve writes the member’s own limit for the request’s period; the effective report shows it', async () => {
    const ana = await pendingOf('ana@ent.example');
    const before = posts();
    const answer = await sdk(answered).organization.spendLimits.increaseRequests.approve(ana.id, { amount: '30000' });
    expect(posts() - before).toBe(1);
    const parsed = approved.safeParse(answer);
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(answer).toMatchObject({
      id: ana.id,
      status: 'approved',
      resolved_at: '2026-11-18T10:00:00.000000Z',
      resolved_by: { type: 'scoped_api_key_actor' },
      spend_summary: null,
      spend_limit: { amount: '30000', period: 'monthly', scope: { type: 'user', user_id: user('ana@ent.example').id } },
    });
    expect(await effectiveOf('ana@ent.example', 'monthly')).toMatchObject({
      amount: '30000',
      source: { type: 'user' },
    });
    // approved: neither approved again nor denied
    for (const again of [
      () => sdk(answered).organization.spendLimits.increaseRequests.approve(ana.id, { amount: '1' }),
      () => sdk(answered).organization.spendLimits.increaseRequests.deny(ana.id, {}),
    ]) {
      const err = await again().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    }
    expect(await effectiveOf('ana@ent.example', 'monthly')).toMatchObject({ amount: '30000' });
  });

  it('an approval with a period writes that period’s limit, and leaves the others', async () => {
    const fresh = await startEmulator({ scenario: enterprise('enterprise'), clock: fixedClock(START), startAt: START });
    try {
      const [ana] = (await sdk(fresh).organization.spendLimits.increaseRequests.list({ status: ['pending'] })).data;
      const answer = await sdk(fresh).organization.spendLimits.increaseRequests.approve(ana!.id, {
        amount: '5000',
        period: 'daily',
        suppress_notification: true,
      });
      expect(answer.spend_limit).toMatchObject({ amount: '5000', period: 'daily' });
      const rows = (
        await sdk(fresh).organization.spendLimits.effective.list({ user_ids: [user('ana@ent.example').id] })
      ).data;
      expect(rows.map((r) => [r.period, r.amount, r.source.type])).toEqual([
        ['monthly', '15000', 'user'],
        ['daily', '5000', 'user'],
      ]);
    } finally {
      await fresh.close();
    }
  });

  it('the SDK’s deny: denied, repeated harmlessly; bad input and unknown ids refused as the SDK classes them', async () => {
    const c = client(answered);
    const eveDenied = (await c.listIncreaseRequests({ statuses: ['denied'] }).toArray())[0]!;
    const again = await sdk(answered).organization.spendLimits.increaseRequests.deny(eveDenied.id, {});
    expect(again).toMatchObject({ id: eveDenied.id, status: 'denied', resolved_by: { type: 'user_actor' } });
    const missing = await sdk(answered)
      .organization.spendLimits.increaseRequests.deny('splir_01nope', {})
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    for (const body of [{ amount: '12.50' }, { amount: '100', period: 'yearly' }, { amount: '100', extra: 1 }]) {
      const err = await sdk(answered)
        .organization.spendLimits.increaseRequests.approve(eveDenied.id, body as { amount: string })
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(body)).toBeInstanceOf(Anthropic.BadRequestError);
    }
  });

  it('keywarden’s client: approve and deny with named errors; a Console organization is NotEnterpriseError', async () => {
    const fresh = await startEmulator({ scenario: enterprise('enterprise'), clock: fixedClock(START), startAt: START });
    try {
      const c = client(fresh);
      const [pending] = await c.listIncreaseRequests({ statuses: ['pending'] }).toArray();
      const read = await c.increaseRequests.get(pending!.id);
      expect(read).toMatchObject({ id: pending!.id, status: 'pending', summary: { limit: 150n * 10n ** 12n } });
      const done = await c.increaseRequests.approve(pending!.id, { amountMinor: '30000', period: 'monthly' });
      expect(done.request).toMatchObject({ id: pending!.id, status: 'approved', summary: null });
      expect(done.limit).toEqual({ amount: 300n * 10n ** 12n, currency: 'USD', period: 'monthly' });
      const member = await c.listMemberSpend({ periods: ['monthly'] }).toArray();
      expect(member.find((m) => m.actor.type === 'user' && m.actor.email === 'ana@ent.example')?.limit).toBe(
        300n * 10n ** 12n,
      );
      const twice = await c.increaseRequests
        .approve(pending!.id, { amountMinor: '30000', period: 'monthly' })
        .catch((e: unknown) => e);
      expect(twice).toBeInstanceOf(IncreaseAnswerRefusedError);
      expect((twice as Error).message).toContain('is approved, not pending');
      const deny = await c.increaseRequests.deny(pending!.id).catch((e: unknown) => e);
      expect(deny).toBeInstanceOf(IncreaseAnswerRefusedError);
      const unknown = await c.increaseRequests.get('splir_01nope').catch((e: unknown) => e);
      // a read refused is the read's failure, not a refused answer
      expect(unknown).toMatchObject({ name: 'AdminApiError', status: 404 });
      expect(unknown).not.toBeInstanceOf(IncreaseAnswerRefusedError);
      expect(() => c.increaseRequests.approve(pending!.id, { amountMinor: '1.5', period: 'monthly' })).toThrow(
        'not a non-negative integer amount',
      );
      const posts = fresh.requestLog.filter((r) => r.method === 'POST').map((r) => r.path);
      expect(posts).toEqual([
        `/v1/organizations/spend_limit_increase_requests/${pending!.id}/approve`,
        `/v1/organizations/spend_limit_increase_requests/${pending!.id}/approve`,
        `/v1/organizations/spend_limit_increase_requests/${pending!.id}/deny`,
      ]);
    } finally {
      await fresh.close();
    }
    const consoleClient = client(consoleOrg);
    for (const call of [
      () => consoleClient.increaseRequests.approve('splir_01any', { amountMinor: '100', period: 'monthly' }),
      () => consoleClient.increaseRequests.deny('splir_01any'),
      () => consoleClient.increaseRequests.get('splir_01any'),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotEnterpriseError);
    }
    const sdkErr = await sdk(consoleOrg)
      .organization.spendLimits.increaseRequests.approve('splir_01any', { amount: '100' })
      .catch((e: unknown) => e);
    expect(sdkErr).toMatchObject({ status: 400, errorCode: 'organization_type_not_supported' });
  });
});
