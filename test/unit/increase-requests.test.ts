import { describe, expect, it } from 'vitest';
import { type ActionId, actionOfChoice, carriesDecision, choicesFor } from '../../src/action-ids.ts';
import { decidePress, type PressDecision, type PressedAlert } from '../../src/actions/core/decide.ts';
import { parsePolicy } from '../../src/config/index.ts';
import { alertButtons } from '../../src/notify/slack-buttons.ts';
import { askIncreaseRequests, proposedIncrease } from '../../src/spend/core/increase-requests.ts';

const USD = 10n ** 12n;
const STARTED = new Date('2026-12-07T13:50:00Z');
const defaults = parsePolicy('', 'keywarden.yaml', [])!.slack_actions;
const approvers = { ...defaults, enabled: true, allow: { ...defaults.allow, approve_deactivation: ['U0FIN'] } };
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
      { do: 'refuse', reason: 'not_allowed', permission: 'approve_deactivation' },
    ],
    [
      'buttons turned off',
      press('deny', 'increase:deny', { policy: { ...approvers, enabled: false } }),
      { do: 'refuse', reason: 'disabled', permission: 'approve_deactivation' },
    ],
    [
      'a notice that names no request',
      press('approve', 'increase:approve', { increaseRequestId: null }),
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
    [
      'an increase button row on another kind of alert',
      press('approve', 'increase:approve', { alert: { ...notice, kind: 'rotation.approval_requested' } }),
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
  ])('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });
});
