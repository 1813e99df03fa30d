import { type AdminClient, MAX_BUCKETS } from '../anthropic/client.ts';
import type { UsageBucket } from '../anthropic/types.ts';
import type { Context } from '../context.ts';
import { WATERMARKS } from '../db/repos/watermarks.ts';
import { DAY_MS, HOUR_MS } from '../time.ts';
import type { PriceTable } from './core/prices.ts';
import { toUsageBucketRow } from './core/rows.ts';
import { lateRereadChunk, nextPageBuckets, type PageSizer, planPollChunks, type UsageChunk } from './core/window.ts';
import { readUsageFreshness } from './freshness.ts';
import { usagePages } from './pages.ts';

/** Minutes before the watermark each poll reads again: usage arrives late, and the minutes at the edge still fill. */
export const POLL_OVERLAP_MINUTES = 15;
/** The 1h report returns at most a week of buckets per page: one week is one backfill chunk. */
const BACKFILL_CHUNK_MS = MAX_BUCKETS['1h'] * HOUR_MS;
/**
 * Rows per page: what one page holds in memory (its text, its JSON and the validated copy at once) whatever the
 * organization's size. A day of a 5,000-key organization was one page of 1.6 M rows; now it is ~500 pages, and a
 * steady-state poll of it five (`npm run bench -- ingest`).
 */
const PAGE_ROWS = 4_000;

type UsageCtx = Pick<Context, 'repos' | 'admin' | 'clock'>;

export interface PollUsageOptions {
  overlapMinutes: number;
  freshnessMinutes: number;
  /**
   * How long late usage is waited for: the poll re-reads from the newest minute with data (less the overlap) up to
   * this far back, and re-reads one `lateSliceMinutes` slice of this window behind it each poll. Default 0: off.
   */
  lateWindowMinutes?: number;
  /** Default 5. */
  lateSliceMinutes?: number;
  /** How far back a first poll (no watermark yet) reads in 1m buckets; 48 h, the age at which 1m rows roll up. */
  firstPollHours: number;
  table: PriceTable;
  /**
   * On the first poll, also read this many days before the start of the month in 1h buckets, up to where the 1m
   * poll starts (the same hourly rows the rollup makes of older 1m rows). Default: no backfill.
   */
  backfillDaysBeforeMonth?: number;
  /** Rows per page (about: pages are whole buckets); default 4,000. */
  pageRows?: number;
  signal?: AbortSignal;
  /** Called after each committed chunk (the CLI prints it as progress). */
  onProgress?: (p: UsageProgress) => void;
  /** Buckets with usage the API answered outside the range asked for (dated in the future): refused, not stored. */
  onRefused?: (buckets: readonly UsageBucket[]) => void;
  /** Called after each page is written, before its chunk is committed: where tests inject a crash. */
  afterPage?: (page: number) => void;
}

/** One committed chunk: the `done`-th of `total` of the hourly backfill or of the 1m poll. */
export interface UsageProgress {
  phase: 'backfill' | 'poll';
  chunk: UsageChunk;
  done: number;
  total: number;
  rows: number;
}

/** `backfill 3/9 (hourly): up to 2026-10-18 00:00 UTC, 1,204 rows`: a progress line for a person at a terminal. */
export function formatUsageProgress(p: UsageProgress): string {
  const what = p.phase === 'backfill' ? 'backfill' : 'usage';
  const width = p.phase === 'backfill' ? 'hourly' : '1-minute';
  const upTo = p.chunk.end.toISOString().slice(0, 16).replace('T', ' ');
  return `${what} ${p.done}/${p.total} (${width}): up to ${upTo} UTC, ${p.rows.toLocaleString('en-US')} rows`;
}

export interface PollUsageResult {
  chunks: number;
  rows: number;
  watermark: Date | null;
  /** The end of the newest minute the API has answered with data (the settled watermark). */
  settled: Date | null;
  /** Where the poll stopped reading: the earlier of this machine's clock and the API's (less the freshness). */
  horizon: Date;
  /** The API's clock minus `now`, from its `Date` header (null: it sent none). */
  clockSkewMs: number | null;
  /** Buckets the API answered outside the range asked for (dated in the future), not stored. */
  refusedBuckets: number;
  /** Models priced at a family's or the global maximum, seen for the first time in this poll. */
  newUnknownModels: string[];
}

/**
 * Reads 1m usage from the watermark (minus the overlap; from the newest minute with data when the API's data runs
 * late) to now (minus the freshness margin; never past the API's own "now"), every page, and replaces the stored
 * rows chunk by chunk, moving the watermark with each committed chunk. A chunk is one transaction, its pages written
 * as they arrive: a crash between pages commits nothing of it, and the next poll starts from the same place.
 */
export async function pollUsage(ctx: UsageCtx, opts: PollUsageOptions): Promise<PollUsageResult> {
  const { admin, repos } = ctx;
  const now = ctx.clock.now();
  // The API's clock bounds what can be asked for: a clock running ahead would otherwise ask for minutes the API has
  // not reached, and move the watermark past them.
  if (admin.serverNow() === null) await admin.getOrganization({ signal: opts.signal });
  const apiNow = admin.serverNow();
  const horizon = apiNow !== null && apiNow.getTime() < now.getTime() ? apiNow : now;
  const { committed: watermark, settled } = await readUsageFreshness(repos);
  const lateWindowMinutes = opts.lateWindowMinutes ?? 0;
  const chunks = planPollChunks(watermark, horizon, {
    overlapMinutes: opts.overlapMinutes,
    freshnessMinutes: opts.freshnessMinutes,
    maxChunkMinutes: MAX_BUCKETS['1m'],
    settled,
    lateWindowMinutes,
    // a whole hour, so that the hourly backfill before it and the 1m rows after it tile the history exactly
    firstStart: new Date(Math.floor((horizon.getTime() - opts.firstPollHours * HOUR_MS) / HOUR_MS) * HOUR_MS),
  });
  const late =
    chunks[0] && watermark !== null && lateWindowMinutes > 0
      ? lateRereadChunk(chunks[0].start, horizon, {
          freshnessMinutes: opts.freshnessMinutes,
          lateWindowMinutes,
          sliceMinutes: opts.lateSliceMinutes ?? 5,
        })
      : null;
  const unknown = new Set<string>();
  const refused: UsageBucket[] = [];
  let rows = 0;
  let done = 0;
  // only before the first 1m commit: afterwards the 1m rows (and their rollup) own everything from there on
  if (watermark === null && opts.backfillDaysBeforeMonth !== undefined && chunks[0]) {
    rows += await backfillHourly(ctx, horizon, chunks[0].start, opts.backfillDaysBeforeMonth, opts, unknown);
  }
  const minutes: PageSizer = { targetRows: opts.pageRows ?? PAGE_ROWS, buckets: 1 };
  // the first page sized from the minutes stored last (measured, so not held to the growth limit); else 1 bucket
  const recent = watermark === null ? null : await repos.usage.mostRowsPerBucket('1m', watermark, 15);
  if (recent !== null) {
    minutes.buckets = nextPageBuckets(MAX_BUCKETS['1m'], Number.POSITIVE_INFINITY, recent, minutes.targetRows);
  }
  // the late slice first: the oldest range, and the watermark never moves back for it
  const walk = late ? [late, ...chunks] : chunks;
  for (const chunk of walk) {
    opts.signal?.throwIfAborted();
    const edge = { newest: null as Date | null };
    const written = await repos.usage.replaceRange(
      { ...chunk, width: '1m' },
      rowPages(admin, chunk, '1m', minutes, opts, edge, refused),
      WATERMARKS.usage,
      now,
      { name: WATERMARKS.usageSettled, position: () => edge.newest },
    );
    for (const m of written.newUnknownModels) unknown.add(m);
    rows += written.rows;
    done++;
    opts.onProgress?.({ phase: 'poll', chunk, done, total: walk.length, rows: written.rows });
  }
  opts.onRefused?.(refused);
  const after = await readUsageFreshness(repos);
  return {
    chunks: walk.length,
    rows,
    watermark: after.committed,
    settled: after.settled,
    horizon,
    clockSkewMs: apiNow === null ? null : apiNow.getTime() - now.getTime(),
    refusedBuckets: refused.length,
    newUnknownModels: [...unknown].sort(),
  };
}

/** The report's pages as `usage_buckets` rows, priced. */
async function* rowPages(
  admin: AdminClient,
  range: UsageChunk,
  width: '1m' | '1h',
  sizer: PageSizer,
  opts: PollUsageOptions,
  edge: { newest: Date | null } = { newest: null },
  refused: UsageBucket[] = [],
) {
  let page = 0;
  const refuse = (b: UsageBucket) => {
    if (b.results.length > 0) refused.push(b);
  };
  for await (const buckets of usagePages(admin, range, width, sizer, opts.signal, refuse)) {
    for (const b of buckets) {
      if (b.results.length > 0 && (edge.newest === null || b.ending_at > edge.newest)) edge.newest = b.ending_at;
    }
    yield buckets.flatMap((bucket) =>
      bucket.results.map((result) => toUsageBucketRow(width, { startingAt: bucket.starting_at, result }, opts.table)),
    );
    opts.afterPage?.(++page);
  }
}

/**
 * The history before the 1m poll's first minute, in 1h buckets, from `days` before the start of the month (UTC),
 * walked a week per chunk with its own watermark, so an interrupted backfill resumes where it stopped.
 */
async function backfillHourly(
  ctx: UsageCtx,
  now: Date,
  until: Date,
  days: number,
  opts: PollUsageOptions,
  unknown: Set<string>,
): Promise<number> {
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const end = Math.floor(until.getTime() / HOUR_MS) * HOUR_MS;
  const resumeAt = (await ctx.repos.watermarks.read(WATERMARKS.usageBackfill))?.getTime() ?? monthStart - days * DAY_MS;
  const hours: PageSizer = { targetRows: opts.pageRows ?? PAGE_ROWS, buckets: 1 };
  const total = Math.max(0, Math.ceil((end - resumeAt) / BACKFILL_CHUNK_MS));
  let rows = 0;
  let done = 0;
  for (let s = resumeAt; s < end; s += BACKFILL_CHUNK_MS) {
    opts.signal?.throwIfAborted();
    const chunk = { start: new Date(s), end: new Date(Math.min(s + BACKFILL_CHUNK_MS, end)) };
    const written = await ctx.repos.usage.replaceRange(
      { ...chunk, width: '1h' },
      rowPages(ctx.admin, chunk, '1h', hours, opts),
      WATERMARKS.usageBackfill,
      now,
    );
    for (const m of written.newUnknownModels) unknown.add(m);
    rows += written.rows;
    opts.onProgress?.({ phase: 'backfill', chunk, done: ++done, total, rows: written.rows });
  }
  return rows;
}
