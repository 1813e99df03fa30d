import { describe, expect, it } from 'vitest';
import type { StoredProjection } from '../../src/db/repos/spend.ts';
import { composeFinanceDigest } from '../../src/digest/finance.ts';
import type { FinanceData, ScopeSpend } from '../../src/digest/finance-data.ts';
import { usdToPico } from '../../src/money.ts';
import { renderSpendChart, spendChartConfig } from '../../src/notify/chart.ts';

const usd = (v: string) => usdToPico(v);

function projection(p10: string, p50: string, p90: string, extra: Partial<StoredProjection> = {}): StoredProjection {
  return {
    madeAt: new Date('2026-02-10T06:00:00Z'),
    month: '2026-02',
    scopeType: 'organization',
    scopeId: 'org',
    monthToDate: usd('100'),
    p10: usd(p10),
    p50: usd(p50),
    p90: usd(p90),
    limit: null,
    crossingP50: null,
    crossingP90: null,
    method: 'weekday-level-trend',
    ...extra,
  };
}

function key(name: string, spent: string, extra: Partial<ScopeSpend> = {}): ScopeSpend {
  return { id: `key_${name}`, name, workspaceName: 'Default Workspace', mtd: usd(spent), projection: null, ...extra };
}

function data(overrides: Partial<FinanceData> = {}): FinanceData {
  return {
    organizationName: 'Acme AI',
    timezone: 'Europe/Paris',
    asOf: new Date('2026-02-10T07:00:00Z'),
    today: '2026-02-10',
    // 0.1 + 0.2 on purpose: sums of money are exact here, never floats
    dailySpend: [
      { date: '2026-02-01', usd: usd('0.1') },
      { date: '2026-02-02', usd: usd('0.2') },
      { date: '2026-02-09', usd: usd('12.345') },
      { date: '2026-02-10', usd: usd('1') },
    ],
    organization: null,
    organizationLimit: null,
    keys: [],
    workspaces: [],
    drift: [],
    ...overrides,
  };
}

const field = (d: ReturnType<typeof composeFinanceDigest>, label: string) =>
  d.message.fields.find((f) => f.label === label)?.value;

describe('composeFinanceDigest', () => {
  it('adds the days exactly, counts a day without usage as nothing, and draws one point per day to today', () => {
    const d = composeFinanceDigest(data());
    expect(field(d, 'Spent in February 2026')).toBe('$13.65'); // 13.645 rounds half away from zero
    expect(field(d, 'Yesterday')).toBe('$12.35');
    expect(d.chart.daysInMonth).toBe(28);
    expect(d.chart.cumulativeUsd).toHaveLength(10);
    expect(d.chart.cumulativeUsd.slice(0, 3)).toEqual([0.1, 0.3, 0.3]);
    expect(d.chart.cumulativeUsd.at(-1)).toBeCloseTo(13.645, 9);
    expect(d.chart.timezone).toBe('Europe/Paris');
  });

  it.each([
    ['no projection, no limit', null, null, 'no projection yet', 'none set', undefined, null],
    [
      'the median crosses the limit',
      projection('90', '120', '150', { crossingP50: '2026-02-20', crossingP90: '2026-02-17' }),
      '110',
      '$120 (likely $90–$150)',
      '$110 · 12% used',
      'expected on 20 Feb, possibly from 17 Feb',
      'At this rate it will exceed its $110 limit.',
    ],
    [
      'only the high end crosses',
      projection('90', '100', '150', { crossingP90: '2026-02-25' }),
      '120',
      '$100 (likely $90–$150)',
      '$120 · 11% used',
      'unlikely; possible from 25 Feb at the high end of the range',
      'It may exceed its $120 limit.',
    ],
    [
      'well within',
      projection('40', '50', '60'),
      '1000',
      '$50 (likely $40–$60)',
      '$1,000 · 1.4% used',
      'not expected this month',
      null,
    ],
  ])('%s', (_name, proj, limit, projected, limitText, reached, warning) => {
    const d = composeFinanceDigest(data({ organization: proj, organizationLimit: limit === null ? null : usd(limit) }));
    expect(field(d, 'Projected month end')).toBe(projected);
    expect(field(d, 'Monthly limit')).toBe(limitText);
    expect(field(d, 'Limit reached')).toBe(reached);
    if (warning === null) expect(d.message.summary).not.toMatch(/exceed/);
    else expect(d.message.summary).toContain(warning);
    expect(d.chart.limitUsd).toBe(limit === null ? null : Number(limit));
  });

  it('prefers the limit the projection was made against over the policy one', () => {
    const d = composeFinanceDigest(
      data({ organization: projection('1', '2', '3', { limit: usd('500') }), organizationLimit: usd('9000') }),
    );
    expect(field(d, 'Monthly limit')).toBe('$500 · 2.7% used');
  });

  it('never draws a month end below what is already spent (a projection made hours ago may trail it)', () => {
    const d = composeFinanceDigest(data({ organization: projection('5', '10', '20') }));
    expect(d.chart.projection).toEqual({ p10: 13.645, p50: 13.645, p90: 20 });
  });

  it('lists the top ten keys with share and projection, counts the rest, and shows a limit column only when needed', () => {
    const keys = Array.from({ length: 13 }, (_, i) => key(`key-${i}`, String(100 - i)));
    keys[0] = key('key-0', '100', {
      projection: projection('150', '180', '260', { scopeType: 'key', scopeId: 'key_key-0', limit: usd('150') }),
    });
    const d = composeFinanceDigest(data({ keys }));
    const [top] = d.message.sections;
    expect(top?.title).toBe('Top keys this month');
    expect(top?.rows).toHaveLength(10);
    expect(top?.more).toBe(3);
    expect(top?.columns.map((c) => c.label)).toEqual([
      'Key',
      'Workspace',
      'Spent',
      'Share',
      'Projected month end',
      'Limit',
    ]);
    expect(top?.rows[0]).toEqual([
      'key-0',
      'Default Workspace',
      '$100.00',
      '733%',
      '$180 ($150–$260)',
      '$150 · 67% used',
    ]);
    expect(top?.rows[1]?.[4]).toBe('–');

    const noLimits = composeFinanceDigest(data({ keys: keys.slice(1) }));
    expect(noLimits.message.sections[0]?.columns.map((c) => c.label)).not.toContain('Limit');
  });

  it('lists drifted days with their direction, and says so in the summary; an empty drift list says all is well', () => {
    const d = composeFinanceDigest(
      data({
        drift: [
          { day: '2026-02-08', workspaceName: 'Research', reported: usd('100'), priced: usd('97'), ratio: 0.03 },
          { day: '2026-02-07', workspaceName: 'Research', reported: usd('0'), priced: usd('3'), ratio: Infinity },
        ],
      }),
    );
    const drift = d.message.sections.find((s) => s.title.startsWith('Priced usage'));
    expect(drift?.rows).toEqual([
      ['8 Feb', 'Research', '$100.00', '$97.00', '−3.0%'],
      ['7 Feb', 'Research', '$0.00', '$3.00', 'not in report'],
    ]);
    expect(d.message.summary).toContain('On 2 days priced usage differs from the cost report by more than 2%');

    const calm = composeFinanceDigest(data()).message.sections.find((s) => s.title.startsWith('Priced usage'));
    expect(calm?.rows).toEqual([]);
    expect(calm?.empty).toMatch(/matches the cost report within 2%/);
  });
});

describe('composeFinanceDigest: increase requests (Enterprise)', () => {
  const title = 'Spend limit increase requests waiting for an answer';
  const sectionOf = (d: ReturnType<typeof composeFinanceDigest>) => d.message.sections.find((x) => x.title === title);

  it('no section for a Console organization; a failed read says so rather than "none"', () => {
    expect(sectionOf(composeFinanceDigest(data()))).toBeUndefined();
    expect(sectionOf(composeFinanceDigest(data({ increaseRequests: null })))).toBeUndefined();
    expect(sectionOf(composeFinanceDigest(data({ increaseRequests: 'unavailable' })))).toMatchObject({
      rows: [],
      empty: 'The increase requests could not be read this time.',
    });
    expect(sectionOf(composeFinanceDigest(data({ increaseRequests: [] })))?.empty).toBe(
      'No member is waiting for a higher spend limit.',
    );
  });

  it('who, the period, the limit and spend now, and since when', () => {
    const d = composeFinanceDigest(
      data({
        increaseRequests: [
          {
            who: 'Ana',
            email: 'ana@acme.example',
            period: 'monthly',
            limit: usd('100'),
            spent: usd('98.5'),
            since: new Date('2026-02-07T09:00:00Z'),
          },
          {
            who: 'user_01B',
            email: null,
            period: 'daily',
            limit: null,
            spent: null,
            since: new Date('2026-02-10T01:00:00Z'),
          },
        ],
      }),
    );
    expect(sectionOf(d)?.rows).toEqual([
      ['Ana', 'monthly', '$100.00', '$98.50 (99%)', '7 Feb (2 d ago)'],
      ['user_01B', 'daily', '–', '–', '10 Feb (0 d ago)'],
    ]);
  });
});

describe('spend chart', () => {
  const chart = composeFinanceDigest(
    data({ organization: projection('20', '30', '45'), organizationLimit: usd('40') }),
  ).chart;

  it('draws the band from today to the month end, the p50 dashed, the limit flat, and axes in USD', () => {
    const config = spendChartConfig(chart);
    const byLabel = new Map(config.data.datasets.map((s) => [s.label, s]));
    const band = byLabel.get('Likely range (p10–p90)')!.data;
    expect(band.slice(0, 9)).toEqual(Array(9).fill(null)); // nothing before today (the 10th)
    expect(band[9]).toBeCloseTo(13.645, 9); // starts at today's spend
    expect(band.at(-1)).toBe(45);
    expect(byLabel.get('p10')!.data.at(-1)).toBe(20);
    expect((byLabel.get('Projected (p50)') as { borderDash?: number[] }).borderDash).toEqual([6, 4]);
    expect(new Set(byLabel.get('Monthly limit $40')!.data)).toEqual(new Set([40]));
    const y = config.options?.scales?.y as { title: { text: string }; ticks: { callback: (v: number) => string } };
    expect(y.title.text).toBe('Spend since the 1st (USD)');
    expect(y.ticks.callback(1500)).toBe('$1,500');
  });

  it('renders a 1440×720 PNG', () => {
    const png = renderSpendChart(chart);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1440, 720]);
  });

  it.each([
    [{ daysInMonth: 32 }, /daysInMonth = 32: a month has 28 to 31 days/],
    [{ cumulativeUsd: [] }, /0 days of spend for a month of 28 days/],
    [{ cumulativeUsd: [1, Number.NaN] }, /cumulativeUsd\[1\] = NaN: not an amount of USD/],
    [{ limitUsd: -5 }, /limitUsd = -5: not an amount of USD/],
  ])('refuses bad numbers with the field named: %o', (bad, message) => {
    expect(() => renderSpendChart({ ...chart, ...bad })).toThrow(message);
  });
});
