import { describe, expect, it } from 'vitest';
import { type KillSwitchCandidate, planKillSwitch } from '../../src/anomaly/core/kill-switch.ts';

const poll = new Date('2026-11-16T10:10:00Z');
const earlier = new Date('2026-11-16T10:09:00Z');
const key = (id: string, over: Partial<KillSwitchCandidate> = {}): KillSwitchCandidate => ({
  keyId: id,
  currentHourlyUsd: 1000,
  evidenceSince: earlier,
  impossible: null,
  ...over,
});
const plan = (candidates: KillSwitchCandidate[], o: { keysWithSpend?: number; inLastHour?: number } = {}) =>
  Object.fromEntries(
    [
      ...planKillSwitch({
        candidates,
        keysWithSpend: o.keysWithSpend ?? 20,
        poll,
        inLastHour: o.inLastHour ?? 0,
        limits: { max_per_run: 1, max_per_hour: 2 },
      }),
    ].map(([id, d]) => [id, d.kind]),
  );

describe('planKillSwitch', () => {
  it.each([
    ['one key, seen after an earlier poll too', [key('a')], {}, { a: 'act' }],
    ['one key, first seen in this poll', [key('a', { evidenceSince: null })], {}, { a: 'awaiting_evidence' }],
    [
      'one key, twice after the same poll (a retried run)',
      [key('a', { evidenceSince: poll })],
      {},
      { a: 'awaiting_evidence' },
    ],
    [
      'two keys: the costlier one acts, the other is capped (1 per run)',
      [key('a', { currentHourlyUsd: 500 }), key('b', { currentHourlyUsd: 900 })],
      {},
      { a: 'capped', b: 'act' },
    ],
    ['two already this hour: capped (2 per hour)', [key('a')], { inLastHour: 2 }, { a: 'capped' }],
    [
      'three keys at once: a data fault or a launch day, none acts',
      [key('a'), key('b'), key('c')],
      {},
      { a: 'refused', b: 'refused', c: 'refused' },
    ],
    [
      'two keys that are half the organization: none acts',
      [key('a'), key('b')],
      { keysWithSpend: 4 },
      { a: 'refused', b: 'refused' },
    ],
    [
      'counts above the rate limit are not believed',
      [key('a', { impossible: 'above the limit' })],
      {},
      { a: 'refused' },
    ],
  ] as const)('%s', (_name, candidates, o, expected) => {
    expect(plan([...candidates], o)).toEqual(expected);
  });

  it('says why it refused many keys at once', () => {
    const d = planKillSwitch({
      candidates: [key('a'), key('b'), key('c')],
      keysWithSpend: 10,
      poll,
      inLastHour: 0,
      limits: { max_per_run: 1, max_per_hour: 2 },
    }).get('a');
    expect(d).toEqual({
      kind: 'refused',
      reason: expect.stringMatching(/^3 keys crossed the hard cap together \(30% of the keys with spend\)/),
    });
  });
});
