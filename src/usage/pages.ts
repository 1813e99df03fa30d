import { type AdminClient, MAX_BUCKETS } from '../anthropic/client.ts';
import type { UsageBucket, UsageGroupBy } from '../anthropic/types.ts';
import { nextPageBuckets, type PageSizer } from './core/window.ts';

/**
 * The usage report read a page at a time, each page sized in ROWS rather than buckets (`nextPageBuckets`). Each
 * page is its own request from where the previous one ended, with a bucket count chosen from the rows per bucket
 * seen so far. Time-bucketed reports make this the same walk as the API's `next_page` (buckets are aligned to the
 * width), without assuming the API accepts a different `limit` under a page token.
 */

const USAGE_GROUPS: readonly UsageGroupBy[] = ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window'];

/**
 * Each page of the range, as buckets inside it. A bucket outside the range asked for (one dated in the future: the
 * range never reaches past the API's "now") is not believed: it would become every key's last use. It is handed
 * to `onRefused` and dropped.
 */
export async function* usagePages(
  admin: AdminClient,
  range: { start: Date; end: Date },
  width: '1m' | '1h',
  sizer: PageSizer,
  signal?: AbortSignal,
  onRefused?: (bucket: UsageBucket) => void,
): AsyncGenerator<UsageBucket[]> {
  let at = range.start;
  while (at < range.end) {
    const page = await admin.usageReportPage(
      {
        startingAt: at,
        endingAt: range.end,
        bucketWidth: width,
        groupBy: USAGE_GROUPS,
        limit: Math.min(sizer.buckets, MAX_BUCKETS[width]),
      },
      { signal },
    );
    const buckets = page.data.filter((b) => {
      const inside = b.starting_at >= range.start && b.ending_at <= range.end;
      if (!inside) onRefused?.(b);
      return inside;
    });
    const last = buckets.at(-1);
    if (last === undefined || last.ending_at <= at) return;
    yield buckets;
    const mostRows = buckets.reduce((m, b) => Math.max(m, b.results.length), 0);
    sizer.buckets = nextPageBuckets(MAX_BUCKETS[width], buckets.length, mostRows, sizer.targetRows);
    at = last.ending_at;
  }
}
