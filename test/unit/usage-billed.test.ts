import { describe, expect, it } from 'vitest';
import {
  type BilledCell,
  compareKeyCosts,
  type KeyCostCell,
  keyDriftObservations,
  planBilledRead,
} from '../../src/usage/core/billed.ts';

const USD = 1_000_000_000_000n;
const day = (d: string) => new Date(`${d}T00:00:00Z`);
const priced = (keyId: string, model: string, d: string, usd: number): KeyCostCell => ({
  keyId,
  model,
  width: '1d',
  start: day(d),
  pico: BigInt(Math.round(usd * 100)) * (USD / 100n),
});
const billed = (keyId: string, model: string, d: string, usd: number, listUsd = usd): BilledCell => ({
  keyId,
  model,
  width: '1d',
  start: day(d),
  amount: BigInt(Math.round(usd * 100)) * (USD / 100n),
  listAmount: BigInt(Math.round(listUsd * 100)) * (USD / 100n),
});
const UNTIL = day('2026-11-16');

describe('compareKeyCosts: priced usage against the bill per key and day', () => {
  it.each([
    ['equal', [priced('k', 'sonnet', '2026-11-10', 100)], [billed('k', 'sonnet', '2026-11-10', 100)], false, 0n],
    ['1.9% high', [priced('k', 'sonnet', '2026-11-10', 101.9)], [billed('k', 'sonnet', '2026-11-10', 100)], false, 0n],
    ['2.1% high', [priced('k', 'sonnet', '2026-11-10', 102.1)], [billed('k', 'sonnet', '2026-11-10', 100)], true, 0n],
    ['5% low', [priced('k', 'sonnet', '2026-11-10', 95)], [billed('k', 'sonnet', '2026-11-10', 100)], true, 0n],
    [
      '50% on cents: under a cent of difference',
      [priced('k', 's', '2026-11-10', 0.01)],
      [billed('k', 's', '2026-11-10', 0.005)],
      false,
      0n,
    ],
    [
      'a discount is not a drift (compared at list price)',
      [priced('k', 'sonnet', '2026-11-10', 100)],
      [billed('k', 'sonnet', '2026-11-10', 80, 100)],
      false,
      0n,
    ],
    [
      'blocked requests alone: a model with usage and no bill is unbilled, not a drift',
      [priced('k', 'sonnet', '2026-11-10', 100), priced('k', 'opus', '2026-11-10', 40)],
      [billed('k', 'sonnet', '2026-11-10', 100)],
      false,
      40n * USD,
    ],
    ['billed, never priced', [], [billed('k', 'sonnet', '2026-11-10', 10)], true, 0n],
  ] as const)('%s', (_name, p, b, drifted, unbilled) => {
    const [row] = compareKeyCosts(p, b, UNTIL);
    expect(row!.drifted).toBe(drifted);
    expect(row!.unbilled).toBe(unbilled);
  });

  it('leaves out periods either side has not completed', () => {
    const rows = compareKeyCosts(
      [priced('k', 's', '2026-11-15', 50), priced('k', 's', '2026-11-16', 50)],
      [billed('k', 's', '2026-11-15', 10)],
      UNTIL,
    );
    expect(rows.map((r) => r.start.toISOString().slice(0, 10))).toEqual(['2026-11-15']);
  });

  it('one cost.drift per drifting key, naming it; none for the rest', () => {
    const rows = compareKeyCosts(
      [priced('a', 's', '2026-11-10', 110), priced('a', 's', '2026-11-11', 110), priced('b', 's', '2026-11-10', 100)],
      [billed('a', 's', '2026-11-10', 100), billed('a', 's', '2026-11-11', 100), billed('b', 's', '2026-11-10', 100)],
      UNTIL,
    );
    const obs = keyDriftObservations(
      rows,
      new Map([['a', { name: '<b>prod</b>', workspaceId: 'w', workspaceName: 'W' }]]),
    );
    expect(obs).toHaveLength(1);
    expect(obs[0]).toMatchObject({ kind: 'cost.drift', scopeType: 'key', scopeId: 'a', workspaceId: 'w', period: '' });
    expect(obs[0]!.title).toBe('Priced usage of key <b>prod</b> differs from what Anthropic bills (up to 10.0%)');
    expect(obs[0]!.details.periods).toEqual(['2026-11-10', '2026-11-11']);
  });
});

describe('planBilledRead', () => {
  it.each([
    ['first run: the month to date', null, '2026-11-16T06:30:00Z', ['2026-11-01', '2026-11-16'], true],
    [
      'later: the restated days again',
      '2026-11-16T00:00:00Z',
      '2026-11-16T06:30:00Z',
      ['2026-11-13', '2026-11-16'],
      true,
    ],
    ['at midnight: no hours yet', '2026-11-16T00:00:00Z', '2026-11-16T00:00:00Z', ['2026-11-13', '2026-11-16'], false],
    [
      'after a long stop: at most 31 days',
      '2026-08-01T00:00:00Z',
      '2026-11-16T06:30:00Z',
      ['2026-10-17', '2026-11-16'],
      true,
    ],
  ] as const)('%s', (_name, watermark, now, days, hours) => {
    const plan = planBilledRead(watermark === null ? null : new Date(watermark), new Date(now));
    expect([plan.days!.start.toISOString().slice(0, 10), plan.days!.end.toISOString().slice(0, 10)]).toEqual(days);
    expect(plan.hours !== null).toBe(hours);
  });
});
