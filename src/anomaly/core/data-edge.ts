import { MINUTE_MS } from '../../time.ts';

/**
 * Which minutes of usage count as complete. Usage "typically appears within 5 minutes" and a minute's total grows
 * as its data arrives, so the detector treats a minute as complete once it ended 5 minutes ago and the API has
 * answered it with data (the settled watermark: the end of the newest minute with data, not the range asked for,
 * which a late API answers with empty buckets). The minutes after it are passed to the detector as partial: they
 * can prove a runaway early, never disprove one (see src/anomaly/core/runaway.ts).
 */

const COMPLETE_AFTER_MINUTES = 5;

/** The first instant of the last complete minute at `now`, or null before the first poll committed anything. */
export function lastCompleteMinute(now: Date, watermark: Date | null): Date | null {
  if (watermark === null) return null;
  const edge = Math.min(now.getTime() - COMPLETE_AFTER_MINUTES * MINUTE_MS, watermark.getTime());
  return new Date(Math.floor(edge / MINUTE_MS) * MINUTE_MS - MINUTE_MS);
}
