import Anthropic from '@anthropic-ai/sdk';
import type { BetaSpendLimit } from '@anthropic-ai/sdk/resources/beta/organization/spend-limits';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AdminClient } from '../../src/anthropic/client.ts';
import { AdminApiError } from '../../src/anthropic/errors.ts';
import { SPEND_LIMITS_BETA } from '../../src/anthropic/spend-limits.ts';
import { fixedClock } from '../../src/clock.ts';
import { Secret } from '../../src/config/secret.ts';
import { parseScenario } from '../../src/emulator/scenario.ts';
import { type Emulator, startEmulator } from '../../src/emulator/server.ts';
import { MINUTE_MS } from '../../src/time.ts';

/**
 * The emulator's Spend Limits API (beta `spend-limit-reads-2026-09-26`) against the official SDK: the shape tied
 * to the SDK's `BetaSpendLimit` type, `client.beta.organization.spendLimits.list` over pages, the early-access
 * refusals as the SDK's error classes; and keywarden's own client over the same answers.
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
ok<Same<z.output<typeof spendLimit>, BetaSpendLimit>>();
const cursorPage = z.strictObject({ data: z.array(spendLimit), next_page: z.string().nullable() });

const ADMIN_KEY = 'sk-ant-admin01-sdk-contract-spend-limits-0001';
const START = new Date('2026-11-16T10:00:00Z');

const SCENARIO = parseScenario({
  name: 'sdk-contract-spend-limits',
  seed: 12,
  admin_keys: [ADMIN_KEY],
  workspaces: [{ name: 'Alpha' }, { name: 'Beta' }],
  spend_limits: {
    usage_tier: { amount_usd: 5000 },
    limits: [
      { scope: 'organization', period: 'monthly', amount_usd: 2000, age_days: 40 },
      { scope: 'Alpha', period: 'daily', amount_usd: 50.25, age_days: 3 },
      { scope: 'Beta', period: 'weekly', amount_usd: 300, age_days: 2, enabled: false },
      { scope: 'default', period: 'monthly', amount_usd: null, age_days: 1 },
    ],
    events: [{ action: 'set', at_minutes: 30, scope: 'Alpha', period: 'daily', amount_usd: 80 }],
  },
});

let em: Emulator;
const clock = fixedClock(START);
beforeAll(async () => {
  em = await startEmulator({ scenario: SCENARIO, clock, startAt: START });
});
afterAll(async () => {
  await em.close();
});

const ws = (name: string) => em.state.workspaces.find((w) => w.name === name)!;
const sdk = () => new Anthropic({ apiKey: ADMIN_KEY, baseURL: em.url });
const client = () => new AdminClient({ baseUrl: em.url, adminKey: new Secret(ADMIN_KEY), clock, maxAttempts: 1 });

async function control(body: object): Promise<void> {
  const res = await fetch(`${em.url}/_emulator/spend-limits`, { method: 'POST', body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('the spend limits as the SDK types them', () => {
  it('GET /v1/organizations/spend_limits: newest first, the usage tier last (its dates are the organization’s)', async () => {
    const res = await fetch(`${em.url}/v1/organizations/spend_limits`, {
      headers: { 'x-api-key': ADMIN_KEY, 'anthropic-version': '2023-06-01', 'anthropic-beta': SPEND_LIMITS_BETA },
    });
    expect(res.status).toBe(200);
    const parsed = cursorPage.safeParse(await res.json());
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data!.data.map((l) => [l.scope, l.period, l.amount, l.is_enabled])).toEqual([
      [{ type: 'workspace', workspace_id: em.state.defaultWorkspace.id }, 'monthly', null, true],
      [{ type: 'workspace', workspace_id: ws('Beta').id }, 'weekly', '30000', false],
      [{ type: 'workspace', workspace_id: ws('Alpha').id }, 'daily', '5025', true],
      [{ type: 'organization' }, 'monthly', '200000', true],
      [{ type: 'usage_tier' }, 'monthly', '500000', true],
    ]);
  });

  it('without the beta header the API refuses the request', async () => {
    const res = await fetch(`${em.url}/v1/organizations/spend_limits`, {
      headers: { 'x-api-key': ADMIN_KEY, 'anthropic-version': '2023-06-01' },
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain(SPEND_LIMITS_BETA);
  });

  it('client.beta.organization.spendLimits.list walks the pages; filters by scope type and workspace', async () => {
    const all: BetaSpendLimit[] = [];
    for await (const l of sdk().beta.organization.spendLimits.list({ limit: 2 })) all.push(l);
    expect(all).toHaveLength(5);
    const tier: string[] = [];
    for await (const l of sdk().beta.organization.spendLimits.list({ scope_type: ['usage_tier'] }))
      tier.push(l.scope.type);
    expect(tier).toEqual(['usage_tier']);
    const alpha: string[] = [];
    for await (const l of sdk().beta.organization.spendLimits.list({ workspace_id: ws('Alpha').id }))
      alpha.push(l.period);
    expect(alpha).toEqual(['daily']);
    const one = await sdk().beta.organization.spendLimits.retrieve(all[0]!.id);
    expect(one.id).toBe(all[0]!.id);
  });

  it('a scenario event changes a limit mid-run: same id, new amount and updated_at', async () => {
    const before = (await client().listSpendLimits().toArray()).find((l) => l.period === 'daily')!;
    clock.set(new Date(START.getTime() + 31 * MINUTE_MS));
    const after = (await client().listSpendLimits().toArray()).find((l) => l.period === 'daily')!;
    clock.set(START);
    expect(after.id).toBe(before.id);
    expect([before.amountMinor, after.amountMinor]).toEqual([5025n, 8000n]);
    expect(after.updatedAt.getTime()).toBe(START.getTime() + 30 * MINUTE_MS);
  });

  it('the control endpoint creates, changes and deletes limits at the emulator’s now', async () => {
    await control({ set: [{ scope: 'Beta', period: 'daily', amount_usd: 10 }], delete: [{ scope: 'default' }] });
    const limits = await client().listSpendLimits().toArray();
    expect(limits[0]).toMatchObject({ period: 'daily', amountMinor: 1000n, scope: { type: 'workspace' } });
    expect(
      limits.some((l) => l.scope.type === 'workspace' && l.scope.workspaceId === em.state.defaultWorkspace.id),
    ).toBe(false);
    await control({ delete: [{ scope: 'Beta', period: 'daily' }], set: [{ scope: 'default', amount_usd: null }] });
  });

  it.each([
    ['not_enabled', 403, Anthropic.PermissionDeniedError, 'spend_limits_admin_api_writes_not_enabled'],
    ['forbidden', 403, Anthropic.PermissionDeniedError, undefined],
    ['organization_type_not_supported', 400, Anthropic.BadRequestError, 'organization_type_not_supported'],
  ] as const)(
    'access %s: %d as the SDK classes it; keywarden names it and keeps trusting the key',
    async (access, status, cls, code) => {
      await control({ access });
      try {
        const err = await sdk()
          .beta.organization.spendLimits.list()
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(cls);
        expect(err).toMatchObject({ status, errorCode: code ?? null });

        const c = client();
        await c.getOrganization();
        const ours = await c
          .listSpendLimits()
          .toArray()
          .catch((e: unknown) => e);
        expect(ours).toBeInstanceOf(AdminApiError);
        expect(ours).toMatchObject({ status, errorCode: code ?? null, name: 'AdminApiError' });
        // an organization without the early access is not a refused admin key (no keywarden.blind)
        expect(c.keyVerdict.state).toBe('accepted');
      } finally {
        await control({ access: 'enabled' });
      }
    },
  );
});
