/**
 * Which 1-minute usage ranges a poll asks for. Pure: the caller brings the watermark and the time.
 *
 * The watermark is the end of the last 1m range fully committed. A poll re-reads `overlap` before it (usage arrives
 * late, and a late correction can change a minute already stored) and stops at `now − freshness`, rounded down to
 * the minute, so it never stores a minute the API has not finished filling. The overlap (15 minutes by default) is
 * far shorter than the 48 hours after which 1m rows are rolled up to hourly, so a poll never re-creates 1m rows
 * for an hour already rolled up.
 */

const MINUTE_MS = 60_000;
/** The 1m usage report returns at most 1440 buckets per page: one day is one chunk, one request walk. */
export const MAX_CHUNK_MINUTES = 1440;

export interface PollWindowOptions {
  overlapMinutes: number;
  freshnessMinutes: number;
  /** Where a first poll (no watermark yet) starts. */
  firstStart: Date;
  maxChunkMinutes?: number;
}

/** A half-open range [start, end) of whole minutes; the watermark moves to `end` once it is committed. */
export interface UsageChunk {
  start: Date;
  end: Date;
}

export function floorToMinute(at: Date): Date {
  return new Date(Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS);
}

/**
 * The chunks a poll walks, oldest first. After downtime this is the whole gap since the watermark (minus the
 * overlap), cut into chunks of at most a day; empty when there is nothing finished to read yet.
 */
export function planPollChunks(watermark: Date | null, now: Date, opts: PollWindowOptions): UsageChunk[] {
  const end = floorToMinute(new Date(now.getTime() - opts.freshnessMinutes * MINUTE_MS)).getTime();
  const from =
    watermark === null
      ? floorToMinute(opts.firstStart).getTime()
      : floorToMinute(new Date(watermark.getTime() - opts.overlapMinutes * MINUTE_MS)).getTime();
  const step = (opts.maxChunkMinutes ?? MAX_CHUNK_MINUTES) * MINUTE_MS;
  const chunks: UsageChunk[] = [];
  for (let s = from; s < end; s += step) {
    chunks.push({ start: new Date(s), end: new Date(Math.min(s + step, end)) });
  }
  return chunks;
}
