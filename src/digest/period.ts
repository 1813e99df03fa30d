import { dayNumber, dayOfWeek, formatDay } from '../spend/core/calendar.ts';

/**
 * The calendar of digests: the organization's local date (a daily digest's period) and ISO week (a weekly one's).
 * Pure: the instant and the timezone come in.
 */

/** The calendar date at `at` in `timezone`, as `YYYY-MM-DD`. */
export function localDate(at: Date, timezone: string): string {
  // en-CA formats dates as YYYY-MM-DD
  return new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(at)
    .slice(0, 10);
}

/** Day number of the Monday that starts the (ISO) week holding `date`. */
function mondayNumber(date: string): number {
  const day = dayNumber(date);
  return day - ((dayOfWeek(day) + 6) % 7);
}

/** The Monday that starts the week holding `date`, as `YYYY-MM-DD`. */
export function mondayOf(date: string): string {
  return formatDay(mondayNumber(date));
}

/** The ISO 8601 week of a date, `2026-W47`: weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeek(date: string): string {
  const thursday = mondayNumber(date) + 3;
  const year = Number(formatDay(thursday).slice(0, 4));
  const week = Math.floor((thursday - dayNumber(`${year}-01-01`)) / 7) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}

// Dates for people are spelled out here rather than by Intl: its short month names vary between ICU versions
// ("Sep" or "Sept"), and a digest should read the same on every machine.
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function parts(date: string): { year: number; month: string; day: number; weekday: string } {
  const n = dayNumber(date);
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  return { year, month: MONTHS[month - 1]!, day, weekday: WEEKDAYS[dayOfWeek(n)]! };
}

/** `Mon, 16 Nov 2026`: a date for people, in English like the rest of the messages. */
export function formatLongDate(date: string): string {
  const p = parts(date);
  return `${p.weekday}, ${p.day} ${p.month.slice(0, 3)} ${p.year}`;
}

/** `16 Nov 2026`. */
export function formatDate(date: string): string {
  const p = parts(date);
  return `${p.day} ${p.month.slice(0, 3)} ${p.year}`;
}

/** `16 Nov`: a date inside a table whose dates are all in the digest's own month. */
export function formatShortDate(date: string): string {
  const p = parts(date);
  return `${p.day} ${p.month.slice(0, 3)}`;
}

/** `November 2026`. */
export function formatMonth(date: string): string {
  const p = parts(date);
  return `${p.month} ${p.year}`;
}
