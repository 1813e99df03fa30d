/** Rotation counts in UTC days of 24 hours: the policy's days are the same length everywhere in the world. */
import { DAY_MS } from '../../time.ts';

export function addDays(at: Date, days: number): Date {
  return new Date(at.getTime() + days * DAY_MS);
}

export function startOfUtcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}
