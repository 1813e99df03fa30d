import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jobs } from '../../jobs/index.ts';
import { parsePolicy } from '../../src/config/index.ts';
import { defineJob, type JobDefinition } from '../../src/queue/define.ts';
import { buildRegistry, RegistryError } from '../../src/queue/registry.ts';
import { desiredSchedules } from '../../src/queue/schedules.ts';

function job(name: string, extra: Partial<JobDefinition> = {}): JobDefinition {
  return defineJob({
    name,
    queue: 'ingest',
    schedule: '* * * * *',
    payload: z.object({}),
    handler: async () => {},
    ...extra,
  });
}

function policy(yaml: string) {
  const problems: string[] = [];
  const p = parsePolicy(yaml, 'keywarden.yaml', problems)!;
  expect(problems).toEqual([]);
  return p;
}

describe('job registry', () => {
  it('the shipped registry is valid', () => {
    expect(() => buildRegistry(jobs)).not.toThrow();
  });

  it.each([
    ['a duplicate name', [job('poll-usage'), job('poll-usage')], /"poll-usage" is defined twice/],
    ['an unknown queue', [job('x', { queue: 'fast' as never })], /unknown queue "fast"/],
    [
      'a chained job that is not listed',
      [job('a', { followedBy: ['b'] })],
      /chains to "b", which is not in jobs\/index\.ts/,
    ],
    ['a bad default schedule', [job('a', { schedule: 'every minute' })], /default schedule "every minute" is not cron/],
    ['a bad name', [job('Poll_Usage')], /lowercase words joined by dashes/],
  ])('refuses %s, naming the fix', (_name, defs, expected) => {
    expect(() => buildRegistry(defs)).toThrow(RegistryError);
    expect(() => buildRegistry(defs)).toThrow(expected);
  });

  it('refuses a policy schedule for a job that does not exist', () => {
    expect(() => buildRegistry([job('poll-usage')], policy('schedules: { pol-usage: "* * * * *" }'))).toThrow(
      /schedules\.pol-usage: no job of that name/,
    );
  });

  it('schedules come from the job defaults, overridden by the policy, in the organization timezone', () => {
    const registry = buildRegistry([job('a'), job('b', { schedule: null }), job('c', { schedule: '0 9 * * *' })]);
    const specs = desiredSchedules(
      registry,
      policy('organization: { timezone: Europe/Paris }\nschedules: { c: "0 10 * * *" }'),
    );
    expect(specs).toEqual([
      { id: 'a', queue: 'ingest', pattern: '* * * * *', tz: 'Europe/Paris', attempts: 5 },
      { id: 'c', queue: 'ingest', pattern: '0 10 * * *', tz: 'Europe/Paris', attempts: 5 },
    ]);
  });
});
