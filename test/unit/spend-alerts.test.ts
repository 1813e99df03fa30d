import { describe, expect, it } from 'vitest';
import { type Pico, usdToPico } from '../../src/money.ts';
import { spendObservations } from '../../src/spend/core/alerts.ts';
import type { ScopeProjection } from '../../src/spend/core/project.ts';

const usd = (v: string): Pico => usdToPico(v);

function projection(p: {
  limit: string | null;
  mtd: string;
  p50?: string;
  p90?: string;
  type?: 'organization' | 'workspace' | 'key';
  crossing?: { p50: string | null; p90: string | null };
}): ScopeProjection {
  const type = p.type ?? 'workspace';
  return {
    scope: {
      type,
      id: type === 'organization' ? 'organization' : 'wrkspc_1',
      name: 'Research',
      workspaceId: type === 'organization' ? null : 'wrkspc_1',
      workspaceName: type === 'organization' ? null : 'Research',
      limit: p.limit === null ? null : usd(p.limit),
      limits: [],
      days: new Map(),
      history: [],
      monthToDate: usd(p.mtd),
      todaySoFar: 0n,
    },
    month: '2026-11',
    monthToDate: usd(p.mtd),
    p10: usd(p.mtd),
    p50: usd(p.p50 ?? p.mtd),
    p90: usd(p.p90 ?? p.mtd),
    method: 'weekday-level-trend',
    crossing: p.crossing ?? { p50: null, p90: null },
  };
}

const policy = { thresholds: [0.5, 0.8, 1], forecast: true };
const observe = (p: ScopeProjection, pol = policy) =>
  spendObservations(
    [{ projection: p, driverFields: [{ label: 'Top keys this month', value: 'Batch $1.00 (100%)' }] }],
    pol,
  );

describe('spend.threshold', () => {
  it.each([
    ['$799.999999999999 of $1,000: under 80% by a picodollar', '799.999999999999', ['2026-11@0.5']],
    ['$800.00 of $1,000: exactly 80%', '800', ['2026-11@0.5', '2026-11@0.8']],
    ['$1,000.00 of $1,000: the limit', '1000', ['2026-11@0.5', '2026-11@0.8', '2026-11@1']],
    ['nothing spent', '0', []],
  ])('%s', (_name, mtd, periods) => {
    const obs = observe(projection({ limit: '1000', mtd }), { ...policy, forecast: false });
    expect(obs.map((o) => o.period)).toEqual(periods);
    expect(obs.every((o) => o.kind === 'spend.threshold' && o.scopeId === 'wrkspc_1')).toBe(true);
  });

  it('a scope without a limit raises nothing', () => {
    expect(observe(projection({ limit: null, mtd: '5000', p90: '9000' }))).toEqual([]);
  });

  it('says what was crossed, in numbers, in the title and the fields; severity grows with the threshold', () => {
    const obs = observe(
      projection({
        limit: '1000',
        mtd: '1000',
        p50: '1900',
        p90: '2300',
        crossing: { p50: '2026-11-16', p90: '2026-11-16' },
      }),
      { ...policy, forecast: false },
    );
    expect(obs.map((o) => [o.title, o.severity, o.details.threshold])).toEqual([
      ['Workspace "Research" reached 50% of its $1,000.00 limit for November 2026', 'info', 0.5],
      ['Workspace "Research" reached 80% of its $1,000.00 limit for November 2026', 'warning', 0.8],
      ['Workspace "Research" reached its $1,000.00 limit for November 2026', 'critical', 1],
    ]);
    expect(obs[2]?.fields).toEqual([
      { label: 'Month to date', value: '$1,000.00 of $1,000.00 (100%)' },
      { label: 'Projected month end', value: '$1,900.00 likely, up to $2,300.00 (p90)' },
      { label: 'Limit reached', value: 'already reached' },
      { label: 'Top keys this month', value: 'Batch $1.00 (100%)' },
    ]);
    expect(obs[2]?.workspaceName).toBe('Research'); // workspace routes can match it
  });
});

describe('spend.forecast', () => {
  const forecasts = (p: ScopeProjection) => observe(p).filter((o) => o.kind === 'spend.forecast');

  it.each([
    ['p90 at the limit: fires', '1000', [false]],
    ['p90 at 97% of the limit: only holds a firing alert', '970', [true]],
    ['p90 at exactly 95%: still holds', '950', [true]],
    ['p90 under 95%: nothing (a firing alert resolves)', '949.99', []],
  ])('%s', (_name, p90, holdOnly) => {
    expect(
      forecasts(projection({ limit: '1000', mtd: '400', p50: '800', p90 })).map((o) => o.holdOnly === true),
    ).toEqual(holdOnly);
  });

  it('names the dates the limit is expected to be reached', () => {
    const [o] = forecasts(
      projection({
        limit: '1000',
        mtd: '400',
        p50: '1100',
        p90: '1300',
        crossing: { p50: '2026-11-27', p90: '2026-11-24' },
      }),
    );
    expect(o?.title).toBe('Workspace "Research" is projected to exceed its $1,000.00 limit for November 2026');
    expect(o?.period).toBe('2026-11');
    expect(o?.summary).toContain('At this pace the limit is reached on 2026-11-27, possibly as early as 2026-11-24.');
    expect(o?.fields?.find((f) => f.label === 'Limit reached')?.value).toBe(
      '2026-11-27 (likely); 2026-11-24 at the earliest (p90)',
    );
  });

  it('is off with spend.forecast: false', () => {
    expect(forecasts(projection({ limit: '1000', mtd: '400', p90: '5000' })).length).toBe(1);
    expect(
      observe(projection({ limit: '1000', mtd: '400', p90: '5000' }), { ...policy, forecast: false }).filter(
        (o) => o.kind === 'spend.forecast',
      ),
    ).toEqual([]);
  });
});
