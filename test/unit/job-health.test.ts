import { describe, expect, it } from 'vitest';
import type { JobRunRecord } from '../../src/db/repos/job-runs.ts';
import { failingJobs } from '../../src/health/jobs.ts';

const limits = { failed_runs: 3, missed_intervals: 3 };
const start = new Date('2026-11-16T10:00:00Z');
const at = (minutes: number) => new Date(start.getTime() + minutes * 60_000);
const schedules = [
  { job: 'poll-usage', pattern: '* * * * *', tz: 'UTC' },
  { job: 'enforce-rotation', pattern: '0 9 * * *', tz: 'UTC' },
];
const record = (job: string, r: Partial<JobRunRecord>): JobRunRecord => ({
  job,
  consecutiveFailures: 0,
  lastSucceededAt: null,
  firstFailedAt: null,
  lastError: null,
  ...r,
});

const jobs = ['poll-usage', 'enforce-rotation', 'deliver-notifications'];
const polledAt = (minutes: number) => record('poll-usage', { lastSucceededAt: at(minutes) });

describe('failingJobs', () => {
  it.each([
    ['2 failed runs in a row', [record('poll-usage', { consecutiveFailures: 2, lastSucceededAt: at(1.5) })], 2, []],
    [
      '3 failed runs in a row',
      [record('poll-usage', { consecutiveFailures: 3, lastSucceededAt: at(1.5) })],
      2,
      ['poll-usage:failing'],
    ],
    [
      'a job not scheduled, failing',
      [record('deliver-notifications', { consecutiveFailures: 5 })],
      1,
      ['deliver-notifications:failing'],
    ],
    ['a job no longer in the registry', [record('old-job', { consecutiveFailures: 9 })], 1, []],
    ['every minute, nothing completed for 2 minutes since the start', [], 2.5, []],
    ['every minute, nothing completed for 3 minutes since the start', [], 3.5, ['poll-usage:not_completing']],
    ['every minute, last success 2.5 minutes ago', [record('poll-usage', { lastSucceededAt: at(10) })], 12.5, []],
    [
      'every minute, last success 4 minutes ago',
      [record('poll-usage', { lastSucceededAt: at(10) })],
      14,
      ['poll-usage:not_completing'],
    ],
    // daily at 09:00: three days without a completed run, counted from the start of watching
    ['daily, 2 days since the start', [polledAt(2 * 1440)], 2 * 1440, []],
    ['daily, 3 days since the start', [polledAt(3 * 1440)], 3 * 1440, ['enforce-rotation:not_completing']],
  ])('%s', (_name, records, minutes, expected) => {
    const found = failingJobs(jobs, records, schedules, limits, start, at(minutes));
    expect(found.map((f) => `${f.job}:${f.reason}`)).toEqual(expected);
  });
});
