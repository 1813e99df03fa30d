import { type AdminClient, MAX_BUCKETS } from '../anthropic/client.ts';
import type { UsageBucket, UsageGroupBy } from '../anthropic/types.ts';

/**
 * The usage report read a page at a time, each page sized in ROWS rather than buckets. A page's memory is its rows
 * (the response text, the parsed JSON and the validated copy all live at once), and rows per bucket range from a
 * handful (a small organization) to over a thousand (5,000 keys): a fixed bucket count is either a day of a large
 * organization in one response (gigabytes) or hundreds of requests for a small one.
 *
 * Each page is its own request from where the previous one ended, with a bucket count chosen from the rows per
 * bucket seen so far. Time-bucketed reports make this the same walk as the API's `next_page` (buckets are aligned
 * to the width), without assuming the API accepts a different `limit` under a page token.
 */

/** How fast the page may grow after a quiet stretch: traffic can rise faster than one page's sample predicts. */
const GROWTH = 4;

const USAGE_GROUPS: readonly UsageGroupBy[] = ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window'];

/** Buckets for the next page; carried from chunk to chunk of one poll so each chunk starts at the right size. */
export interface PageSizer {
  targetRows: number;
  buckets: number;
}

/** The bucket count that keeps a page near `targetRows`, given the most rows one bucket held. */
export function nextPageBuckets(
  width: '1m' | '1h',
  current: number,
  maxRowsPerBucket: number,
  targetRows: number,
): number {
  const fits = Math.floor(targetRows / Math.max(1, maxRowsPerBucket));
  return Math.max(1, Math.min(MAX_BUCKETS[width], current * GROWTH, fits));
}

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
    const report = admin.usageReport(
      {
        startingAt: at,
        endingAt: range.end,
        bucketWidth: width,
        groupBy: USAGE_GROUPS,
        limit: Math.min(sizer.buckets, MAX_BUCKETS[width]),
      },
      { signal },
    );
    let buckets: UsageBucket[] = [];
    for await (const page of report.pages()) {
      buckets = page.data.filter((b) => {
        const inside = b.starting_at >= range.start && b.ending_at <= range.end;
        if (!inside) onRefused?.(b);
        return inside;
      });
      break; // the next page is a request of its own, sized from this one
    }
    const last = buckets.at(-1);
    if (last === undefined || last.ending_at <= at) return;
    yield buckets;
    const mostRows = buckets.reduce((m, b) => Math.max(m, b.results.length), 0);
    sizer.buckets = nextPageBuckets(width, buckets.length, mostRows, sizer.targetRows);
    at = last.ending_at;
  }
}
