/** Rotation counts in UTC days of 24 hours: the policy's days are the same length everywhere in the world. */
export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

export function addDays(at: Date, days: number): Date {
  return new Date(at.getTime() + days * DAY_MS);
}

export function startOfUtcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}
