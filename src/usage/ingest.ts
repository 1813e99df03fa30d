import type { Insertable } from 'kysely';
import type { AdminClient } from '../anthropic/client.ts';
import type { UsageGroupBy } from '../anthropic/types.ts';
import type { Db } from '../db/index.ts';
import type { UsageBucketsTable } from '../db/types.ts';
import type { PriceTable } from './prices.ts';
import { readWatermark, replaceUsageRange, toUsageBucketRow } from './store.ts';
import { planPollChunks, type UsageChunk } from './window.ts';

// the name /metrics reads for keywarden_last_successful_poll_age_seconds
export const USAGE_WATERMARK = 'poll-usage';
const USAGE_GROUPS: readonly UsageGroupBy[] = ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window'];
const HOUR_MS = 3_600_000;

export const BACKFILL_WATERMARK = 'poll-usage.backfill';
const DAY_MS = 86_400_000;
/** The 1h report returns at most 168 buckets (a week) per page: one week is one backfill chunk. */
const BACKFILL_CHUNK_MS = 7 * DAY_MS;

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
  /** Buckets per page; default the API's maximum (1440). */
  pageBuckets?: number;
  signal?: AbortSignal;
  /** Called after each committed chunk (the CLI prints it as progress). */
  onProgress?: (p: { chunk: UsageChunk; done: number; total: number; rows: number }) => void;
  /** Called after each page is read, before anything of its chunk is committed: where tests inject a crash. */
  afterPage?: (page: number) => void;
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
 * replaces the stored rows chunk by chunk, moving the watermark with each committed chunk. A chunk is read whole
 * before it is written: a crash between pages commits nothing of it, and the next poll starts from the same place.
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
  for (const chunk of chunks) {
    opts.signal?.throwIfAborted();
    const chunkRows: Insertable<UsageBucketsTable>[] = [];
    let page = 0;
    const report = admin.usageReport(
      {
        startingAt: chunk.start,
        endingAt: chunk.end,
        bucketWidth: '1m',
        groupBy: USAGE_GROUPS,
        limit: opts.pageBuckets,
      },
      { signal: opts.signal },
    );
    for await (const p of report.pages()) {
      for (const bucket of p.data) {
        for (const result of bucket.results) {
          chunkRows.push(toUsageBucketRow('1m', { startingAt: bucket.starting_at, result }, opts.table));
        }
      }
      opts.afterPage?.(++page);
    }
    for (const m of await replaceUsageRange(db, chunk, chunkRows, USAGE_WATERMARK, now)) unknown.add(m);
    rows += chunkRows.length;
    done++;
    opts.onProgress?.({ chunk, done, total: chunks.length, rows: chunkRows.length });
  }
  return {
    chunks: chunks.length,
    rows,
    watermark: await readWatermark(db, USAGE_WATERMARK),
    newUnknownModels: [...unknown].sort(),
  };
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
  const done = await readWatermark(db, BACKFILL_WATERMARK);
  let rows = 0;
  for (let s = done ? done.getTime() : monthStart - days * DAY_MS; s < end; s += BACKFILL_CHUNK_MS) {
    opts.signal?.throwIfAborted();
    const chunk = { start: new Date(s), end: new Date(Math.min(s + BACKFILL_CHUNK_MS, end)) };
    const chunkRows: Insertable<UsageBucketsTable>[] = [];
    const report = admin.usageReport(
      { startingAt: chunk.start, endingAt: chunk.end, bucketWidth: '1h', groupBy: USAGE_GROUPS },
      { signal: opts.signal },
    );
    for await (const bucket of report) {
      for (const result of bucket.results) {
        chunkRows.push(toUsageBucketRow('1h', { startingAt: bucket.starting_at, result }, opts.table));
      }
    }
    for (const m of await replaceUsageRange(db, chunk, chunkRows, BACKFILL_WATERMARK, now, '1h')) unknown.add(m);
    rows += chunkRows.length;
    opts.onProgress?.({ chunk, done: 0, total: 0, rows: chunkRows.length });
  }
  return rows;
}
