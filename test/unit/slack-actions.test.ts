import { describe, expect, it } from 'vitest';
import { type ActionId, actionOfChoice, choicesFor } from '../../src/action-ids.ts';
import { slackButtonsOn, slackButtonsWarning } from '../../src/actions/buttons.ts';
import { decidePress, mayPress, type PressDecision, type PressedAlert } from '../../src/actions/core/decide.ts';
import { parsePress } from '../../src/actions/payload.ts';
import { signSlackRequest, verifySlackSignature } from '../../src/actions/verify.ts';
import { type AlertObservation, planAlerts } from '../../src/alerts/core/lifecycle.ts';
import { type Silence, type SilenceableAlert, silencedBy, silenceMatches } from '../../src/alerts/core/silences.ts';
import { readEnv } from '../../src/config/env.ts';
import { parsePolicy, type SlackActionsPolicy } from '../../src/config/index.ts';
import { Secret } from '../../src/config/secret.ts';
import { alertButtons } from '../../src/notify/slack-buttons.ts';

const NOW = new Date('2026-12-07T14:02:00Z');
const STARTED = new Date('2026-12-07T13:50:00Z');
const SECRET = 'signing-secret-for-tests-0123456789';

function policyOf(yaml: string) {
  const problems: string[] = [];
  const policy = parsePolicy(yaml, 'keywarden.yaml', problems);
  return { policy, problems };
}
const defaults = policyOf('').policy!.slack_actions;

type Row = [string, SlackActionsPolicy, PressedAlert, string, string[], PressDecision];

const firing: PressedAlert = {
  kind: 'usage.runaway',
  scopeType: 'key',
  scopeId: 'apikey_01',
  state: 'firing',
  startedAt: STARTED,
  acknowledgedAt: null,
  acknowledgedBy: null,
};

describe('decidePress', () => {
  const enabled = { ...defaults, enabled: true };
  it.each([
    ['a firing alert, anyone may acknowledge', enabled, firing, 'U0ANA', [], { do: 'acknowledge' }],
    [
      'buttons turned off',
      defaults,
      firing,
      'U0ANA',
      [],
      { do: 'refuse', reason: 'disabled', permission: 'acknowledge' },
    ],
    [
      'not on the allow list',
      { ...enabled, allow: { ...enabled.allow, acknowledge: ['U0BOSS'] } },
      firing,
      'U0ANA',
      [],
      { do: 'refuse', reason: 'not_allowed', permission: 'acknowledge' },
    ],
    [
      'in an allowed user group',
      { ...enabled, allow: { ...enabled.allow, acknowledge: ['S0ONCALL'] } },
      firing,
      'U0ANA',
      ['S0ONCALL'],
      { do: 'acknowledge' },
    ],
    [
      'already acknowledged',
      enabled,
      { ...firing, acknowledgedAt: NOW, acknowledgedBy: 'U0BEN' },
      'U0ANA',
      [],
      { do: 'nothing', state: 'acknowledged' },
    ],
    ['resolved', enabled, { ...firing, state: 'resolved' }, 'U0ANA', [], { do: 'nothing', state: 'resolved' }],
    [
      'a later episode than the button was offered for',
      enabled,
      { ...firing, startedAt: NOW },
      'U0ANA',
      [],
      { do: 'nothing', state: 'later_episode' },
    ],
  ] satisfies Row[])('%s', (_name, policy, alert, userId, groups, expected) => {
    expect(
      decidePress({
        actionId: 'ack',
        userId,
        userGroups: new Set(groups),
        policy,
        alert,
        episodeStartedAt: STARTED,
        choice: 'ack',
      }),
    ).toEqual(expected);
  });

  it('refuses a known button this version does not offer, even to an allowed user', () => {
    expect(
      decidePress({
        actionId: 'expected',
        userId: 'U0ANA',
        userGroups: new Set(),
        policy: { ...enabled, allow: { ...enabled.allow, mark_expected: ['*'] } },
        alert: firing,
        episodeStartedAt: STARTED,
        choice: 'expected',
      }),
    ).toEqual({ do: 'refuse', reason: 'not_offered', permission: 'mark_expected' });
  });

  const markers = { ...enabled, allow: { ...enabled.allow, mark_expected: ['U0ANA'] } };
  it.each<[string, SlackActionsPolicy, PressedAlert, string, number | null, PressDecision]>([
    [
      'Mark as expected on a runaway: a mark covering its reported rate, for the hours chosen',
      markers,
      firing,
      'expected:24h',
      120,
      { do: 'mark_expected', ms: 24 * 3_600_000, scopeType: 'key', scopeId: 'apikey_01', coveredHourlyUsd: 120 },
    ],
    [
      'nobody may by default',
      enabled,
      firing,
      'expected:4h',
      120,
      { do: 'refuse', reason: 'not_allowed', permission: 'mark_expected' },
    ],
    [
      'a runaway alert that reports no rate has nothing to mark',
      markers,
      firing,
      'expected:4h',
      null,
      { do: 'refuse', reason: 'not_offered', permission: 'mark_expected' },
    ],
    [
      'only runaways are marked',
      markers,
      { ...firing, kind: 'rotation.overdue' },
      'expected:4h',
      120,
      { do: 'refuse', reason: 'not_offered', permission: 'mark_expected' },
    ],
    [
      'a resolved runaway',
      markers,
      { ...firing, state: 'resolved' },
      'expected:4h',
      120,
      { do: 'nothing', state: 'resolved' },
    ],
  ])('%s', (_name, policy, alert, choice, rate, expected) => {
    expect(
      decidePress({
        actionId: 'expected',
        userId: 'U0ANA',
        userGroups: new Set(),
        policy,
        alert,
        episodeStartedAt: STARTED,
        choice,
        coveredHourlyUsd: rate,
      }),
    ).toEqual(expected);
  });

  const approvers = { ...enabled, allow: { ...enabled.allow, approve_deactivation: ['S0SEC'] } };
  const question: PressedAlert = { ...firing, kind: 'rotation.approval_requested' };
  it.each([
    [
      'Approve by an approver',
      'approve',
      'approve',
      approvers,
      question,
      ['S0SEC'],
      { do: 'approve', keyId: 'apikey_01' },
    ],
    [
      'Deny by an approver, with the reason chosen',
      'deny',
      'deny:successor_not_ready',
      approvers,
      question,
      ['S0SEC'],
      { do: 'deny', keyId: 'apikey_01', reason: 'its successor is not ready' },
    ],
    [
      "a runaway's Deactivate key, pressed as approve",
      'approve',
      'deactivate',
      approvers,
      firing,
      ['S0SEC'],
      { do: 'deactivate', keyId: 'apikey_01' },
    ],
    [
      'Approve on an acknowledged question still answers it',
      'approve',
      'approve',
      approvers,
      { ...question, acknowledgedAt: NOW, acknowledgedBy: 'U0BEN' },
      ['S0SEC'],
      { do: 'approve', keyId: 'apikey_01' },
    ],
    [
      'Deny by someone outside the group',
      'deny',
      'deny:still_needed',
      approvers,
      question,
      [],
      { do: 'refuse', reason: 'not_allowed', permission: 'approve_deactivation' },
    ],
    [
      'Approve by default: nobody may',
      'approve',
      'approve',
      enabled,
      question,
      [],
      { do: 'refuse', reason: 'not_allowed', permission: 'approve_deactivation' },
    ],
    [
      'Approve on a resolved question',
      'approve',
      'approve',
      approvers,
      { ...question, state: 'resolved' },
      ['S0SEC'],
      { do: 'nothing', state: 'resolved' },
    ],
    [
      'Approve on a later episode',
      'approve',
      'approve',
      approvers,
      { ...question, startedAt: NOW },
      ['S0SEC'],
      { do: 'nothing', state: 'later_episode' },
    ],
    [
      'Approve on a workspace alert names no key',
      'approve',
      'approve',
      approvers,
      { ...question, scopeType: 'workspace' },
      ['S0SEC'],
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
    [
      'Approve on a runaway (a forged or replayed value): only an approval question is approved',
      'approve',
      'approve',
      approvers,
      firing,
      ['S0SEC'],
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
    [
      'Deny on a runaway: only an approval question is denied',
      'deny',
      'deny:still_needed',
      approvers,
      firing,
      ['S0SEC'],
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
    [
      'Deactivate key on an approval question: only a runaway is deactivated by the kill switch',
      'approve',
      'deactivate',
      approvers,
      question,
      ['S0SEC'],
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
    [
      'Approve on another kind of alert (a spend threshold)',
      'approve',
      'approve',
      approvers,
      { ...question, kind: 'spend.threshold' },
      ['S0SEC'],
      { do: 'refuse', reason: 'not_offered', permission: 'approve_deactivation' },
    ],
  ] satisfies Array<[string, ActionId, string, SlackActionsPolicy, PressedAlert, string[], PressDecision]>)(
    '%s',
    (_name, actionId, choice, policy, alert, groups, expected) => {
      expect(
        decidePress({
          actionId,
          userId: 'U0SEC',
          userGroups: new Set(groups),
          policy,
          alert,
          episodeStartedAt: STARTED,
          choice,
        }),
      ).toEqual(expected);
    },
  );

  it('mayPress: "*", the user id, or a group the user is in; nothing by default for key actions', () => {
    expect(mayPress(['*'], 'U1', new Set())).toBe(true);
    expect(mayPress(['U1'], 'U1', new Set())).toBe(true);
    expect(mayPress(['S1'], 'U1', new Set(['S1']))).toBe(true);
    expect(mayPress(['S1'], 'U1', new Set())).toBe(false);
    expect(mayPress(defaults.allow.approve_deactivation, 'U1', new Set())).toBe(false);
  });
});

describe('the buttons a message offers', () => {
  it.each([
    ['rotation.overdue', {}, ['ack', 'snooze:1h', 'snooze:4h', 'snooze:24h']],
    ['rotation.deactivated', {}, ['reactivate']],
    [
      'rotation.approval_requested',
      {},
      ['approve', 'deny:still_needed', 'deny:successor_not_ready', 'deny:owner_away'],
    ],
    [
      'usage.runaway',
      { killSwitch: 'armed' },
      ['ack', 'snooze:1h', 'snooze:4h', 'snooze:24h', 'expected:4h', 'expected:24h', 'expected:72h'],
    ],
    ['usage.runaway', { killSwitch: 'deactivated' }, ['reactivate', 'ack', 'snooze:1h', 'snooze:4h', 'snooze:24h']],
    [
      'usage.runaway',
      { killSwitch: 'awaiting_approval' },
      ['deactivate', 'ack', 'snooze:1h', 'snooze:4h', 'snooze:24h', 'expected:4h', 'expected:24h', 'expected:72h'],
    ],
  ])('%s %j → %j', (kind, details, expected) => {
    expect(choicesFor(kind, details)).toEqual(expected);
  });

  it('Deactivate key is pressed as approve; Approve is red, Deny is a menu of reasons', () => {
    expect(actionOfChoice('deactivate')).toBe('approve');
    expect(actionOfChoice('deny:owner_away')).toBe('deny');
    expect(actionOfChoice('deny')).toBeNull();
    const question = alertButtons(
      new Map([
        ['approve', 'b-1'],
        ['deny:still_needed', 'b-2'],
        ['deny:owner_away', 'b-4'],
      ]),
    );
    expect(question).toMatchObject({
      elements: [
        { action_id: 'approve', value: 'b-1', style: 'danger', text: { text: 'Approve' } },
        {
          type: 'static_select',
          action_id: 'deny',
          placeholder: { text: 'Deny…' },
          options: [
            { value: 'b-2', text: { text: 'the key is still needed' } },
            { value: 'b-4', text: { text: 'its owner is away' } },
          ],
        },
      ],
    });
    const runaway = alertButtons(new Map([['deactivate', 'b-3']]));
    expect(runaway).toMatchObject({
      elements: [{ action_id: 'approve', value: 'b-3', text: { text: 'Deactivate key' } }],
    });
  });
});

describe('verifySlackSignature', () => {
  const body = 'payload=%7B%7D';
  const ts = Math.floor(NOW.getTime() / 1000);
  const signed = signSlackRequest(SECRET, ts, body);
  const headers = (h: Record<string, string>) => ({
    timestamp: h['x-slack-request-timestamp'],
    signature: h['x-slack-signature'],
  });
  const verify = (h: { timestamp: string | undefined; signature: string | undefined }, b = body, now = NOW) =>
    verifySlackSignature(new Secret(SECRET), h, Buffer.from(b), now);

  it('accepts what Slack signs, within five minutes either way', () => {
    expect(verify(headers(signed))).toEqual({ ok: true });
    expect(verify(headers(signed), body, new Date(NOW.getTime() + 300_000))).toEqual({ ok: true });
  });
  it.each([
    ['no headers', { timestamp: undefined, signature: undefined }, body, NOW, 'unsigned'],
    ['a timestamp that is not a number', { ...headers(signed), timestamp: '1e9' }, body, NOW, 'unsigned'],
    ['five minutes and a second late', headers(signed), body, new Date(NOW.getTime() + 301_000), 'stale'],
    ['from the future', headers(signed), body, new Date(NOW.getTime() - 301_000), 'stale'],
    ['another secret', headers(signSlackRequest('other', ts, body)), body, NOW, 'forged'],
    ['a changed body', headers(signed), `${body}x`, NOW, 'forged'],
    ['a short signature', { ...headers(signed), signature: 'v0=abcd' }, body, NOW, 'forged'],
    [
      'another scheme',
      { ...headers(signed), signature: signed['x-slack-signature']!.replace('v0=', 'v1=') },
      body,
      NOW,
      'forged',
    ],
  ])('refuses %s', (_name, h, b, now, reason) => {
    expect(verify(h, b, now)).toEqual({ ok: false, reason });
  });
});

describe('parsePress', () => {
  const payload = {
    type: 'block_actions',
    team: { id: 'T1' },
    user: { id: 'U0ANA', username: 'ana' },
    response_url: 'https://hooks.slack.com/actions/T1/1/x',
    actions: [{ action_id: 'ack', value: 'v' }],
  };
  it('takes the fields it needs', () => {
    expect(parsePress(payload, 'http')).toEqual({
      actionId: 'ack',
      value: 'v',
      userId: 'U0ANA',
      userName: 'ana',
      teamId: 'T1',
      responseUrl: 'https://hooks.slack.com/actions/T1/1/x',
      transport: 'http',
    });
  });
  it.each([
    ['another interaction type', { ...payload, type: 'view_submission' }],
    ['a user id that is not one (it becomes a mention)', { ...payload, user: { id: 'U1> <!channel' } }],
    ['no action', { ...payload, actions: [] }],
    ['not an object', 'payload'],
  ])('refuses %s', (_name, p) => {
    expect(parsePress(p, 'socket')).toBeNull();
  });
});

describe('slack_actions in the policy file', () => {
  it('defaults: off; anyone may acknowledge and snooze; nobody may change a key or a spend limit', () => {
    expect(defaults).toEqual({
      enabled: false,
      allow: {
        acknowledge: ['*'],
        snooze: ['*'],
        mark_expected: [],
        approve_deactivation: [],
        reactivate: [],
        approve_spend_increase: [],
      },
    });
  });
  it.each([
    ['slack_actions: { allow: { acknowledge: ["ana"] } }', 'slack_actions.allow.acknowledge[0]'],
    ['slack_actions: { allow: { approve: ["U0ANA"] } }', 'slack_actions.allow.approve: unknown key'],
    ['slack_actions: { enabled: yes-please }', 'slack_actions.enabled'],
  ])('%s is refused, naming the field', (yaml, expected) => {
    const { policy, problems } = policyOf(yaml);
    expect(policy).toBeNull();
    expect(problems.join('\n')).toContain(expected);
  });
  it('SLACK_APP_TOKEN must be an app-level token; SLACK_SIGNING_SECRET is kept secret', () => {
    const problems: string[] = [];
    const env = readEnv({ SLACK_APP_TOKEN: 'xoxb-not-an-app-token-1234', SLACK_SIGNING_SECRET: SECRET }, problems);
    expect(problems.join('\n')).toContain('SLACK_APP_TOKEN');
    expect(problems.join('\n')).not.toContain('xoxb-not-an-app-token-1234');
    expect(JSON.stringify(env)).not.toContain(SECRET);
  });
});

describe('an acknowledged alert', () => {
  const o: AlertObservation = {
    kind: 'usage.runaway',
    severity: 'critical',
    scopeType: 'key',
    scopeId: 'k1',
    workspaceId: null,
    period: '',
    title: 'Runaway',
    details: {},
  };
  const stored = (acknowledgedAt: Date | null) => ({
    fingerprint: 'usage.runaway|key|k1|',
    kind: 'usage.runaway' as const,
    scopeType: 'key' as const,
    scopeId: 'k1',
    state: 'firing' as const,
    lastNotifiedAt: STARTED,
    inhibitedBy: null,
    acknowledgedAt,
  });
  const plan = (acknowledgedAt: Date | null, observations: AlertObservation[]) =>
    planAlerts({
      kinds: ['usage.runaway'],
      observations,
      stored: [stored(acknowledgedAt)],
      repeatEveryMs: () => 60_000,
      now: NOW,
    }).map((d) => [d.action, d.notify]);

  it('is not repeated, and its resolve is still said', () => {
    expect(plan(null, [o])).toEqual([['repeat', true]]);
    expect(plan(NOW, [o])).toEqual([['refresh', false]]);
    expect(plan(NOW, [])).toEqual([['resolve', true]]);
  });
});

describe('silences', () => {
  const alert: SilenceableAlert = {
    fingerprint: 'usage.runaway|key|apikey_01ci|',
    kind: 'usage.runaway',
    scopeType: 'key',
    scopeId: 'apikey_01ci',
    workspaceId: 'wrkspc_01',
    workspaceName: 'Research\u200b',
  };
  it.each([
    ['no matchers (matches nothing)', {}, false],
    ['kind glob', { kind: 'usage.*' }, true],
    ['another kind', { kind: 'spend.*' }, false],
    ['scope', { scope: 'key' }, true],
    ['key glob', { key: 'apikey_01*' }, true],
    ['any key', { key: '*' }, true],
    ['workspace by name (invisible characters dropped)', { workspace: 'Research' }, true],
    ['workspace by id', { workspace: 'wrkspc_*' }, true],
    ['kind and another workspace (ANDed)', { kind: 'usage.*', workspace: 'Finance' }, false],
    ['this fingerprint', { fingerprint: 'usage.runaway|key|apikey_01ci|' }, true],
    ['a fingerprint is not a glob', { fingerprint: 'usage.runaway|*' }, false],
  ] as const)('%s', (_name, matchers, expected) => {
    expect(silenceMatches(matchers, alert)).toBe(expected);
  });

  it('a key matcher does not match an alert about a workspace', () => {
    expect(silenceMatches({ key: '*' }, { ...alert, scopeType: 'workspace', scopeId: 'wrkspc_01' })).toBe(false);
  });

  it('is in force from its start until (not including) its end, unless expired', () => {
    const s: Silence = { id: 's', matchers: { kind: '*' }, startsAt: STARTED, endsAt: NOW, expiredAt: null };
    expect(silencedBy([s], alert, STARTED)).toBe(s);
    expect(silencedBy([s], alert, NOW)).toBeNull();
    expect(silencedBy([s], alert, new Date(STARTED.getTime() - 1))).toBeNull();
    expect(silencedBy([{ ...s, expiredAt: STARTED }], alert, STARTED)).toBeNull();
  });
});

describe('slackButtonsOn', () => {
  const on = (enabled: boolean, secret: string | null, app: string | null) =>
    slackButtonsOn({
      env: {
        ...readEnv({}, []),
        slackSigningSecret: secret === null ? null : new Secret(secret),
        slackAppToken: app === null ? null : new Secret(app),
      },
      policy: { ...policyOf('').policy!, slack_actions: { ...defaults, enabled } },
    });
  it('needs the policy to turn buttons on and a transport to bring presses back', () => {
    expect(on(true, SECRET, null)).toBe(true);
    expect(on(true, null, 'xapp-1-abc')).toBe(true);
    expect(on(true, null, null)).toBe(false);
    expect(on(false, SECRET, 'xapp-1-abc')).toBe(false);
  });
  it('check-config warns when the policy turns buttons on and nothing can bring a press back', () => {
    const policy = { ...policyOf('').policy!, slack_actions: { ...defaults, enabled: true } };
    expect(slackButtonsWarning({ env: readEnv({}, []), policy })).toContain(
      'neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN',
    );
    expect(slackButtonsWarning({ env: readEnv({ SLACK_SIGNING_SECRET: SECRET }, []), policy })).toContain(
      'SLACK_BOT_TOKEN',
    );
    const env = readEnv({ SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-1-abcdefghijkl' }, []);
    expect(slackButtonsWarning({ env, policy })).toBeNull();
  });
});
