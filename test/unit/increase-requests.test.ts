import { describe, expect, it } from 'vitest';
import { type ActionId, actionOfChoice, carriesDecision, choicesFor } from '../../src/action-ids.ts';
import { decidePress, type PressDecision, type PressedAlert } from '../../src/actions/core/decide.ts';
import { parsePolicy } from '../../src/config/index.ts';
import { alertButtons } from '../../src/notify/slack-buttons.ts';
import {
  afterLostAnswer,
  askIncreaseRequests,
  beforeClaim,
  claimTaken,
  planPress,
  proposedIncrease,
} from '../../src/spend/core/increase-requests.ts';

const USD = 10n ** 12n;
const STARTED = new Date('2026-12-07T13:50:00Z');
const defaults = parsePolicy('', 'keywarden.yaml', [])!.slack_actions;
const approvers = {
  ...defaults,
  enabled: true,
  allow: { ...defaults.allow, approve_deactivation: ['U0SEC'], approve_spend_increase: ['U0FIN'] },
};
const notice: PressedAlert = {
  kind: 'spend.limit_changed',
  scopeType: 'member',
  scopeId: 'user_01ana',
  state: 'firing',
  startedAt: STARTED,
  acknowledgedAt: null,
  acknowledgedBy: null,
};

describe('the amount Approve sets', () => {
  it.each([
    ['$150 a month', 150n * USD, 'USD', 300n * USD],
    ['$75.50', 75_500_000_000_000n, 'USD', 151n * USD],
    ['a fraction of a cent is dropped, never rounded up', 1n * USD + 3n, 'USD', 2n * USD],
    ['no limit', null, 'USD', null],
    ['a zero limit', 0n, 'USD', null],
    ['another currency', 100n * USD, 'EUR', null],
  ])('%s', (_name, limit, currency, expected) => {
    expect(proposedIncrease(limit, currency)).toBe(expected);
  });
});

describe('asking about increase requests', () => {
  const fact = {
    requestId: 'splir_01a',
    userId: 'user_01ana',
    name: 'Ana\n<!here>',
    email: 'ana@ent.example',
    period: 'monthly' as const,
    currency: 'USD',
    limit: 150n * USD,
    spent: 149n * USD,
    requestedAt: new Date('2026-12-06T10:00:00Z'),
  };

  it('one notice per request, its period naming the request; the name on one line, as data', () => {
    const { asked, observations } = askIncreaseRequests([fact, { ...fact, requestId: 'splir_01b', limit: null }]);
    expect(asked).toEqual([
      expect.objectContaining({ requestId: 'splir_01a', limitMinor: 15000n, amountMinor: 30000n, currency: 'USD' }),
      expect.objectContaining({ requestId: 'splir_01b', limitMinor: null, amountMinor: null }),
    ]);
    expect(observations.map((o) => [o.kind, o.scopeType, o.scopeId, o.period])).toEqual([
      ['spend.limit_changed', 'member', 'user_01ana', 'increase:splir_01a'],
      ['spend.limit_changed', 'member', 'user_01ana', 'increase:splir_01b'],
    ]);
    expect(observations[0]!.title).toBe('Member "Ana <!here>" asks for a higher monthly spend limit');
    expect(observations[0]!.details).toMatchObject({ increaseRequestId: 'splir_01a', proposedUsd: '300.000000000000' });
    expect(observations[1]!.details).toMatchObject({ proposedUsd: null });
    expect(choicesFor('spend.limit_changed', observations[0]!.details)).toEqual(['increase:approve', 'increase:deny']);
    expect(choicesFor('spend.limit_changed', observations[1]!.details)).toEqual(['increase:deny']);
    // a limit change told from the Console carries Acknowledge and Snooze as before
    expect(choicesFor('spend.limit_changed', {})).toEqual(['ack', 'snooze:1h', 'snooze:4h', 'snooze:24h']);
    // a question is never grouped with others (a grouped message carries no buttons)
    expect(carriesDecision('spend.limit_changed', observations[0]!.details)).toBe(true);
  });

  it('Approve and Deny are buttons with the stable action ids; the value is the button row', () => {
    expect(actionOfChoice('increase:approve')).toBe('approve');
    expect(actionOfChoice('increase:deny')).toBe('deny');
    expect(
      alertButtons(
        new Map([
          ['increase:approve', 'b-1'],
          ['increase:deny', 'b-2'],
        ]),
      ),
    ).toMatchObject({
      elements: [
        { type: 'button', action_id: 'approve', value: 'b-1', style: 'primary', text: { text: 'Approve' } },
        { type: 'button', action_id: 'deny', value: 'b-2', text: { text: 'Deny' } },
      ],
    });
  });
});

describe('a press on an increase request', () => {
  const press = (actionId: ActionId, choice: string, over: Partial<Parameters<typeof decidePress>[0]> = {}) =>
    decidePress({
      actionId,
      userId: 'U0FIN',
      userGroups: new Set(),
      policy: approvers,
      alert: notice,
      episodeStartedAt: STARTED,
      choice,
      increaseRequestId: 'splir_01a',
      ...over,
    });

  it.each<[string, PressDecision, PressDecision]>([
    [
      'Approve by an approver',
      press('approve', 'increase:approve'),
      { do: 'answer_increase', answer: 'approve', requestId: 'splir_01a' },
    ],
    [
      'Deny by an approver',
      press('deny', 'increase:deny'),
      { do: 'answer_increase', answer: 'deny', requestId: 'splir_01a' },
    ],
    [
      'the API decides, not the notice: a resolved notice, a later episode',
      press('approve', 'increase:approve', {
        alert: { ...notice, state: 'resolved', startedAt: new Date(STARTED.getTime() + 1) },
      }),
      { do: 'answer_increase', answer: 'approve', requestId: 'splir_01a' },
    ],
    [
      'not on the allow list',
      press('approve', 'increase:approve', { userId: 'U0ANA' }),
      { do: 'refuse', reason: 'not_allowed', permission: 'approve_spend_increase' },
    ],
    [
      'allowed to approve deactivations only: not spend increases',
      press('approve', 'increase:approve', { userId: 'U0SEC' }),
      { do: 'refuse', reason: 'not_allowed', permission: 'approve_spend_increase' },
    ],
    [
      'buttons turned off',
      press('deny', 'increase:deny', { policy: { ...approvers, enabled: false } }),
      { do: 'refuse', reason: 'disabled', permission: 'approve_spend_increase' },
    ],
    [
      'a notice that names no request',
      press('approve', 'increase:approve', { increaseRequestId: null }),
      { do: 'refuse', reason: 'not_offered', permission: 'approve_spend_increase' },
    ],
    [
      'an increase button row on another kind of alert',
      press('approve', 'increase:approve', { alert: { ...notice, kind: 'rotation.approval_requested' } }),
      { do: 'refuse', reason: 'not_offered', permission: 'approve_spend_increase' },
    ],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });
});

describe('answering a request: the rules around the claim, the fresh read and a lost answer', () => {
  const row = { state: 'pending' as const, amountMinor: 30_000n, currency: 'USD' };

  it.each<[string, Parameters<typeof beforeClaim>, ReturnType<typeof beforeClaim>]>([
    ['pending, Approve with an amount', [row, 'approve'], { do: 'claim' }],
    ['pending, Deny', [row, 'deny'], { do: 'claim' }],
    ['claimed by a press (maybe stale): the claim decides', [{ ...row, state: 'approving' }, 'deny'], { do: 'claim' }],
    ['already approved', [{ ...row, state: 'approved' }, 'deny'], { do: 'nothing', answered: 'approved' }],
    ['already denied', [{ ...row, state: 'denied' }, 'approve'], { do: 'nothing', answered: 'denied' }],
    ['Approve without an amount', [{ ...row, amountMinor: null }, 'approve'], { do: 'refuse', reason: 'not_offered' }],
    ['Approve in another currency', [{ ...row, currency: 'EUR' }, 'approve'], { do: 'refuse', reason: 'not_offered' }],
    ['Deny without an amount', [{ ...row, amountMinor: null }, 'deny'], { do: 'claim' }],
  ])('before the claim: %s', (_name, args, expected) => {
    expect(beforeClaim(...args)).toEqual(expected);
  });

  it.each<[string, Parameters<typeof claimTaken>, ReturnType<typeof claimTaken>]>([
    [
      'approved by the press that held it',
      ['approved'],
      { outcome: 'unchanged:answered:approved', answered: 'approved' },
    ],
    ['denied meanwhile', ['denied'], { outcome: 'unchanged:answered:denied', answered: 'denied' }],
    ['another press still at the Admin API', ['approving'], { outcome: 'unchanged:in_progress' }],
    ['given back meanwhile', ['pending'], { outcome: 'unchanged:in_progress' }],
    ['the row gone', [null], { outcome: 'unchanged:in_progress' }],
  ])('the claim taken: %s', (_name, args, expected) => {
    expect(claimTaken(...args)).toEqual(expected);
  });

  it.each<[string, Parameters<typeof planPress>, ReturnType<typeof planPress>]>([
    [
      'pending, limit below: approve',
      [row, 'approve', { status: 'pending', limitUsd: 150n * USD }],
      {
        do: 'approve',
        amountMinor: 30_000n,
      },
    ],
    [
      'pending, no USD limit read: approve',
      [row, 'approve', { status: 'pending', limitUsd: null }],
      {
        do: 'approve',
        amountMinor: 30_000n,
      },
    ],
    [
      'a cent below the proposal: approve',
      [row, 'approve', { status: 'pending', limitUsd: 300n * USD - 10n ** 10n }],
      {
        do: 'approve',
        amountMinor: 30_000n,
      },
    ],
    [
      'limit raised to the proposal: refuse',
      [row, 'approve', { status: 'pending', limitUsd: 300n * USD }],
      {
        do: 'refuse',
        reason: 'limit_already_higher',
        limit: 300n * USD,
      },
    ],
    [
      'limit above the proposal: refuse',
      [row, 'approve', { status: 'pending', limitUsd: 500n * USD }],
      {
        do: 'refuse',
        reason: 'limit_already_higher',
        limit: 500n * USD,
      },
    ],
    ['limit above, Deny: deny', [row, 'deny', { status: 'pending', limitUsd: 500n * USD }], { do: 'deny' }],
    [
      'approved in the Console',
      [row, 'deny', { status: 'approved', limitUsd: null }],
      {
        do: 'answered_elsewhere',
        status: 'approved',
      },
    ],
    [
      'denied in the Console',
      [row, 'approve', { status: 'denied', limitUsd: null }],
      {
        do: 'answered_elsewhere',
        status: 'denied',
      },
    ],
    [
      'a stale Approve applied, its reply lost',
      [{ ...row, state: 'approving' }, 'deny', { status: 'approved', limitUsd: null }],
      { do: 'earlier_press_applied', status: 'approved' },
    ],
    [
      'a stale Deny applied, its reply lost',
      [{ ...row, state: 'denying' }, 'approve', { status: 'denied', limitUsd: null }],
      { do: 'earlier_press_applied', status: 'denied' },
    ],
    [
      'a stale Approve, but denied in the Console',
      [{ ...row, state: 'approving' }, 'approve', { status: 'denied', limitUsd: null }],
      { do: 'answered_elsewhere', status: 'denied' },
    ],
  ])('after the fresh read: %s', (_name, args, expected) => {
    expect(planPress(...args)).toEqual(expected);
  });

  it.each<[string, Parameters<typeof afterLostAnswer>, ReturnType<typeof afterLostAnswer>]>([
    ['still pending: nothing was applied', ['approve', 'pending'], { do: 'release' }],
    ['approved, as asked: this press', ['approve', 'approved'], { do: 'settle', state: 'approved', byThisPress: true }],
    ['denied, as asked: this press', ['deny', 'denied'], { do: 'settle', state: 'denied', byThisPress: true }],
    ['denied, Approve asked: elsewhere', ['approve', 'denied'], { do: 'settle', state: 'denied', byThisPress: false }],
    ['approved, Deny asked: elsewhere', ['deny', 'approved'], { do: 'settle', state: 'approved', byThisPress: false }],
  ])('after a lost answer: %s', (_name, args, expected) => {
    expect(afterLostAnswer(...args)).toEqual(expected);
  });
});
