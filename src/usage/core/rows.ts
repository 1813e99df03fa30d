import { picoToUsd } from '../../money.ts';
import type { PriceTable } from './prices.ts';
import { type PricedBy, priceUsage } from './pricing.ts';

/** The counts a usage row carries, as the API reports them and as they are stored. */
interface UsageCounts {
  uncached_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_5m_input_tokens: number;
  cache_creation_1h_input_tokens: number;
  output_tokens: number;
  web_search_requests: number;
}

/** One report row as ingestion reads it: the API's result, by key, workspace, model, tier and window. */
export interface ReportedUsage extends UsageCounts {
  api_key_id: string | null;
  workspace_id: string | null;
  model: string | null;
  service_tier: string | null;
  context_window: string | null;
}

/** A `usage_buckets` row as ingestion writes it: identity, token counts, and the cost priced at ingestion. */
export interface UsageRow extends UsageCounts {
  bucket_width: '1m' | '1h' | '1d';
  starting_at: Date;
  api_key_id: string | null;
  workspace_id: string | null;
  model: string;
  service_tier: string;
  context_window: string;
  /** Exact USD (12 places), as numeric stores it. */
  cost_usd: string;
  /**
   * `cost_usd` split by token kind, on 1m rows: what runaway detection names as a runaway's token kinds. Null on
   * hourly rows, which detection never reads: the 13 months of them stay the size they were.
   */
  cost_uncached_input_usd: string | null;
  cost_cache_read_usd: string | null;
  cost_cache_creation_5m_usd: string | null;
  cost_cache_creation_1h_usd: string | null;
  cost_output_usd: string | null;
  cost_web_search_usd: string | null;
  priced_by: PricedBy;
}

/**
 * A report row priced and shaped as a `usage_buckets` row. The identity columns are NOT NULL for model, tier and
 * window: usage reported without one (not grouped, or Console usage) is stored under '' rather than dropped.
 */
export function toUsageBucketRow(
  width: '1m' | '1h' | '1d',
  row: { startingAt: Date; result: ReportedUsage },
  table: PriceTable,
): UsageRow {
  const r = row.result;
  const priced = priceUsage(r, table, row.startingAt);
  const part = (pico: bigint) => (width === '1m' ? picoToUsd(pico) : null);
  return {
    bucket_width: width,
    starting_at: row.startingAt,
    api_key_id: r.api_key_id,
    workspace_id: r.workspace_id,
    model: r.model ?? '',
    service_tier: r.service_tier ?? '',
    context_window: r.context_window ?? '',
    uncached_input_tokens: r.uncached_input_tokens,
    cache_read_input_tokens: r.cache_read_input_tokens,
    cache_creation_5m_input_tokens: r.cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens: r.cache_creation_1h_input_tokens,
    output_tokens: r.output_tokens,
    web_search_requests: r.web_search_requests,
    cost_usd: picoToUsd(priced.cost),
    cost_uncached_input_usd: part(priced.parts.uncached_input),
    cost_cache_read_usd: part(priced.parts.cache_read),
    cost_cache_creation_5m_usd: part(priced.parts.cache_write_5m),
    cost_cache_creation_1h_usd: part(priced.parts.cache_write_1h),
    cost_output_usd: part(priced.parts.output),
    cost_web_search_usd: part(priced.parts.web_search),
    priced_by: priced.pricedBy,
  };
}
