import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jobs } from '../../jobs/index.ts';
import { parsePolicy } from '../../src/config/index.ts';
import type { Enqueue } from '../../src/context.ts';
import { defineJob, defineJobs, type JobDefinition } from '../../src/queue/define.ts';
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

  it('lists every job file in jobs/ (a job missing from the list would never run)', async () => {
    const files = readdirSync('jobs').filter((f) => f.endsWith('.ts') && f !== 'index.ts');
    const defined: string[] = [];
    for (const file of files) {
      const module: Record<string, unknown> = await import(`../../jobs/${file}`);
      for (const value of Object.values(module)) {
        if (typeof value === 'object' && value !== null && 'handler' in value && 'name' in value) {
          defined.push(String(value.name));
        }
      }
    }
    expect(defined.sort()).toEqual(jobs.map((j) => j.name).sort());
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

  it('names jobs as types: a chained or enqueued job that is not in the list does not compile', () => {
    const handler = async () => {};
    const base = { queue: 'ingest', schedule: null, payload: z.object({}), handler } as const;
    const a = defineJob({ ...base, name: 'a', followedBy: ['b'] });
    const b = defineJob({ ...base, name: 'b' });
    expect(defineJobs([a, b]).map((j) => j.name)).toEqual(['a', 'b']);
    // @ts-expect-error: a chains to b, which this list lacks (tsc names it: followedByNamesAJobNotInTheList: "b")
    defineJobs([a]);
    const enqueue: Enqueue = async () => {};
    void enqueue('deliver-notifications', {});
    // @ts-expect-error: no job of that name in jobs/index.ts
    void enqueue('deliver-notification', {});
  });

  it('refuses a schedule the policy gives a job that is not cron', () => {
    const digest = job('digest', { schedule: (p) => (p.organization.name === 'Acme' ? 'at eight' : null) });
    expect(() => buildRegistry([digest], policy('organization: { name: Acme }'))).toThrow(
      /job "digest": the policy gives it the schedule "at eight", not cron/,
    );
    expect(() => buildRegistry([digest], policy('organization: { name: Other }'))).not.toThrow();
  });

  it('refuses a policy schedule for a job that does not exist', () => {
    expect(() => buildRegistry([job('poll-usage')], policy('schedules: { pol-usage: "* * * * *" }'))).toThrow(
      /schedules\.pol-usage: no job of that name/,
    );
  });

  it('schedules come from the job defaults, overridden by the policy, in the organization timezone', () => {
    const registry = buildRegistry([
      job('a'),
      job('b', { schedule: null }),
      job('c', { schedule: '0 9 * * *' }),
      job('d', { schedule: (p) => (p.organization.timezone === 'Europe/Paris' ? '30 7 * * *' : null) }),
      job('e', { schedule: () => null }),
      job('f', { schedule: () => '0 6 * * *' }),
    ]);
    const specs = desiredSchedules(
      registry,
      policy('organization: { timezone: Europe/Paris }\nschedules: { c: "0 10 * * *", f: "0 5 * * *" }'),
    );
    expect(specs).toEqual([
      {
        id: 'a',
        job: 'a',
        organization: 'default',
        queue: 'ingest',
        pattern: '* * * * *',
        tz: 'Europe/Paris',
        attempts: 5,
      },
      {
        id: 'c',
        job: 'c',
        organization: 'default',
        queue: 'ingest',
        pattern: '0 10 * * *',
        tz: 'Europe/Paris',
        attempts: 5,
      },
      {
        id: 'd',
        job: 'd',
        organization: 'default',
        queue: 'ingest',
        pattern: '30 7 * * *',
        tz: 'Europe/Paris',
        attempts: 5,
      },
      {
        id: 'f',
        job: 'f',
        organization: 'default',
        queue: 'ingest',
        pattern: '0 5 * * *',
        tz: 'Europe/Paris',
        attempts: 5,
      },
    ]);
    // an organization of a list: a scheduler of its own per job, in its own timezone
    expect(
      desiredSchedules(registry, policy('organization: { timezone: Asia/Tokyo }'), 'apac').map((s) => [
        s.id,
        s.job,
        s.organization,
        s.tz,
      ]),
    ).toEqual([
      ['a@apac', 'a', 'apac', 'Asia/Tokyo'],
      ['c@apac', 'c', 'apac', 'Asia/Tokyo'],
      ['f@apac', 'f', 'apac', 'Asia/Tokyo'],
    ]);
  });
});
