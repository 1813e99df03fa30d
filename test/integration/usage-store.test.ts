import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpendBreakdown } from '../../src/anomaly/load.ts';
import { createRepos } from '../../src/db/repos/index.ts';
import { usageRepo } from '../../src/db/repos/usage.ts';
import { usdToPico } from '../../src/money.ts';
import { PRICE_TABLE, withPriceOverrides } from '../../src/usage/core/prices.ts';
import { toUsageBucketRow } from '../../src/usage/core/rows.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let t: TestDatabase;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const AT = new Date('2026-11-16T10:00:00Z');

function row(model: string, apiKeyId: string | null, tokens: number) {
  return {
    bucket_width: '1m' as const,
    starting_at: AT,
    api_key_id: apiKeyId,
    workspace_id: null,
    model,
    service_tier: 'standard',
    context_window: '0-200k',
    uncached_input_tokens: tokens,
    cache_read_input_tokens: 0,
    cache_creation_5m_input_tokens: 0,
    cache_creation_1h_input_tokens: 0,
    output_tokens: 9_007_199_254,
    web_search_requests: 0,
    cost_usd: '12.345678901234',
    cost_uncached_input_usd: '0.345678901234',
    cost_cache_read_usd: '0',
    cost_cache_creation_5m_usd: '0',
    cost_cache_creation_1h_usd: '0',
    cost_output_usd: '12',
    cost_web_search_usd: '0',
    priced_by: 'table' as const,
  };
}

describe('upsertUsageBuckets', () => {
  // the rows go to Postgres as array literals keywarden writes itself: whatever a model name holds comes back as is
  const awkward = [
    'a"quote',
    'back\\slash',
    'comma,brace}{',
    'NULL',
    'null',
    '',
    'tab\tnew\nline',
    'späti ✓',
    ' padded ',
  ];

  it('stores text with quotes, backslashes, separators, the word NULL and empty strings exactly', async () => {
    await usageRepo(t.db).upsertBuckets(awkward.map((m, i) => row(m, i % 2 ? null : `apikey_${i}`, i)));
    const stored = await t.db
      .selectFrom('usage_buckets')
      .select(['model', 'api_key_id', 'workspace_id', 'uncached_input_tokens', 'output_tokens', 'cost_usd'])
      .orderBy('uncached_input_tokens')
      .execute();
    expect(stored.map((r) => r.model)).toEqual(awkward);
    expect(stored.map((r) => r.api_key_id)).toEqual(awkward.map((_, i) => (i % 2 ? null : `apikey_${i}`)));
    expect(stored.every((r) => r.workspace_id === null)).toBe(true);
    expect(stored.every((r) => String(r.output_tokens) === '9007199254')).toBe(true);
    expect(stored.every((r) => String(r.cost_usd) === '12.345678901234')).toBe(true);
  });

  it('replaces the counts of a row it stores again (null key included) rather than adding a second row', async () => {
    await usageRepo(t.db).upsertBuckets([row('NULL', null, 3), row('a"quote', 'apikey_0', 1_000)]);
    const rows = await t.db
      .selectFrom('usage_buckets')
      .select(['model', 'uncached_input_tokens'])
      .where('model', 'in', ['NULL', 'a"quote'])
      .orderBy('model')
      .execute();
    expect(rows.map((r) => [r.model, Number(r.uncached_input_tokens)])).toEqual([
      ['NULL', 3],
      ['a"quote', 1_000],
    ]);
  });
});

describe('the cost split by token kind', () => {
  const minute = new Date('2026-11-16T11:00:00Z');
  const usage = {
    api_key_id: 'apikey_split',
    workspace_id: 'wrkspc_split',
    model: 'claude-sonnet-4-5',
    service_tier: 'standard',
    context_window: '0-200k',
    uncached_input_tokens: 1_000_000,
    cache_read_input_tokens: 2_000_000,
    cache_creation_5m_input_tokens: 0,
    cache_creation_1h_input_tokens: 1_000_000,
    output_tokens: 100_000,
    web_search_requests: 3,
  };

  it('is stored by ingestion, sums to the total, and is what detection names, not a second pricing', async () => {
    const stored = toUsageBucketRow('1m', { startingAt: minute, result: usage }, PRICE_TABLE);
    const parts = [
      stored.cost_uncached_input_usd,
      stored.cost_cache_read_usd,
      stored.cost_cache_creation_5m_usd,
      stored.cost_cache_creation_1h_usd,
      stored.cost_output_usd,
      stored.cost_web_search_usd,
    ];
    expect(parts.reduce((sum, p) => sum + usdToPico(p!), 0n)).toBe(usdToPico(stored.cost_usd));
    expect(toUsageBucketRow('1h', { startingAt: minute, result: usage }, PRICE_TABLE).cost_output_usd).toBeNull();
    await usageRepo(t.db).upsertBuckets([stored]);

    // the price changes after the minute was stored: the alert still names what was stored (and summed in cost_usd)
    const repriced = withPriceOverrides(PRICE_TABLE, { 'claude-sonnet-4-5': { input: '30', output: '150' } });
    expect(toUsageBucketRow('1m', { startingAt: minute, result: usage }, repriced).cost_usd).not.toBe(stored.cost_usd);
    const rows = await loadSpendBreakdown(
      createRepos(t.db),
      { keyId: 'apikey_split' },
      minute,
      new Date(minute.getTime() + 60_000),
    );
    expect(rows.map((r) => [r.tokenKind, r.cost])).toEqual([
      ['uncached_input', usdToPico('3')],
      ['cache_read', usdToPico('0.6')],
      ['cache_creation_1h', usdToPico('6')],
      ['output', usdToPico('1.5')],
      ['web_search', usdToPico('0.03')],
    ]);
    expect(rows.every((r) => r.model === 'claude-sonnet-4-5' && r.minute.getTime() === minute.getTime())).toBe(true);
  });
});
