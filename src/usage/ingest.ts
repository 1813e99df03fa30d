import type { AdminClient } from '../anthropic/client.ts';
import type { Db } from '../db/index.ts';
import { nextPageBuckets, type PageSizer, usagePages } from './pages.ts';
import type { PriceTable } from './prices.ts';
import { mostRowsPerBucket, readWatermark, replaceUsageRange, toUsageBucketRow } from './store.ts';
import { planPollChunks, type UsageChunk } from './window.ts';

// the name /metrics reads for keywarden_last_successful_poll_age_seconds
export const USAGE_WATERMARK = 'poll-usage';
const HOUR_MS = 3_600_000;

export const BACKFILL_WATERMARK = 'poll-usage.backfill';
const DAY_MS = 86_400_000;
/** The 1h report returns at most 168 buckets (a week) per page: one week is one backfill chunk. */
const BACKFILL_CHUNK_MS = 7 * DAY_MS;
/**
 * Rows per page: what one page holds in memory (its text, its JSON and the validated copy at once) whatever the
 * organization's size. A day of a 5,000-key organization was one page of 1.6 M rows; now it is ~500 pages, and a
 * steady-state poll of it five (`npm run bench -- ingest`).
 */
const PAGE_ROWS = 4_000;

export interface PollUsageOptions {
  overlapMinutes: number;
  freshnessMinutes: number;
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
  /** Models priced at a family's or the global maximum, seen for the first time in this poll. */
  newUnknownModels: string[];
}

/**
 * Reads 1m usage from the watermark (minus the overlap) to now (minus the freshness margin), every page, and
 * replaces the stored rows chunk by chunk, moving the watermark with each committed chunk. A chunk is one
 * transaction, its pages written as they arrive: a crash between pages commits nothing of it, and the next poll
 * starts from the same place.
 */
export async function pollUsage(
  db: Db,
  admin: AdminClient,
  now: Date,
  opts: PollUsageOptions,
): Promise<PollUsageResult> {
  const watermark = await readWatermark(db, USAGE_WATERMARK);
  const chunks = planPollChunks(watermark, now, {
    overlapMinutes: opts.overlapMinutes,
    freshnessMinutes: opts.freshnessMinutes,
    // a whole hour, so that the hourly backfill before it and the 1m rows after it tile the history exactly
    firstStart: new Date(Math.floor((now.getTime() - opts.firstPollHours * HOUR_MS) / HOUR_MS) * HOUR_MS),
  });
  const unknown = new Set<string>();
  let rows = 0;
  let done = 0;
  // only before the first 1m commit: afterwards the 1m rows (and their rollup) own everything from there on
  if (watermark === null && opts.backfillDaysBeforeMonth !== undefined && chunks[0]) {
    rows += await backfillHourly(db, admin, now, chunks[0].start, opts.backfillDaysBeforeMonth, opts, unknown);
  }
  const minutes: PageSizer = { targetRows: opts.pageRows ?? PAGE_ROWS, buckets: 1 };
  // the first page sized from the minutes stored last (measured, so not held to the growth limit); else 1 bucket
  const recent = watermark === null ? null : await mostRowsPerBucket(db, '1m', watermark, 15);
  if (recent !== null) minutes.buckets = nextPageBuckets('1m', Number.POSITIVE_INFINITY, recent, minutes.targetRows);
  for (const chunk of chunks) {
    opts.signal?.throwIfAborted();
    const written = await replaceUsageRange(
      db,
      chunk,
      rowPages(admin, chunk, '1m', minutes, opts),
      USAGE_WATERMARK,
      now,
    );
    for (const m of written.newUnknownModels) unknown.add(m);
    rows += written.rows;
    done++;
    opts.onProgress?.({ phase: 'poll', chunk, done, total: chunks.length, rows: written.rows });
  }
  return {
    chunks: chunks.length,
    rows,
    watermark: await readWatermark(db, USAGE_WATERMARK),
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
) {
  let page = 0;
  for await (const buckets of usagePages(admin, range, width, sizer, opts.signal)) {
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
  db: Db,
  admin: AdminClient,
  now: Date,
  until: Date,
  days: number,
  opts: PollUsageOptions,
  unknown: Set<string>,
): Promise<number> {
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const end = Math.floor(until.getTime() / HOUR_MS) * HOUR_MS;
  const resumeAt = (await readWatermark(db, BACKFILL_WATERMARK))?.getTime() ?? monthStart - days * DAY_MS;
  const hours: PageSizer = { targetRows: opts.pageRows ?? PAGE_ROWS, buckets: 1 };
  const total = Math.max(0, Math.ceil((end - resumeAt) / BACKFILL_CHUNK_MS));
  let rows = 0;
  let done = 0;
  for (let s = resumeAt; s < end; s += BACKFILL_CHUNK_MS) {
    opts.signal?.throwIfAborted();
    const chunk = { start: new Date(s), end: new Date(Math.min(s + BACKFILL_CHUNK_MS, end)) };
    const written = await replaceUsageRange(
      db,
      chunk,
      rowPages(admin, chunk, '1h', hours, opts),
      BACKFILL_WATERMARK,
      now,
      '1h',
    );
    for (const m of written.newUnknownModels) unknown.add(m);
    rows += written.rows;
    opts.onProgress?.({ phase: 'backfill', chunk, done: ++done, total, rows: written.rows });
  }
  return rows;
}
