import { describe, expect, it } from 'vitest';
import type { ApiKey } from '../../src/anthropic/types.ts';
import {
  aroundTheClock,
  type DayActivity,
  type IdentityKey,
  identityObservation,
  keyIdentity,
  planIdentityFindings,
} from '../../src/inventory/core/identity.ts';
import { type InventorySnapshot, planInventory } from '../../src/inventory/core/plan.ts';

const hours = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const ALL_DAY = hours(0, 24);
const OFFICE = hours(8, 19); // a long working day: 11 hours
/** The week before Monday 16 November 2026: Mon 9 … Sun 15 (14 and 15 are the weekend). */
const WEEK = ['2026-11-09', '2026-11-10', '2026-11-11', '2026-11-12', '2026-11-13', '2026-11-14', '2026-11-15'];
const week = (dayHours: (date: string, i: number) => number[]): DayActivity[] =>
  WEEK.map((date, i) => ({ date, hours: dayHours(date, i) })).filter((d) => d.hours.length > 0);

describe('keyIdentity: who is behind a key, from its principal', () => {
  it.each([
    ['a user principal', { type: 'user_actor', userId: 'user_01A', serviceAccountId: null }, 'personal'],
    [
      'a service account',
      { type: 'service_account_actor', userId: null, serviceAccountId: 'svac_01B' },
      'service_account',
    ],
    ['no principal (the response said so)', null, 'legacy'],
    ['no principal field (classic shapes)', undefined, 'unknown'],
    [
      'a principal type the API adds later',
      { type: 'federated_actor', userId: null, serviceAccountId: null },
      'unknown',
    ],
  ] as const)('%s → %s', (_name, principal, expected) => {
    expect(keyIdentity({ principal })).toBe(expected);
  });
});

describe('aroundTheClock: service-like traffic (≥ 20 of 24 hours, 4 at night, on 5 of 7 days, a weekend among them)', () => {
  it.each([
    ['every hour of every day', week(() => ALL_DAY), true, 7],
    ['every hour on weekdays only: no weekend', week((d) => (d >= '2026-11-14' ? [] : ALL_DAY)), false, 5],
    ['every hour on 4 days, the weekend included', week((_d, i) => (i >= 3 ? ALL_DAY : [])), false, 4],
    ['every hour on 5 days, Sunday among them', week((_d, i) => (i >= 2 ? ALL_DAY : [])), true, 5],
    ['office hours every day, weekends too', week(() => OFFICE), false, 0],
    ['20 hours but quiet from midnight to 05:00 (3 night hours missing)', week(() => hours(3, 24)), false, 0],
    ['20 hours, awake at night, quiet 08–12', week(() => [...hours(0, 8), ...hours(12, 24)]), true, 7],
    ['19 hours a day', week(() => hours(0, 19)), false, 0],
    ['no traffic at all', [], false, 0],
  ])('%s → %s', (_name, days, flagged, counted) => {
    const r = aroundTheClock(days);
    expect(r.flagged).toBe(flagged);
    expect(r.days).toBe(counted);
  });

  it('ignores hours outside 0–23 and counts each hour once', () => {
    expect(aroundTheClock(week(() => [...hours(0, 19), 24, 25, -1, 3, 3])).days).toBe(0);
  });
});

const WINDOW_START = new Date('2026-11-09T10:00:00Z');

function key(over: Partial<IdentityKey>): IdentityKey {
  return {
    id: 'apikey_01K',
    name: 'k',
    hint: 'sk-ant-api03-abc...wxyz',
    workspaceId: 'wrkspc_01W',
    workspaceName: 'Research',
    identity: 'service_account',
    expiresAt: new Date('2027-01-01T00:00:00Z'),
    owner: null,
    principalUserId: null,
    principalEmail: null,
    ownerLeftAt: null,
    lastUsageAt: null,
    activity: [],
    ...over,
  };
}

const chloe = { id: 'user_01C', email: 'chloe@acme.example' };

describe('planIdentityFindings: one finding per key and reason', () => {
  it.each([
    ['a service-account key with an expiry', key({}), []],
    ['a service-account key without expiry', key({ expiresAt: null }), ['no_expiry']],
    ['a legacy workspace key with an expiry', key({ identity: 'legacy' }), ['legacy']],
    ['a legacy key that never expires', key({ identity: 'legacy', expiresAt: null }), ['legacy', 'no_expiry']],
    ['identity not reported, with an expiry', key({ identity: 'unknown' }), []],
    ['identity not reported, never expires', key({ identity: 'unknown', expiresAt: null }), ['no_expiry']],
    [
      'a personal key used in office hours',
      key({ identity: 'personal', owner: chloe, principalUserId: chloe.id, activity: week(() => OFFICE) }),
      [],
    ],
    [
      'a personal key used around the clock',
      key({ identity: 'personal', owner: chloe, principalUserId: chloe.id, activity: week(() => ALL_DAY) }),
      ['around_the_clock'],
    ],
    [
      'a personal key whose owner left: dead (its traffic is not read for the clock rule)',
      key({ identity: 'personal', principalUserId: chloe.id, activity: week(() => ALL_DAY) }),
      ['owner_left'],
    ],
  ])('%s → %j', (_name, k, expected) => {
    expect(planIdentityFindings([k], WINDOW_START).map((e) => e.finding)).toEqual(expected);
  });

  it.each([
    ['used after the owner left', new Date('2026-11-01T00:00:00Z'), new Date('2026-11-16T09:58:00Z'), true],
    ['last used before the owner left', new Date('2026-11-10T00:00:00Z'), new Date('2026-11-09T23:00:00Z'), false],
    [
      'used after the owner left, but not within the window',
      new Date('2026-10-01T00:00:00Z'),
      new Date('2026-11-02T00:00:00Z'),
      false,
    ],
    ['never used', new Date('2026-11-10T00:00:00Z'), null, false],
    ['owner gone before the first sync, used within the window', null, new Date('2026-11-15T00:00:00Z'), true],
    ['owner gone before the first sync, used before the window', null, new Date('2026-11-01T00:00:00Z'), false],
  ])('a dead key %s → still in use: %s', (_name, ownerLeftAt, lastUsageAt, inUse) => {
    const k = key({ identity: 'personal', principalUserId: chloe.id, ownerLeftAt, lastUsageAt });
    const entries = planIdentityFindings([k], WINDOW_START);
    expect(entries.map((e) => e.finding)).toEqual(inUse ? ['owner_left', 'dead_in_use'] : ['owner_left']);
    const alerts = entries.map(identityObservation);
    expect(alerts.map((a) => a.severity)).toEqual(inUse ? ['warning', 'critical'] : ['warning']);
    expect(alerts[0]!.title).toBe('API key "k" is dead: its owner left the organization');
    if (inUse) expect(alerts[1]!.title).toBe('Dead API key "k" still carries traffic');
  });
});

describe('identityObservation: the key.identity alert of a finding', () => {
  it('is one alert per key and finding (the finding is the period), to the security route', () => {
    const k = key({ identity: 'legacy', expiresAt: null, name: 'Legacy integration' });
    const alerts = planIdentityFindings([k], WINDOW_START).map(identityObservation);
    expect(alerts.map((a) => [a.kind, a.scopeType, a.scopeId, a.period, a.severity])).toEqual([
      ['key.identity', 'key', 'apikey_01K', 'legacy', 'info'],
      ['key.identity', 'key', 'apikey_01K', 'no_expiry', 'info'],
    ]);
    expect(alerts[0]!.title).toBe('API key "Legacy integration" is a legacy workspace key');
    expect(alerts[1]!.title).toBe('API key "Legacy integration" never expires');
  });

  it('names the person a service runs on, and what happens when they leave', () => {
    const k = key({ identity: 'personal', owner: chloe, principalUserId: chloe.id, activity: week(() => ALL_DAY) });
    const [alert] = planIdentityFindings([k], WINDOW_START).map(identityObservation);
    expect(alert).toMatchObject({
      severity: 'warning',
      keyOwnerEmail: 'chloe@acme.example',
      period: 'around_the_clock',
    });
    expect(alert!.summary).toContain('acts as chloe@acme.example');
    expect(alert!.summary).toContain('on 7 of the last 7 days (2 on a weekend)');
    expect(alert!.summary).toContain('stops working the day that person leaves');
  });

  it('keeps organization-controlled names as plain text for the renderers to escape', () => {
    const hostile = '<!channel> *prod*\n`rm -rf`';
    const [alert] = planIdentityFindings([key({ name: hostile, expiresAt: null })], WINDOW_START).map(
      identityObservation,
    );
    expect(alert!.title).toBe(`API key "${hostile}" never expires`);
    expect(alert!.scopeName).toBe(hostile);
  });
});

describe('planInventory: key.orphaned keeps to keys no user or service account stands behind', () => {
  const apiKey = (name: string, principal: ApiKey['principal']): ApiKey => ({
    id: `apikey_01${name}`,
    name,
    status: 'active',
    createdAt: new Date('2026-01-01T00:00:00Z'),
    createdBy: { id: 'user_01GONE', type: 'user' },
    partialKeyHint: null,
    workspaceId: null,
    scope: 'workspace',
    expiresAt: null,
    ...(principal === undefined ? {} : { principal }),
  });
  it.each([
    ['a legacy workspace key', null, true],
    ['a key whose identity was not reported (classic shapes)', undefined, true],
    [
      'a personal key (dead, said by key.identity)',
      { type: 'user_actor', userId: 'user_01GONE', serviceAccountId: null },
      false,
    ],
    ['a service-account key', { type: 'service_account_actor', userId: null, serviceAccountId: 'svac_01S' }, false],
  ] as const)('%s whose creator left → orphaned: %s', (_name, principal, orphaned) => {
    const snapshot = {
      organization: { id: 'org', name: 'Acme' },
      workspaces: [],
      users: [],
      keys: [apiKey('K', principal)],
    } as unknown as InventorySnapshot;
    const changes = planInventory({ keys: new Map(), users: new Map() }, snapshot);
    expect(changes.orphanedKeys.map((o) => o.keyId)).toEqual(orphaned ? ['apikey_01K'] : []);
  });
});
