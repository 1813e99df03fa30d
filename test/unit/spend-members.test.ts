import { describe, expect, it } from 'vitest';
import { usdToPico } from '../../src/money.ts';
import { type MemberSpendFact, memberThresholdObservations } from '../../src/spend/core/members.ts';

const fact = (over: Partial<MemberSpendFact>): MemberSpendFact => ({
  userId: 'user_01A',
  email: 'ana@ent.example',
  name: 'Ana',
  period: 'monthly',
  limit: usdToPico('100'),
  spent: usdToPico('0'),
  source: 'user',
  ...over,
});

describe('per-member thresholds', () => {
  it('75% and 95% exactly, each in the limit’s own period', () => {
    const at = (spent: string, period: MemberSpendFact['period'] = 'monthly') =>
      memberThresholdObservations([fact({ spent: usdToPico(spent), period })], '2026-11-18').map((o) => o.period);
    expect(at('74.99')).toEqual([]);
    expect(at('75')).toEqual(['2026-11@0.75']);
    expect(at('95')).toEqual(['2026-11@0.75', '2026-11@0.95']);
    expect(at('80', 'weekly')).toEqual(['2026-W47@0.75']);
    expect(at('96', 'daily')).toEqual(['2026-11-18@0.75', '2026-11-18@0.95']);
  });

  it('no limit, or a zero one, announces nothing', () => {
    expect(memberThresholdObservations([fact({ limit: null, spent: usdToPico('5') })], '2026-11-18')).toEqual([]);
    expect(memberThresholdObservations([fact({ limit: 0n, spent: usdToPico('5') })], '2026-11-18')).toEqual([]);
  });

  it('the member’s scope, address and name: the name on one line, the address when there is no name', () => {
    const [o] = memberThresholdObservations(
      [fact({ name: 'Eve\r\n\u202eFinance\u200b', spent: usdToPico('80') })],
      '2026-11-18',
    );
    expect(o).toMatchObject({
      kind: 'spend.threshold',
      scopeType: 'member',
      scopeId: 'user_01A',
      keyOwnerEmail: 'ana@ent.example',
      title: 'Member "Eve Finance" reached 75% of their $100.00 spend limit',
    });
    const [anon] = memberThresholdObservations([fact({ name: null, spent: usdToPico('80') })], '2026-11-18');
    expect(anon!.title).toContain('Member "ana@ent.example"');
    const [nobody] = memberThresholdObservations(
      [fact({ name: null, email: null, spent: usdToPico('80') })],
      '2026-11-18',
    );
    expect(nobody).toMatchObject({ title: expect.stringContaining('"user_01A"'), keyOwnerEmail: null });
  });
});
