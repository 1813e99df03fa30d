import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageRepo } from '../../src/db/repos/usage.ts';
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
