/** Durations in milliseconds. Time is UTC inside, so a day is always 24 hours and an hour always 60 minutes. */
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
