import type { Context } from '../context.ts';
import { HOUR_MS } from '../time.ts';

/** 1m rows older than this are rolled up to hourly rows. Far beyond the poll's 15-minute overlap, so a poll never
 * re-creates 1m rows for an hour already rolled up. */
const MINUTE_ROWS_KEPT_HOURS = 48;
/** Hourly rows are kept 13 months: a year of history plus the month being compared with last year's. */
const HOURLY_ROWS_KEPT_MONTHS = 13;

export interface RetentionResult {
  rolledUpBefore: Date;
  minuteRowsRolledUp: number;
  hourlyRowsWritten: number;
  hourlyRowsDeleted: number;
}

/**
 * Rolls 1m usage older than 48 hours (whole hours only) into 1h rows, and deletes hourly rows older than 13 months
 * (the usage repository's `rollUpMinutes`: one transaction, idempotent). The cutoff is a whole hour, so an hour is
 * rolled in one run.
 */
export async function applyUsageRetention(ctx: Pick<Context, 'repos' | 'clock'>): Promise<RetentionResult> {
  const now = ctx.clock.now();
  const cutoff = new Date(Math.floor((now.getTime() - MINUTE_ROWS_KEPT_HOURS * HOUR_MS) / HOUR_MS) * HOUR_MS);
  const hourlyCutoff = new Date(
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - HOURLY_ROWS_KEPT_MONTHS, now.getUTCDate()),
  );
  return { rolledUpBefore: cutoff, ...(await ctx.repos.usage.rollUpMinutes(cutoff, hourlyCutoff)) };
}
