import { describe, expect, it } from 'vitest';
import { jobs } from '../../jobs/index.ts';
import { UsageError } from '../../src/cli/command.ts';
import { concurrencyArg } from '../../src/cli/worker.ts';
import { buildRegistry } from '../../src/queue/registry.ts';
import { queueConcurrency } from '../../src/queue/runner.ts';

describe('queue lanes', () => {
  const registry = buildRegistry(jobs);

  it('the minute poll has a lane of its own; the hourly ingest jobs and the retention do not share it', () => {
    const lanes = Object.fromEntries([...registry.values()].map((d) => [d.name, d.queue]));
    expect(lanes['poll-usage']).toBe('poll');
    expect(Object.entries(lanes).filter(([, q]) => q === 'poll')).toEqual([['poll-usage', 'poll']]);
    expect(lanes['usage-retention']).toBe('maintenance');
  });

  it.each([
    [1, { poll: 2, ingest: 3, analyze: 6, notify: 4, maintenance: 2 }],
    [2, { poll: 2, ingest: 3, analyze: 6, notify: 4, maintenance: 2 }],
    [20, { poll: 20, ingest: 3, analyze: 6, notify: 4, maintenance: 2 }],
  ])('%i organizations: a poll slot per organization, one more slot than jobs elsewhere', (orgs, expected) => {
    expect(queueConcurrency(registry, orgs)).toEqual(expected);
  });

  it('a job on every lane of a hung organization still leaves a slot to the others', () => {
    const slots = queueConcurrency(registry, 20);
    for (const [queue, n] of Object.entries(slots)) {
      if (queue === 'poll') continue;
      // the run lock lets one organization hold at most one run of each job
      const jobsOn = [...registry.values()].filter((d) => d.queue === queue).length;
      expect(n, queue).toBeGreaterThan(jobsOn);
    }
  });

  it('--concurrency replaces the queues it names', () => {
    expect(concurrencyArg(undefined)).toEqual({});
    const slots = concurrencyArg('poll=30, analyze=3');
    expect(slots).toEqual({ poll: 30, analyze: 3 });
    expect(queueConcurrency(registry, 20, slots)).toEqual({
      poll: 30,
      ingest: 3,
      analyze: 3,
      notify: 4,
      maintenance: 2,
    });
  });

  it.each([
    ['polls=4', /no queue named "polls" \(queues: poll, ingest, analyze, notify, maintenance\)/],
    ['poll', /"poll": give a queue and a whole number of jobs at once, 1 to 200 \(like poll=4\)/],
    ['poll=0', /like poll=4/],
    ['poll=2.5', /like poll=4/],
    ['poll=2=3', /like poll=4/],
    ['poll=0x10', /1 to 200 \(like poll=4\)/],
    ['poll=1e6', /1 to 200/],
    ['poll=201', /1 to 200/],
    ['analyze=3,analyze=9', /"analyze" is given twice/],
  ])('--concurrency %s is refused, naming what is wrong', (value, message) => {
    expect(() => concurrencyArg(value)).toThrow(UsageError);
    expect(() => concurrencyArg(value)).toThrow(message);
  });
});
