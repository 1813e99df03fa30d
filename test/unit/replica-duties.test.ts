import cron from 'node-cron';
import { describe, expect, it } from 'vitest';
import { cronEvery } from '../../src/queue/duties.ts';

describe("a replica duty's interval as a node-cron pattern", () => {
  it.each([
    ['1 s', 1_000, '* * * * * *'],
    ['5 s', 5_000, '*/5 * * * * *'],
    ['30 s', 30_000, '*/30 * * * * *'],
    ['the default minute', 60_000, '0 * * * * *'],
    ['15 minutes', 15 * 60_000, '0 */15 * * * *'],
    ['an hour', 60 * 60_000, '0 0 * * * *'],
  ])('%s → %s', (_name, ms, pattern) => {
    expect(cronEvery(ms)).toBe(pattern);
    expect(cron.validate(pattern)).toBe(true);
  });

  it.each([
    ['90 s: the marks of a minute cannot be 90 s apart', 90_000],
    ['7 s: does not divide a minute', 7_000],
    ['half a second', 500],
    ['2 hours: past an hour', 120 * 60_000],
  ])('%s → none', (_name, ms) => {
    expect(cronEvery(ms)).toBeNull();
  });
});
