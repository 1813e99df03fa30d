import { describe, expect, it } from 'vitest';
import { planAlerts } from '../../src/alerts/core/lifecycle.ts';
import { policySchema } from '../../src/config/policy.ts';
import { usdToPico } from '../../src/money.ts';
import { spendObservations } from '../../src/spend/core/alerts.ts';
import { limitChangeObservations, type SeenLimit } from '../../src/spend/core/limit-changes.ts';
import { apiLimitSet, checkLimits, mergeLimits, monthlyLimit, periodWindow } from '../../src/spend/core/limits.ts';
import { spendSoFar } from '../../src/spend/core/project.ts';
import { buildScopes } from '../../src/spend/core/scopes.ts';

const usd = (v: string) => usdToPico(v);

describe('periodWindow: each limit in its own period', () => {
  it.each([
    ['daily', '2026-11-16', { label: '2026-11-16', start: '2026-11-16', end: '2026-11-16' }],
    // Monday 16 November 2026 is in ISO week 47
    ['weekly', '2026-11-16', { label: '2026-W47', start: '2026-11-16', end: '2026-11-22' }],
    ['weekly', '2026-11-22', { label: '2026-W47', start: '2026-11-16', end: '2026-11-22' }],
    // a week across the year: Thursday 31 December 2026 puts it in 2026's week 53
    ['weekly', '2027-01-01', { label: '2026-W53', start: '2026-12-28', end: '2027-01-03' }],
    // Thursday 1 January 2026: the week of 29 December 2025 is 2026's first
    ['weekly', '2025-12-29', { label: '2026-W01', start: '2025-12-29', end: '2026-01-04' }],
    ['monthly', '2026-02-10', { label: '2026-02', start: '2026-02-01', end: '2026-02-28' }],
    ['monthly', '2028-02-29', { label: '2028-02', start: '2028-02-01', end: '2028-02-29' }],
  ] as const)('%s on %s', (period, today, expected) => {
    expect(periodWindow(period, today)).toEqual({ period, ...expected });
  });
});

const seen = (over: Partial<SeenLimit> & { id: string }): SeenLimit => ({
  scopeType: 'organization',
  workspaceId: null,
  period: 'monthly',
  amountMinor: 100_000n,
  currency: 'USD',
  isEnabled: true,
  updatedAt: new Date('2026-11-01T00:00:00Z'),
  ...over,
});

describe('the API limits that apply', () => {
  it('enabled, with an amount, in USD; the usage tier apart; Enterprise scopes left alone', () => {
    const set = apiLimitSet([
      seen({ id: 'spl_org', amountMinor: 50_000n }),
      seen({ id: 'spl_tier', scopeType: 'usage_tier', amountMinor: 500_000n }),
      seen({ id: 'spl_ws', scopeType: 'workspace', workspaceId: 'wrkspc_a', period: 'daily', amountMinor: 5_025n }),
      seen({ id: 'spl_off', scopeType: 'workspace', workspaceId: 'wrkspc_b', isEnabled: false }),
      seen({ id: 'spl_none', amountMinor: null, period: 'weekly' }),
      seen({ id: 'spl_user', scopeType: 'user' }),
      seen({ id: 'spl_eur', currency: 'EUR', period: 'daily' }),
    ]);
    expect(set.organization).toEqual([
      { period: 'monthly', amount: usd('500'), source: 'api' },
      { period: 'monthly', amount: usd('5000'), source: 'usage_tier' },
    ]);
    expect([...set.workspaces]).toEqual([['wrkspc_a', [{ period: 'daily', amount: usd('50.25'), source: 'api' }]]]);
    expect(set.problems).toEqual([
      'spend limit spl_eur is in EUR; keywarden prices usage in USD and cannot compare the two: not applied',
    ]);
  });

  it("the policy file's monthly limit replaces the API's monthly one, never the usage tier's cap", () => {
    const api = [
      { period: 'monthly', amount: usd('500'), source: 'api' },
      { period: 'daily', amount: usd('40'), source: 'api' },
      { period: 'monthly', amount: usd('5000'), source: 'usage_tier' },
    ] as const;
    const merged = mergeLimits([...api], usd('800'));
    expect(merged.map((l) => `${l.source} ${l.period}`)).toEqual(['api daily', 'usage_tier monthly', 'policy monthly']);
    expect(monthlyLimit(merged)).toBe(usd('800'));
    expect(mergeLimits([...api], null)).toEqual(api);
  });

  it('spend.limits_from_api is true unless the policy says false, and nothing else', () => {
    expect(policySchema.parse({}).spend.limits_from_api).toBe(true);
    expect(policySchema.parse({ spend: { limits_from_api: false } }).spend.limits_from_api).toBe(false);
    const bad = policySchema.safeParse({ spend: { limits_from_api: 'yes' } });
    expect(bad.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['spend.limits_from_api', 'limits_from_api is true or false'],
    ]);
  });
});

describe('limits judged in their period, with no spend.limits in the policy file', () => {
  // Wednesday 18 November: Monday and Tuesday $30 each, $10 so far today; $400 earlier in the month
  const inputs = {
    clock: {
      asOf: new Date('2026-11-18T12:00:00Z'),
      today: '2026-11-18',
      monthStart: '2026-11-01',
      fractionElapsed: 0.5,
    },
    daily: [
      { date: '2026-11-02', workspaceId: 'wrkspc_a', keyId: 'apikey_1', cost: usd('400') },
      { date: '2026-11-16', workspaceId: 'wrkspc_a', keyId: 'apikey_1', cost: usd('30') },
      { date: '2026-11-17', workspaceId: 'wrkspc_a', keyId: 'apikey_1', cost: usd('30') },
      { date: '2026-11-18', workspaceId: 'wrkspc_a', keyId: 'apikey_1', cost: usd('10') },
    ],
    workspaces: new Map([['wrkspc_a', 'Research']]),
    keys: new Map([['apikey_1', { name: 'Batch', workspaceId: 'wrkspc_a', scope: 'workspace' }]]),
  };
  const api = apiLimitSet([
    seen({ id: 'spl_tier', scopeType: 'usage_tier', amountMinor: 50_000n }), // $500 a month
    seen({ id: 'spl_day', period: 'daily', amountMinor: 2_000n }), // $20 a day
    seen({ id: 'spl_week', scopeType: 'workspace', workspaceId: 'wrkspc_a', period: 'weekly', amountMinor: 8_000n }),
  ]);
  const noPolicy = { organization: null, workspaces: {}, keys: {} };
  const { scopes } = buildScopes(inputs, noPolicy, api);
  const org = scopes.find((s) => s.type === 'organization')!;
  const research = scopes.find((s) => s.id === 'wrkspc_a')!;

  it('sums each period to date: the day, the week from Monday, the month', () => {
    const checks = [...checkLimits(org, inputs.clock, false), ...checkLimits(research, inputs.clock, false)];
    expect(checks.map((c) => [c.limit.period, c.window.label, c.toDate])).toEqual([
      ['monthly', '2026-11', usd('470')],
      ['daily', '2026-11-18', usd('10')],
      ['weekly', '2026-W47', usd('70')],
    ]);
    expect(org.limit).toBe(usd('500'));
  });

  it('thresholds name the period; the usage tier speaks as its own scope; no projection without a forecast', () => {
    const facts = [org, research].map((scope) => ({
      projection: spendSoFar(scope, inputs.clock),
      checks: checkLimits(scope, inputs.clock, false),
      driverFields: [],
    }));
    const obs = spendObservations(facts, { thresholds: [0.5, 0.8, 1], forecast: true });
    expect(obs.map((o) => [o.scopeType, o.scopeId, o.period, o.severity])).toEqual([
      ['organization', 'usage_tier', '2026-11@0.5', 'warning'],
      ['organization', 'usage_tier', '2026-11@0.8', 'critical'],
      ['organization', 'organization', '2026-11-18@0.5', 'info'],
      ['workspace', 'wrkspc_a', '2026-W47@0.5', 'info'],
      ['workspace', 'wrkspc_a', '2026-W47@0.8', 'warning'],
    ]);
    expect(obs.map((o) => o.title)).toEqual([
      "The organization reached 50% of its usage tier's $500.00 monthly cap for November 2026",
      "The organization reached 80% of its usage tier's $500.00 monthly cap for November 2026",
      'The organization reached 50% of its $20.00 daily limit for 2026-11-18',
      'Workspace "Research" reached 50% of its $80.00 weekly limit for the week of 2026-11-16 (2026-W47)',
      'Workspace "Research" reached 80% of its $80.00 weekly limit for the week of 2026-11-16 (2026-W47)',
    ]);
    expect(obs[1]!.fields).toEqual([
      { label: 'Month to date', value: '$470.00 of $500.00 (94%)' },
      { label: 'Limit set by', value: "Anthropic, for the organization's usage tier" },
      { label: 'At the cap', value: 'Anthropic refuses every request of the organization, in every workspace' },
    ]);
    expect(obs[2]!.summary).toBe('$10.00 spent so far today.');
  });

  it("a daily forecast projects the rest of today, from today's spend so far", () => {
    const [, daily] = checkLimits(org, inputs.clock, true);
    expect(daily!.forecast!.p50).toBeGreaterThan(usd('10'));
    // half the day at $10 so far, the days before at ~$30: the day ends between $20 and $40 on the likely path
    expect(daily!.forecast!.p50).toBeLessThan(usd('40'));
  });
});

describe('inhibition stays within a period', () => {
  it("a daily limit reached does not silence the month's 80%; the month's 100% does", () => {
    const obs = (period: string, threshold: number) => ({
      kind: 'spend.threshold' as const,
      severity: 'warning' as const,
      scopeType: 'organization' as const,
      scopeId: 'organization',
      workspaceId: null,
      period: `${period}@${threshold}`,
      title: period,
      details: { threshold },
    });
    const plan = (observations: ReturnType<typeof obs>[]) =>
      planAlerts({ kinds: ['spend.threshold'], observations, stored: [], repeatEveryMs: () => 1, now: new Date() }).map(
        (d) => `${d.observation!.period} ${d.action}`,
      );
    expect(plan([obs('2026-11-16', 1), obs('2026-11', 0.8)])).toEqual(['2026-11-16@1 fire', '2026-11@0.8 fire']);
    expect(plan([obs('2026-11', 1), obs('2026-11', 0.8)])).toEqual(['2026-11@1 fire', '2026-11@0.8 inhibit']);
  });
});

describe('spend.limit_changed', () => {
  const names = new Map([['wrkspc_a', 'Research']]);
  const before = [
    seen({ id: 'spl_org', amountMinor: 50_000n }),
    seen({ id: 'spl_ws', scopeType: 'workspace', workspaceId: 'wrkspc_a', period: 'daily', amountMinor: 5_000n }),
    seen({ id: 'spl_tier', scopeType: 'usage_tier', amountMinor: 500_000n }),
  ];

  it('nothing changed: nothing said', () => {
    expect(limitChangeObservations(before, before, names)).toEqual([]);
  });

  it('created, changed, switched off, deleted; the usage tier by its amount (its updated_at never moves)', () => {
    const after = [
      seen({ id: 'spl_org', amountMinor: 80_000n, updatedAt: new Date('2026-11-16T10:00:00Z') }),
      seen({ id: 'spl_tier', scopeType: 'usage_tier', amountMinor: 2_000_000n }),
      seen({ id: 'spl_new', scopeType: 'workspace', workspaceId: 'default', period: 'weekly', amountMinor: 1_000n }),
    ];
    const obs = limitChangeObservations(before, after, names);
    expect(obs.map((o) => [o.scopeType, o.scopeId, o.severity, o.title])).toEqual([
      [
        'organization',
        'organization',
        'info',
        "The organization's monthly spend limit changed from $500.00 to $800.00",
      ],
      ['organization', 'usage_tier', 'warning', "The usage tier's cap changed from $5,000.00 to $20,000.00"],
      ['workspace', 'default', 'info', `Workspace "Default Workspace"'s weekly spend limit was set: $10.00`],
      ['workspace', 'wrkspc_a', 'info', `Workspace "Research"'s daily spend limit was deleted (it was $50.00)`],
    ]);
    expect(new Set(obs.map((o) => o.period)).size).toBe(4);
    const off = limitChangeObservations(before, [{ ...before[0]!, isEnabled: false }, ...before.slice(1)], names);
    expect(off.map((o) => o.title)).toEqual([
      "The organization's monthly spend limit changed from $500.00 to $500.00 (switched off)",
    ]);
  });

  it('the same change seen by two runs is one alert: the period names the change', () => {
    const after = [seen({ id: 'spl_org', amountMinor: 80_000n, updatedAt: new Date('2026-11-16T10:00:00Z') })];
    const [a] = limitChangeObservations(before.slice(0, 1), after, names);
    const [b] = limitChangeObservations(before.slice(0, 1), after, names);
    expect(a!.period).toBe(b!.period);
    expect(a!.period).toBe('spl_org@2026-11-16T10:00:00.000Z@80000@true');
  });
});
