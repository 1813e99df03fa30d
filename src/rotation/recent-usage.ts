import type { AdminClient } from '../anthropic/client.ts';
import type { Pico } from '../money.ts';
import { usdToPico } from '../money.ts';
import type { PriceTable } from '../usage/core/prices.ts';
import { toUsageBucketRow } from '../usage/core/rows.ts';

/**
 * One key's usage read straight from the Admin API, not from what keywarden stored: the last look before a status
 * change. Stored usage can be behind (late data, a missed re-read) or wrong (an inflated report); this read is one
 * more answer, at the moment of acting.
 */

export interface KeyUsageBucket {
  startingAt: Date;
  endingAt: Date;
  tokens: bigint;
  cost: Pico;
}

export async function readKeyUsageFromApi(
  admin: AdminClient,
  keyId: string,
  range: { start: Date; end: Date },
  width: '1m' | '1h',
  table: PriceTable,
  signal?: AbortSignal,
): Promise<KeyUsageBucket[]> {
  const report = admin.usageReport(
    {
      startingAt: range.start,
      endingAt: range.end,
      bucketWidth: width,
      apiKeyIds: [keyId],
      // what pricing needs; one row per model, tier and window in a bucket
      groupBy: ['model', 'service_tier', 'context_window'],
    },
    { signal },
  );
  const out: KeyUsageBucket[] = [];
  for await (const bucket of report) {
    let tokens = 0n;
    let cost = 0n;
    for (const result of bucket.results) {
      const row = toUsageBucketRow(
        width,
        { startingAt: bucket.starting_at, result: { ...result, api_key_id: keyId } },
        table,
      );
      tokens +=
        BigInt(row.uncached_input_tokens ?? 0) +
        BigInt(row.cache_read_input_tokens ?? 0) +
        BigInt(row.cache_creation_5m_input_tokens ?? 0) +
        BigInt(row.cache_creation_1h_input_tokens ?? 0) +
        BigInt(row.output_tokens ?? 0);
      cost += usdToPico(row.cost_usd);
    }
    out.push({ startingAt: bucket.starting_at, endingAt: bucket.ending_at, tokens, cost });
  }
  return out;
}
