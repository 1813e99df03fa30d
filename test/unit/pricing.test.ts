import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { usdToPico } from '../../src/money.ts';
import { canonicalModelId, PRICE_TABLE, type PriceTable, withPriceOverrides } from '../../src/usage/core/prices.ts';
import { findPriceEntry, priceUsage, type UsageToPrice } from '../../src/usage/core/pricing.ts';

const AT = new Date('2026-05-01T12:00:00Z');
const MTOK = 1_000_000;

function row(model: string | null, tokens: Partial<UsageToPrice> = {}): UsageToPrice {
  return {
    model,
    service_tier: 'standard',
    context_window: '0-200k',
    uncached_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation_5m_input_tokens: 0,
    cache_creation_1h_input_tokens: 0,
    output_tokens: 0,
    web_search_requests: 0,
    ...tokens,
  };
}

const usd = (text: string) => usdToPico(text);

describe('priceUsage: the table', () => {
  it.each([
    ['claude-sonnet-4-5', 'uncached_input_tokens', '3'],
    ['claude-sonnet-4-5', 'output_tokens', '15'],
    ['claude-sonnet-4-5', 'cache_read_input_tokens', '0.3'],
    ['claude-sonnet-4-5', 'cache_creation_5m_input_tokens', '3.75'],
    ['claude-sonnet-4-5', 'cache_creation_1h_input_tokens', '6'],
    ['claude-opus-4-5', 'uncached_input_tokens', '5'],
    ['claude-opus-4-1', 'output_tokens', '75'],
    ['claude-haiku-4-5', 'output_tokens', '5'],
    ['claude-3-5-haiku', 'uncached_input_tokens', '0.8'],
    ['claude-3-haiku', 'cache_read_input_tokens', '0.03'],
    ['claude-3-haiku', 'cache_creation_5m_input_tokens', '0.3'],
  ] as const)('a million %s %s cost $%s', (model, field, price) => {
    const priced = priceUsage(row(model, { [field]: MTOK }), PRICE_TABLE, AT);
    expect(priced.cost).toBe(usd(price));
    expect(priced.pricedBy).toBe('table');
    expect(priced.priceModel).toBe(model);
  });

  it.each([
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    ['claude-opus-4-1@20250805', 'claude-opus-4-1'],
    ['claude-opus-4-0', 'claude-opus-4'],
    ['claude-opus-4-20250514', 'claude-opus-4'],
    ['claude-3-7-sonnet-latest', 'claude-3-7-sonnet'],
    ['Claude-Haiku-4-5', 'claude-haiku-4-5'],
  ])('%s is priced as %s', (model, entry) => {
    expect(priceUsage(row(model, { output_tokens: 1 }), PRICE_TABLE, AT).priceModel).toBe(entry);
  });

  it('strips only a date, so an unknown version is not mistaken for an older model', () => {
    expect(canonicalModelId('claude-opus-4-8')).toBe('claude-opus-4-8');
    expect(priceUsage(row('claude-opus-4-8', { uncached_input_tokens: MTOK }), PRICE_TABLE, AT).pricedBy).toBe(
      'family_max',
    );
  });

  it('halves token costs for batch, but not web searches', () => {
    const tokens = { uncached_input_tokens: MTOK, output_tokens: MTOK, web_search_requests: 1000 };
    const standard = priceUsage(row('claude-sonnet-4-5', tokens), PRICE_TABLE, AT);
    const batch = priceUsage({ ...row('claude-sonnet-4-5', tokens), service_tier: 'batch' }, PRICE_TABLE, AT);
    expect(standard.cost).toBe(usd('28')); // 3 + 15 + 10 for a thousand searches
    expect(batch.cost).toBe(usd('19')); // 1.5 + 7.5 + 10
    expect(batch.parts.web_search).toBe(usd('10'));
  });

  it('prices long-context Sonnet 4.5 requests at the premium, and Sonnet 4.6 at the standard rate', () => {
    const long = (model: string) =>
      priceUsage(
        { ...row(model, { uncached_input_tokens: MTOK, output_tokens: MTOK }), context_window: '200k-1M' },
        PRICE_TABLE,
        AT,
      );
    expect(long('claude-sonnet-4-5').cost).toBe(usd('28.5'));
    expect(long('claude-sonnet-4-6').cost).toBe(usd('18'));
  });

  it('accepts counts as numbers, bigints and Postgres strings alike', () => {
    const a = priceUsage(row('claude-haiku-4-5', { output_tokens: 1234 }), PRICE_TABLE, AT);
    const b = priceUsage(row('claude-haiku-4-5', { output_tokens: '1234' }), PRICE_TABLE, AT);
    const c = priceUsage(row('claude-haiku-4-5', { output_tokens: 1234n }), PRICE_TABLE, AT);
    expect(a.cost).toBe(6_170_000_000n); // 1234 × $5/MTok = $0.00617
    expect(b.cost).toBe(a.cost);
    expect(c.cost).toBe(a.cost);
    expect(() => priceUsage(row('claude-haiku-4-5', { output_tokens: 'lots' }), PRICE_TABLE, AT)).toThrow(
      /output_tokens/,
    );
  });
});

describe('priceUsage: models the table does not know', () => {
  it('prices an unknown model of a known family at that family’s most expensive rates', () => {
    const priced = priceUsage(
      row('claude-opus-9', { uncached_input_tokens: MTOK, output_tokens: MTOK }),
      PRICE_TABLE,
      AT,
    );
    expect(priced.pricedBy).toBe('family_max');
    expect(priced.priceModel).toBeNull();
    expect(priced.cost).toBe(usd('90')); // Opus 4 / 4.1: 15 + 75
  });

  it('prices a model of no known family, or no model at all, at the most expensive rates of all', () => {
    for (const model of ['mystery-model-1', null]) {
      const priced = priceUsage(row(model, { cache_read_input_tokens: MTOK }), PRICE_TABLE, AT);
      expect(priced.pricedBy).toBe('global_max');
      expect(priced.cost).toBe(usd('1.5'));
    }
  });
});

describe('dated prices', () => {
  const table: PriceTable = {
    web_search_per_1k: '10',
    entries: [
      {
        model: 'claude-x',
        display_name: 'X',
        family: 'sonnet',
        effective_from: '2026-01-01',
        rates: { input: '2', output: '10', cache_read: '0.2', cache_write_5m: '2.5', cache_write_1h: '4' },
      },
      {
        model: 'claude-x',
        display_name: 'X',
        family: 'sonnet',
        effective_from: '2026-03-01',
        rates: { input: '1', output: '5', cache_read: '0.1', cache_write_5m: '1.25', cache_write_1h: '2' },
      },
    ],
  };

  it.each([
    ['2025-12-15T00:00:00Z', '2'], // before the first entry: the first entry's price
    ['2026-02-28T23:59:59Z', '2'],
    ['2026-03-01T00:00:00Z', '1'],
    ['2026-09-01T00:00:00Z', '1'],
  ])('usage at %s costs $%s per million input tokens', (at, price) => {
    expect(priceUsage(row('claude-x', { uncached_input_tokens: MTOK }), table, new Date(at)).cost).toBe(usd(price));
  });
});

describe('withPriceOverrides', () => {
  it('adds a model the table lacks, deriving cache rates from the input rate', () => {
    const table = withPriceOverrides(PRICE_TABLE, { 'claude-sonnet-5-5': { input: 2, output: '10' } });
    const tokens = {
      uncached_input_tokens: MTOK,
      cache_creation_5m_input_tokens: MTOK,
      cache_creation_1h_input_tokens: MTOK,
      cache_read_input_tokens: MTOK,
      output_tokens: MTOK,
    };
    const priced = priceUsage(row('claude-sonnet-5-5-20261001', tokens), table, AT);
    expect(priced.pricedBy).toBe('table');
    expect(priced.cost).toBe(usd('18.7')); // 2 + 2.5 + 4 + 0.2 + 10
    expect(findPriceEntry(table, 'claude-sonnet-5-5', AT)?.family).toBe('sonnet');
  });

  it('changes only the fields given for a model the table knows, for every date', () => {
    const table = withPriceOverrides(PRICE_TABLE, { 'claude-haiku-4-5': { output: '4' } });
    const early = new Date('2020-01-01T00:00:00Z');
    expect(priceUsage(row('claude-haiku-4-5', { output_tokens: MTOK }), table, early).cost).toBe(usd('4'));
    expect(priceUsage(row('claude-haiku-4-5', { uncached_input_tokens: MTOK }), table, AT).cost).toBe(usd('1'));
    expect(PRICE_TABLE.entries.find((e) => e.model === 'claude-haiku-4-5')?.rates.output).toBe('5');
  });

  it('names the model and field of a bad price', () => {
    expect(() => withPriceOverrides(PRICE_TABLE, { 'claude-new': { input: 'cheap', output: 1 } })).toThrow(
      /prices\.claude-new\.input: "cheap"/,
    );
    expect(() => withPriceOverrides(PRICE_TABLE, { 'claude-new': { input: 1 } })).toThrow(
      /prices\.claude-new\.output: required/,
    );
    expect(() => withPriceOverrides(PRICE_TABLE, { 'claude-new': { input: '0.0000001', output: 1 } })).toThrow(
      /6 places/,
    );
  });
});

describe('exactness', () => {
  const count = fc.integer({ min: 0, max: 5_000_000 });
  const dims = fc.record({
    model: fc.constantFrom('claude-sonnet-4-5', 'claude-3-haiku', 'claude-opus-4-5', 'claude-unknown', null),
    service_tier: fc.constantFrom('standard', 'batch'),
    context_window: fc.constantFrom('0-200k', '200k-1M'),
  });
  const tokens = fc.record({
    uncached_input_tokens: count,
    cache_read_input_tokens: count,
    cache_creation_5m_input_tokens: count,
    cache_creation_1h_input_tokens: count,
    output_tokens: count,
    web_search_requests: fc.integer({ min: 0, max: 100 }),
  });
  type Tokens = Record<string, number>;

  it('the cost of a sum of rows is the sum of their costs, to the picodollar', () => {
    // What makes reconciliation exact: pricing minute rows and summing them equals pricing the day's totals.
    fc.assert(
      fc.property(dims, tokens, tokens, (d, a, b) => {
        const sum: Tokens = {};
        for (const [k, v] of Object.entries(a)) sum[k] = v + (b as Tokens)[k]!;
        const whole = priceUsage({ ...d, ...(sum as typeof a) }, PRICE_TABLE, AT).cost;
        expect(whole).toBe(
          priceUsage({ ...d, ...a }, PRICE_TABLE, AT).cost + priceUsage({ ...d, ...b }, PRICE_TABLE, AT).cost,
        );
      }),
    );
  });

  it('the parts add up to the cost', () => {
    fc.assert(
      fc.property(dims, tokens, (d, t) => {
        const { cost, parts } = priceUsage({ ...d, ...t }, PRICE_TABLE, AT);
        expect(Object.values(parts).reduce((s, p) => s + p, 0n)).toBe(cost);
      }),
    );
  });
});
