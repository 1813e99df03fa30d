import { describe, expect, it } from 'vitest';
import {
  type AlertObservation,
  groupDecisions,
  type LifecycleAction,
  type LifecycleInput,
  observationFingerprint,
  planAlerts,
  type StoredAlert,
} from '../../src/alerts/core/lifecycle.ts';
import { runawayObservation } from '../support/alerts.ts';

const HOUR = 3_600_000;
const NOW = new Date('2026-11-29T10:00:00Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms);

function threshold(t: number, scopeId = 'org'): AlertObservation {
  return {
    kind: 'spend.threshold',
    severity: t >= 1 ? 'critical' : 'warning',
    scopeType: 'organization',
    scopeId,
    workspaceId: null,
    period: `2026-11@${t}`,
    title: `Spend at ${t * 100}% of the limit`,
    details: { threshold: t },
  };
}

function stored(o: AlertObservation, s: Partial<StoredAlert>): StoredAlert {
  return {
    fingerprint: observationFingerprint(o),
    kind: o.kind,
    scopeType: o.scopeType,
    scopeId: o.scopeId,
    state: 'firing',
    lastNotifiedAt: null,
    inhibitedBy: null,
    ...s,
  };
}

const key = runawayObservation('apikey_1');

describe('planAlerts', () => {
  it.each<[string, AlertObservation[], StoredAlert[], Array<[LifecycleAction, boolean]>]>([
    ['first observation fires', [key], [], [['fire', true]]],
    [
      'still firing 30 min later: nothing new',
      [key],
      [stored(key, { lastNotifiedAt: ago(HOUR / 2) })],
      [['refresh', false]],
    ],
    [
      'still firing after repeat_every (1 h): repeat',
      [key],
      [stored(key, { lastNotifiedAt: ago(HOUR) })],
      [['repeat', true]],
    ],
    [
      'just before repeat_every: no repeat',
      [key],
      [stored(key, { lastNotifiedAt: ago(HOUR - 1) })],
      [['refresh', false]],
    ],
    ['no longer observed: resolve once', [], [stored(key, { lastNotifiedAt: ago(HOUR / 2) })], [['resolve', true]]],
    [
      'already resolved and not observed: nothing',
      [],
      [stored(key, { state: 'resolved', lastNotifiedAt: ago(HOUR) })],
      [],
    ],
    [
      'observed again after resolving: a new episode fires',
      [key],
      [stored(key, { state: 'resolved', lastNotifiedAt: ago(HOUR / 2) })],
      [['fire', true]],
    ],
    [
      'resolve of an alert never announced (inhibited) is silent',
      [],
      [stored(key, { lastNotifiedAt: null, inhibitedBy: 'x' })],
      [['resolve', false]],
    ],
  ])('%s', (_name, observations, storedAlerts, expected) => {
    const decisions = planAlerts({
      kinds: ['usage.runaway'],
      observations,
      stored: storedAlerts,
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    expect(decisions.map((d) => [d.action, d.notify])).toEqual(expected);
  });

  it('a 100% threshold silences the 80% one for the same scope, not for another scope', () => {
    const decisions = planAlerts({
      kinds: ['spend.threshold'],
      observations: [threshold(0.8), threshold(1), threshold(0.8, 'wrkspc_2')],
      stored: [],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    expect(decisions.map((d) => [d.observation?.scopeId, d.observation?.details.threshold, d.action])).toEqual([
      ['org', 0.8, 'inhibit'],
      ['org', 1, 'fire'],
      ['wrkspc_2', 0.8, 'fire'],
    ]);
    expect(decisions[0]?.inhibitedBy).toBe(observationFingerprint(threshold(1)));
  });

  it('a limit reached silences that month’s forecast for the scope, not another scope’s', () => {
    const forecast = (scopeId: string): AlertObservation => ({
      ...threshold(1, scopeId),
      kind: 'spend.forecast',
      severity: 'warning',
      period: '2026-11',
      title: 'Projected to exceed the limit',
      details: {},
    });
    const decisions = planAlerts({
      kinds: ['spend.threshold', 'spend.forecast'],
      observations: [threshold(1), forecast('org'), forecast('wrkspc_2')],
      stored: [],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    expect(decisions.map((d) => [d.observation?.kind, d.observation?.scopeId, d.action])).toEqual([
      ['spend.threshold', 'org', 'fire'],
      ['spend.forecast', 'org', 'inhibit'],
      ['spend.forecast', 'wrkspc_2', 'fire'],
    ]);
  });

  it('an 80% alert already announced is not repeated once 100% inhibits it', () => {
    const low = threshold(0.8);
    const decisions = planAlerts({
      kinds: ['spend.threshold'],
      observations: [low, threshold(1)],
      stored: [stored(low, { lastNotifiedAt: ago(10 * HOUR) })],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    expect(decisions.map((d) => d.action)).toEqual(['inhibit', 'fire']);
  });

  it('only resolves the kinds and scopes the evaluation looked at', () => {
    const other = runawayObservation('apikey_2');
    const decisions = planAlerts({
      kinds: ['usage.runaway'],
      scopes: ['key:apikey_1'],
      observations: [],
      stored: [
        stored(key, { lastNotifiedAt: ago(HOUR) }),
        stored(other, { lastNotifiedAt: ago(HOUR) }),
        stored(threshold(0.8), { lastNotifiedAt: ago(HOUR) }),
      ],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    expect(decisions.map((d) => d.fingerprint)).toEqual([observationFingerprint(key)]);
  });
});

describe('groupDecisions', () => {
  it('40 runaway keys raised in one run are one group', () => {
    const observations = Array.from({ length: 40 }, (_, i) => runawayObservation(`apikey_${i}`));
    const decisions = planAlerts({
      kinds: ['usage.runaway'],
      observations,
      stored: [],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    const groups = groupDecisions(decisions, () => 'usage.runaway');
    expect(groups).toHaveLength(1);
    expect(groups[0]?.event).toBe('firing');
    expect(groups[0]?.fingerprints).toHaveLength(40);
  });

  it('never groups alerts whose message carries a decision button: one message each, with its own buttons', () => {
    const runaway = (id: string, killSwitch: string) => {
      const o = runawayObservation(id);
      return { ...o, details: { ...o.details, killSwitch } };
    };
    const decisions = planAlerts({
      kinds: ['usage.runaway'],
      observations: [
        runaway('apikey_a', 'awaiting_approval'),
        runaway('apikey_b', 'awaiting_approval'),
        runaway('apikey_c', 'deactivated'),
        runaway('apikey_d', 'deactivated'),
        runawayObservation('apikey_e'),
        runawayObservation('apikey_f'),
      ],
      stored: [],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    expect(groupDecisions(decisions, () => 'usage.runaway').map((g) => g.fingerprints.length)).toEqual([1, 1, 1, 1, 2]);
  });

  it('keeps kinds and events apart, and leaves out what does not notify', () => {
    const a = runawayObservation('apikey_a');
    const b = runawayObservation('apikey_b');
    const c = runawayObservation('apikey_c');
    const decisions = planAlerts({
      kinds: ['usage.runaway', 'spend.threshold'],
      observations: [a, b, threshold(0.5)],
      stored: [stored(b, { lastNotifiedAt: ago(2 * HOUR) }), stored(c, { lastNotifiedAt: ago(HOUR / 4) })],
      repeatEveryMs: () => HOUR,
      now: NOW,
    });
    const groups = groupDecisions(decisions, () => 'usage.runaway');
    expect(groups.map((g) => [g.kind, g.event, g.fingerprints.length])).toEqual([
      ['usage.runaway', 'firing', 1],
      ['usage.runaway', 'repeat', 1],
      ['spend.threshold', 'firing', 1],
      ['usage.runaway', 'resolved', 1],
    ]);
  });
});

describe('one-shot notices (rotation reminders, deactivations)', () => {
  const reminder: AlertObservation = {
    kind: 'rotation.due_soon',
    severity: 'info',
    scopeType: 'key',
    scopeId: 'apikey_9',
    workspaceId: null,
    period: '14d',
    title: 'API key "x" must be rotated within 14 days',
    details: {},
  };
  const input = (observations: AlertObservation[], storedAlerts: StoredAlert[]): LifecycleInput => ({
    kinds: ['rotation.due_soon'],
    observations,
    stored: storedAlerts,
    repeatEveryMs: () => HOUR,
    now: NOW,
  });

  it('is never repeated, however long it holds', () => {
    const decisions = planAlerts(input([reminder], [stored(reminder, { lastNotifiedAt: ago(30 * HOUR) })]));
    expect(decisions.map((d) => [d.action, d.notify])).toEqual([['refresh', false]]);
  });

  it('ends without a message when the next stage takes over', () => {
    const next = { ...reminder, period: '7d', title: 'API key "x" must be rotated within 7 days' };
    const decisions = planAlerts(input([next], [stored(reminder, { lastNotifiedAt: ago(7 * 24 * HOUR) })]));
    expect(decisions.map((d) => [d.action, d.notify])).toEqual([
      ['fire', true],
      ['resolve', false],
    ]);
  });
});

describe('spend thresholds: one notice per month, scope and threshold', () => {
  const input = (observations: AlertObservation[], storedAlerts: StoredAlert[]): LifecycleInput => ({
    kinds: ['spend.threshold'],
    observations,
    stored: storedAlerts,
    repeatEveryMs: () => HOUR,
    now: NOW,
  });
  const crossed = threshold(0.8);

  it('is never repeated while the month to date stays above it', () => {
    const decisions = planAlerts(input([crossed], [stored(crossed, { lastNotifiedAt: ago(30 * HOUR) })]));
    expect(decisions.map((d) => [d.action, d.notify])).toEqual([['refresh', false]]);
  });

  it('ends without a message (a correction took spend under it, or the month is over)', () => {
    const decisions = planAlerts(input([], [stored(crossed, { lastNotifiedAt: ago(HOUR) })]));
    expect(decisions.map((d) => [d.action, d.notify])).toEqual([['resolve', false]]);
  });

  it('crossed again in the same month after it lapsed: holds again, silently', () => {
    const lapsed = stored(crossed, { state: 'resolved', lastNotifiedAt: ago(2 * HOUR) });
    const decisions = planAlerts(input([crossed], [lapsed]));
    expect(decisions.map((d) => [d.action, d.notify])).toEqual([['refresh', false]]);
  });

  it('next month the same threshold is a new notice', () => {
    const december = { ...crossed, period: '2026-12@0.8' };
    const decisions = planAlerts(input([december], [stored(crossed, { lastNotifiedAt: ago(HOUR) })]));
    expect(decisions.map((d) => [d.action, d.notify, d.fingerprint === observationFingerprint(december)])).toEqual([
      ['fire', true, true],
      ['resolve', false, false],
    ]);
  });

  it('one that was only ever inhibited is announced when it holds alone', () => {
    const silenced = stored(crossed, { state: 'resolved', lastNotifiedAt: null });
    expect(planAlerts(input([crossed], [silenced])).map((d) => d.action)).toEqual(['fire']);
  });
});

describe('hold-only observations (a hysteresis band)', () => {
  const forecast: AlertObservation = {
    kind: 'spend.forecast',
    severity: 'warning',
    scopeType: 'organization',
    scopeId: 'organization',
    workspaceId: null,
    period: '2026-11',
    title: 'The organization is projected to exceed its limit',
    details: {},
  };
  const band = { ...forecast, holdOnly: true };
  const input = (observations: AlertObservation[], storedAlerts: StoredAlert[]): LifecycleInput => ({
    kinds: ['spend.forecast'],
    observations,
    stored: storedAlerts,
    repeatEveryMs: () => 4 * HOUR,
    now: NOW,
  });

  it.each<[string, StoredAlert[], Array<[LifecycleAction, boolean]>]>([
    ['never starts an alert', [], []],
    ['never restarts a resolved one', [stored(forecast, { state: 'resolved', lastNotifiedAt: ago(HOUR) })], []],
    ['keeps a firing one firing', [stored(forecast, { lastNotifiedAt: ago(HOUR) })], [['refresh', false]]],
    [
      'a firing one still repeats on its interval',
      [stored(forecast, { lastNotifiedAt: ago(5 * HOUR) })],
      [['repeat', true]],
    ],
  ])('%s', (_name, storedAlerts, expected) => {
    expect(planAlerts(input([band], storedAlerts)).map((d) => [d.action, d.notify])).toEqual(expected);
  });

  it('below the band it resolves, with a message', () => {
    const decisions = planAlerts(input([], [stored(forecast, { lastNotifiedAt: ago(HOUR) })]));
    expect(decisions.map((d) => [d.action, d.notify])).toEqual([['resolve', true]]);
  });
});
