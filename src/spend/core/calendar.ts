import { DAY_MS } from '../../time.ts';

/**
 * Calendar arithmetic on local dates for the forecast. Dates arrive as `YYYY-MM-DD` strings already in the
 * organization's timezone (the caller buckets spend by local day), so this module only counts days: a date is
 * turned into a day number (days since 1970-01-01) through `Date.UTC`, which has no timezone and no DST to trip on.
 */

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export interface CalendarMonth {
  year: number;
  /** 1–12 */
  month: number;
}

/** `YYYY-MM-DD` → day number. Throws on anything that is not a real calendar date (2025-02-30 included). */
export function dayNumber(date: string): number {
  const m = ISO_DATE.exec(date);
  if (!m) throw new Error(`forecast: "${date}" is not a date in YYYY-MM-DD form`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(year, month - 1, day);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) {
    throw new Error(`forecast: "${date}" is not a calendar date`);
  }
  return ms / DAY_MS;
}

/** Day number → `YYYY-MM-DD`. */
export function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** 0 = Sunday … 6 = Saturday (1970-01-01, day 0, was a Thursday). */
export function dayOfWeek(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

/** Day number of the first day of the month. */
export function firstDayOf(month: CalendarMonth): number {
  return Date.UTC(month.year, month.month - 1, 1) / DAY_MS;
}

export function daysInMonth(month: CalendarMonth): number {
  return new Date(Date.UTC(month.year, month.month, 0)).getUTCDate();
}
