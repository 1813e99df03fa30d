import { describe, expect, it } from 'vitest';
import { policySchema } from '../../src/config/policy.ts';
import { usdToPico } from '../../src/money.ts';
import { describeKeyStage, rotationStateOf } from '../../src/rotation/core/describe.ts';
import { planRotation } from '../../src/rotation/core/plan.ts';
import type { KeyState, KeyTraffic, RotationDecision, RotationInputs } from '../../src/rotation/core/types.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** The daily run at 09:00 UTC. */
const NOW = new Date('2026-06-15T09:00:00Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);

function rotation(settings: Record<string, unknown> = {}) {
  return policySchema.parse({
    rotation: { max_age_days: 90, remind_before_days: [14, 7, 1], grace_days: 7, enforce: true, ...settings },
  }).rotation;
}

let serial = 0;
/** An active 90-day key with this deadline. */
function keyDue(deadline: Date, over: Partial<KeyState> = {}): KeyState {
  serial += 1;
  return {
    id: `apikey_01K${String(serial).padStart(4, '0')}`,
    name: `key ${serial}`,
    status: 'active',
    workspaceId: 'wrkspc_01Prod',
    scope: 'workspace',
    workspaceName: 'Production',
    createdAt: new Date(deadline.getTime() - 90 * DAY),
    expiresAt: null,
    createdByUserId: 'user_01Alice',
    ownerEmail: 'alice@acme.com',
    partialKeyHint: 'sk-ant-api03-R2D...igAA',
    ...over,
  };
}

/** A key due `deadlineInDays` from now, at 15:00 UTC: later in the day than the run, as deadlines usually are. */
function key(deadlineInDays: number, over: Partial<KeyState> = {}): KeyState {
  return keyDue(at(deadlineInDays * DAY + 6 * HOUR), over);
}

/** Last used `hoursAgo`; tokens and cost in the 24 h drain window when that is inside it. */
function usedHoursAgo(hoursAgo: number, tokens = 50_000n, usd = '1.25'): KeyTraffic {
  const inWindow = hoursAgo < 24;
  return {
    lastUsageAt: at(-hoursAgo * HOUR),
    windowTokens: inWindow ? tokens : 0n,
    windowUsd: inWindow ? usdToPico(usd) : 0n,
  };
}

interface Case {
  keys: KeyState[];
  traffic?: Record<string, KeyTraffic>;
  sent?: Record<string, Record<string, Date>>;
  dataUntil?: Date | null;
}

function plan(c: Case, policy = rotation(), now = NOW): RotationDecision[] {
  const inputs: RotationInputs = {
    keys: c.keys,
    traffic: new Map(Object.entries(c.traffic ?? {})),
    usage: { dataUntil: c.dataUntil === undefined ? at(-10 * 60_000) : c.dataUntil },
    sent: new Map(Object.entries(c.sent ?? {}).map(([id, stages]) => [id, new Map(Object.entries(stages))])),
  };
  return planRotation(inputs, policy, now);
}

/** A decision in the words of the STYLE examples: remind:14, deactivate:drained, not_active:inactive, … */
function summary(d: RotationDecision): string {
  switch (d.kind) {
    case 'remind':
      return d.missedStages.length > 0
        ? `remind:${d.stage} (skipping ${d.missedStages.join(',')})`
        : `remind:${d.stage}`;
    case 'due_soon':
      return `due_soon:${d.stage}`;
    case 'deactivate':
    case 'would_deactivate':
    case 'deferred':
    case 'ask_approval':
      return `${d.kind}:${d.reason}`;
    case 'not_active':
      return `not_active:${d.status}`;
    default:
      return d.kind;
  }
}

function planOne(k: KeyState, c: Omit<Case, 'keys'> = {}, policy = rotation()): RotationDecision {
  const [d] = plan({ keys: [k], ...c }, policy);
  if (!d) throw new Error('no decision');
  return d;
}

describe('reminder stages (deadline at 15:00 UTC, daily run at 09:00)', () => {
  it.each([
    ['20 days before', 20, {}, 'ok'],
    ['15 days before', 15, {}, 'ok'],
    ['14 calendar days before, 14 d 6 h left', 14, {}, 'remind:14'],
    ['10 days before, 14-day reminder not sent yet', 10, {}, 'remind:14'],
    ['10 days before, 14-day reminder sent', 10, { '14': at(-4 * DAY) }, 'due_soon:14'],
    ['7 days before, 14-day reminder sent', 7, { '14': at(-7 * DAY) }, 'remind:7'],
    [
      '7 days before, 7-day reminder sent this morning (re-run)',
      7,
      { '14': at(-7 * DAY), '7': at(-HOUR) },
      'due_soon:7',
    ],
    ['3 days before, the 7-day run was missed', 3, { '14': at(-11 * DAY) }, 'remind:7'],
    ['1 day before, runs missed since the 14-day reminder', 1, { '14': at(-13 * DAY) }, 'remind:1 (skipping 7)'],
    ['1 day before, worker down for two weeks', 1, {}, 'remind:1 (skipping 14,7)'],
    ['deadline day, six hours left', 0, { '14': at(-14 * DAY), '7': at(-7 * DAY) }, 'remind:1'],
    ['deadline day, 1-day reminder sent yesterday', 0, { '1': at(-DAY) }, 'due_soon:1'],
    [
      'deadline extended after the 1-day reminder: a stage is never sent twice',
      1,
      { '1': at(-30 * DAY) },
      'due_soon:1',
    ],
  ])('%s → %s', (_case, days, sent, expected) => {
    const k = key(days);
    expect(summary(planOne(k, { sent: { [k.id]: sent } }))).toBe(expected);
  });

  it('a reminder names the deadline, the days left and the stage to record', () => {
    const k = key(7);
    const d = planOne(k, { sent: { [k.id]: { '14': at(-7 * DAY) } } });
    expect(d).toMatchObject({
      kind: 'remind',
      stage: 7,
      recordStage: '7',
      daysLeft: 7,
      deadline: at(7 * DAY + 6 * HOUR),
    });
  });

  it('follows remind_before_days from the policy, in any order and with duplicates', () => {
    const policy = rotation({ remind_before_days: [3, 30, 3] });
    expect(summary(planOne(key(29), {}, policy))).toBe('remind:30');
    expect(summary(planOne(key(3), {}, policy))).toBe('remind:3 (skipping 30)');
    expect(summary(planOne(key(7), {}, policy))).toBe('remind:30');
  });

  it('with no reminder stages a key is ok until its deadline', () => {
    const d = planOne(key(1), {}, rotation({ remind_before_days: [] }));
    expect(d.kind).toBe('ok');
  });
});

/** A key whose deadline was `daysAgo` ago and whose overdue notice went out `noticeDaysAgo` ago. */
function overdueKey(daysAgo: number, noticeDaysAgo: number | null = daysAgo, over: Partial<KeyState> = {}) {
  const k = keyDue(at(-daysAgo * DAY), over);
  const sent: Record<string, Date> = noticeDaysAgo === null ? {} : { overdue: at(-noticeDaysAgo * DAY) };
  return { k, sent: { [k.id]: sent } };
}

describe('overdue, grace and enforcement (grace 7 days, drain window 24 h)', () => {
  const stale = at(-2 * HOUR);
  it.each([
    ['deadline passed this morning, no notice yet', 0.1, null, usedHoursAgo(1), undefined, {}, 'overdue'],
    ['3 days overdue, notice sent', 3, 3, usedHoursAgo(1), undefined, {}, 'grace'],
    ['30 days overdue after a policy edit, never told', 30, null, usedHoursAgo(72), undefined, {}, 'overdue'],
    ['30 days overdue, told 2 days ago: grace runs from the notice', 30, 2, usedHoursAgo(72), undefined, {}, 'grace'],
    ['past grace, quiet for 3 days', 8, 8, usedHoursAgo(72), undefined, {}, 'deactivate:drained'],
    ['past grace, never used at all', 8, 8, undefined, undefined, {}, 'deactivate:drained'],
    ['past grace, traffic an hour ago', 8, 8, usedHoursAgo(1), undefined, {}, 'blocked'],
    ['past grace, last used 23 h ago', 8, 8, usedHoursAgo(23), undefined, {}, 'blocked'],
    ['past grace, quiet, usage data 2 h behind', 8, 8, usedHoursAgo(72), stale, {}, 'hold'],
    ['past grace, quiet, usage never ingested', 8, 8, undefined, null, {}, 'hold'],
    ['past grace, traffic, usage data 2 h behind', 8, 8, usedHoursAgo(1), stale, {}, 'blocked'],
    [
      'force_after_days 14, 13 days past grace, traffic',
      20,
      20,
      usedHoursAgo(1),
      undefined,
      { force_after_days: 14 },
      'blocked',
    ],
    [
      'force_after_days 14, 14 days past grace, traffic',
      21,
      21,
      usedHoursAgo(1),
      undefined,
      { force_after_days: 14 },
      'deactivate:forced',
    ],
    [
      'forced even when usage data is stale',
      21,
      21,
      usedHoursAgo(30),
      stale,
      { force_after_days: 14 },
      'deactivate:forced',
    ],
    ['enforce off, quiet', 8, 8, usedHoursAgo(72), undefined, { enforce: false }, 'would_deactivate:drained'],
    ['enforce off, traffic', 8, 8, usedHoursAgo(1), undefined, { enforce: false }, 'blocked'],
    [
      'enforce off, past force_after_days',
      21,
      21,
      usedHoursAgo(1),
      undefined,
      { enforce: false, force_after_days: 14 },
      'would_deactivate:forced',
    ],
    ['enforce approve, quiet', 8, 8, usedHoursAgo(72), undefined, { enforce: 'approve' }, 'ask_approval:drained'],
    ['enforce approve, traffic', 8, 8, usedHoursAgo(1), undefined, { enforce: 'approve' }, 'blocked'],
    ['enforce approve, quiet, usage data 2 h behind', 8, 8, usedHoursAgo(72), stale, { enforce: 'approve' }, 'hold'],
    [
      'enforce approve, past force_after_days',
      21,
      21,
      usedHoursAgo(1),
      undefined,
      { enforce: 'approve', force_after_days: 14 },
      'ask_approval:forced',
    ],
    ['drain window 72 h, last used 48 h ago', 8, 8, usedHoursAgo(48), undefined, { drain_window_hours: 72 }, 'blocked'],
    [
      'grace 0: enforced the run after the notice',
      1,
      1,
      usedHoursAgo(72),
      undefined,
      { grace_days: 0 },
      'deactivate:drained',
    ],
  ])('%s → %s', (_case, daysAgo, noticeDaysAgo, traffic, dataUntil, settings, expected) => {
    const { k, sent } = overdueKey(daysAgo, noticeDaysAgo);
    const d = planOne(k, { sent, traffic: traffic ? { [k.id]: traffic } : {}, dataUntil }, rotation(settings));
    expect(summary(d)).toBe(expected);
  });

  it('enforce: approve never deactivates on its own; a Deny holds until its ask-again time, then it asks again', () => {
    const { k, sent } = overdueKey(8, 8);
    const approve = rotation({ enforce: 'approve' });
    const traffic = { [k.id]: usedHoursAgo(72) };
    const denial = { deniedBy: 'slack:U0SEC', deniedAt: at(-DAY), askAgainAt: at(6 * DAY), reason: null };
    const inputs = (denials: Map<string, typeof denial>, now = NOW): RotationDecision | undefined =>
      planRotation(
        {
          keys: [k],
          traffic: new Map(Object.entries(traffic)),
          usage: { dataUntil: new Date(now.getTime() - 600_000) },
          sent: new Map(Object.entries(sent).map(([id, st]) => [id, new Map(Object.entries(st))])),
          denials,
        },
        approve,
        now,
      )[0];
    expect(inputs(new Map())?.kind).toBe('ask_approval');
    expect(inputs(new Map([[k.id, denial]]))).toMatchObject({ kind: 'denied', denial });
    expect(describeKeyStage(inputs(new Map([[k.id, denial]]))!)).toBe('denied');
    expect(inputs(new Map([[k.id, denial]]), at(6 * DAY))?.kind).toBe('ask_approval');
    // the per-run cap is for what keywarden does alone: each question waits for its own press
    const many = Array.from({ length: 8 }, () => overdueKey(8, 8));
    const asked = plan(
      { keys: many.map((m) => m.k), sent: Object.assign({}, ...many.map((m) => m.sent)) },
      rotation({ enforce: 'approve', max_deactivations_per_run: 2 }),
    );
    expect(asked.map((d) => d.kind)).toEqual(Array(8).fill('ask_approval'));
  });

  it('the overdue notice says when enforcement can start', () => {
    const { k, sent } = overdueKey(0.1, null);
    expect(planOne(k, { sent })).toMatchObject({ kind: 'overdue', recordStage: 'overdue', enforceFrom: at(7 * DAY) });
  });

  it('a blocked key names its recent traffic', () => {
    const { k, sent } = overdueKey(8);
    const d = planOne(k, { sent, traffic: { [k.id]: usedHoursAgo(2, 1_200_000n, '4.10') } });
    expect(d).toMatchObject({
      kind: 'blocked',
      enforce: true,
      recentTraffic: { windowHours: 24, tokens: 1_200_000n, costUsd: usdToPico('4.10'), lastUsageAt: at(-2 * HOUR) },
    });
  });

  it('a hold says why, with the time usage data stops', () => {
    const { k, sent } = overdueKey(8);
    const d = planOne(k, { sent, dataUntil: at(-47 * 60_000) });
    expect(d.kind).toBe('hold');
    if (d.kind !== 'hold') return;
    expect(d.reason).toContain('usage data stale since 2026-06-15T08:13:00.000Z (47 min behind, limit 30 min)');
    expect(d.dataUntil).toEqual(at(-47 * 60_000));
  });

  it('usage data exactly 30 minutes behind is fresh enough', () => {
    const { k, sent } = overdueKey(8);
    expect(summary(planOne(k, { sent, dataUntil: at(-30 * 60_000) }))).toBe('deactivate:drained');
  });
});

describe('likely successor of a blocked key (newest active key in its workspace, created after the first reminder)', () => {
  // Old key: deadline 8 days ago at 09:00; its 14-day reminder came due 22 days ago at 00:00 UTC.
  const firstReminder = at(-22 * DAY - 9 * HOUR);
  const successorCase = (extra: Partial<KeyState>[], traffic: Record<string, KeyTraffic> = {}) => {
    const { k, sent } = overdueKey(8, 8, { id: 'apikey_01Old', workspaceId: 'wrkspc_01Prod' });
    const others = extra.map((o, i) => key(60, { id: `apikey_01New${i}`, name: `new ${i}`, ...o }));
    const [d] = plan({
      keys: [k, ...others],
      sent,
      traffic: { apikey_01Old: usedHoursAgo(1, 100_000n), ...traffic },
    });
    return d;
  };

  it.each([
    ['a key made after the reminder', [{ createdAt: at(-3 * DAY) }], 'apikey_01New0'],
    [
      'a key made just after the first reminder came due',
      [{ createdAt: at(firstReminder.getTime() - NOW.getTime() + 1) }],
      'apikey_01New0',
    ],
    ['only a key made before the reminder', [{ createdAt: at(-23 * DAY) }], null],
    ['only a key in another workspace', [{ createdAt: at(-3 * DAY), workspaceId: 'wrkspc_01Res' }], null],
    ['only a key in the Default Workspace', [{ createdAt: at(-3 * DAY), workspaceId: null }], null],
    ['only an inactive key', [{ createdAt: at(-3 * DAY), status: 'inactive' }], null],
    ['only an expired key', [{ createdAt: at(-3 * DAY), expiresAt: at(-HOUR) }], null],
    ['two candidates: the newest', [{ createdAt: at(-10 * DAY) }, { createdAt: at(-2 * DAY) }], 'apikey_01New1'],
  ])('%s → %s', (_case, extra, expected) => {
    const d = successorCase(extra);
    expect(d?.kind).toBe('blocked');
    if (d?.kind !== 'blocked') return;
    expect(d.successor?.keyId ?? null).toBe(expected);
  });

  it('a Default Workspace key is not succeeded by an organization-scoped key (both say no workspace id)', () => {
    const { k, sent } = overdueKey(8, 8, { id: 'apikey_01Old', workspaceId: null });
    const agent = key(60, { id: 'apikey_01Agent', workspaceId: null, scope: 'organization', createdAt: at(-3 * DAY) });
    const [d] = plan({ keys: [k, agent], sent, traffic: { apikey_01Old: usedHoursAgo(1, 100_000n) } });
    expect(d).toMatchObject({ kind: 'blocked', successor: null });
  });

  it('gives the share of the pair’s drain-window tokens the successor already carries', () => {
    const d = successorCase([{ createdAt: at(-3 * DAY) }], { apikey_01New0: usedHoursAgo(1, 900_000n) });
    expect(d).toMatchObject({ kind: 'blocked', successor: { keyId: 'apikey_01New0', name: 'new 0', share: 0.9 } });
  });

  it('a successor that carries nothing yet has share 0', () => {
    const d = successorCase([{ createdAt: at(-3 * DAY) }]);
    expect(d).toMatchObject({ successor: { share: 0 } });
  });

  it('Default Workspace keys (no workspace id) find each other', () => {
    const { k, sent } = overdueKey(8, 8, { workspaceId: null });
    const fresh = key(80, { workspaceId: null, createdAt: at(-3 * DAY) });
    const [blocked] = plan({ keys: [k, fresh], sent, traffic: { [k.id]: usedHoursAgo(1) } });
    expect(blocked).toMatchObject({ kind: 'blocked', successor: { keyId: fresh.id } });
  });
});

describe('max_deactivations_per_run', () => {
  // Seven drained keys, 8..14 days past their deadline, listed least overdue first.
  const drained = [8, 9, 10, 11, 12, 13, 14].map((days) => overdueKey(days));
  const keys = drained.map(({ k }) => k);
  const sent = Object.assign({}, ...drained.map(({ sent }) => sent));

  it('deactivates the most overdue first and defers the rest, keeping the input order', () => {
    const decisions = plan({ keys, sent }, rotation({ max_deactivations_per_run: 5 }));
    expect(decisions.map(summary)).toEqual([
      'deferred:drained',
      'deferred:drained',
      'deactivate:drained',
      'deactivate:drained',
      'deactivate:drained',
      'deactivate:drained',
      'deactivate:drained',
    ]);
    expect(decisions.map((d) => d.key.id)).toEqual(keys.map((k) => k.id));
    expect(decisions[0]).toMatchObject({ kind: 'deferred', cap: 5 });
  });

  it('blocked keys do not use up the cap', () => {
    const traffic = { [keys[6]!.id]: usedHoursAgo(1), [keys[5]!.id]: usedHoursAgo(1) };
    const decisions = plan({ keys, sent, traffic }, rotation({ max_deactivations_per_run: 5 }));
    expect(decisions.filter((d) => d.kind === 'deactivate')).toHaveLength(5);
    expect(decisions.filter((d) => d.kind === 'deferred')).toHaveLength(0);
  });

  it('applies to the dry run too, so enforce: false previews the real run', () => {
    const decisions = plan({ keys, sent }, rotation({ enforce: false, max_deactivations_per_run: 5 }));
    expect(decisions.filter((d) => d.kind === 'would_deactivate')).toHaveLength(5);
    expect(decisions.filter((d) => d.kind === 'deferred').map((d) => d.key.id)).toEqual([keys[0]!.id, keys[1]!.id]);
  });

  it('a cap of 0 defers every deactivation', () => {
    const decisions = plan({ keys, sent }, rotation({ max_deactivations_per_run: 0 }));
    expect(new Set(decisions.map(summary))).toEqual(new Set(['deferred:drained']));
  });
});

describe('keys that are not active, and exemptions', () => {
  it.each([
    ['inactive', { status: 'inactive' }, 'not_active:inactive'],
    ['archived', { status: 'archived' }, 'not_active:archived'],
    ['expired', { status: 'expired' }, 'not_active:expired'],
    ['a status the API added later', { status: 'suspended' }, 'not_active:suspended'],
    ['still "active" but past its expires_at', { expiresAt: at(-HOUR) }, 'not_active:expired'],
  ])('%s, 30 days overdue → %s, never reminded or enforced', (_case, over, expected) => {
    const { k, sent } = overdueKey(30, 30, over);
    expect(summary(planOne(k, { sent }))).toBe(expected);
  });

  it('an exempt key shows the exemption, whatever its age', () => {
    const k = key(-200, { name: 'vendor-sync' });
    const policy = rotation({
      exemptions: [{ key: 'vendor-*', until: '2027-01-31', reason: 'vendor rotates with us' }],
    });
    expect(planOne(k, {}, policy)).toMatchObject({
      kind: 'exempt',
      deadline: null,
      until: '2027-01-31',
      reason: 'vendor rotates with us',
    });
  });

  it('an exempt key with its own expiry is reminded before it expires', () => {
    const k = key(-200, { name: 'vendor-sync', expiresAt: at(5 * DAY) });
    const policy = rotation({
      exemptions: [{ key: 'vendor-*', until: '2027-01-31', reason: 'vendor rotates with us' }],
    });
    expect(summary(planOne(k, {}, policy))).toBe('remind:7 (skipping 14)');
  });
});

describe('the keys table: stage and policy source', () => {
  const exemptions = [{ key: 'vendor-*', until: '2027-01-31', reason: 'vendor rotates with us' }];
  const overrides = [{ key: 'ci-*', max_age_days: 90 }];
  it.each([
    ['fresh key', () => planOne(key(40)), 'ok', 'default'],
    ['14-day reminder due', () => planOne(key(10)), 'due_in_14d', 'default'],
    [
      '7-day reminder already sent',
      () => {
        const k = key(5);
        return planOne(k, { sent: { [k.id]: { '7': at(-2 * DAY) } } });
      },
      'due_in_7d',
      'default',
    ],
    ['overdue', () => planOne(key(-1)), 'overdue', 'default'],
    [
      'key override',
      () => planOne(key(40, { name: 'ci-deploy' }), {}, rotation({ overrides })),
      'ok',
      'override key ci-*',
    ],
    [
      'exempt',
      () => planOne(key(40, { name: 'vendor-x' }), {}, rotation({ exemptions })),
      'exempt',
      'exemption until 2027-01-31',
    ],
    ['inactive', () => planOne(key(40, { status: 'inactive' })), 'inactive', 'default'],
    ['expiring first', () => planOne(key(40, { expiresAt: at(3 * DAY) })), 'due_in_7d', 'expires_at'],
  ])('%s → %s, %s', (_case, decide, stage, source) => {
    const decision = decide();
    expect(describeKeyStage(decision)).toBe(stage);
    const state = rotationStateOf(decision);
    expect(state.policySource).toBe(source);
    // rotation_state keeps the stage's word and, for a reminder stage, its days in a column of their own
    const due = /^due_in_(\d+)d$/.exec(stage);
    expect([state.stage, state.reminderDays]).toEqual(due ? ['due_soon', Number(due[1])] : [stage, null]);
  });

  it('a key in a status the API added later is `not_active` in rotation_state, and shows its status in the table', () => {
    const decision = planOne(key(40, { status: 'suspended' }));
    expect(describeKeyStage(decision)).toBe('suspended');
    expect(rotationStateOf(decision)).toMatchObject({ stage: 'not_active', reminderDays: null });
  });

  it('grace, blocked and deactivation stages read as such', () => {
    const grace = overdueKey(3);
    expect(describeKeyStage(planOne(grace.k, { sent: grace.sent }))).toBe('grace');
    const blocked = overdueKey(8);
    expect(
      describeKeyStage(planOne(blocked.k, { sent: blocked.sent, traffic: { [blocked.k.id]: usedHoursAgo(1) } })),
    ).toBe('blocked');
    expect(describeKeyStage(planOne(blocked.k, { sent: blocked.sent }, rotation({ enforce: false })))).toBe(
      'would_deactivate',
    );
  });
});
