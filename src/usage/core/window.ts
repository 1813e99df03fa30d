import { MINUTE_MS } from '../../time.ts';

/**
 * Which 1-minute usage ranges a poll asks for. Pure: the caller brings the watermarks and the time.
 *
 * Two watermarks. `watermark` is the end of the last 1m range fully committed: where the walk goes on from (after
 * downtime, the whole gap). `settled` is the end of the newest minute the API has answered with data, which is
 * where the API's data really ends: the API answers minutes it has not filled yet with empty buckets, and when its
 * data runs late (or this machine's clock runs ahead) every minute past `settled` may still fill. So a poll starts
 * at the earlier of the two, less the overlap (a minute just before the edge may still be partial), bounded by
 * `lateWindowMinutes` so an organization that went quiet is not re-read back to its last request. It stops at
 * `now − freshness`, rounded down to the minute, where `now` is already the earlier of this machine's clock and the
 * API's: it never stores a minute the API has not finished filling, nor asks for one the API has not reached.
 *
 * Data that arrives late for only part of the organization (some keys' minutes behind the others') lands before
 * `settled − overlap`; `lateRereadChunk` re-reads the late window behind the poll a slice at a time, each minute a
 * different slice, so every minute of it is read again every `lateWindow / slice` minutes at the price of one slice.
 *
 * Every range stays far inside the 48 hours after which 1m rows are rolled up to hourly, so a poll never re-creates
 * 1m rows for an hour already rolled up.
 */

export interface PollWindowOptions {
  overlapMinutes: number;
  freshnessMinutes: number;
  /** Where a first poll (no watermark yet) starts. */
  firstStart: Date;
  /** The most minutes one chunk spans: what one page of the 1m report holds (a day), so a chunk is one request walk. */
  maxChunkMinutes: number;
  /** The end of the newest minute the API answered with data (null: none seen yet). */
  settled?: Date | null;
  /** How far behind the poll's end late data is still waited for. Default 0: no late re-read. */
  lateWindowMinutes?: number;
}

/** A half-open range [start, end) of whole minutes; the watermark moves to `end` once it is committed. */
export interface UsageChunk {
  start: Date;
  end: Date;
}

export function floorToMinute(at: Date): Date {
  return new Date(Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS);
}

/** The end of what a poll reads at `now`: the last whole minute `freshnessMinutes` ago. */
function pollEnd(now: Date, freshnessMinutes: number): Date {
  return floorToMinute(new Date(now.getTime() - freshnessMinutes * MINUTE_MS));
}

/**
 * The chunks a poll walks, oldest first. After downtime this is the whole gap since the watermark (minus the
 * overlap), cut into chunks of at most a day; empty when there is nothing finished to read yet.
 */
export function planPollChunks(watermark: Date | null, now: Date, opts: PollWindowOptions): UsageChunk[] {
  const end = pollEnd(now, opts.freshnessMinutes).getTime();
  const from = pollStart(watermark, end, opts);
  const step = opts.maxChunkMinutes * MINUTE_MS;
  const chunks: UsageChunk[] = [];
  for (let s = from; s < end; s += step) {
    chunks.push({ start: new Date(s), end: new Date(Math.min(s + step, end)) });
  }
  return chunks;
}

function pollStart(watermark: Date | null, end: number, opts: PollWindowOptions): number {
  const overlap = opts.overlapMinutes * MINUTE_MS;
  if (watermark === null) return floorToMinute(opts.firstStart).getTime();
  const fromWatermark = floorToMinute(new Date(watermark.getTime() - overlap)).getTime();
  const settled = opts.settled ?? null;
  if (settled === null || settled.getTime() >= watermark.getTime()) return fromWatermark;
  const late = Math.max(end - (opts.lateWindowMinutes ?? 0) * MINUTE_MS, settled.getTime() - overlap);
  return Math.min(fromWatermark, floorToMinute(new Date(late)).getTime());
}

/**
 * The slice of the late window this poll re-reads, behind the range `planPollChunks` reads (which starts at
 * `pollFrom`). Slices are fixed in time (`sliceMinutes` long, aligned to the epoch), and slice k is read when the
 * minute of `now` is k modulo the slices in a window: each one once every `lateWindowMinutes / sliceMinutes`
 * minutes, for as long as it stays in the window. Null when this minute's slice is not behind the poll.
 */
export function lateRereadChunk(
  pollFrom: Date,
  now: Date,
  opts: { freshnessMinutes: number; lateWindowMinutes: number; sliceMinutes: number },
): UsageChunk | null {
  const windowStart = pollEnd(now, opts.freshnessMinutes).getTime() - opts.lateWindowMinutes * MINUTE_MS;
  const from = pollFrom.getTime();
  if (from <= windowStart) return null;
  const slice = opts.sliceMinutes * MINUTE_MS;
  const perWindow = Math.ceil(opts.lateWindowMinutes / opts.sliceMinutes);
  const first = Math.floor(windowStart / slice);
  const minute = Math.floor(now.getTime() / MINUTE_MS);
  const k = first + ((((minute - first) % perWindow) + perWindow) % perWindow);
  const start = Math.max(windowStart, k * slice);
  const end = Math.min(from, (k + 1) * slice);
  return start < end ? { start: new Date(start), end: new Date(end) } : null;
}

/** How fast a page may grow after a quiet stretch: traffic can rise faster than one page's sample predicts. */
const PAGE_GROWTH = 4;

/** Buckets for the next usage page; carried from chunk to chunk of one poll so each chunk starts at the right size. */
export interface PageSizer {
  targetRows: number;
  buckets: number;
}

/**
 * The bucket count that keeps a page near `targetRows`, given the most rows one bucket held, never past
 * `maxBuckets` (the API's page maximum for the width). A page's memory is its rows, and rows per bucket range from
 * a handful (a small organization) to over a thousand (5,000 keys): a fixed bucket count is either a day of a
 * large organization in one response (gigabytes) or hundreds of requests for a small one.
 */
export function nextPageBuckets(
  maxBuckets: number,
  current: number,
  maxRowsPerBucket: number,
  targetRows: number,
): number {
  const fits = Math.floor(targetRows / Math.max(1, maxRowsPerBucket));
  return Math.max(1, Math.min(maxBuckets, current * PAGE_GROWTH, fits));
}
