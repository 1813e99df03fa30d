import { MINUTE_MS } from '../../time.ts';

/**
 * How far usage is known, worked out here for every reader (spend projections, runaway detection, headroom, the
 * drain check, the poll-age metric). Two watermarks (src/db/repos/watermarks.ts): `committed`, the end of the last
 * 1m range stored, where the next poll goes on from; and `settled`, the end of the newest minute the API answered
 * with data. The API answers minutes it has not filled yet with empty buckets, so only `settled` says how far
 * usage really goes; `committed` says how far the poll has looked.
 */
export interface UsageFreshness {
  /** The end of the last 1m range committed; null before the first poll. */
  committed: Date | null;
  /** The end of the newest minute the API answered with data; null before any data was seen. */
  settled: Date | null;
}

/**
 * Usage "typically appears within 5 minutes" and a minute's total grows as its data arrives, so the detector
 * treats a minute as complete once it ended 5 minutes ago and the API has answered it with data. The minutes after
 * it are passed to the detector as partial: they can prove a runaway early, never disprove one (see
 * src/anomaly/core/runaway.ts).
 */
const COMPLETE_AFTER_MINUTES = 5;

/** The first instant of the last complete minute at `now`, or null before the first poll committed anything. */
export function lastCompleteMinute(now: Date, settled: Date | null): Date | null {
  if (settled === null) return null;
  const edge = Math.min(now.getTime() - COMPLETE_AFTER_MINUTES * MINUTE_MS, settled.getTime());
  return new Date(Math.floor(edge / MINUTE_MS) * MINUTE_MS - MINUTE_MS);
}

/**
 * The instant spend is taken as complete to: the committed watermark, or `now` when that is earlier. Usage arrives
 * minutes late, and counting the missing minutes as "nothing spent yet today" would pull today's rate down.
 */
export function spendAsOf(freshness: UsageFreshness, now: Date): Date {
  const { committed } = freshness;
  return committed !== null && committed < now ? committed : now;
}

/** Seconds from the end of the newest minute with data to `now` (the poll-age metric); NaN before any data. */
export function settledAgeSeconds(settled: Date | null, now: Date): number {
  return settled === null ? Number.NaN : (now.getTime() - settled.getTime()) / 1000;
}
